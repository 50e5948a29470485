"""Running a sampler: the noise it draws, the steps it reports, the states it makes; and :func:`sample`.

A sampler (:mod:`.samplers`) is a generator that yields every state it makes; :func:`run` drives it -- calling back
once per step, advancing the progress bar, and handing each state to ``project`` before the sampler goes on (the
identity for sampling; the replacement of the known part for :mod:`.inpainting`). All noise -- the start and every
step's -- comes from :func:`noise_source`: standard normal draws from the caller's generator (or its own ``noise``
function) coloured by the prior.
"""
from __future__ import annotations

from typing import Callable

import torch
from tqdm.auto import tqdm

from ._util import randn
from .plan import SamplingPlan
from .prediction import as_predictor
from .priors import WHITE, Prior
from .samplers import Callback, Sampler, Step
from .schedule import NoiseSchedule

Noise = Callable[[torch.Size], torch.Tensor]


def run(sampler: Sampler, *, callback: Callback | None = None, progress: bool = False, total: int | None = None,
        project: Callable[[torch.Tensor, float], torch.Tensor] | None = None, first_step: int = 0) -> torch.Tensor:
    """Drive ``sampler`` to its end and return its result. ``callback`` sees each step (numbered from
    ``first_step``); ``project(x, level)`` may replace every state the sampler makes before it continues."""
    bar = tqdm(total=total, disable=None if progress else True, desc="sampling", leave=False)
    try:
        move = next(sampler)
        while True:
            if move.step is not None:
                if callback is not None:
                    step = move.step
                    callback(step if not first_step else Step(step.i + first_step, step.level, step.x, step.denoised))
                bar.update(1)
            x = move.x if project is None or move.x is None else project(move.x, move.level)
            move = sampler.send(x)
    except StopIteration as done:
        return done.value
    finally:
        bar.close()


def noise_source(prior: Prior | None, noise: Noise | None, generator: torch.Generator | None, device,
                 dtype: torch.dtype) -> tuple[Noise, Callable[[torch.Tensor], torch.Tensor]]:
    """(white noise of a shape, prior noise like a tensor): ``noise`` or standard normal draws from ``generator``,
    coloured by ``prior`` (white when None)."""
    prior = prior or WHITE
    if noise is None:
        def noise(size):
            return randn(size, generator, device, dtype)

    def draw(like: torch.Tensor) -> torch.Tensor:
        return prior.color(noise(like.shape)).to(like.dtype)
    return noise, draw


def sample(denoise, shape: tuple[int, ...] | torch.Size, schedule: NoiseSchedule | SamplingPlan, *,
           sampler: str | None = None, eta: float | None = None, generator: torch.Generator | None = None,
           x_T: torch.Tensor | None = None, prior: Prior | None = None, noise: Noise | None = None,
           callback: Callback | None = None, progress: bool = False, device: torch.device | str | None = None,
           dtype: torch.dtype = torch.float32, clip_x0: float | None = None, grad: bool = False,
           **options) -> torch.Tensor:
    """Draw ``x_0 [shape]`` over ``schedule`` from ``denoise(x [B, ...], noise_level [B]) -> eps`` (or ``(eps, v)``).

    ``schedule``: a :class:`NoiseSchedule` -- then ``sampler`` (one of ``SAMPLERS``; ``None`` keeps the original
    API: ``eta=1``, the default, DDPM and any other ``eta`` DDIM(eta)) and its ``options`` (``s_churn``,
    ``snr``, ...) pick the sampler -- or a :class:`SamplingPlan` that holds all three. Noise: the start ``x_T``
    (drawn unless given) and every step's noise are ``prior.color(noise(shape))``, ``noise`` defaulting to
    standard normal draws from ``generator``, so a seeded generator reproduces the sample exactly. ``clip_x0``
    clamps every x0 estimate to [-clip_x0, clip_x0]; ``callback(Step)`` sees each step once, in order. Schedule
    arithmetic is float64; ``x`` stays in ``dtype``. ``grad=True`` keeps the autograd graph through every step (a
    loss on the sample trains the network through the sampler: InferGrad); otherwise no gradients are kept.
    """
    plan = schedule if isinstance(schedule, SamplingPlan) else SamplingPlan.of(schedule, sampler, eta, **options)
    if isinstance(schedule, SamplingPlan) and (sampler is not None or eta is not None or options):
        raise ValueError("a SamplingPlan holds its sampler and options: pass them to the plan, not to sample()")
    prior = prior or WHITE
    if device is None:
        device = x_T.device if x_T is not None else (generator.device if generator is not None else "cpu")
    noise, draw = noise_source(prior, noise, generator, device, dtype)
    with torch.set_grad_enabled(grad):
        x = prior.color(noise(torch.Size(shape))).to(dtype) if x_T is None else x_T.to(device=device, dtype=dtype)
        return run(plan.start(as_predictor(denoise), x, plan.alpha_bars(), draw, prior, clip_x0),
                   callback=callback, progress=progress, total=len(plan.schedule))
