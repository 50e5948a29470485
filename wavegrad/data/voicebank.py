"""VoiceBank-DEMAND (Valentini-Botinhao et al. 2016), as distributed: pairs of clean and noisy recordings.

Layout (the Edinburgh DataShare release, 48 kHz mono 16-bit)::

    DIR/clean_trainset_wav/p226_001.wav   DIR/noisy_trainset_wav/p226_001.wav     (11,572 pairs, 28 speakers)
    DIR/clean_testset_wav/p232_001.wav    DIR/noisy_testset_wav/p232_001.wav      (824 pairs, 2 speakers)

(the 28-speaker set's folders are also found as ``clean_trainset_28spk_wav``.) :func:`voicebank_pairs` lists the
pairs of a split; :func:`check_voicebank` reports every problem of a folder -- a file without its partner, pairs of
different rates or lengths, a "noisy" file identical to its clean one (silent noise) -- as :class:`Problem` rows with
the file and the fix, the corpus checker's form; :class:`VoiceBankPairs` reads a split's pairs at the model's rate.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from .metadata import Problem

SPLITS = {"train": ("clean_trainset_wav", "noisy_trainset_wav"), "test": ("clean_testset_wav", "noisy_testset_wav")}
ALIASES = {"clean_trainset_wav": "clean_trainset_28spk_wav", "noisy_trainset_wav": "noisy_trainset_28spk_wav"}


def _folder(root: Path, name: str) -> Path:
    path = root / name
    return path if path.is_dir() or name not in ALIASES else root / ALIASES[name]


def voicebank_pairs(root: str | os.PathLike, split: str) -> list[tuple[Path, Path]]:
    """(clean, noisy) paths of ``split`` ("train" | "test") paired by file name, sorted; one-line errors for a missing
    folder or split."""
    root = Path(root)
    if split not in SPLITS:
        raise UserInputError(f"VoiceBank-DEMAND split must be train or test, got {split!r}")
    clean_dir, noisy_dir = (_folder(root, n) for n in SPLITS[split])
    for d in (clean_dir, noisy_dir):
        if not d.is_dir():
            raise UserInputError(f"{d}: missing; a VoiceBank-DEMAND folder holds clean_trainset_wav/, "
                                 "noisy_trainset_wav/, clean_testset_wav/ and noisy_testset_wav/")
    names = sorted(p.name for p in clean_dir.glob("*.wav") if (noisy_dir / p.name).is_file())
    if not names:
        raise UserInputError(f"{root}: no clean/noisy pairs in the {split} split (matching .wav names in {clean_dir.name}/"
                             f" and {noisy_dir.name}/)")
    return [(clean_dir / n, noisy_dir / n) for n in names]


def check_voicebank(root: str | os.PathLike, split: str = "train") -> list[Problem]:
    """Every problem of a split: unpaired files, rate or length mismatches, silent noise (noisy == clean)."""
    import soundfile as sf
    root = Path(root)
    clean_dir, noisy_dir = (_folder(root, n) for n in SPLITS[split])
    problems = []
    for d in (clean_dir, noisy_dir):
        if not d.is_dir():
            return [Problem(str(d), "the folder is missing", "download and unpack VoiceBank-DEMAND's zip files here")]
    clean, noisy = {p.name for p in clean_dir.glob("*.wav")}, {p.name for p in noisy_dir.glob("*.wav")}
    for name in sorted(clean ^ noisy):
        have, lack = (clean_dir, noisy_dir) if name in clean else (noisy_dir, clean_dir)
        problems.append(Problem(f"{have.name}/{name}", f"has no partner in {lack.name}/",
                                "restore the missing file or remove this one"))
    for name in sorted(clean & noisy):
        try:
            a, sr_a = sf.read(str(clean_dir / name), dtype="float32")
            b, sr_b = sf.read(str(noisy_dir / name), dtype="float32")
        except (RuntimeError, OSError) as e:
            problems.append(Problem(name, f"unreadable ({str(e).splitlines()[0][:80]})", "re-extract the file"))
            continue
        if sr_a != sr_b:
            problems.append(Problem(name, f"clean is {sr_a} Hz, noisy {sr_b} Hz", "resample one to the other's rate"))
        elif len(a) != len(b):
            problems.append(Problem(name, f"clean has {len(a)} samples, noisy {len(b)}", "re-extract the pair"))
        elif float(np.mean((a - b) ** 2)) <= 1e-12 * max(float(np.mean(a ** 2)), 1e-30):
            problems.append(Problem(f"{noisy_dir.name}/{name}", "is identical to its clean file (silent noise)",
                                    "use the noisy recording, or leave the pair out"))
    return problems


class VoiceBankPairs:
    """The (clean, noisy) pairs of a split, read at ``sample_rate`` (48 kHz resampled), checked first."""

    def __init__(self, root: str | os.PathLike, split: str, sample_rate: int, limit: int | None = None):
        from .corpus_check import has_errors
        problems = check_voicebank(root, split)
        if has_errors(problems):
            more = f" ({len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
            raise UserInputError(f"{problems[0]}{more}")
        self.pairs = voicebank_pairs(root, split)[:limit]
        self.sample_rate = sample_rate

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        """(clean [T], noisy [T], name) at the model's rate."""
        from ..audio import read_audio
        clean, noisy = (read_audio(p, self.sample_rate) for p in self.pairs[i])
        n = min(len(clean), len(noisy))
        return clean[:n], noisy[:n], self.pairs[i][0].stem
