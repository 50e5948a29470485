"""Deterministic train/val/test splits of a corpus, written as ``DATA_DIR/{train,val,test}.txt`` (one id per line)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserInputError
from ..utils import atomic_path
from .metadata import read_metadata

SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Splits:
    """Disjoint id lists. ``note`` says how requested sizes were scaled down, if they were."""

    train: list[str]
    val: list[str]
    test: list[str]
    note: str | None = None

    def __getitem__(self, name: str) -> list[str]:
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; use one of {SPLIT_NAMES}")
        return getattr(self, name)


def _held_out_sizes(n: int, n_val: int, n_test: int) -> tuple[int, int, str | None]:
    """Requested sizes, or, when they leave no training clip, sizes scaled so that the held-out
    clips are ~20 % of the corpus (same val:test ratio, at least 1 each that was asked for)."""
    if n_val + n_test < n:
        return n_val, n_test, None
    held = max(round(0.2 * n), (n_val > 0) + (n_test > 0))
    val = max(round(held * n_val / (n_val + n_test)), 1 if n_val > 0 else 0)
    test = max(held - val, 1 if n_test > 0 else 0)
    if val + test >= n:
        raise UserInputError(f"a corpus of {n} clip(s) is too small to split into train/val/test; "
                             "it needs at least 3 clips")
    note = (f"corpus has only {n} clips, fewer than n_val + n_test + 1 = {n_val + n_test + 1}; "
            f"using {val} validation and {test} test clips instead of {n_val} and {n_test}")
    return val, test, note


def make_splits(ids: Sequence[str], n_val: int = 150, n_test: int = 100, seed: int = 1234) -> Splits:
    """Deterministic disjoint train/val/test split of ``ids``.

    The ids are sorted before a seeded permutation, so the split depends only on the set of ids and
    the seed, not on their order in metadata.csv. Lists keep sorted order within each split.
    """
    for name, v in (("n_val", n_val), ("n_test", n_test), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise UserInputError(f"{name} must be a non-negative integer, got {v!r}")
    ids = sorted(ids)
    if len(set(ids)) != len(ids):
        raise UserInputError("make_splits: ids contain duplicates; fix metadata.csv first")
    n_val, n_test, note = _held_out_sizes(len(ids), n_val, n_test)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    test = sorted(ids[i] for i in order[n_val:n_val + n_test])
    train = sorted(ids[i] for i in order[n_val + n_test:])
    return Splits(train, val, test, note)


def _read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def write_splits(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                 n_val: int = 150, n_test: int = 100, seed: int = 1234, overwrite: bool = False) -> Splits:
    """Split the ids of ``data_dir``'s metadata.csv and write ``train.txt``/``val.txt``/``test.txt``
    (one id per line) to ``out_dir`` (default: ``data_dir``), atomically.

    Existing lists are kept unless ``overwrite``: identical lists are accepted silently (re-running
    is harmless); different ones raise :class:`UserInputError`.
    """
    splits = make_splits([u.id for u in read_metadata(data_dir)], n_val, n_test, seed)
    out_dir = Path(out_dir) if out_dir is not None else Path(data_dir)
    existing = [name for name in SPLIT_NAMES if (out_dir / f"{name}.txt").exists()]
    if existing and not overwrite:
        if all((out_dir / f"{n}.txt").exists() and _read_list(out_dir / f"{n}.txt") == splits[n]
               for n in SPLIT_NAMES):
            return splits
        raise UserInputError(f"{out_dir / (existing[0] + '.txt')} already exists with other ids; "
                             "pass --overwrite (overwrite=True) to replace the split lists")
    for name in SPLIT_NAMES:
        with atomic_path(out_dir / f"{name}.txt") as tmp:
            tmp.write_text("".join(f"{i}\n" for i in splits[name]), encoding="utf-8")
    return splits


def load_split(data_dir: str | os.PathLike, name: str) -> list[str]:
    """Ids listed in ``data_dir/<name>.txt`` (name: train | val | test)."""
    if name not in SPLIT_NAMES:
        raise UserInputError(f"unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}")
    path = Path(data_dir) / f"{name}.txt"
    if not path.is_file():
        raise UserInputError(f"{path} not found; write the split lists with "
                             f"`python data_prep/ljspeech.py split {data_dir}`")
    ids = _read_list(path)
    if not ids:
        raise UserInputError(f"{path} lists no ids; re-run `python data_prep/ljspeech.py split {data_dir} --overwrite`")
    return ids
