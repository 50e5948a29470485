"""Sampling: one DDIM/DDPM loop over an explicit schedule (Song et al. 2021, eq. 12)."""
from __future__ import annotations

import math
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..errors import UserInputError
from ._util import randn
from .schedule import NoiseSchedule

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def check_eta(eta, name: str = "eta") -> float:
    """``eta`` as a float in [0, 1] (1: DDPM ancestral, 0: deterministic DDIM), or a one-line error
    that calls it ``name`` (the CLI passes its flag)."""
    try:
        eta = float(eta)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number in [0, 1] (1: DDPM, 0: DDIM), got {eta!r}") from None
    if not 0.0 <= eta <= 1.0:
        raise UserInputError(f"{name} must lie in [0, 1] (1: DDPM ancestral, 0: deterministic DDIM), got {eta}")
    return eta


def ddim_sigma(abar_t: float, abar_prev: float, eta: float) -> float:
    """sigma_t(eta) of Song et al. 2021, eq. 16.

    eta = 1 gives sqrt(beta~_t) = sqrt((1 - abar_prev)/(1 - abar_t) · beta_t), the DDPM posterior
    std (Ho et al. 2020, eq. 7); eta = 0 gives the deterministic DDIM.
    """
    beta_t = 1.0 - abar_t / abar_prev
    return eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * beta_t)


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, abar_t: float, abar_prev: float, eta: float,
              noise: torch.Tensor | None, clip_x0: float | None = None) -> torch.Tensor:
    """x_{t-1} from x_t and the predicted eps (Song et al. 2021, eq. 12).

    x0^ = (x_t - sqrt(1 - abar_t)·eps) / sqrt(abar_t)
    x_{t-1} = sqrt(abar_prev)·x0^ + sqrt(1 - abar_prev - sigma²)·eps + sigma·z
    ``clip_x0`` clamps x0^ to the data range (|x0| <= clip_x0): it stops the runaway amplitude
    of under-trained networks at few steps; eps is then re-derived from the clipped x0^ so the
    update stays on the same line (as improved-diffusion's ``clip_denoised``).
    """
    sigma = ddim_sigma(abar_t, abar_prev, eta)
    x0 = (x_t - math.sqrt(1.0 - abar_t) * eps) / math.sqrt(abar_t)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = (x_t - math.sqrt(abar_t) * x0) / math.sqrt(1.0 - abar_t)
    x_prev = math.sqrt(abar_prev) * x0 + math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_prev = x_prev + sigma * noise
    return x_prev


@torch.no_grad()
def sample(denoise: Denoiser, shape: tuple[int, ...] | torch.Size, schedule: NoiseSchedule, *,
           eta: float = 1.0, generator: torch.Generator | None = None, x_T: torch.Tensor | None = None,
           progress: bool = False, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32, clip_x0: float | None = None) -> torch.Tensor:
    """Draw ``x_0 [shape]`` by running ``denoise(x [B, ...], noise_level [B]) -> eps`` from the noisiest step.

    eta = 1: DDPM ancestral sampling (Ho et al. 2020, Alg. 2; WaveGrad Alg. 2); eta = 0: DDIM.
    Schedule arithmetic is float64 (Python floats); ``x`` stays in ``dtype``. Starting noise
    ``x_T`` is drawn from ``generator`` unless given; every later draw comes from it too, so a
    seeded generator reproduces the sample exactly.
    """
    eta = check_eta(eta)
    if device is None:
        device = x_T.device if x_T is not None else (generator.device if generator is not None else "cpu")
    x = randn(shape, generator, device, dtype) if x_T is None else x_T.to(device=device, dtype=dtype)
    abar = schedule.alphas_cumprod.tolist()  # float64 → exact Python floats
    B = x.shape[0]
    for i in tqdm(reversed(range(len(abar))), total=len(abar), disable=not progress, desc="sampling",
                  leave=False):
        abar_t, abar_prev = abar[i], (abar[i - 1] if i > 0 else 1.0)
        level = torch.full((B,), math.sqrt(abar_t), device=device, dtype=dtype)  # [B]
        eps = denoise(x, level)
        noise = randn(x.shape, generator, device, dtype) if (eta > 0 and i > 0) else None
        x = ddim_step(x, eps.to(dtype), abar_t, abar_prev, eta, noise, clip_x0)
    return x

