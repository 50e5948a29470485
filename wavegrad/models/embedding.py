"""Sinusoidal embedding of the continuous noise level, shared by the WaveGrad net and the image UNet.

WaveGrad (Chen et al. 2020, arXiv 2009.00713, Sec. 3 and the FiLM module of Fig. 6) conditions on the continuous noise
level sqrt(alpha_bar) in (0, 1] instead of an integer step, and feeds it through the Transformer
positional encoding (Vaswani et al. 2017) after scaling it by 5000 -- a level is then "a position" in
[0, 5000], comparable to the step indices of a 1000-step DDPM, so the same frequencies resolve it.
"""
from __future__ import annotations

import math

import torch

NOISE_LEVEL_SCALE = 5000.0  # WaveGrad: positional encoding of 5000 * sqrt(alpha_bar)
MAX_PERIOD = 10000.0        # Vaswani et al.: frequencies 1 / 10000^(k / half)


def noise_level_embedding(noise_level: torch.Tensor, dim: int, scale: float = NOISE_LEVEL_SCALE) -> torch.Tensor:
    """``noise_level [B]`` -> ``[B, dim]``: ``[sin(s*l*w_k), cos(s*l*w_k)]`` with ``w_k = 10000^(-k/half)``.

    Computed in float32 (or float64 if given) whatever the autocast state: at s*l ~ 5000 the phase
    needs more than fp16's 11 bits of mantissa. For odd ``dim`` the last column is zero.
    """
    if noise_level.dim() != 1:
        raise ValueError(f"noise_level must have shape [B], got {tuple(noise_level.shape)}")
    if dim < 2:
        raise ValueError(f"embedding dim must be >= 2, got {dim}")
    half = dim // 2
    dtype = torch.float64 if noise_level.dtype == torch.float64 else torch.float32
    with torch.autocast(device_type=noise_level.device.type, enabled=False):
        k = torch.arange(half, device=noise_level.device, dtype=dtype)                  # [half]
        freqs = torch.exp(-math.log(MAX_PERIOD) * k / half)                             # [half]
        phase = scale * noise_level.to(dtype)[:, None] * freqs[None, :]                 # [B, half]
        emb = torch.cat([torch.sin(phase), torch.cos(phase)], dim=1)                    # [B, 2*half]
        if dim % 2:
            emb = torch.nn.functional.pad(emb, (0, 1))                                  # [B, dim]
    return emb
