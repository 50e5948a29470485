"""Mel-consistent sampling (GLA-Grad): the convention's STFT and its least-squares inverse, the projection's closed-form
properties, the denoiser wrapper, and the vocoder paths (samplers, priors, windows, batches, infilling, shallow start).

Closed forms: G⁺G = I (the inverse is exact), the projection is the identity on a signal whose magnitude is the
target, Griffin & Lim's theorem (each iteration never increases ||G x - P_C2(G x)||), the wrapper returns the
network's eps when its x0 estimate is consistent, and a denoiser whose x0 estimate is a fixed y makes every
deterministic sampler land on y.
"""
import dataclasses
import math

import pytest
import torch

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.consistency import Consistency, MelConsistentDenoiser, MelProjector, mel_griffin_lim
from wavegrad.audio.mel import MEL_PRESETS
from wavegrad.audio.priors import PriorConfig
from wavegrad.diffusion import NoiseSchedule, SAMPLERS, sample
from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.vocoder import Vocoder

ROUNDING = 1e-3          # as tests/test_vocoder_api.py: float rounding of the network, amplified by the first step


def _speechy(n: int, sr: int, seed: int = 0) -> torch.Tensor:
    """A harmonic signal with a moving pitch and a noise burst: float64 [n]."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n, dtype=torch.float64) / sr
    f0 = 140 + 30 * torch.sin(2 * math.pi * 1.5 * t)
    phase = 2 * math.pi * torch.cumsum(f0, 0) / sr
    x = sum(torch.sin(k * phase) / k for k in range(1, 12)) * 0.2
    return x + 0.02 * torch.randn(n, generator=g, dtype=torch.float64)


# ---- the convention's STFT -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MEL_PRESETS))
def test_stft_is_the_featurizers_and_its_inverse_is_exact(name):
    cfg = MelConfig.preset(name)
    p = MelProjector(cfg)
    x = _speechy(cfg.hop_length * 24, cfg.sample_rate)[None]                              # [1, T]
    spec = p.stft(x)
    mel = cfg.encode_log(p.basis @ (spec.abs().square() + cfg.power_eps).clamp_min(cfg.power_floor).sqrt())
    ref = MelFeaturizer(cfg)(x.float())
    torch.testing.assert_close(mel.float()[..., :ref.shape[-1]], ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(p.istft(spec, x.shape[-1]), x, rtol=0, atol=1e-12)         # G⁺ G = I


@pytest.mark.parametrize("name", ["hifigan", "tacotron2", "wavegrad-paper-24k"])
def test_projection_is_the_identity_on_a_consistent_signal(name):
    cfg = MelConfig.preset(name)
    p = MelProjector(cfg, band_limit=False)        # the test signal has content above f_max: keep it
    x = _speechy(cfg.hop_length * 20, cfg.sample_rate)[None]
    mag = p.stft(x).abs()
    for iterations, momentum in ((1, 0.0), (4, 0.99)):
        torch.testing.assert_close(p.project(x, mag, iterations, momentum), x, rtol=0, atol=1e-10)


def test_griffin_lim_never_increases_the_inconsistency():
    """Griffin & Lim 1984: with the least-squares inverse, d(x) = ||G x - P_C2(G x)|| is non-increasing."""
    cfg = MelConfig()
    p = MelProjector(cfg)
    target = p.stft(_speechy(256 * 30, 22050, seed=1)[None]).abs()
    x = torch.randn(1, 256 * 30, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.1
    distances = []
    for _ in range(12):
        spec = p.stft(x)
        distances.append(float((spec - p._magnitude(spec, target)).abs().norm()))
        x = p.project(x, target, 1)
    assert all(b <= a * (1 + 1e-9) for a, b in zip(distances, distances[1:])), distances
    assert distances[-1] < 0.5 * distances[0]


def test_griffin_lim_from_a_mel_converges_to_a_consistent_signal():
    """From the mel alone (its pseudo-inverse magnitude), fast Griffin-Lim finds a signal whose own mel is close to
    the given one; more iterations are closer."""
    cfg = MelConfig()
    x = _speechy(256 * 40, 22050, seed=2).float()
    mel = MelFeaturizer(cfg).paired(x)[0]
    errors = []
    for iterations in (2, 32):
        y = mel_griffin_lim([mel], cfg, iterations)[0]
        errors.append(float((MelFeaturizer(cfg).paired(y)[0] - mel).abs().mean()))
    assert errors[1] < errors[0] and errors[1] < 0.25, errors


def test_band_limited_projection_leaves_nothing_above_f_max():
    cfg = MelConfig()
    p = MelProjector(cfg)
    x = _speechy(256 * 20, 22050)[None]                                       # white noise up to 11 kHz inside
    y = p.project(x, p.target(MelFeaturizer(cfg).paired(x.float())[0])[None], 2)
    spec = torch.fft.rfft(y[0] * torch.hann_window(y.shape[-1], dtype=torch.float64))
    freqs = torch.fft.rfftfreq(y.shape[-1], 1 / 22050)
    above = spec[freqs > 8500].abs().square().sum() / spec.abs().square().sum()
    assert float(above) < 1e-6


def test_a_convention_without_a_pseudo_inverse_is_one_line():
    cfg = MelConfig(n_fft=256, win_length=256, hop_length=64, n_mels=128)     # 129 bins for 128 bands: empty filters
    with pytest.raises(UserInputError, match="empty filters"):
        MelProjector(cfg)


# ---- the wrapper -----------------------------------------------------------------------------------------------------
def _oracle(y: torch.Tensor):
    """A denoiser whose x0 estimate is ``y`` at every level: eps = (x - a·y) / sqrt(1 - a²)."""
    def denoise(x, level):
        a = level.to(x.dtype)[:, None]
        return (x - a * y) / (1 - a * a).sqrt()
    return denoise


def test_wrapper_is_the_identity_when_the_x0_estimate_is_consistent():
    cfg = MelConfig()
    y = _speechy(256 * 16, 22050, seed=3).float()
    mel = MelFeaturizer(cfg).paired(y)[0]
    p = MelProjector(cfg)
    inner = _oracle(y[None])
    wrapped = MelConsistentDenoiser(inner, [mel], [y.shape[-1]], cfg, Consistency(mode="gla", gla_iterations=3,
                                                                                band_limit=False))
    wrapped.targets = [p.stft(y[None].double()).abs()[0]]                   # the exact magnitude of y
    x = 0.7 * y[None] + 0.71 * torch.randn(1, y.shape[-1], generator=torch.Generator().manual_seed(1))
    level = torch.tensor([0.7])
    torch.testing.assert_close(wrapped(x, level), inner(x, level), rtol=0, atol=1e-4)


@pytest.mark.parametrize("opts", [dict(mode="none"), dict(mode="gla", gla_weight=0.0), dict(mode="gla", gla_iterations=0),
                                  dict(mode="gla", gla_level_min=0.8), dict(mode="none", polish_iterations=4)])
def test_wrapper_options_that_switch_it_off_change_nothing(opts):
    """Bit for bit: a level the projection does not act on hands the network's eps through untouched (``none+glK``
    wraps every step only for its polish at the end)."""
    cfg = MelConfig()
    mel = torch.randn(80, 10, generator=torch.Generator().manual_seed(0)) - 5
    inner = _oracle(torch.randn(1, 2560, generator=torch.Generator().manual_seed(1)))
    wrapped = MelConsistentDenoiser(inner, [mel], [2560], cfg, Consistency(**opts))
    x, level = torch.randn(1, 2560, generator=torch.Generator().manual_seed(2)), torch.tensor([0.5])
    assert torch.equal(wrapped(x, level), inner(x, level))


def test_wrapper_projects_each_clip_of_a_padded_batch_on_its_own():
    cfg = MelConfig()
    g = torch.Generator().manual_seed(0)
    mels = [torch.randn(80, 12, generator=g) - 4, torch.randn(80, 7, generator=g) - 4]
    lengths = [12 * 256, 7 * 256]
    y = torch.randn(2, 12 * 256, generator=g) * 0.1
    y[1, lengths[1]:] = 0
    x = 0.5 * y + 0.8 * torch.randn(2, 12 * 256, generator=g)
    x[1, lengths[1]:] = 0
    level = torch.tensor([0.5, 0.5])
    opts = Consistency(mode="gla", gla_iterations=2)
    both = MelConsistentDenoiser(_oracle(y), mels, lengths, cfg, opts)(x, level)
    for i in range(2):
        n = lengths[i]
        alone = MelConsistentDenoiser(_oracle(y[i:i + 1, :n]), [mels[i]], [n], cfg, opts)(x[i:i + 1, :n], level[i:i + 1])
        torch.testing.assert_close(both[i, :n], alone[0], rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun", "dpmpp-2m"])
def test_a_fixed_x0_estimate_is_what_every_deterministic_sampler_returns(sampler):
    """The core's contract the wrapper relies on: eps implied by x0 = y at every level -> the sample is y."""
    y = torch.randn(2, 512, generator=torch.Generator().manual_seed(0)).clamp(-1, 1) * 0.5
    out = sample(_oracle(y), y.shape, NoiseSchedule.linear(1000).respace(8), sampler=sampler,
                 generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out, y, rtol=0, atol=1e-4)


def test_gla_plus_plus_uses_the_reconstruction_at_the_first_levels():
    cfg = MelConfig()
    mel = MelFeaturizer(cfg).paired(_speechy(256 * 12, 22050).float())[0]
    inner = _oracle(torch.zeros(1, 256 * 12))
    wrapped = MelConsistentDenoiser(inner, [mel], [256 * 12], cfg, Consistency(mode="gla++", gl_steps=1,
                                                                                 gla_iterations=0), gl_below=0.3)
    x = torch.randn(1, 256 * 12, generator=torch.Generator().manual_seed(0))
    for a, expect_gl in ((0.2, True), (0.3, True), (0.6, False)):
        eps = wrapped(x, torch.tensor([a]))
        x0 = (x - math.sqrt(1 - a * a) * eps) / a
        target = wrapped.reconstructions[0].float() if expect_gl else torch.zeros(1, 256 * 12)
        torch.testing.assert_close(x0.reshape(-1), target.reshape(-1), rtol=0, atol=1e-4)


@pytest.mark.parametrize("bad", [dict(gla_iterations=-1), dict(start_level=0.0), dict(start_level=1.5),
                                 dict(gla_weight=2.0), dict(mode="grad"), dict(gla_level_min=0.9, gla_level_max=0.1),
                                 dict(gl_steps=1.5), dict(polish_iterations=-1)])
def test_bad_options_are_one_line(bad):
    with pytest.raises(UserInputError):
        Consistency(**bad)


@pytest.mark.parametrize("text, mode, start, polish", [("gla", "gla", None, 0), ("gla++", "gla++", None, 0),
                                                       ("gla@0.9", "gla", 0.9, 0), ("gla++@0.5+gl16", "gla++", 0.5, 16),
                                                       ("none+gl32", "none", None, 32), ("gla+gl4", "gla", None, 4)])
def test_labels_parse_and_round_trip(text, mode, start, polish):
    """MODE[@A0][+glK]: gla++'s own pluses are its name, +glK the polish; label() writes what parse() reads."""
    c = Consistency.parse(text)
    assert (c.mode, c.start_level, c.polish_iterations) == (mode, start, polish)
    assert c.label() == text and Consistency.parse(c.label()) == c
    assert c.active == (mode != "none" or start is not None or polish > 0)


@pytest.mark.parametrize("bad", ["gla+16", "gla+gl", "gla@x", "gla@0.9+gl-2"])
def test_malformed_labels_are_one_line(bad):
    with pytest.raises(UserInputError, match="gla@0.9"):
        Consistency.parse(bad)


# ---- through the vocoder ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def voc():
    torch.manual_seed(0)
    return Vocoder(WaveGrad(WaveGradConfig.tiny()), MelConfig(), NoiseSchedule.linear(1000))


def _mel(frames, seed=0):
    x = _speechy(256 * frames, 22050, seed).float()
    return MelFeaturizer(MelConfig()).paired(x)[0]


@pytest.mark.parametrize("sampler", list(SAMPLERS))
@pytest.mark.parametrize("prior", ["white", "specgrad"])
def test_every_sampler_and_prior_vocodes_consistently(voc, sampler, prior):
    """gla brings a random network's output close to the mel: its log-mel error is far below the plain network's."""
    v = Vocoder(voc.model, voc.mel_config, voc.train_schedule, prior=PriorConfig(kind=prior))
    mel = _mel(12)
    opts = {"n_steps": 1} if sampler == "langevin" else {}
    plain = v.vocode_batch([mel], sampler=sampler, steps=3, seed=0, **opts)[0]
    cons = v.vocode_batch([mel], sampler=sampler, steps=3, seed=0, consistency=Consistency(mode="gla", gla_iterations=8),
                          **opts)[0]
    assert cons.shape == plain.shape and torch.isfinite(cons).all()
    err = [float((v.featurizer.paired(w)[0] - mel).abs().mean()) for w in (plain, cons)]
    # langevin uses an x0 estimate only in its final denoising step: one projection of 8 iterations, not 3
    assert err[1] < (0.85 if sampler == "langevin" else 0.6) * err[0], err


def test_windowed_equals_unwindowed_with_consistency(voc):
    """The projection acts on whole clips: windows change nothing beyond the network's own rounding."""
    mel = _mel(70, seed=4)
    c = Consistency(mode="gla", gla_iterations=2)
    whole = voc.vocode_batch([mel], steps=3, seed=0, chunk_frames=None, consistency=c)[0]
    windowed = voc.vocode_batch([mel], steps=3, seed=0, chunk_frames=16, overlap_frames=32, consistency=c)[0]
    torch.testing.assert_close(windowed, whole, rtol=0, atol=ROUNDING)


def test_batches_of_different_lengths_equal_single_clips(voc):
    mels = [_mel(14, seed=5), _mel(9, seed=6)]
    c = Consistency(mode="gla++", gla_iterations=1, gl_iterations=4)
    together = voc.vocode_batch(mels, steps=3, seed=0, batch_size=4, consistency=c)
    alone = [voc.vocode_batch([m], steps=3, seed=i, consistency=c)[0] for i, m in enumerate(mels)]
    torch.testing.assert_close(together[0], alone[0], rtol=0, atol=ROUNDING)
    # the shorter clip is padded next to the longer one: only its last frames may feel the padding (as without gla)
    torch.testing.assert_close(together[1][:256 * 4], alone[1][:256 * 4], rtol=0, atol=ROUNDING)


def test_shallow_start_with_a_perfect_network_returns_the_reconstruction(voc):
    """start_level a0: the state starts at a0·GL + noise; a network whose x0 is GL then lands on GL."""
    mel = _mel(10)
    c = Consistency(mode="none", start_level=0.9, gl_iterations=8)
    sched = voc.plan(3, sampler="ddim", consistency=c).sampling.schedule
    assert float(sched.noise_levels[-1]) >= 0.9 and len(sched) == 3
    recon = mel_griffin_lim([mel], voc.mel_config, 8)[0]
    out = _vocode_with(voc, _oracle(recon[None]), mel, c)
    torch.testing.assert_close(out, recon, rtol=0, atol=1e-4)


@pytest.mark.parametrize("mode", ["none", "gla"])
def test_polish_is_k_fast_griffin_lim_iterations_from_the_finished_sample(voc, mode):
    """+glK: the sample the diffusion ends with, then K iterations of the projector's fast Griffin-Lim (momentum
    0.99) toward the mel's magnitude; it lands closer to the mel than the sample it started from."""
    mel = _mel(12, seed=2)
    plain = voc.vocode_batch([mel], steps=3, sampler="ddim", seed=0, consistency=Consistency(mode=mode))[0]
    polished = voc.vocode_batch([mel], steps=3, sampler="ddim", seed=0,
                                consistency=Consistency(mode=mode, polish_iterations=6))[0]
    p = MelProjector(voc.mel_config)
    target = p.fit_target(p.target(mel), plain.shape[-1])[None]
    expected = p.project(plain.double()[None], target, 6, 0.99)[0].float()
    torch.testing.assert_close(polished, expected, rtol=0, atol=ROUNDING)
    assert float(p.inconsistency(polished.double()[None], target)) < 0.9 * float(p.inconsistency(plain.double()[None], target))


def test_a_checkpoint_default_with_a_polish_is_what_runs_when_none_is_named(voc):
    from wavegrad.audio.consistency import RECOMMENDED
    v = Vocoder(voc.model, voc.mel_config, voc.train_schedule, consistency=RECOMMENDED)
    mel = _mel(10, seed=3)
    default = v.vocode_batch([mel], steps=3, sampler="ddim", seed=0)[0]
    named = v.vocode_batch([mel], steps=3, sampler="ddim", seed=0, consistency=RECOMMENDED.label())[0]
    unpolished = v.vocode_batch([mel], steps=3, sampler="ddim", seed=0,
                                consistency=dataclasses.replace(RECOMMENDED, polish_iterations=0))[0]
    assert RECOMMENDED.label() == "gla@0.9+gl16"
    assert torch.equal(default, named) and not torch.allclose(default, unpolished, atol=1e-3)


def test_benchmark_row_folders_keep_every_consistency_apart():
    from wavegrad.commands.listening import row_key
    labels = ["gla", "gla++", "gla+gl4", "gla+++gl4", "gla@0.9+gl16", "gla++@0.9+gl16", "none+gl4"]
    keys = [row_key({"system": "ddim", "schedule": "karras", "steps": 6, "consistency": c}) for c in labels]
    assert len(set(keys)) == len(keys), keys


def _vocode_with(v, denoise, mel, c):
    """Vocoder._sample's path with its network swapped for ``denoise`` (windowing is not under test here)."""
    import wavegrad.vocoder as V
    real = V.WindowedDenoiser

    class Swapped(real):
        def __call__(self, x, level):
            return denoise(x, level)
    V.WindowedDenoiser = Swapped
    try:
        return v.vocode_batch([mel], steps=3, sampler="ddim", seed=0, consistency=c)[0]
    finally:
        V.WindowedDenoiser = real


def test_infill_with_consistency_keeps_every_sample_outside_the_spans(voc):
    wav = _speechy(256 * 20, 22050, seed=7).float()
    out = voc.infill(wav, [(0.05, 0.12)], steps=3, seed=0, consistency="gla")
    mask = voc.span_mask([(0.05, 0.12)], wav.shape[-1])
    assert torch.equal(out[mask], wav[mask])
    assert not torch.equal(out[~mask], wav[~mask])


def test_infill_drops_a_stored_polish_and_refuses_a_named_one(voc):
    """Griffin-Lim on the finished clip would change the kept recording: a checkpoint's default polish (new
    checkpoints: gla@0.9+gl16) is left out of infilling, and naming one is a one-line error."""
    from wavegrad.audio.consistency import RECOMMENDED
    assert RECOMMENDED.polish_iterations > 0
    v = Vocoder(voc.model, voc.mel_config, voc.train_schedule, consistency=RECOMMENDED)
    wav = _speechy(256 * 20, 22050, seed=8).float()
    mask = v.span_mask([(0.05, 0.12)], wav.shape[-1])
    out = v.infill(wav, [(0.05, 0.12)], steps=3, seed=0)
    assert torch.equal(out[mask], wav[mask]) and not torch.equal(out[~mask], wav[~mask])
    with pytest.raises(UserInputError, match="does not apply to infilling"):
        v.infill(wav, [(0.05, 0.12)], steps=3, seed=0, consistency="gla+gl4")
