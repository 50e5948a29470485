"""Training pairs for speech enhancement: clean crops with noisy ones made on the fly, or VoiceBank-DEMAND's pairs.

``NoisyCrops[(i, item_seed)] = {"clean": float32 [L], "noisy": float32 [L]}`` -- the trainer's indexing (a crop is a
function of ``item_seed`` alone, so runs resume and reproduce exactly). With a clean LJSpeech-layout folder and a
noise folder, the crop of clip ``i`` is mixed with a seeded noise segment at an SNR drawn uniformly from
``snr_range`` (dB); with VoiceBank-DEMAND, the same span is cut from both recordings of pair ``i``. Either way both
signals are then scaled by one factor so that the noisy one peaks at most at ``PEAK`` (the diffusion's data range),
which keeps the pair's relation and the SNR.
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserInputError
from .noise import NoiseBank, mix

PEAK = 0.95


def scaled_pair(clean: np.ndarray, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both signals scaled by one factor so that ``noisy`` peaks at most at ``PEAK``."""
    peak = float(np.abs(noisy).max())
    g = PEAK / peak if peak > PEAK else 1.0
    return (clean * g).astype(np.float32), (noisy * g).astype(np.float32)


class NoisyCrops(Dataset):
    """Training crops of ``length`` samples: (clean, noisy) pairs (see the module docstring)."""

    def __init__(self, length: int, sample_rate: int, *, clean_dir: str | os.PathLike | None = None,
                 ids: Sequence[str] = (), noise_dir: str | os.PathLike | None = None,
                 snr_range: tuple[float, float] = (-5.0, 20.0), voicebank: str | os.PathLike | None = None,
                 split: str = "train"):
        if length <= 0:
            raise UserInputError(f"the crop length must be positive, got {length}")
        lo, hi = snr_range
        if not lo <= hi:
            raise UserInputError(f"the SNR range must be LOW,HIGH with LOW <= HIGH, got {snr_range}")
        self.length, self.snr_range = int(length), (float(lo), float(hi))
        if voicebank is not None:
            from .voicebank import VoiceBankPairs
            self.pairs, self.clips, self.noise = VoiceBankPairs(voicebank, split, sample_rate), None, None
        else:
            if clean_dir is None or noise_dir is None:
                raise UserInputError("give --clean-dir and --noise-dir (clean speech and noise recordings), or "
                                     "--voicebank DIR")
            from .datasets import ClipStore
            store = ClipStore(clean_dir, ids, sample_rate)
            self.pairs, self.clips = None, [store.samples(i, 0, store.lengths[i]) for i in range(len(store))]
            self.noise = NoiseBank(noise_dir, sample_rate)

    def __len__(self) -> int:
        return len(self.pairs) if self.pairs is not None else len(self.clips)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        i, item_seed = key
        rng = np.random.default_rng([item_seed, 0xE7])
        clean, noisy = self.pairs[i][:2] if self.pairs is not None else (self.clips[i], None)   # pairs: read now
        n = len(clean)
        start = int(rng.integers(0, max(n - self.length, 0) + 1))
        c = np.zeros(self.length, dtype=np.float32)
        c[:min(n, self.length)] = clean[start:start + self.length]
        if noisy is not None:                                           # a recorded pair: the same span of both
            y = np.zeros(self.length, dtype=np.float32)
            y[:min(n, self.length)] = noisy[start:start + self.length]
        elif np.any(c):
            y = mix(c, self.noise.segment(rng, self.length), float(rng.uniform(*self.snr_range)))
        else:                                                            # a silent crop: noise alone
            y = self.noise.segment(rng, self.length) * 0.1
        c, y = scaled_pair(c, y)
        return {"clean": torch.from_numpy(c), "noisy": torch.from_numpy(y)}
