"""Sampling with a known region: the replacement method and RePaint's resampling jumps.

Given ``x_known`` and a boolean ``mask`` (True where ``x_known`` is kept), every step of the sampler is followed
by a projection: the known part of the state at noise level ``a`` is replaced by ``a·x_known + sqrt(1 - a²)·eps``,
a fresh draw of the forward process at that level (the replacement method; Song et al. 2021, App. I.2;
Lugmayr et al. 2022, eq. 8), and the unknown part is the sampler's. At the end (a = 1) the known part is
``x_known`` itself, bit for bit. RePaint (Lugmayr et al., CVPR 2022, §4.2 and Alg. 1) harmonises the two
parts by resampling: after every ``jump_length`` steps down, the state is diffused back up ``jump_length``
steps with the forward process q(x_t | x_{t-j}) and the segment is denoised again, ``jump_n_sample`` times
in all. ``jump_length = jump_n_sample = 1`` is the plain replacement method.

Samplers: every sampler runs its own loop over each segment (``samplers.SAMPLERS``), stopping at the segment's
last level, so inpainting works with every stochastic one (ddpm, ddim with eta > 0, pc, langevin, euler and
heun with churn) and with the deterministic ddim, euler and heun. DPM-Solver++(2M) is refused: its multistep
update extrapolates from the previous step's estimate, which the replacement has changed under it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import UserInputError
from ._util import randn
from .priors import WHITE, Prior
from .samplers import SAMPLERS, Callback, resolve_sampler
from .schedule import NoiseSchedule

UNSUPPORTED = ("dpmpp-2m",)


def repaint_times(n: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """RePaint's time schedule (``get_schedule_jump`` of the official code) as step indices of an ``n``-step
    schedule: n - 1 (the noisiest) down to 0, then -1 (clean data); after every ``jump_length`` steps below
    n - jump_length it jumps back up ``jump_length`` steps, ``jump_n_sample - 1`` times."""
    jumps = {j: jump_n_sample - 1 for j in range(0, n - jump_length, jump_length)}
    t, times = n, []
    while t >= 1:
        t -= 1
        times.append(t)
        if jumps.get(t, 0) > 0:
            jumps[t] -= 1
            for _ in range(jump_length):
                t += 1
                times.append(t)
    return times + [-1]


@torch.no_grad()
def inpaint(denoise: Callable, x_known: torch.Tensor, mask: torch.Tensor, schedule: NoiseSchedule, *,
            sampler: str = "ddpm", jump_length: int = 1, jump_n_sample: int = 1,
            generator: torch.Generator | None = None, prior: Prior | None = None,
            noise: Callable[[torch.Size], torch.Tensor] | None = None, callback: Callback | None = None,
            clip_x0: float | None = None, eta: float | None = None, progress: bool = False,
            **options) -> torch.Tensor:
    """A sample whose ``mask`` part is ``x_known`` and whose rest the sampler fills in (see the module docstring).

    ``x_known [B, ...]`` and ``mask`` (bool, broadcastable to it; True = keep) in the data range; ``sampler``
    and its ``options`` as :func:`sample`; noise through ``noise`` / ``generator`` and ``prior`` as there.
    """
    name, options = resolve_sampler(sampler, eta, options)
    _check(name, x_known, mask, jump_length, jump_n_sample, len(schedule))
    prior = prior or WHITE
    mask = mask.to(torch.bool).expand_as(x_known)
    device, dtype = x_known.device, x_known.dtype
    if noise is None:
        def noise(size):
            return randn(size, generator, device, dtype)

    def draw(like: torch.Tensor) -> torch.Tensor:
        return prior.color(noise(like.shape)).to(like.dtype)

    def project(x: torch.Tensor, level: float) -> torch.Tensor:
        known = x_known if level >= 1.0 else level * x_known + math.sqrt(1.0 - level * level) * draw(x)
        return torch.where(mask, known, x)

    if "whiten" in SAMPLERS[name].__code__.co_varnames:
        options["whiten"] = prior.whiten
    abar = schedule.alphas_cumprod.tolist()
    times = repaint_times(len(schedule), jump_length, jump_n_sample)
    x = project(draw(x_known), math.sqrt(abar[-1]))
    for start, stop, up in _segments(times):
        if up:                                        # RePaint's jump: q(x_stop | x_start), forward diffusion
            ratio = abar[stop] / abar[start]
            x = project(math.sqrt(ratio) * x + math.sqrt(1.0 - ratio) * draw(x), math.sqrt(abar[stop]))
            continue
        segment = NoiseSchedule.from_alphas_cumprod(abar[stop + 1:start + 1])
        final = abar[stop] if stop >= 0 else 1.0
        x = SAMPLERS[name](denoise, x, segment, draw, clip_x0=clip_x0, callback=callback, progress=progress,
                           project=project, final=final, **options)
    return torch.where(mask, x_known, x)


def _segments(times: list[int]):
    """Runs of RePaint's time schedule: (start, stop, going up) for every maximal monotone run."""
    i = 0
    while i < len(times) - 1:
        up = times[i + 1] > times[i]
        j = i + 1
        while j < len(times) - 1 and (times[j + 1] > times[j]) == up:
            j += 1
        yield times[i], times[j], up
        i = j


def _check(name: str, x_known, mask, jump_length: int, jump_n_sample: int, n: int) -> None:
    if name in UNSUPPORTED:
        raise UserInputError(f"sampler {name!r} cannot inpaint (its multistep update extrapolates from a step the "
                             "replacement has changed); use ddpm, ddim, euler, heun, pc or langevin")
    if not torch.isfinite(x_known).all():
        raise UserInputError("the known signal contains NaN or inf")
    try:
        torch.broadcast_shapes(mask.shape, x_known.shape)
    except RuntimeError:
        raise UserInputError(f"mask of shape {tuple(mask.shape)} does not fit the data's {tuple(x_known.shape)}") from None
    for label, value in (("jump_length", jump_length), ("jump_n_sample", jump_n_sample)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{label} must be an integer >= 1, got {value!r}")
    if jump_length >= n and jump_n_sample > 1:
        raise UserInputError(f"jump_length {jump_length} must be below the schedule's {n} steps to jump back")
