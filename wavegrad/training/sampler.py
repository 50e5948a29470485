"""Reproducible, resumable, shardable batches.

Global micro-batch k (counted from the start of training, never reset) holds the items
``perm_e[(k·B_g) mod N …]`` of epoch e's permutation (seeded by ``seed + e``), where B_g is the
global batch. Rank r of W takes its contiguous slice of B_g / W items. Every item comes with its
own seed (from ``seed``, k and its position in the global batch) that the dataset uses for
random crops or augmentations. Hence: resuming at micro-batch k replays exactly what an
uninterrupted run would have seen, and W processes together see what one process with the
combined batch sees, whatever the number of data-loader workers.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


def item_seed(seed: int, micro_step: int, position: int) -> int:
    """A 63-bit seed per (run seed, micro-batch, position in the global batch)."""
    return (seed * 1_000_003 + micro_step * 65_537 + position) % (2**63 - 1)


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    def __init__(self, n_items: int, global_batch: int, *, seed: int, start: int = 0, rank: int = 0,
                 world: int = 1):
        if n_items < 1:
            raise ValueError("the training set is empty")
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by {world} processes")
        self.n, self.B, self.seed, self.start, self.rank, self.world = n_items, global_batch, seed, start, rank, world

    def _epoch_perm(self, epoch: int) -> torch.Tensor:
        return torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + epoch))

    def global_batch(self, k: int) -> list[tuple[int, int]]:
        """(index, item seed) for every item of global micro-batch k."""
        out, epoch, perm = [], None, None
        for pos in range(self.B):
            flat = k * self.B + pos
            if flat // self.n != epoch:
                epoch = flat // self.n
                perm = self._epoch_perm(epoch)
            out.append((int(perm[flat % self.n]), item_seed(self.seed, k, pos)))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per = self.B // self.world
        k = self.start
        while True:
            yield self.global_batch(k)[self.rank * per:(self.rank + 1) * per]
            k += 1

    def __len__(self) -> int:  # infinite; DataLoader only needs it for progress estimates
        return 2**62
