"""Noisy speech for enhancement: noise recordings, mixtures at a chosen SNR, and a generated noise corpus.

:func:`mix` scales a noise segment so that the mixture has the requested signal-to-noise ratio
(``10·log10(||s||² / ||n||²)``, over the segment), the rule of VoiceBank-DEMAND's construction and of CDiffuSE's
on-the-fly training data. :class:`NoiseBank` reads a folder of noise recordings (any rate, mono or mixed down) and
cuts seeded segments from them; a recording shorter than the segment is tiled. :func:`make_noise_corpus` writes
noise of named kinds to a folder, for a quick start with no noise recordings at hand:

* ``white``, ``pink`` (1/f power), ``brown`` (1/f², integrated white noise): stationary broadband noise;
* ``hum``: mains hum, 50 Hz and its first 8 harmonics with a little noise;
* ``engine``: brown noise amplitude-modulated at 2-6 Hz with a 40 Hz rumble (traffic, machinery);
* ``babble``: several voices at once, made from a spoken corpus' clips (speech-like, non-stationary: the hardest);
* ``clicks``: sparse impulses and short bursts over a faint floor (keyboard, crackle).

Every kind depends only on (seed, kind, index). They stand in for real noise recordings (DEMAND, MUSAN), which
cannot be downloaded here: train on some kinds and hold others out to measure generalisation to unseen noise.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserInputError

KINDS = ("white", "pink", "brown", "hum", "engine", "babble", "clicks")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + g·noise`` with ``g`` such that the mixture's SNR is ``snr_db`` (both [T]); silent noise is an error."""
    p_s, p_n = float(np.mean(speech.astype(np.float64) ** 2)), float(np.mean(noise.astype(np.float64) ** 2))
    if p_n <= 1e-20:
        raise UserInputError("the noise segment is silent: it cannot be mixed at any SNR")
    g = np.sqrt(p_s / (p_n * 10.0 ** (snr_db / 10.0)))
    return (speech + g * noise).astype(np.float32)


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """The SNR of ``speech`` over ``noise`` in dB."""
    return 10.0 * np.log10(np.sum(speech.astype(np.float64) ** 2) / max(np.sum(noise.astype(np.float64) ** 2), 1e-30))


def noise_files(folder: str | os.PathLike) -> list[Path]:
    """The noise recordings of ``folder`` (recursively), sorted; a one-line error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserInputError(f"{folder}: no such noise folder; give a folder of noise recordings (.wav/.flac/.ogg), "
                             "e.g. one made by data_prep/make_noise.py")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserInputError(f"{folder}: no noise recordings (.wav/.flac/.ogg) in it")
    return files


class NoiseBank:
    """The recordings of a noise folder at ``sample_rate``, each checked (readable, not silent), in memory."""

    def __init__(self, folder: str | os.PathLike, sample_rate: int, files: Sequence[Path] | None = None):
        from ..audio import read_audio
        self.files = list(files) if files is not None else noise_files(folder)
        self.clips = []
        for path in self.files:
            wav = read_audio(path, sample_rate)
            if not np.any(np.abs(wav) > 1e-6):
                raise UserInputError(f"{path}: the noise recording is silent; remove it from the noise folder")
            self.clips.append(wav.astype(np.float32))

    def segment(self, rng: np.random.Generator, length: int) -> np.ndarray:
        """A ``length``-sample segment of a recording chosen by ``rng``, at a random offset (tiled when shorter)."""
        clip = self.clips[int(rng.integers(len(self.clips)))]
        if len(clip) < length:
            clip = np.tile(clip, length // len(clip) + 1)
        start = int(rng.integers(len(clip) - length + 1))
        return clip[start:start + length]


# ---- a generated noise corpus -----------------------------------------------------------------------------------
def _colored(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Noise whose power falls as 1/f^exponent (0 white, 1 pink, 2 brown), by shaping white noise's spectrum."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1]
    return np.fft.irfft(spec / f ** (exponent / 2), n)


def generate_noise(kind: str, seconds: float, sample_rate: int, seed: int = 0, index: int = 0,
                   speech: Sequence[np.ndarray] = ()) -> np.ndarray:
    """``seconds`` of noise of ``kind`` (see the module docstring), float32 peak-normalised to 0.5."""
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    if kind in ("white", "pink", "brown"):
        x = _colored(rng, n, {"white": 0.0, "pink": 1.0, "brown": 2.0}[kind])
    elif kind == "hum":
        f0 = rng.choice([50.0, 60.0])
        x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 2 * np.pi)) / k for k in range(1, 10))
        floor = _colored(rng, n, 1.0)
        x = x + 0.05 * floor / np.std(floor)
    elif kind == "engine":
        rate = rng.uniform(2.0, 6.0)
        x = _colored(rng, n, 2.0) * (1.0 + 0.6 * np.sin(2 * np.pi * rate * t)) + 0.3 * np.sin(2 * np.pi * 40.0 * t)
    elif kind == "babble":
        if len(speech) < 2:
            raise UserInputError("babble noise needs at least two speech clips (a spoken corpus) to talk over each other")
        x = np.zeros(n)
        for _ in range(int(rng.integers(4, 7))):
            clip = speech[int(rng.integers(len(speech)))]
            clip = np.tile(clip, n // len(clip) + 2)
            start = int(rng.integers(len(clip) - n))
            x += clip[start:start + n] / (np.std(clip) + 1e-9)
    elif kind == "clicks":
        x = 0.02 * rng.standard_normal(n)
        for pos in rng.integers(0, n - 200, size=max(1, int(seconds * rng.uniform(3, 10)))):
            width = int(rng.integers(5, 200))
            x[pos:pos + width] += rng.uniform(-1, 1) * np.hanning(width) * rng.standard_normal(width)
    else:
        raise UserInputError(f"unknown noise kind {kind!r}; choose from {', '.join(KINDS)}")
    x = x - np.mean(x)
    return (0.5 * x / max(np.abs(x).max(), 1e-9)).astype(np.float32)


def make_noise_corpus(out_dir: str | os.PathLike, kinds: Sequence[str], *, per_kind: int = 3, seconds: float = 20.0,
                      sample_rate: int = 22050, seed: int = 0, speech_dir: str | os.PathLike | None = None) -> Path:
    """``per_kind`` recordings of ``seconds`` for each of ``kinds`` in ``out_dir/<kind>-<i>.wav`` (16-bit mono);
    babble reads its voices from ``speech_dir`` (an LJSpeech-layout folder)."""
    from ..audio import read_audio, write_audio
    out_dir = Path(out_dir)
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise UserInputError(f"unknown noise kind(s) {bad}; choose from {', '.join(KINDS)}")
    speech = []
    if "babble" in kinds:
        if speech_dir is None:
            raise UserInputError("babble noise needs --speech-dir: a folder of speech (wavs/*.wav) to make voices of")
        speech = [read_audio(p, sample_rate) for p in sorted(Path(speech_dir).glob("wavs/*.wav"))[:40]]
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        for i in range(per_kind):
            write_audio(out_dir / f"{kind}-{i}.wav", generate_noise(kind, seconds, sample_rate, seed, i, speech),
                        sample_rate)
    return out_dir
