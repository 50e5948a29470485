"""The training objective: continuous noise level, forward process, eps-prediction loss."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from ._util import append_dims, randn
from .priors import WHITE, Prior
from .schedule import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def draw_noise_level(schedule: NoiseSchedule, batch: int, *, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """WaveGrad's continuous noise level (Chen et al. 2020, Alg. 1, eq. 8 and §3.2).

    t ~ U{1..T}, then sqrt(alpha_bar) ~ U(l_t, l_{t-1}) with l_0 = 1, so that every level in
    (l_T, 1) is seen in training and the network can be sampled with any schedule.
    Returns ``[batch]`` in ``dtype`` on ``device``; the draw itself is float64 on the generator's device.
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    l = torch.cat([torch.ones(1, dtype=torch.float64), schedule.noise_levels]).to(gen_device)  # [T+1]
    t = torch.randint(1, len(schedule) + 1, (batch,), generator=generator, device=gen_device)  # [B] in 1..T
    u = torch.rand(batch, generator=generator, device=gen_device, dtype=torch.float64)  # [B]
    level = l[t] + u * (l[t - 1] - l[t])  # [B], uniform in (l_t, l_{t-1})
    return level.to(device=device, dtype=dtype)


def q_sample(x0: torch.Tensor, noise_level: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Forward process at a continuous level (Ho et al. 2020, eq. 4): x = l·x0 + sqrt(1 - l²)·eps."""
    l = append_dims(noise_level.to(x0.dtype), x0.ndim)  # [B, 1, ...]
    return l * x0 + (1.0 - l * l).clamp(min=0).sqrt() * noise


def eps_loss(eps_hat: torch.Tensor, eps: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """L1 (WaveGrad, §3.1: "we found L1 to give better training stability") or L2 (Ho et al., eq. 14)."""
    if kind == "l1":
        return F.l1_loss(eps_hat.float(), eps.float())
    if kind == "l2":
        return F.mse_loss(eps_hat.float(), eps.float())
    raise ValueError(f"loss must be 'l1' or 'l2', got {kind!r}")


def training_noise(schedule: NoiseSchedule, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One training draw for a batch of ``shape = [B, ...]``: the continuous level ``[B]`` and white ``z [B, ...]``,
    both from ``generator`` (level first), so a seeded generator fixes the whole draw."""
    level = draw_noise_level(schedule, shape[0], generator=generator, device=device)  # [B]
    return level, randn(shape, generator, device, dtype)


def diffusion_loss(denoise: Denoiser, x0: torch.Tensor, noise_level: torch.Tensor, z: torch.Tensor, *,
                   kind: str = "l1", prior: Prior | None = None) -> torch.Tensor:
    """The eps-prediction objective for a batch ``x0 [B, ...]`` at levels ``[B]`` with white noise ``z``
    (Ho et al. 2020, eq. 14; WaveGrad Alg. 1).

    With a prior ``Sigma = L Lᵀ`` the noise is ``eps = L z``, ``x_t = a·x0 + sqrt(1 - a²)·eps``, the network
    predicts ``eps`` and the loss is taken on the whitened residual ``L⁻¹(eps_hat - eps)``: for ``kind="l2"``
    the Mahalanobis norm ``||eps_hat - eps||²_{Sigma⁻¹}`` per element (PriorGrad, Lee et al. 2022, eq. 8;
    SpecGrad, Koizumi et al. 2022, eq. 7 with its approximate ``L⁻¹``), for ``"l1"`` its L1 counterpart.
    """
    if prior is None or prior is WHITE:
        return eps_loss(denoise(q_sample(x0, noise_level, z), noise_level), z, kind)
    eps = prior.color(z)
    eps_hat = denoise(q_sample(x0, noise_level, eps), noise_level)
    residual = prior.whiten(eps_hat.float() - eps.float())
    return eps_loss(residual, torch.zeros_like(residual), kind)
