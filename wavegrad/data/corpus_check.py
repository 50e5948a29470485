"""Every problem of an LJSpeech-layout corpus, each with its file and its fix (``data_prep/ljspeech.py check``)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .metadata import Problem, Utterance, metadata_path, parse_metadata


def _check_wav(path: Path, rel: str, sample_rate: int, full: bool) -> list[Problem]:
    import soundfile as sf

    if not path.is_file():
        return [Problem(rel, "missing", "restore the file or delete its row from metadata.csv")]
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types for broken headers
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return [Problem(rel, f"unreadable ({first})", "re-export it as 16-bit PCM WAV or delete its row")]
    out = []
    if info.channels != 1:
        out.append(Problem(rel, f"{info.channels} channels, expected mono",
                           "mix it down (e.g. `sox in.wav -c 1 out.wav`)"))
    if info.samplerate != sample_rate:
        out.append(Problem(rel, f"sample rate {info.samplerate} Hz, expected {sample_rate} Hz",
                           f"resample it (e.g. `sox in.wav -r {sample_rate} out.wav`)"))
    if info.frames == 0:
        out.append(Problem(rel, "empty (0 samples)", "re-export it or delete its row"))
    elif full and not out:
        out += _check_samples(path, rel)
    return out


def _check_samples(path: Path, rel: str) -> list[Problem]:
    import soundfile as sf

    try:
        wav, _ = sf.read(str(path), dtype="float32")
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return [Problem(rel, f"cannot be decoded ({first})", "re-export it as 16-bit PCM WAV or delete its row")]
    if not np.isfinite(wav).all():
        return [Problem(rel, "contains NaN or inf samples", "re-export it as 16-bit PCM")]
    if wav.size and float(np.abs(wav).max()) < 1e-5:
        return [Problem(rel, "silent (peak below 1e-5)", "check the export or delete its row")]
    return []


def check_corpus(data_dir: str | os.PathLike, sample_rate: int = 22050, *, full: bool = False,
                 progress: bool = False) -> list[Problem]:
    """Every problem of an LJSpeech-layout folder, as :class:`Problem` s (empty list: all good).

    Checks each metadata row (3 fields, valid unique id) and each listed wav: exists, readable
    header, mono, at ``sample_rate``, non-empty. ``full=True`` also decodes every file to catch
    truncated data, NaN/inf and all-silent clips (LJSpeech: about a minute). Wavs not listed in
    metadata.csv are reported as warnings. Raises only if the folder or metadata.csv is missing.
    """
    data_dir = Path(data_dir)
    meta = metadata_path(data_dir)
    utts, problems = parse_metadata(meta)
    items: Iterable[Utterance] = utts
    if progress:
        from tqdm import tqdm
        items = tqdm(utts, desc="checking wavs", unit="file")
    for u in items:
        problems += _check_wav(u.wav_path(data_dir), f"wavs/{u.id}.wav", sample_rate, full)
    wav_dir = data_dir / "wavs"
    if wav_dir.is_dir():
        listed = {u.id for u in utts}
        extra = sorted(p.name for p in wav_dir.glob("*.wav") if p.stem not in listed)
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            problems.append(Problem("wavs/", f"{len(extra)} wav(s) not listed in metadata.csv: {shown}",
                                    "add rows for them if they should be used (they are ignored)", "warning"))
    return problems


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)
