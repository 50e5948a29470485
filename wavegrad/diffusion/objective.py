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


def eps_loss(eps_hat: torch.Tensor, eps: torch.Tensor, kind: str = "l1",
             weights: torch.Tensor | None = None) -> torch.Tensor:
    """L1 (WaveGrad, §3.1: "we found L1 to give better training stability") or L2 (Ho et al., eq. 14); ``weights [B]``
    weigh each example's mean (their mean over the batch is the loss)."""
    if kind not in ("l1", "l2"):
        raise ValueError(f"loss must be 'l1' or 'l2', got {kind!r}")
    if weights is None:
        return F.l1_loss(eps_hat.float(), eps.float()) if kind == "l1" else F.mse_loss(eps_hat.float(), eps.float())
    diff = (eps_hat.float() - eps.float()).flatten(1)
    per = diff.abs().mean(1) if kind == "l1" else diff.square().mean(1)                   # [B]
    return (weights.float() * per).mean()


def diffusion_loss(denoise: Denoiser, x0: torch.Tensor, noise_level: torch.Tensor, z: torch.Tensor, *,
                   kind: str = "l1", prior: Prior | None = None, weights: torch.Tensor | None = None,
                   outputs: dict | None = None) -> torch.Tensor:
    """The eps-prediction objective for a batch ``x0 [B, ...]`` at levels ``[B]`` with white noise ``z``
    (Ho et al. 2020, eq. 14; WaveGrad Alg. 1).

    With a prior ``Sigma = L Lᵀ`` the noise is ``eps = L z``, ``x_t = a·x0 + sqrt(1 - a²)·eps``, the network
    predicts ``eps`` and the loss is taken on the whitened residual ``L⁻¹(eps_hat - eps)``: for ``kind="l2"``
    the Mahalanobis norm ``||eps_hat - eps||²_{Sigma⁻¹}`` per element (PriorGrad, Lee et al. 2022, eq. 8;
    SpecGrad, Koizumi et al. 2022, eq. 7 with its approximate ``L⁻¹``), for ``"l1"`` its L1 counterpart.
    ``weights [B]``: per-example loss weights; ``outputs``: a dict that receives ``x_t`` and ``eps_hat`` (for losses
    on the x0 estimate).
    """
    if prior is None or prior is WHITE:
        x_t = q_sample(x0, noise_level, z)
        eps_hat = denoise(x_t, noise_level)
        loss = eps_loss(eps_hat, z, kind, weights)
    else:
        eps = prior.color(z)
        x_t = q_sample(x0, noise_level, eps)
        eps_hat = denoise(x_t, noise_level)
        residual = prior.whiten(eps_hat.float() - eps.float())
        loss = eps_loss(residual, torch.zeros_like(residual), kind, weights)
    if outputs is not None:
        outputs.update(x_t=x_t, eps_hat=eps_hat)
    return loss
