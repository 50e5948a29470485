"""Reading and writing audio: mono float32 in [-1, 1] at a requested rate, with clear errors.

I/O goes through soundfile (libsndfile: WAV, FLAC, OGG, ...). Resampling, when the file's rate differs
from the requested one, uses soxr's high-quality mode via ``librosa.resample(res_type="soxr_hq")`` and
is logged at INFO level on the ``wavegrad.audio.io`` logger, so it never happens silently.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import UserInputError, first_line
from ..utils import atomic_path

log = logging.getLogger(__name__)

# Below -100 dBFS (a third of one 16-bit LSB) a file carries no signal: vocoding or featurising it
# only yields the log floor, so it is almost always a broken export.
SILENCE_PEAK = 1e-5


def _open(path: Path):
    import soundfile as sf

    if not path.exists():
        raise UserInputError(f"audio file not found: {path}; check the path")
    if not path.is_file():
        raise UserInputError(f"not an audio file: {path} is a directory or special file; give a file path")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)               # [T, C]
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise UserInputError(f"cannot read audio file {path} ({first_line(exc)}); "
                             "convert it to WAV/FLAC (e.g. with ffmpeg or sox)") from None
    return data, int(sr)


def _to_mono(data: np.ndarray, path: Path, mono: str) -> np.ndarray:
    if data.shape[1] == 1:
        return data[:, 0]
    if mono == "error":
        raise UserInputError(f"{path} has {data.shape[1]} channels but mono audio is required; "
                             "pass mono='mix' to average the channels, or convert the file to mono")
    return data.mean(axis=1, dtype=np.float32)                                       # [T]


def read_audio(path: str | os.PathLike, sample_rate: int, *, mono: Literal["mix", "error"] = "mix",
               resample: bool = True) -> np.ndarray:
    """Read ``path`` as mono float32 ``[T]`` at ``sample_rate`` Hz.

    mono: ``"mix"`` averages the channels of a multi-channel file; ``"error"`` refuses it.
    resample: when the file's rate differs, resample (soxr_hq, logged) if True, else raise.
    Raises :class:`UserInputError` naming the file for missing, unreadable, empty, non-finite or
    all-silent audio.
    """
    if mono not in ("mix", "error"):
        raise UserInputError(f"mono must be 'mix' or 'error', got {mono!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UserInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    path = Path(path)
    data, file_sr = _open(path)
    if data.shape[0] == 0:
        raise UserInputError(f"audio file {path} is empty (0 samples); re-export it")
    wav = _to_mono(data, path, mono)
    if not np.isfinite(wav).all():
        raise UserInputError(f"audio file {path} contains NaN or inf samples; re-export it as PCM")
    if float(np.abs(wav).max()) < SILENCE_PEAK:
        raise UserInputError(f"audio file {path} is silent (peak below {SILENCE_PEAK:g}); "
                             "check the export or remove the file")
    if file_sr != sample_rate:
        if not resample:
            raise UserInputError(f"{path} is sampled at {file_sr} Hz but {sample_rate} Hz is required; "
                                 f"pass resample=True or resample the file (e.g. sox in.wav -r {sample_rate} out.wav)")
        wav = _resample(wav, file_sr, sample_rate)
        log.info("resampled %s from %d Hz to %d Hz (soxr_hq)", path, file_sr, sample_rate)
    return np.ascontiguousarray(wav, dtype=np.float32)


def read_pcm(path: str | os.PathLike, sample_rate: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Samples ``[start, stop)`` of a mono file at exactly ``sample_rate``, for training data readers.

    16-bit PCM files come back as int16 (2 bytes per sample: a corpus can be held in memory), anything
    else as float32; :func:`pcm_to_float` converts. No resampling or mixing: a corpus file at another
    rate or with several channels is an error that names the file and the corpus check that lists them all.
    """
    import soundfile as sf

    path = Path(path)
    try:
        info = sf.info(str(path))
        if info.channels != 1 or info.samplerate != sample_rate:
            raise UserInputError(f"{path} is {info.channels}-channel at {info.samplerate} Hz, expected mono "
                                 f"{sample_rate} Hz; run `python data_prep/ljspeech.py check DATA_DIR`")
        dtype = "int16" if info.subtype == "PCM_16" else "float32"
        wav, _ = sf.read(str(path), start=start, stop=stop, dtype=dtype)
    except UserInputError:
        raise
    except Exception as exc:  # libsndfile raises several types for missing or broken files
        raise UserInputError(f"cannot read {path} ({first_line(exc)}); run `python data_prep/ljspeech.py check "
                             "DATA_DIR` to list every broken file") from None
    return wav


def pcm_to_float(wav: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1) with soundfile's scaling (x / 32768); float32 passes through."""
    if wav.dtype == np.int16:
        return wav.astype(np.float32) / np.float32(32768.0)
    return wav.astype(np.float32, copy=False)


def peak_normalize(wav: np.ndarray) -> np.ndarray:
    """HiFi-GAN's ``0.95 * x / max|x|`` (silent clips are left alone)."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav * np.float32(0.95 / peak) if peak > 0 else wav


def _resample(wav: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    import librosa

    return librosa.resample(wav, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")


def write_audio(path: str | os.PathLike, wav, sample_rate: int) -> Path:
    """Write mono ``wav`` ([T] or [1, T], numpy or torch) as 16-bit PCM WAV, clipped to [-1, 1].

    The file appears atomically (temp file + rename): readers never see a partial WAV.
    """
    import soundfile as sf

    path = Path(path)
    if hasattr(wav, "detach"):                                                       # torch.Tensor
        wav = wav.detach().float().cpu().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 2 and wav.shape[0] == 1:
        wav = wav[0]
    if wav.ndim != 1 or wav.size == 0:
        raise UserInputError(f"write_audio({path}) expects a non-empty mono waveform [T] or [1, T], "
                             f"got shape {wav.shape}")
    if not np.isfinite(wav).all():
        raise UserInputError(f"refusing to write {path}: the waveform contains NaN or inf "
                             "(a diverged sampler?); nothing was written")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise UserInputError(f"write_audio({path}): sample_rate must be a positive integer, got {sample_rate!r}")
    wav = np.clip(wav, -1.0, 1.0)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), wav, int(sample_rate), subtype="PCM_16", format="WAV")
    return path
