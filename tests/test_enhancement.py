"""Speech enhancement on the core (CDiffuSE): the conditional process against closed forms, the data (mixing,
noise kinds, VoiceBank-DEMAND's layout), the Enhancer, `wavegrad enhance` and a few training steps.

Closed forms: with Gaussian clean data x0 ~ N(mu, s²) and Gaussian noise (y = x0 + n, n ~ N(0, v)), the clean signal
given the noisy one is N(mu + s²/(s²+v)·(y - mu), s²v/(s²+v)); the reverse process driven by the exact conditional
denoiser must draw from it. With m = 0 the process is DDPM's and its reverse step must be DDPM's posterior.
"""
import math

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegrad.audio import MelConfig
from wavegrad.data.noise import KINDS, NoiseBank, generate_noise, mix, snr_db
from wavegrad.diffusion import NoiseSchedule
from wavegrad.diffusion.conditional import (enhance, forward_variance, q_sample_conditional, reverse_coefficients)
from wavegrad.diffusion.prediction import posterior_mean_coefficients
from wavegrad.errors import UserInputError

MU, S2, V, Y = 0.3, 0.5, 0.3, 1.0
POST_VAR, POST_MEAN = S2 * V / (S2 + V), MU + S2 / (S2 + V) * (Y - MU)


def _exact_denoiser(x, level):
    """E[eps~ | x_t, y] for x0 | y ~ N(POST_MEAN, POST_VAR) under the sampler's m (clipped to 1)."""
    a = float(level[0])
    m = min(1.0, math.sqrt((1 - a * a) / a))
    d = forward_variance(a * a, m)
    gain = POST_VAR * (1 - m) * a / ((1 - m) ** 2 * a * a * POST_VAR + d)
    x0 = POST_MEAN + gain * (x - (1 - m) * a * POST_MEAN - m * a * Y)
    return (x - a * x0) / math.sqrt(1 - a * a)


@pytest.mark.parametrize("eta", [1.0, 0.0], ids=["ancestral", "deterministic"])
def test_the_reverse_process_draws_clean_given_noisy(eta):
    y = torch.full((200_000, 1), Y, dtype=torch.float64)
    sched = NoiseSchedule.linear(200, 1e-4, 0.0125)              # ends where m reaches 1 (alpha_bar_T = 0.28)
    x = enhance(_exact_denoiser, y, sched, eta=eta, gamma=0.0, generator=torch.Generator().manual_seed(1))
    assert abs(float(x.mean()) - POST_MEAN) < 0.005
    assert abs(float(x.var()) / POST_VAR - 1) < 0.05


def test_without_the_observation_the_reverse_step_is_ddpms_posterior():
    """m = 0: c_y = 0 and x_{t-1} = c0·x0^ + ct·x_t + sqrt(beta~)·z with x0^ = (x_t - sqrt(1-abar)·eps) / sqrt(abar)."""
    for abar_t, abar_prev in ((0.5, 0.6), (0.05, 0.2), (0.9, 0.99)):
        c_x, c_y, c_eps, var = reverse_coefficients(abar_t, abar_prev, 0.0, 0.0)
        beta, beta_tilde, c0, ct = posterior_mean_coefficients(abar_t, abar_prev)
        assert c_y == pytest.approx(0.0, abs=1e-12)
        assert c_x == pytest.approx(c0 / math.sqrt(abar_t) + ct, rel=1e-10)
        assert c_eps == pytest.approx(c0 * math.sqrt(1 - abar_t) / math.sqrt(abar_t), rel=1e-10)
        assert var == pytest.approx(beta_tilde, rel=1e-10)


def test_the_forward_pair_is_the_vp_form_with_the_combined_noise():
    g = torch.Generator().manual_seed(0)
    x0, y, z = (torch.randn(4, 64, generator=g, dtype=torch.float64) for _ in range(3))
    level = torch.tensor([0.2, 0.5, 0.8, 0.99], dtype=torch.float64)
    x_t, eps_tilde = q_sample_conditional(x0, y, level, z)
    a = level[:, None]
    torch.testing.assert_close(x_t, a * x0 + (1 - a * a).sqrt() * eps_tilde)
    m = ((1 - a * a) / a).sqrt()
    torch.testing.assert_close(x_t, (1 - m) * a * x0 + m * a * y + ((1 - a * a) * (1 - a)).sqrt() * z)


def test_the_output_is_mixed_with_the_observation():
    """A denoiser whose x0 estimate is c everywhere: the result is (1 - gamma)·c + gamma·y."""
    y = torch.randn(2, 256, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    c = 0.25

    def denoise(x, level):
        a = level[:, None]
        return (x - a * c) / (1 - a * a).sqrt()
    out = enhance(denoise, y, NoiseSchedule.linear(50, 1e-4, 0.035), gamma=0.2, generator=torch.Generator())
    torch.testing.assert_close(out, 0.8 * c + 0.2 * y, rtol=0, atol=1e-5)
    with pytest.raises(UserInputError):
        enhance(denoise, y, NoiseSchedule.linear(5), gamma=1.5)


# ---- data ---------------------------------------------------------------------------------------------------------
def test_mix_reaches_the_requested_snr():
    rng = np.random.default_rng(0)
    s, n = rng.standard_normal(4000).astype(np.float32), 3 * rng.standard_normal(4000).astype(np.float32)
    for target in (-5.0, 0.0, 12.5):
        y = mix(s, n, target)
        assert snr_db(s, y - s) == pytest.approx(target, abs=1e-3)
    with pytest.raises(UserInputError, match="silent"):
        mix(s, np.zeros(4000, dtype=np.float32), 5.0)


def test_every_noise_kind_is_seeded_and_audible():
    speech = [np.sin(np.arange(8000) * f) for f in (0.05, 0.07, 0.11)]
    for kind in KINDS:
        a = generate_noise(kind, 0.5, 16000, seed=1, speech=speech)
        assert np.array_equal(a, generate_noise(kind, 0.5, 16000, seed=1, speech=speech))
        assert len(a) == 8000 and 0.49 < np.abs(a).max() <= 0.5 and np.std(a) > 1e-3
    with pytest.raises(UserInputError, match="babble"):
        generate_noise("babble", 0.5, 16000)


def _write(path, x, sr):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), x, sr, subtype="PCM_16")


def test_voicebank_layout_is_read_and_checked(tmp_path):
    """Files made in VoiceBank-DEMAND's layout (48 kHz): pairs resampled to the model's rate; every problem named."""
    from wavegrad.data.voicebank import VoiceBankPairs, check_voicebank, voicebank_pairs
    rng = np.random.default_rng(0)
    root = tmp_path / "vb"
    for name in ("p226_001", "p226_002"):
        clean = 0.3 * np.sin(np.arange(48000) * 0.01)
        _write(root / "clean_trainset_wav" / f"{name}.wav", clean, 48000)
        _write(root / "noisy_trainset_wav" / f"{name}.wav", clean + 0.05 * rng.standard_normal(48000), 48000)
        _write(root / "clean_testset_wav" / f"{name}.wav", clean, 48000)
        _write(root / "noisy_testset_wav" / f"{name}.wav", clean + 0.05 * rng.standard_normal(48000), 48000)
    assert [p[0].name for p in voicebank_pairs(root, "train")] == ["p226_001.wav", "p226_002.wav"]
    assert check_voicebank(root, "train") == []
    clean, noisy, name = VoiceBankPairs(root, "test", 22050)[0]
    assert name == "p226_001" and len(clean) == len(noisy) == 22050 and 10 < snr_db(clean, noisy - clean) < 20
    # the problems the checker names
    _write(root / "clean_trainset_wav" / "p226_003.wav", np.zeros(480), 48000)                     # no partner
    _write(root / "noisy_trainset_wav" / "p226_002.wav", 0.1 * rng.standard_normal(24000), 48000)  # length
    _write(root / "clean_testset_wav" / "p226_002.wav", 0.3 * np.sin(np.arange(16000) * 0.01), 16000)   # rate
    same = 0.3 * np.sin(np.arange(4800) * 0.02)
    _write(root / "clean_testset_wav" / "p226_009.wav", same, 48000)
    _write(root / "noisy_testset_wav" / "p226_009.wav", same, 48000)                                # silent noise
    problems = [str(p) for p in check_voicebank(root, "train") + check_voicebank(root, "test")]
    assert any("p226_003.wav: has no partner" in p for p in problems)
    assert any("clean has 48000 samples, noisy 24000" in p for p in problems)
    assert any("clean is 16000 Hz, noisy 48000 Hz" in p for p in problems)
    assert any("identical to its clean file" in p for p in problems)
    with pytest.raises(UserInputError, match="has no partner"):
        VoiceBankPairs(root, "train", 22050)
    with pytest.raises(UserInputError, match="missing"):
        voicebank_pairs(tmp_path / "nowhere", "train")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small clean corpus (formant speech) and a noise folder."""
    from wavegrad.data import write_splits
    from wavegrad.data.noise import make_noise_corpus
    from wavegrad.data.synthetic import make_speech_like_corpus
    d = tmp_path_factory.mktemp("enh")
    make_speech_like_corpus(d / "clean", n_clips=6, seed=3)
    write_splits(d / "clean", n_val=1, n_test=1)
    make_noise_corpus(d / "noise", ["white", "hum"], per_kind=1, seconds=2.0)
    return d


def test_noisy_crops_are_seeded_mixtures_in_range(corpus):
    from wavegrad.data import load_split
    from wavegrad.data.enhancement import NoisyCrops
    ds = NoisyCrops(2048, 22050, clean_dir=corpus / "clean", ids=load_split(corpus / "clean", "train"),
                    noise_dir=corpus / "noise", snr_range=(0.0, 10.0))
    a, b = ds[(0, 7)], ds[(0, 7)]
    assert torch.equal(a["clean"], b["clean"]) and torch.equal(a["noisy"], b["noisy"])
    assert not torch.equal(ds[(0, 8)]["noisy"], a["noisy"])
    for seed in range(5):
        item = ds[(1, seed)]
        c, y = item["clean"].numpy(), item["noisy"].numpy()
        assert np.abs(y).max() <= 0.95 + 1e-6
        if np.any(c):
            assert -0.01 <= snr_db(c, y - c) <= 10.01
    bank = NoiseBank(corpus / "noise", 22050)
    with pytest.raises(UserInputError, match="no such noise folder"):
        NoiseBank(corpus / "nothing", 22050)
    assert len(bank.clips) == 2


# ---- the enhancer -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from wavegrad.enhance import EnhancerBundle
    from wavegrad.models import DiffWave, DiffWaveConfig
    torch.manual_seed(0)
    net = DiffWave(DiffWaveConfig.tiny())
    for p in net.parameters():                       # the output layer starts at zero: give it weights to see
        torch.nn.init.normal_(p, std=0.05)
    bundle = EnhancerBundle(net.cfg, MelConfig(), NoiseSchedule.linear(50, 1e-4, 0.035))
    return bundle.save_checkpoint(tmp_path_factory.mktemp("enhancer") / "step-00000000.pt", net.state_dict())


def _noisy(seconds=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(int(22050 * seconds)) / 22050
    return (0.4 * torch.sin(2 * math.pi * 180 * t) + 0.05 * torch.randn(len(t), generator=g)).float()


def test_enhancer_keeps_length_and_windows_change_nothing(checkpoint):
    from wavegrad.enhance import Enhancer
    enh = Enhancer.from_checkpoint(checkpoint)
    y = _noisy(3.0)[:-100]                                           # not a whole number of hops
    whole = enh(y, chunk_frames=None)
    windowed = enh(y, chunk_frames=64)
    assert whole.shape == y.shape and torch.isfinite(whole).all()
    torch.testing.assert_close(windowed, whole, rtol=0, atol=1e-3)
    assert not torch.equal(enh(y, sampler="ddim"), whole)
    assert torch.equal(enh(y, seed=3), enh(y, seed=3))
    for bad, match in ((torch.zeros(22050), "silent"), (torch.full((22050,), float("nan")), "NaN"),
                       (torch.zeros(10) + 0.1, "too short"), (torch.zeros(2, 22050) + 0.1, "float waveform")):
        with pytest.raises(UserInputError, match=match):
            enh(bad)
    with pytest.raises(UserInputError, match="sampler"):
        enh(y, sampler="heun")
    with pytest.raises(UserInputError, match="steps"):
        enh(y, steps=0)


def test_enhance_cli_writes_every_output_or_nothing(checkpoint, tmp_path, capsys):
    from wavegrad.cli import main
    from wavegrad.enhance import Enhancer
    good = tmp_path / "a.wav"
    sf.write(str(good), _noisy(1.0).numpy(), 22050)
    silent = tmp_path / "b.wav"
    sf.write(str(silent), np.zeros(22050), 22050)
    assert main(["enhance", str(checkpoint), str(good), str(silent), "--out-dir", str(tmp_path / "o1")]) == 2
    assert "silent" in capsys.readouterr().err and not (tmp_path / "o1").exists()
    assert main(["enhance", str(checkpoint), str(good), "--out-dir", str(tmp_path / "o2"), "--steps", "0"]) == 2
    assert main(["enhance", str(checkpoint), str(good), "--out-dir", str(tmp_path / "o3"), "--steps", "4"]) == 0
    out, sr = sf.read(str(tmp_path / "o3" / "a.wav"))
    assert sr == 22050 and len(out) == 22050
    assert main(["export", str(checkpoint), str(tmp_path / "exp")]) == 0
    y = _noisy(1.0)
    torch.testing.assert_close(Enhancer.from_pretrained(tmp_path / "exp")(y), Enhancer.from_checkpoint(checkpoint)(y))
    assert main(["enhance", str(tmp_path / "exp"), str(good), "--out-dir", str(tmp_path / "o4")]) == 0
    capsys.readouterr()
    assert main(["vocode", str(checkpoint), str(good), "--out-dir", str(tmp_path / "o5")]) == 2
    assert "not a vocoder" in capsys.readouterr().err


def test_a_few_training_steps_make_an_enhancer(corpus, tmp_path):
    from wavegrad.config import replace
    from wavegrad.enhance import Enhancer
    from wavegrad.training.runs import EnhanceRun, train_enhancer
    run = replace(EnhanceRun(), model="diffwave-tiny", **{
        "data.clean_dir": str(corpus / "clean"), "data.noise_dir": str(corpus / "noise"), "data.segment_length": 2048,
        "data.val_clips": 1, "train.run_dir": str(tmp_path / "run"), "train.batch_size": 2, "train.max_steps": 3,
        "train.val_every": 3, "train.num_workers": 0, "train.log_every": 1})
    trainer, ckpt = train_enhancer(run)
    assert trainer.step == 3 and ckpt is not None
    enh = Enhancer.from_checkpoint(tmp_path / "run")
    assert enh.bundle.schedule == NoiseSchedule.linear(50, 1e-4, 0.035) and len(enh.bundle.inference) == 6
    assert torch.isfinite(enh(_noisy(0.5))).all()
    with pytest.raises(UserInputError, match="--clean-dir and --noise-dir"):
        train_enhancer(replace(EnhanceRun(), **{"train.run_dir": str(tmp_path / "x")}))
