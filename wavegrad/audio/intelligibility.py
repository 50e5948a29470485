"""Intelligibility: the word error rate of an offline recogniser against a clip's transcript.

``wer(text, wav, sample_rate)`` transcribes ``wav`` with CMU PocketSphinx (Huggins-Daines et al. 2006) -- its
wheel carries a US English acoustic model, a 130k-word pronouncing dictionary and a trigram language model, so
nothing downloads -- and returns the word-level Levenshtein distance to ``text`` divided by the number of
reference words (substitutions + deletions + insertions; it can exceed 1).

What it measures and its limits: PocketSphinx is a small HMM-GMM recogniser of 2015-era accuracy trained on clean
US English read speech. On clean real speech it gets short read sentences mostly right (the CMU ARCTIC clip that
pysptk ships: 0 errors), on synthetic voices or accented speech it errs more, and its language model favours
common word sequences, so it guesses plausible words from noisy audio rather than reporting garbage. Use WER to
compare systems on the same clips, as a coarse check that words survive vocoding; not as an absolute score, and
not on clips that were cut mid-sentence (the benchmark leaves those out).
"""
from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from ..errors import UserInputError

EVAL_HINT = "pip install wavegrad[eval]"


def words(text: str) -> list[str]:
    """Lower-case words of a transcript: letters, digits and inner apostrophes; other punctuation dropped."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)*", text.lower())


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Word-level Levenshtein distance (substitutions, deletions, insertions, each 1)."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def error_rate(reference: str, hypothesis: str) -> float:
    """WER of ``hypothesis`` against ``reference`` (both plain text)."""
    ref = words(reference)
    if not ref:
        raise UserInputError(f"the reference transcript {reference!r} has no words to score against")
    return word_errors(ref, words(hypothesis)) / len(ref)


@functools.lru_cache(maxsize=1)
def _decoder():
    """One PocketSphinx decoder per process (loading its 27 MB language model takes about a second)."""
    try:
        from pocketsphinx import Decoder
    except ImportError as e:
        raise ImportError(f"WER needs the optional package 'pocketsphinx' ({e}); install it with `{EVAL_HINT}`") from e
    return Decoder(samprate=16000, loglevel="FATAL")


def transcribe(wav: Any, sample_rate: int) -> str:
    """PocketSphinx's transcript of a float waveform ``[T]`` in [-1, 1] (resampled to 16 kHz)."""
    decoder = _decoder()
    x = np.asarray(wav, dtype=np.float32).reshape(-1)
    if int(sample_rate) != 16000:
        import librosa
        x = librosa.resample(x, orig_sr=int(sample_rate), target_sr=16000, res_type="soxr_hq")
    pcm = (np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)
    decoder.start_utt()
    decoder.process_raw(pcm.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def wer(text: str, wav: Any, sample_rate: int) -> float:
    """The word error rate of PocketSphinx on ``wav`` against the transcript ``text``."""
    return error_rate(text, transcribe(wav, sample_rate))
