"""Tensor helpers shared by the objective and the samplers."""
from __future__ import annotations

import torch


def append_dims(v: torch.Tensor, ndim: int) -> torch.Tensor:
    """[B] -> [B, 1, ..., 1] with ``ndim`` dims: the one broadcast helper for any tensor rank."""
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def randn(shape, generator: torch.Generator | None, device, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise drawn from ``generator`` on the generator's own device, then moved.

    Drawing on the generator's device keeps a seeded CPU generator's samples identical whatever
    device the model runs on.
    """
    if generator is None:
        return torch.randn(tuple(shape), device=device, dtype=dtype)
    return torch.randn(tuple(shape), generator=generator, device=generator.device, dtype=dtype).to(device)
