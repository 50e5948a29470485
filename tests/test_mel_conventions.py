"""Every mel preset against its toolkit's formula, re-written here in float64 numpy from the toolkit's documented
steps (no toolkit installed), and the conversions between conventions."""
from __future__ import annotations

import json

import librosa
import numpy as np
import pytest
import torch

from test_mel import speech_like
from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.conventions import consistent_conventions, convert, load_stats, why_not_convertible
from wavegrad.audio.mel import MEL_PRESETS
from wavegrad.errors import UserInputError


# ---- the toolkits' steps, written out ---------------------------------------------------------------------------
def hann(n: int, periodic: bool) -> np.ndarray:
    """Periodic Hann (torch.hann_window, scipy fftbins=True, librosa "hann") or NeMo's symmetric one."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n if periodic else n - 1))


def frames_of(y: np.ndarray, pad: int, n_fft: int, hop: int, window: np.ndarray, mode: str = "reflect"):
    """|STFT|² of ``y`` padded ``pad`` each side, window zero-padded to n_fft in its middle: [frames, bins]."""
    y = np.pad(y.astype(np.float64), (pad, pad), mode=mode)
    left = (n_fft - len(window)) // 2
    w = np.zeros(n_fft)
    w[left:left + len(window)] = window
    count = (len(y) - n_fft) // hop + 1
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    spec = np.fft.rfft(y[idx] * w, axis=-1)
    return spec.real ** 2 + spec.imag ** 2


def bank(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney"):
    return librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)


def hifigan_ref(y, sr=22050, n_fft=1024, hop=256, win=1024, n_mels=80, fmax=8000.0):
    """jik876/hifi-gan meldataset.mel_spectrogram (= NVIDIA/BigVGAN's): reflect pad (n_fft-hop)/2, center=False,
    periodic Hann, sqrt(|X|² + 1e-9), librosa Slaney bank, ln(clamp(., 1e-5))."""
    power = frames_of(y, (n_fft - hop) // 2, n_fft, hop, hann(win, True))
    return np.log(np.maximum(bank(sr, n_fft, n_mels, 0.0, fmax) @ np.sqrt(power + 1e-9).T, 1e-5))


def tacotron2_ref(y):
    """NVIDIA/tacotron2 TacotronSTFT: reflect pad n_fft/2, conv-STFT with scipy's periodic Hann, sqrt(re²+im²),
    librosa Slaney bank 0-8000, dynamic_range_compression = ln(clamp(x, 1e-5) * 1)."""
    power = frames_of(y, 512, 1024, 256, hann(1024, True))
    return np.log(np.maximum(bank(22050, 1024, 80, 0.0, 8000.0) @ np.sqrt(power).T, 1e-5))


def nemo_hifigan_ref(y):
    """NeMo FilterbankFeatures, hifigan.yaml: exact_pad (reflect (n_fft-hop)/2, center=False), symmetric Hann,
    sqrt(re²+im²), Slaney bank 0-8000, log_zero_guard clamp 1e-5."""
    power = frames_of(y, 384, 1024, 256, hann(1024, False))
    return np.log(np.maximum(bank(22050, 1024, 80, 0.0, 8000.0) @ np.sqrt(power).T, 1e-5))


def nemo_fastpitch_ref(y):
    """NeMo FilterbankFeatures, fastpitch_align_v1.05.yaml: centred reflect, symmetric Hann, ln(x + 1e-5)."""
    power = frames_of(y, 512, 1024, 256, hann(1024, False))
    return np.log(bank(22050, 1024, 80, 0.0, 8000.0) @ np.sqrt(power).T + 1e-5)


def espnet_ref(y):
    """espnet2 Stft (center, reflect, periodic Hann) -> LogMelFbank amp = sqrt(clamp(power, 1e-10)) -> LogMel
    (Slaney bank 80-7600) clamp 1e-10, log10."""
    power = frames_of(y, 512, 1024, 256, hann(1024, True))
    return np.log10(np.maximum(bank(22050, 1024, 80, 80.0, 7600.0) @ np.sqrt(np.maximum(power, 1e-10)).T, 1e-10))


def coqui_ref(y):
    """coqui-ai/TTS AudioProcessor.melspectrogram with BaseAudioConfig's defaults, through librosa's own stft as
    the toolkit calls it: 20·log10(max(1e-5, M|D|)) - 20 dB, (S + 100)/100, 8·S - 4, clipped to [-4, 4]."""
    d = librosa.stft(y.astype(np.float64), n_fft=1024, hop_length=256, win_length=1024, window="hann",
                     center=True, pad_mode="reflect")
    s = 20 * np.log10(np.maximum(1e-5, bank(22050, 1024, 80, 0.0, None) @ np.abs(d))) - 20
    return np.clip(8 * (s + 100) / 100 - 4, -4, 4)


def vocos_ref(y):
    """gemelo-ai/vocos MelSpectrogramFeatures: torchaudio MelSpectrogram(power=1) defaults -- centred reflect,
    periodic Hann, HTK bank without normalisation, 0-12000 Hz -- then ln(clip(x, 1e-7))."""
    power = frames_of(y, 512, 1024, 256, hann(1024, True))
    return np.log(np.maximum(bank(24000, 1024, 100, 0.0, None, htk=True, norm=None) @ np.sqrt(power).T, 1e-7))


def wavegrad_lmnt_ref(y):
    """lmnt-com/wavegrad preprocess.transform at 24 kHz: torchaudio MelSpectrogram(n_fft 2048, win 1200, hop 300,
    f_min 20, power 1, normalized=True) -> 20·log10(clamp 1e-5) - 20 -> clamp((y + 100)/100, 0, 1)."""
    w = hann(1200, True)
    power = frames_of(y, 1024, 2048, 300, w) / np.sum(w ** 2)
    db = 20 * np.log10(np.maximum(bank(24000, 2048, 128, 20.0, None, htk=True, norm=None) @ np.sqrt(power).T, 1e-5))
    return np.clip((db - 20 + 100) / 100, 0, 1)


REFERENCES = {
    "hifigan": hifigan_ref,
    "tacotron2": tacotron2_ref,
    "nemo-hifigan": nemo_hifigan_ref,
    "nemo-fastpitch": nemo_fastpitch_ref,
    "espnet": espnet_ref,
    "coqui": coqui_ref,
    "bigvgan-24k": lambda y: hifigan_ref(y, sr=24000, n_mels=100, fmax=12000.0),
    "bigvgan-44k": lambda y: hifigan_ref(y, sr=44100, n_fft=2048, hop=512, win=2048, n_mels=128, fmax=None),
    "vocos": vocos_ref,
    "wavegrad-paper-24k": wavegrad_lmnt_ref,
}


def test_every_preset_has_a_reference_and_a_source():
    assert set(REFERENCES) == set(MEL_PRESETS)
    for name, (_, source) in MEL_PRESETS.items():
        assert "/" in source or "Chen et al." in source, name  # a repository path or the paper


def _signal(cfg: MelConfig) -> np.ndarray:
    """1.2 s of speech-like audio over a -60 dB noise floor (no band at the float32 rounding floor)."""
    wav = speech_like(cfg.sample_rate, 1.2, seed=3).astype(np.float64)
    wav += 1e-3 * np.random.default_rng(1).standard_normal(wav.size)
    return wav[: len(wav) // cfg.hop_length * cfg.hop_length + 37].astype(np.float32)   # not a whole hop


@pytest.mark.parametrize("name", list(MEL_PRESETS))
def test_preset_reproduces_its_toolkit(name):
    cfg = MelConfig.preset(name)
    wav = _signal(cfg)
    ours = MelFeaturizer(cfg)(torch.from_numpy(wav))[0].double().numpy()
    ref = REFERENCES[name](wav)
    assert ours.shape == ref.shape == (cfg.n_mels, cfg.num_frames(len(wav)))
    # float32 STFT rounding is ~1e-6 of a frame's loudest bin; bands 60 dB down carry ~1e-4 relative error in
    # the linear mel, i.e. 1e-4 in ln -- times the convention's slope d(value)/d(ln m) -- except where a clip or
    # floor makes both sides equal.
    slope = abs(cfg.log_scale) / (np.log(10) if cfg.log_base == "10" else 1.0)
    err = np.abs(ours - ref)
    assert err.max() < 3e-4 * slope, (name, err.max())
    assert np.ptp(ref) > 1.0 * slope    # the signal spans the convention's range: a real comparison


def test_presets_differ_where_their_toolkits_do():
    wav = torch.from_numpy(_signal(MelConfig()))
    hifi, taco, nemo = (MelFeaturizer(MelConfig.preset(n))(wav)[0] for n in ("hifigan", "tacotron2", "nemo-hifigan"))
    assert taco.shape[-1] == hifi.shape[-1] + 1                     # centred: T/hop + 1 frames
    assert (hifi - nemo).abs().max() > 1e-3                         # symmetric vs periodic Hann
    # the centred frame j+1 is half a hop after HiFi-GAN's frame j: close, not equal (no elementwise map)
    assert 0.01 < (hifi - taco[:, 1:]).abs().mean() < 1.0


def test_paired_frames_are_the_first_t_over_hop():
    cfg = MelConfig.preset("tacotron2")
    feat = MelFeaturizer(cfg)
    wav = torch.from_numpy(_signal(cfg))
    full, paired = feat(wav), feat.paired(wav)
    assert paired.shape[-1] == len(wav) // cfg.hop_length == full.shape[-1] - 1
    assert torch.equal(paired, full[..., :-1])


# ---- conversions ----------------------------------------------------------------------------------------------
def _coqui_8k() -> MelConfig:
    """Coqui's normalised dB with fmax 8000: the same linear mel as tacotron2."""
    return MelConfig.from_dict({**MelConfig.preset("coqui").to_dict(), "f_max": 8000.0})


def test_tacotron2_to_coqui_db_is_the_closed_form_and_round_trips():
    wav = torch.from_numpy(_signal(MelConfig()))
    taco = MelFeaturizer(MelConfig.preset("tacotron2"))(wav)[0].numpy()
    coqui = MelFeaturizer(_coqui_8k())(wav)[0].numpy()
    converted = convert(taco, MelConfig.preset("tacotron2"), _coqui_8k())
    # Coqui's closed form: clip((1.6 / ln 10)·ln m + 2.4, -4, 4) with ln m the tacotron2 value
    np.testing.assert_allclose(converted, np.clip(0.6948711710 * taco + 2.4, -4, 4), atol=2e-6)
    np.testing.assert_allclose(converted, coqui, atol=2e-4)          # = computing it from audio
    back = convert(converted, _coqui_8k(), MelConfig.preset("tacotron2"))
    inside = np.abs(converted) < 4 - 1e-5                            # the clip loses what lies beyond it
    assert inside.mean() > 0.5
    np.testing.assert_allclose(back[inside], taco[inside], atol=2e-5)
    assert np.all(back[~inside & (converted < 0)] <= taco[~inside & (converted < 0)] + 1e-4)


def test_espnet_mean_variance_stats_invert_exactly(tmp_path):
    cfg = MelConfig.preset("espnet")
    wav = torch.from_numpy(_signal(cfg))
    raw = MelFeaturizer(cfg)(wav)[0].double().numpy()                 # [80, F]
    # ESPnet's collect_stats: count, sum and sum_square over frames (here of this clip)
    np.savez(tmp_path / "feats_stats.npz", count=np.array(raw.shape[1]), sum=raw.sum(1),
             sum_square=(raw ** 2).sum(1))
    mean, std = load_stats(tmp_path / "feats_stats.npz", 80)
    np.testing.assert_allclose(mean, raw.mean(1), rtol=1e-12)
    np.testing.assert_allclose(std, raw.std(1), rtol=1e-9)
    normalised = (raw - mean[:, None]) / std[:, None]                 # GlobalMVN.forward: what the TTS emits
    back = convert(normalised, cfg, cfg, (mean, std))
    np.testing.assert_allclose(back, raw, atol=1e-5)
    # to natural log: log10 -> ln is a factor of ln 10 wherever the value is above both floors
    ln_cfg = MelConfig.from_dict({**cfg.to_dict(), "log_base": "e"})
    np.testing.assert_allclose(convert(normalised, cfg, ln_cfg, (mean, std)), raw * np.log(10), atol=3e-5)


@pytest.mark.parametrize("src,dst,reason", [
    ("hifigan", "tacotron2", "framing"),
    ("espnet", "hifigan", "band edge"),
    ("bigvgan-24k", "vocos", "framing"),
    ("hifigan", "nemo-hifigan", "window"),
    ("hifigan", "bigvgan-24k", "sample rate"),
    ("tacotron2", "coqui", "highest band edge"),
])
def test_refusals_name_the_step_that_differs(src, dst, reason):
    a, b = MelConfig.preset(src), MelConfig.preset(dst)
    assert reason in why_not_convertible(a, b)
    with pytest.raises(UserInputError, match=reason):
        convert(np.zeros((a.n_mels, 3), np.float32), a, b)


def test_consistent_conventions_by_range_and_bands():
    wav = torch.from_numpy(_signal(MelConfig()))
    hifi = MelFeaturizer(MelConfig())(wav)[0].numpy()
    fits = consistent_conventions(hifi)
    assert "hifigan" in fits and "tacotron2" in fits
    assert "wavegrad-paper-24k" not in fits and "espnet" not in fits    # band count / range
    coqui = MelFeaturizer(MelConfig.preset("coqui"))(wav)[0].numpy()
    assert "coqui" in consistent_conventions(coqui)
    espnet = MelFeaturizer(MelConfig.preset("espnet"))(wav)[0].numpy()
    assert "hifigan" in consistent_conventions(espnet) and "espnet" in consistent_conventions(espnet)
    assert "hifigan" not in consistent_conventions(espnet - 10.0)       # below ln(1e-5): not a natural-log mel


def test_stats_file_errors_are_one_line(tmp_path):
    bad = tmp_path / "feats_stats.npz"
    np.savez(bad, count=np.array(10), sum=np.zeros(40), sum_square=np.ones(40))
    with pytest.raises(UserInputError, match="40"):
        load_stats(bad, 80)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(UserInputError, match="feats_stats"):
        load_stats(tmp_path / "junk.npz", 80)


def test_custom_convention_json_round_trips(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(_coqui_8k().to_dict()))
    from wavegrad.audio.conventions import convention_of
    assert convention_of(str(path)) == _coqui_8k()
    path.write_text(json.dumps({"family": "vocoder", "mel_config": _coqui_8k().to_dict()}))   # an export's config
    assert convention_of(str(path)) == _coqui_8k()
    with pytest.raises(UserInputError, match="unknown mel convention"):
        convention_of("kaldi")
