"""MelFeaturizer against librosa computed the same way (HiFi-GAN convention), plus MelConfig behaviour."""
from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.mel import FRAMES_PER_BLOCK, MAGNITUDE_EPS
from wavegrad.errors import UserInputError


def speech_like(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced harmonics with a pitch glide (110 -> 220 Hz), syllable-rate amplitude envelope, plus
    unvoiced noise bursts and a stretch of near-silence: every regime a vocoder's mel sees."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    f0 = 110.0 * 2.0 ** (t / seconds)                                   # glide over one octave
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum((0.6 / k) * np.sin(k * phase) for k in range(1, 30) if k * f0.max() < sr / 2)
    envelope = 0.5 * (1 - np.cos(2 * np.pi * 4.0 * t))                  # 4 "syllables" per second
    bursts = rng.standard_normal(t.size) * ((t % 0.25) > 0.2) * 0.2     # fricative-like noise
    wav = voiced * envelope * 0.3 + bursts
    wav[int(0.1 * sr):int(0.15 * sr)] *= 1e-4                          # near-silence: exercises the floor
    return (wav / np.abs(wav).max() * 0.9).astype(np.float32)


def librosa_reference(wav: np.ndarray, cfg: MelConfig, magnitude_eps: float = 0.0) -> np.ndarray:
    """The HiFi-GAN recipe, step by step in float64 with librosa: reflect pad, STFT (center=False,
    periodic Hann), sqrt(|.|^2 + eps), Slaney mel basis, ln(max(., floor))."""
    left, right = cfg.padding
    assert left == right == (cfg.n_fft - cfg.hop_length) // 2
    padded = np.pad(wav.astype(np.float64), (left, right), mode="reflect")
    stft = librosa.stft(padded, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                        window="hann", center=False, dtype=np.complex128)
    basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels, fmin=cfg.f_min,
                                fmax=cfg.f_max, htk=False, norm="slaney")
    return np.log(np.maximum(basis @ np.sqrt(np.abs(stft) ** 2 + magnitude_eps), cfg.log_floor))


# HiFi-GAN's framing with a window shorter than the FFT (the WaveGrad paper's numbers at 24 kHz): the window is
# centred in n_fft, the padding (n_fft - hop)/2 is odd-sized per side
HIFI_24K = MelConfig(sample_rate=24000, n_fft=2048, hop_length=300, win_length=1200, n_mels=128, f_min=20.0,
                     f_max=12000.0)


def _ours_and_input(cfg: MelConfig):
    wav = speech_like(cfg.sample_rate, 1.0)
    wav = wav[: len(wav) // cfg.hop_length * cfg.hop_length]
    return MelFeaturizer(cfg)(torch.from_numpy(wav))[0].double().numpy(), wav


@pytest.mark.parametrize("cfg", [MelConfig(), HIFI_24K], ids=["hifigan22k", "hifigan-framed-24k"])
def test_matches_librosa_same_recipe(cfg):
    ours, wav = _ours_and_input(cfg)
    ref = librosa_reference(wav, cfg, magnitude_eps=MAGNITUDE_EPS)
    assert ours.shape == ref.shape == (cfg.n_mels, len(wav) // cfg.hop_length)
    # Tolerance 1e-3 in ln units (0.1 % of the mel value), everywhere including the near-silent
    # stretch. Ours is float32, the reference float64: FFT rounding is ~1e-7 relative to a frame's
    # loudest bin, so a band 80-100 dB below the loudest bin of its frame (the frames that straddle
    # the near-silent stretch) carries up to ~1e-3 relative error; loud bands agree to ~1e-6.
    err = np.abs(ours - ref)
    assert err.max() < 1e-3, err.max()
    assert err.mean() < 1e-5, err.mean()


@pytest.mark.parametrize("cfg", [MelConfig(), HIFI_24K], ids=["hifigan22k", "hifigan-framed-24k"])
def test_matches_plain_librosa_magnitude_where_eps_is_negligible(cfg):
    # Without HiFi-GAN's +1e-9 under the sqrt, values differ only where the mel is tiny: the eps adds at
    # most sqrt(1e-9) * sum(filter weights) ~ 3e-5 * n_fft / sr ~ 1.5e-6 to a band, i.e. < 2e-4 in ln
    # units for bands above 1e-2, plus the float32 rounding bound above.
    ours, wav = _ours_and_input(cfg)
    ref = librosa_reference(wav, cfg)
    audible = ref > np.log(1e-2)
    assert audible.mean() > 0.5                          # the comparison covers most of the signal
    assert np.abs(ours - ref)[audible].max() < 5e-4


def test_frames_equal_length_over_hop():
    cfg = MelConfig()
    feat = MelFeaturizer(cfg)
    for n_hops in (2, 3, 17):
        out = feat(torch.randn(n_hops * cfg.hop_length) * 0.1)
        assert out.shape == (1, cfg.n_mels, n_hops)
    # a ragged tail is dropped, never padded into a partial frame
    assert feat(torch.randn(5 * cfg.hop_length + 100) * 0.1).shape[-1] == 5


def test_batch_equals_loop():
    cfg = MelConfig()
    feat = MelFeaturizer(cfg)
    batch = torch.from_numpy(np.stack([speech_like(cfg.sample_rate, 0.25, seed=s)[: 20 * 256] for s in range(3)]))
    together = feat(batch)
    apart = torch.cat([feat(w) for w in batch])
    torch.testing.assert_close(together, apart, rtol=0, atol=1e-5)


def test_long_clips_in_frame_blocks_match_librosa():
    # 6 s = 516 frames: two full blocks of FRAMES_PER_BLOCK and a partial one, each block edge inside speech.
    cfg = MelConfig()
    assert 2 * FRAMES_PER_BLOCK < 516 < 3 * FRAMES_PER_BLOCK
    wav = speech_like(cfg.sample_rate, 6.0)[: 516 * cfg.hop_length]
    ours = MelFeaturizer(cfg)(torch.from_numpy(wav))[0].double().numpy()
    err = np.abs(ours - librosa_reference(wav, cfg, magnitude_eps=MAGNITUDE_EPS))
    assert ours.shape == (cfg.n_mels, 516)
    assert err.max() < 1e-3 and err.mean() < 1e-5, (err.max(), err.mean())


@pytest.mark.parametrize("clips,frames", [(23, 20), (3, 300)], ids=["many-short", "few-long"])
def test_blocked_batches_equal_one_clip_at_a_time(clips, frames):
    # many short clips go through in groups of whole clips, long ones in frame ranges of one clip
    assert clips * frames > FRAMES_PER_BLOCK
    feat = MelFeaturizer(MelConfig())
    batch = torch.from_numpy(np.stack([speech_like(22050, frames * 256 / 22050 + 0.01, seed=s)[: frames * 256]
                                       for s in range(clips)]))
    apart = torch.cat([feat(w) for w in batch])
    torch.testing.assert_close(feat(batch), apart, rtol=0, atol=1e-5)


def test_gradient_matches_torch_stft_and_is_finite_on_silence():
    """The written-out STFT (frames -> window -> rfft -> used bins) against torch.stft, through autograd:
    the featurizer is differentiable for mel losses on generated audio, digital silence included."""
    cfg = HIFI_24K                                         # win_length < n_fft: the window is centred
    feat = MelFeaturizer(cfg)
    wav = torch.from_numpy(speech_like(cfg.sample_rate, 0.3)[: 24 * cfg.hop_length]).double()
    wav[:2000] = 0.0

    def reference(x):
        left = (cfg.n_fft - cfg.win_length) // 2
        padded = torch.nn.functional.pad(x[None, None], cfg.padding, mode="reflect")[0]
        spec = torch.stft(padded, cfg.n_fft, cfg.hop_length, cfg.win_length,
                          torch.hann_window(cfg.win_length, dtype=torch.float64), center=False, return_complex=True)
        mag = torch.sqrt(spec.real ** 2 + spec.imag ** 2 + MAGNITUDE_EPS)
        assert left > 0
        return torch.log(torch.clamp(feat.mel_basis.double() @ mag, min=cfg.log_floor))

    weights = torch.randn(1, cfg.n_mels, 24, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x_ours = wav.float().requires_grad_()
    (feat(x_ours) * weights.float()).sum().backward()
    x_ref = wav.clone().requires_grad_()
    (reference(x_ref) * weights).sum().backward()
    assert torch.isfinite(x_ours.grad).all()
    torch.testing.assert_close(x_ours.grad.double(), x_ref.grad, rtol=1e-3, atol=1e-3 * x_ref.grad.abs().max().item())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_low_and_high_precision_inputs_give_finite_float32(dtype):
    cfg = MelConfig()
    wav = torch.from_numpy(speech_like(cfg.sample_rate, 0.2)[: 16 * 256])
    wav[:1000] = 0.0                                   # digital silence at the reflect-padded edge
    out = MelFeaturizer(cfg)(wav.to(dtype))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    # silence hits the floor exactly: ln(1e-5)
    assert torch.isclose(out[0, :, 0].min(), torch.tensor(np.log(cfg.log_floor), dtype=torch.float32))
    # the only difference from float32 input is the input's own rounding
    ref = MelFeaturizer(cfg)(wav.to(dtype).float())
    torch.testing.assert_close(out, ref)


def test_autocast_does_not_lower_precision():
    cfg = MelConfig()
    wav = torch.from_numpy(speech_like(cfg.sample_rate, 0.2)[: 16 * 256])
    feat = MelFeaturizer(cfg)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = feat(wav)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, feat(wav))


def test_bad_inputs_raise_clear_errors():
    cfg = MelConfig()
    feat = MelFeaturizer(cfg)
    with pytest.raises(UserInputError, match=r"at least 385 samples"):
        feat(torch.zeros(300))
    with pytest.raises(UserInputError, match=r"\[T\] or \[B, T\]"):
        feat(torch.zeros(1, 1, 4096))
    for index, value in ((7, float("nan")), (-1, float("inf")), (2000, -float("inf"))):
        bad = torch.zeros(2, 4096 + 100)                  # index -1 lies in the ragged tail no frame reads
        bad[1, index] = value
        with pytest.raises(UserInputError, match="NaN or inf"):
            feat(bad)
    with pytest.raises(UserInputError, match="float waveform"):
        feat(torch.zeros(4096, dtype=torch.int16))
    with pytest.raises(UserInputError, match="torch.Tensor"):
        feat(np.zeros(4096, dtype=np.float32))


def test_config_round_trip_fingerprint_and_validation():
    cfg = MelConfig.paper_24k()
    assert MelConfig.from_dict(cfg.to_dict()) == cfg
    assert MelConfig.from_dict(cfg.to_dict()).fingerprint() == cfg.fingerprint()
    fp = MelConfig().fingerprint()
    assert len(fp) == 12 and int(fp, 16) >= 0
    changes = dict(sample_rate=24000, n_fft=2048, hop_length=128, win_length=800, n_mels=128, f_min=20.0,
                   f_max=None, log_floor=1e-4, center=True, pad_mode="constant", window_periodic=False, power_eps=0.0,
                   power_floor=1e-10, normalized=True, mel_scale="htk", mel_norm=None, log_base="10",
                   log_floor_mode="add", log_scale=2.0, log_offset=1.0, clip_min=-5.0, clip_max=5.0)
    assert set(changes) == {f.name for f in dataclasses.fields(MelConfig)}   # every field covered
    for name, value in changes.items():
        assert dataclasses.replace(MelConfig(), **{name: value}).fingerprint() != fp, name
    # equal configs fingerprint equally, whatever the number types they were written with
    assert MelConfig(f_min=0, f_max=8000, sample_rate=np.int64(22050)).fingerprint() == fp
    with pytest.raises(UserInputError, match="n_mel"):
        MelConfig.from_dict({**MelConfig().to_dict(), "n_mel": 80})
    for bad in (dict(win_length=2048), dict(f_max=20000.0), dict(hop_length=0), dict(log_floor=0.0),
                dict(f_min=9000.0)):
        with pytest.raises(ValueError):
            MelConfig(**bad)


def test_paper_preset_is_consistent():
    cfg = MelConfig.paper_24k()
    # 12.5 ms shift and 50 ms window at 24 kHz (WaveGrad Sec. 5)
    assert cfg.hop_length / cfg.sample_rate == pytest.approx(0.0125)
    assert cfg.win_length / cfg.sample_rate == pytest.approx(0.05)
    assert cfg.n_mels == 128 and (cfg.f_max or cfg.sample_rate / 2) == 12000.0 and cfg.f_min == 20.0


def test_blocked_path_gradients_equal_one_pass(monkeypatch):
    # long clips go through the frame-block loop (writes into a preallocated output): autograd must
    # see through it and give the same input gradients as one pass over all frames
    from wavegrad.audio import mel as mel_module
    feat = MelFeaturizer(MelConfig())
    wav = torch.from_numpy(np.stack([speech_like(22050, 3.0, seed=s)[: 258 * 256] for s in range(2)]))
    weights = torch.randn(2, 80, 258, generator=torch.Generator().manual_seed(0))
    grads = []
    for block in (FRAMES_PER_BLOCK, 10**9):
        monkeypatch.setattr(mel_module, "FRAMES_PER_BLOCK", block)
        x = wav.clone().requires_grad_()
        (feat(x) * weights).sum().backward()
        grads.append(x.grad)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6 * grads[1].abs().max().item())
