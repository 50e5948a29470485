"""read_audio / write_audio on generated files: round trips, resampling, mono mixing, every error."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import soundfile as sf

from wavegrad.audio import read_audio, write_audio
from wavegrad.errors import UserInputError


def sine(freq: float, sr: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)).astype(np.float32)


def dominant_frequency(wav: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(len(wav)), n=8 * len(wav)))
    return float(np.fft.rfftfreq(8 * len(wav), 1 / sr)[spectrum.argmax()])


def test_round_trip_is_16bit_exact(tmp_path):
    wav = sine(440.0, 22050)
    path = write_audio(tmp_path / "a.wav", wav, 22050)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype, info.format) == (22050, 1, "PCM_16", "WAV")
    back = read_audio(path, 22050)
    assert back.dtype == np.float32 and back.shape == wav.shape
    assert np.abs(back - wav).max() <= 1 / 32768 + 1e-7        # one 16-bit quantisation step
    assert not list(tmp_path.glob(".tmp-*"))                    # no temp file left behind


def test_write_clips_and_accepts_torch(tmp_path):
    torch = pytest.importorskip("torch")
    wav = torch.tensor([[0.0, 2.0, -3.0, 0.5]])                 # [1, T] torch, out of range
    back = read_audio(write_audio(tmp_path / "c.wav", wav, 16000), 16000)
    np.testing.assert_allclose(back, [0.0, 32767 / 32768, -1.0, 0.5], atol=1 / 32768)


@pytest.mark.parametrize("file_sr", [16000, 44100])
def test_resampling_preserves_frequency(tmp_path, file_sr, caplog):
    path = tmp_path / f"s{file_sr}.wav"
    sf.write(str(path), sine(1000.0, file_sr), file_sr, subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="wavegrad.audio.io"):
        out = read_audio(path, 22050)
    assert abs(len(out) - 0.5 * 22050) <= 1                     # duration kept
    assert dominant_frequency(out, 22050) == pytest.approx(1000.0, abs=2.0)
    assert any("resampled" in r.message and str(file_sr) in r.message for r in caplog.records)


def test_no_resampling_when_rates_match(tmp_path, caplog):
    path = tmp_path / "same.wav"
    sf.write(str(path), sine(300.0, 22050), 22050, subtype="FLOAT")
    with caplog.at_level(logging.INFO, logger="wavegrad.audio.io"):
        out = read_audio(path, 22050)
    np.testing.assert_array_equal(out, sine(300.0, 22050))
    assert not caplog.records


def test_stereo_is_mixed_or_refused(tmp_path):
    left, right = sine(200.0, 16000), sine(500.0, 16000, amp=0.25)
    path = tmp_path / "st.wav"
    sf.write(str(path), np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(path, 16000), (left + right) / 2, atol=1e-7)
    with pytest.raises(UserInputError, match=f"{path}.*2 channels"):
        read_audio(path, 16000, mono="error")


def _write(path, data, sr=16000, subtype="FLOAT"):
    sf.write(str(path), np.asarray(data, dtype=np.float32), sr, subtype=subtype)
    return path


@pytest.mark.parametrize("case, pattern", [
    ("missing", "not found"),
    ("directory", "directory"),
    ("garbage", "cannot read"),
    ("empty", "empty"),
    ("nan", "NaN or inf"),
    ("silent", "silent"),
    ("rate", "16000 Hz but 22050 Hz"),
])
def test_read_errors_name_the_file(tmp_path, case, pattern):
    path = tmp_path / f"{case}.wav"
    if case == "directory":
        path.mkdir()
    elif case == "garbage":
        path.write_bytes(b"RIFF this is not a wave file" * 10)
    elif case == "empty":
        _write(path, np.zeros(0))
    elif case == "nan":
        _write(path, [0.1, float("nan"), 0.2, 0.3])
    elif case == "silent":
        _write(path, np.zeros(1000), subtype="PCM_16")
    elif case == "rate":
        _write(path, sine(100.0, 16000))
    with pytest.raises(UserInputError) as info:
        read_audio(path, 22050, resample=(case != "rate"))
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert re.search(pattern, message), message


def test_write_refuses_bad_waveforms_and_writes_nothing(tmp_path):
    target = tmp_path / "out.wav"
    for bad in (np.array([0.1, np.nan]), np.zeros((2, 10)), np.zeros(0)):
        with pytest.raises(UserInputError, match="out.wav"):
            write_audio(target, bad, 22050)
    with pytest.raises(UserInputError, match="sample_rate"):
        write_audio(target, np.zeros(10), 0)
    assert list(tmp_path.iterdir()) == []
