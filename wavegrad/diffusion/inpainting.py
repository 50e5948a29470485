"""Sampling with a known region: the replacement method and RePaint's resampling jumps.

Given ``x_known`` and a boolean ``mask`` (True where ``x_known`` is kept), every state the sampler makes is
followed by a projection: the known part of the state at noise level ``a`` is replaced by
``a·x_known + sqrt(1 - a²)·eps``, a fresh draw of the forward process at that level (the replacement method; Song
et al. 2021, App. I.2, after every predictor and corrector step as their code does; Lugmayr et al. 2022, eq. 8),
and the unknown part is the sampler's. At the end (a = 1) the known part is ``x_known`` itself, bit for bit.
RePaint (Lugmayr et al., CVPR 2022, §4.2 and Alg. 1) harmonises the two parts by resampling: after every
``jump_length`` steps down, the state is diffused back up ``jump_length`` steps with the forward process
q(x_t | x_{t-j}) and the segment is denoised again, ``jump_n_sample`` times in all. ``jump_length =
jump_n_sample = 1`` is the plain replacement method.

Samplers: each downward segment of RePaint's time schedule is one run of the sampler over that segment's levels
(ending at the segment's last level), projected between its moves by :func:`wavegrad.diffusion.sampling.run`, so
inpainting works with every sampler that steps without memory of earlier steps -- the stochastic ddpm, ddim with
eta > 0, pc, langevin, euler and heun with churn, and the deterministic ddim, euler and heun. A multistep sampler
(DPM-Solver++(2M)) is refused: its update extrapolates from the previous step's estimate, which the replacement
has changed under it.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import UserInputError
from .plan import SamplingPlan
from .prediction import as_predictor
from .priors import WHITE, Prior
from .samplers import SAMPLERS, Callback
from .sampling import noise_source, run
from .schedule import NoiseSchedule


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


def repaint_steps(n: int, jump_length: int, jump_n_sample: int) -> int:
    """How many steps down RePaint's time schedule takes (the steps :func:`inpaint` reports, numbered 0, 1, ...)."""
    times = repaint_times(n, jump_length, jump_n_sample)
    return sum(b < a for a, b in zip(times, times[1:]))


@torch.no_grad()
def inpaint(denoise: Callable, x_known: torch.Tensor, mask: torch.Tensor, schedule: NoiseSchedule | SamplingPlan, *,
            sampler: str | None = "ddpm", jump_length: int = 1, jump_n_sample: int = 1,
            generator: torch.Generator | None = None, prior: Prior | None = None,
            noise: Callable[[torch.Size], torch.Tensor] | None = None, callback: Callback | None = None,
            clip_x0: float | None = None, eta: float | None = None, progress: bool = False,
            **options) -> torch.Tensor:
    """A sample whose ``mask`` part is ``x_known`` and whose rest the sampler fills in (see the module docstring).

    ``x_known [B, ...]`` and ``mask`` (bool, broadcastable to it; True = keep) in the data range; ``schedule`` with
    ``sampler`` and its ``options`` as :func:`sample` (or a :class:`SamplingPlan`); noise through ``noise`` /
    ``generator`` and ``prior`` as there.
    """
    plan = schedule if isinstance(schedule, SamplingPlan) else SamplingPlan.of(schedule, sampler, eta, **options)
    _check(plan, x_known, mask, jump_length, jump_n_sample)
    mask = mask.to(torch.bool).expand_as(x_known)
    _, draw = noise_source(prior, noise, generator, x_known.device, x_known.dtype)

    def project(x: torch.Tensor, level: float) -> torch.Tensor:
        known = x_known if level >= 1.0 else level * x_known + math.sqrt(1.0 - level * level) * draw(x)
        return torch.where(mask, known, x)

    predict = as_predictor(denoise)
    abar = plan.schedule.alphas_cumprod.tolist()
    x = project(draw(x_known), math.sqrt(abar[-1]))
    done = 0
    for start, stop, up in _segments(repaint_times(len(plan.schedule), jump_length, jump_n_sample)):
        if up:                                        # RePaint's jump: q(x_stop | x_start), forward diffusion
            ratio = abar[stop] / abar[start]
            x = project(math.sqrt(ratio) * x + math.sqrt(1.0 - ratio) * draw(x), math.sqrt(abar[stop]))
            continue
        # the segment's levels as a schedule holds them (betas re-derived), then where it ends
        levels = NoiseSchedule.from_alphas_cumprod(abar[stop + 1:start + 1]).alphas_cumprod.tolist()[::-1]
        steps = plan.start(predict, x, levels + [abar[stop] if stop >= 0 else 1.0], draw, prior or WHITE, clip_x0)
        x = run(steps, callback=callback, progress=progress, total=len(levels), project=project, first_step=done)
        done += len(levels)
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


def _check(plan: SamplingPlan, x_known, mask, jump_length: int, jump_n_sample: int) -> None:
    if SAMPLERS[plan.sampler].multistep:
        able = ", ".join(n for n, s in SAMPLERS.items() if not s.multistep)
        raise UserInputError(f"sampler {plan.sampler!r} cannot inpaint (its multistep update extrapolates from a step "
                             f"the replacement has changed); use {able}")
    if not torch.isfinite(x_known).all():
        raise UserInputError("the known signal contains NaN or inf")
    try:
        torch.broadcast_shapes(mask.shape, x_known.shape)
    except RuntimeError:
        raise UserInputError(f"mask of shape {tuple(mask.shape)} does not fit the data's {tuple(x_known.shape)}") from None
    for label, value in (("jump_length", jump_length), ("jump_n_sample", jump_n_sample)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserInputError(f"{label} must be an integer >= 1, got {value!r}")
    n = len(plan.schedule)
    if jump_length >= n and jump_n_sample > 1:
        raise UserInputError(f"jump_length {jump_length} must be below the schedule's {n} steps to jump back")
