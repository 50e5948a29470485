"""Objective metrics against closed forms, hand-derived values and reference libraries.

Identity: every distance is 0 and every score its maximum on identical signals.
Gain g (y = g x, both spectra above every floor), derived from the definitions in metrics.py:
  LSD:    10 log10(|X|^2 / (g^2 |X|^2)) = -20 log10 g in every bin and frame    ->  |20 log10 g|
  log-mel: ln(mel(g x)) = ln g + ln(mel(x)) (the mel filter and |.| are linear in g) -> |ln g|
  MR-STFT: SC = ||S - gS||_F / ||S||_F = |1 - g|;  MAG = mean|ln S - ln gS| = |ln g|
  MCD:    ln|g X| = ln g + ln|X| moves only c0 of the mel-cepstrum, which MCD excludes -> 0
Independent white noises: per bin, |X|^2 and |Y|^2 are i.i.d. exponential, so ln(|X|^2/|Y|^2) is
standard logistic with variance pi^2/3, and LSD -> (10 / ln 10) * pi / sqrt(3) = 7.88 dB.
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio import metrics as M
from wavegrad.errors import UserInputError

SR = 22050


def _noise(seconds: float, seed: int, scale: float = 0.3) -> np.ndarray:
    return scale * np.random.default_rng(seed).standard_normal(int(seconds * SR))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """2 s of the package's speech-like synthetic corpus (voiced/unvoiced phones, pauses)."""
    from wavegrad.data.synthetic import synthesize_clip

    wav, _ = synthesize_clip(0, 0, sample_rate=SR)
    assert wav.size >= 2 * SR
    return wav[: 2 * SR].astype(np.float64)


def _add_noise(x: np.ndarray, snr_db: float, seed: int = 1) -> np.ndarray:
    n = np.random.default_rng(seed).standard_normal(x.size)
    n *= math.sqrt(np.mean(x ** 2) / np.mean(n ** 2)) / 10 ** (snr_db / 20)
    return x + n


# ---- identity --------------------------------------------------------------------------------------
def test_identical_signals_give_zero_distances():
    x = _noise(1.0, 0)
    assert M.log_mel_l1(x, x) == 0.0
    assert M.lsd(x, x) == 0.0
    assert M.mrstft(x, x, return_parts=True) == (0.0, 0.0, 0.0)


# ---- known gain ------------------------------------------------------------------------------------
@pytest.mark.parametrize("g", [0.5, 2.0])
def test_gain_closed_forms(g):
    x = _noise(1.0, 0)                      # loud white noise: every bin far above the floors
    y = g * x
    assert M.lsd(x, y) == pytest.approx(abs(20 * math.log10(g)), rel=1e-9)
    total, sc, mag = M.mrstft(x, y, return_parts=True)
    assert sc == pytest.approx(abs(1 - g), rel=1e-9)
    assert mag == pytest.approx(abs(math.log(g)), rel=1e-9)
    assert total == pytest.approx(sc + mag, rel=1e-12)
    # log-mel: the premise (all mels above the 1e-5 floor) is checked, then the value (float32 features)
    mels = MelFeaturizer(MelConfig())(torch.from_numpy(np.stack([x, y])).float())
    assert float(mels.min()) > math.log(MelConfig().log_floor) + 3
    assert M.log_mel_l1(x, y) == pytest.approx(abs(math.log(g)), abs=2e-5)


def test_log_mel_l1_sees_the_floor_on_silence():
    """A silent estimate sits at ln(1e-5) everywhere: the distance is mean(ln M(x)) - ln(1e-5)."""
    x = _noise(0.5, 3)
    mel = MelFeaturizer(MelConfig())(torch.from_numpy(x).float())
    expected = float((mel - math.log(1e-5)).mean())
    assert M.log_mel_l1(x, np.zeros_like(x)) == pytest.approx(expected, rel=1e-5)


# ---- independent noise and delay ------------------------------------------------------------------------
def test_lsd_of_independent_white_noises_matches_logistic_closed_form():
    expected = (10 / math.log(10)) * math.pi / math.sqrt(3)      # 7.877 dB
    assert M.lsd(_noise(4.0, 1), _noise(4.0, 2)) == pytest.approx(expected, rel=0.03)


def test_lsd_of_delayed_noise_is_small_and_grows_with_delay():
    """A delay of d samples leaves |STFT| nearly unchanged (only d of n_fft samples per frame differ)."""
    x = _noise(4.0, 1)
    rng = np.random.default_rng(5)
    delayed = {d: np.concatenate([0.3 * rng.standard_normal(d), x[:-d]]) for d in (1, 16, 64)}
    values = [M.lsd(x, delayed[d]) for d in (1, 16, 64)]
    independent = M.lsd(x, _noise(4.0, 2))
    assert values[0] < values[1] < values[2] < independent
    assert values[1] < 0.2 * independent


def test_mrstft_on_independent_noise_is_between_the_bounds():
    """Independent equal-power noises: SC ~ sqrt(2 - 2 E[S_x S_y]/E[S^2]) = sqrt(2 - pi/2) (Rayleigh
    magnitudes: E[S]^2 / E[S^2] = pi/4); MAG = E|ln(E1/E2)|/2 for i.i.d. exponentials = ln 2."""
    _, sc, mag = M.mrstft(_noise(4.0, 1), _noise(4.0, 2), return_parts=True)
    assert sc == pytest.approx(math.sqrt(2 - math.pi / 2), rel=0.03)
    assert mag == pytest.approx(math.log(2), rel=0.03)


@pytest.mark.parametrize("n_fft, hop, win", [(512, 128, 512), (1024, 120, 600), (2048, 512, 2048)])
def test_stft_equals_torch_stft(n_fft, hop, win):
    """The numpy STFT behind LSD and MR-STFT is torch.stft with Parallel WaveGAN's settings."""
    x = _noise(0.5, 4)
    window = torch.hann_window(win, periodic=True, dtype=torch.float64)
    ref = torch.stft(torch.from_numpy(x), n_fft, hop, win, window, center=True, pad_mode="reflect",
                     return_complex=True).abs().square().numpy()
    np.testing.assert_allclose(M._stft_mag2(x, n_fft, hop, win), ref, rtol=1e-9, atol=1e-9)


# ---- length rule and input validation ----------------------------------------------------------------------
def test_length_rule_trims_less_than_a_hop_and_rejects_more():
    x, y = _noise(1.0, 1), _noise(1.0, 2)
    assert M.lsd(x, y[:-100]) == M.lsd(x[:-100], y[:-100])            # 100 < hop 512: trimmed
    assert M.log_mel_l1(x[:-255], y) == M.log_mel_l1(x[:-255], y[:-255])
    with pytest.raises(UserInputError, match="lengths must match"):
        M.log_mel_l1(x, y[:-256])                                      # = one mel hop
    with pytest.raises(UserInputError, match="lengths must match"):
        M.mrstft(x[:-600], y)


def test_torch_and_numpy_inputs_agree():
    x, y = _noise(1.0, 1), _noise(1.0, 2)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    assert M.lsd(tx, ty) == M.lsd(x, y)
    assert M.mrstft(tx.float(), ty.float()) == pytest.approx(M.mrstft(x, y), rel=1e-5)


@pytest.mark.parametrize("bad, match", [
    (np.zeros(22050, dtype=np.int16), "float waveform"),
    (torch.zeros(22050, dtype=torch.int32), "float waveform"),
    (np.zeros((2, 22050)), "1-D"),
    ([0.0] * 22050, "numpy array or torch tensor"),
    (np.full(22050, np.nan), "NaN"),
    (np.zeros(0), "empty"),
])
def test_bad_inputs_get_clear_errors(bad, match):
    with pytest.raises(UserInputError, match=match):
        M.lsd(_noise(1.0, 1), bad)


def test_rtf():
    assert M.rtf(2.0, 4.0) == 0.5
    with pytest.raises(UserInputError):
        M.rtf(1.0, 0.0)


# ---- optional packages -------------------------------------------------------------------------------
def test_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysptk", None)      # makes `import pysptk` raise ImportError
    with pytest.raises(ImportError, match=r"pip install wavegrad\[eval\]"):
        M.mcd(_noise(1.0, 1), _noise(1.0, 2), SR)
    status = M.available_optional_metrics()
    assert set(status) == {"mcd", "pesq_wb", "stoi", "dnsmos", "wer"}
    assert isinstance(status["mcd"], str) and "wavegrad[eval]" in status["mcd"]
    assert all(v is True or isinstance(v, str) for v in status.values())


def test_mcd_identity_gain_and_difference():
    pytest.importorskip("pysptk")
    x = _noise(1.0, 0)
    assert M.mcd(x, x, SR) == 0.0
    assert M.mcd(x, 0.5 * x, SR) == pytest.approx(0.0, abs=1e-6)    # gain moves only c0, excluded
    # a coloured (low-passed) version differs in spectral shape: clearly positive
    coloured = np.convolve(x, np.ones(4) / 4, mode="same")
    assert M.mcd(x, coloured, SR) > 1.0
    silent_vs_silent = M.mcd(np.zeros(SR), np.zeros(SR), SR)          # floored, finite
    assert silent_vs_silent == 0.0


def test_mcep_alpha_table_matches_pysptk():
    pysptk = pytest.importorskip("pysptk")
    for sr, alpha in M.MCEP_ALPHAS.items():
        assert alpha == pytest.approx(float(pysptk.util.mcepalpha(sr)), abs=1e-9), sr
    assert M.mcep_alpha(22050) == 0.455


def test_pesq_wb_identity_monotonic_and_silence(speech):
    pytest.importorskip("pesq")
    assert M.pesq_wb(speech, speech, SR) == pytest.approx(4.644, abs=0.01)    # P.862.2 maximum
    assert M.pesq_wb(speech, _add_noise(speech, 30), SR) > M.pesq_wb(speech, _add_noise(speech, 0), SR)
    with pytest.raises(UserInputError, match="silent"):
        M.pesq_wb(speech, np.zeros_like(speech), SR)


def test_stoi_identity_monotonic_and_silence(speech):
    pytest.importorskip("pystoi")
    assert M.stoi(speech, speech, SR) == pytest.approx(1.0, abs=1e-6)
    s30, s10, s0 = (M.stoi(speech, _add_noise(speech, snr), SR) for snr in (30, 10, 0))
    assert 1.0 > s30 > s10 > s0
    with pytest.raises(UserInputError, match="silent"):
        M.stoi(np.zeros_like(speech), speech, SR)


def test_stoi_equals_pystoi_at_16k(speech):
    """At 16 kHz no resampling happens: the wrapper must return pystoi's own value."""
    pystoi = pytest.importorskip("pystoi")
    import librosa

    ref = librosa.resample(speech, orig_sr=SR, target_sr=16000, res_type="soxr_hq")
    est = _add_noise(ref, 10)
    assert M.stoi(ref, est, 16000) == pystoi.stoi(ref, est, 16000)


def test_dnsmos_returns_mos_floats(speech):
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    out = M.dnsmos(speech, SR)
    assert {"ovrl", "sig", "bak"} <= set(out)
    assert all(isinstance(v, float) and 1.0 <= v <= 5.0 for v in out.values())


@pytest.mark.slow
def test_dnsmos_background_score_drops_with_noise(speech):
    pytest.importorskip("speechmos")
    pytest.importorskip("onnxruntime")
    assert M.dnsmos(speech, SR)["bak"] > M.dnsmos(_add_noise(speech, 0), SR)["bak"]
