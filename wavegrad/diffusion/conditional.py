"""The conditional diffusion of CDiffuSE (Lu et al., ICASSP 2022, arXiv 2202.05256): from clean data toward a degraded
observation ``y`` instead of toward pure noise.

Forward process (their eqs. 4-6, in the core's noise level ``a = sqrt(alpha_bar)``)::

    x_t = (1 - m)·a·x0 + m·a·y + sqrt(delta)·eps,      m(a) = sqrt((1 - a²) / a),   delta = (1 - a²) - m²·a²

so ``x_t = a·x0 + sqrt(1 - a²)·eps~`` with the *combined noise* ``eps~ = (m·a·(y - x0) + sqrt(delta)·eps) / sqrt(1 - a²)``
that the network predicts (an eps-model of the usual calling convention, conditioned on ``y``'s features by its
caller); for continuous levels ``delta = (1 - a²)(1 - a)``. At sampling time ``m`` is clipped to 1 and the
noisiest level gets ``m = 1`` (their code), so the start ``x_T = a_T·y + sqrt(delta_T)·eps`` needs no clean data.

Reverse process (their eqs. 9-12): from ``x_n`` at level ``a_n`` to ``a_{n-1}``, with ``alpha_n = abar_n / abar_{n-1}``,

    delta_{n|n-1} = delta_n - ((1 - m_n)/(1 - m_{n-1}))²·alpha_n·delta_{n-1},   delta~ = delta_{n|n-1}·delta_{n-1}/delta_n
    x_{n-1} = c_x·x_n + c_y·y - c_eps·eps_hat + sqrt(delta~)·z

the coefficients of :func:`reverse_coefficients`; the last step, to clean data, is DDPM's mean step, and the result
is mixed with the observation, ``(1 - gamma)·x0 + gamma·y`` (gamma = 0.2 in their code: the "supportive" noisy
input keeps what the network would smear). :func:`sample_conditional` is that ancestral sampler; ``eta = 0`` is its
deterministic counterpart (DDIM's construction on these marginals: the predicted x0, the observation, and the
current noise direction re-scaled to the next level's delta).
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ..errors import UserInputError
from .prediction import as_predictor
from .sampling import noise_source
from .schedule import NoiseSchedule

GAMMA = 0.2     # CDiffuSE's final mix with the noisy observation (their inference code's gamma)


def mix_weight(abar: float, clip: bool = True) -> float:
    """CDiffuSE's m at alpha_bar ``abar``: sqrt((1 - abar) / sqrt(abar)), clipped to 1 at sampling time."""
    m = math.sqrt((1.0 - abar) / math.sqrt(abar))
    return min(m, 1.0) if clip else m


def forward_variance(abar: float, m: float) -> float:
    """delta = 1 - (1 + m²)·abar, the variance of the fresh noise in x_t (floored at 0)."""
    return max(1.0 - (1.0 + m * m) * abar, 0.0)


def q_sample_conditional(x0: torch.Tensor, y: torch.Tensor, level: torch.Tensor, eps: torch.Tensor) -> tuple[
        torch.Tensor, torch.Tensor]:
    """(x_t, eps~): the training pair of the forward process at continuous levels ``level [B]`` (m unclipped,
    delta = (1 - a²)(1 - a)); ``eps~`` is the target the network predicts."""
    a = level.to(x0.dtype).reshape(-1, *[1] * (x0.ndim - 1))                        # [B, 1, ...]
    m = ((1 - a * a) / a).sqrt()
    delta = ((1 - a * a) * (1 - a)).clamp_min(0)
    x_t = (1 - m) * a * x0 + m * a * y + delta.sqrt() * eps
    eps_tilde = (m * a * (y - x0) + delta.sqrt() * eps) / (1 - a * a).clamp_min(1e-12).sqrt()
    return x_t, eps_tilde


def reverse_coefficients(abar_t: float, abar_prev: float, m_t: float, m_prev: float) -> tuple[float, ...]:
    """(c_x, c_y, c_eps, delta~) of CDiffuSE's reverse step from alpha_bar ``abar_t`` to ``abar_prev``."""
    alpha = abar_t / abar_prev
    d_t, d_prev = forward_variance(abar_t, m_t), forward_variance(abar_prev, m_prev)
    ratio = (1.0 - m_t) / (1.0 - m_prev)
    d_cond = d_t - ratio * ratio * alpha * d_prev                                  # delta_{t|t-1}
    c_x = ratio * (d_prev / d_t) * math.sqrt(alpha) + (1.0 - m_prev) * (d_cond / d_t) / math.sqrt(alpha)
    c_y = (m_prev * d_t - m_t * ratio * alpha * d_prev) * math.sqrt(abar_prev) / d_t
    c_eps = (1.0 - m_prev) * (d_cond / d_t) * math.sqrt(1.0 - abar_t) / math.sqrt(alpha)
    return c_x, c_y, c_eps, max(d_cond * d_prev / d_t, 0.0)


def mix_weights(alpha_bars: list[float]) -> list[float]:
    """m of each level of a walk (noisiest first, the clean end excluded): clipped, the first forced to 1."""
    return [1.0] + [mix_weight(ab) for ab in alpha_bars[1:]]


def sample_conditional(predict: Callable, y: torch.Tensor, alpha_bars: list[float], draw: Callable, *,
                       eta: float = 1.0, gamma: float = GAMMA, clip_x0: float | None = None,
                       x: torch.Tensor | None = None) -> torch.Tensor:
    """Clean data given the observation ``y [B, ...]``: CDiffuSE's reverse process over ``alpha_bars`` (noisiest
    first, the clean end 1.0 last), from ``x`` (default: the start ``a_T·y + sqrt(delta_T)·noise``). ``eta = 1``:
    their ancestral steps; ``eta = 0``: deterministic. The result is ``(1 - gamma)·x0 + gamma·y``."""
    levels, ms = alpha_bars[:-1], mix_weights(alpha_bars[:-1])
    if x is None:
        x = math.sqrt(levels[0]) * y + math.sqrt(forward_variance(levels[0], 1.0)) * draw(y)
    for k in range(len(levels)):
        abar_t = levels[k]
        eps = predict(x, torch.full((x.shape[0],), math.sqrt(abar_t), device=x.device, dtype=x.dtype)).eps.to(x.dtype)
        if k == len(levels) - 1:                                         # to clean data: DDPM's mean step
            x0 = (x - math.sqrt(1.0 - abar_t) * eps) / math.sqrt(abar_t)
            x = x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)
            break
        abar_prev, m_t, m_prev = levels[k + 1], ms[k], ms[k + 1]
        if m_prev >= 1.0:       # both levels hold no trace of x0 (m clipped to 1): x_t | y is N(a·y, delta) at each
            d_t, d_prev = forward_variance(abar_t, 1.0), forward_variance(abar_prev, 1.0)
            x = math.sqrt(abar_prev) * y + math.sqrt(d_prev / d_t) * (x - math.sqrt(abar_t) * y)
        elif eta > 0:
            c_x, c_y, c_eps, var = reverse_coefficients(abar_t, abar_prev, m_t, m_prev)
            x = c_x * x + c_y * y - c_eps * eps + math.sqrt(var) * eta * draw(x)
        else:
            x = _deterministic_step(x, y, eps, abar_t, abar_prev, m_t, m_prev, clip_x0)
    return (1.0 - gamma) * x + gamma * y


def _deterministic_step(x, y, eps, abar_t, abar_prev, m_t, m_prev, clip_x0):
    """DDIM's construction on the conditional marginals: x0^ from eps, the fresh-noise direction of x_t, both moved
    to the next level."""
    a_t, a_prev = math.sqrt(abar_t), math.sqrt(abar_prev)
    x0 = (x - math.sqrt(1.0 - abar_t) * eps) / a_t
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
    d_t, d_prev = forward_variance(abar_t, m_t), forward_variance(abar_prev, m_prev)
    direction = (x - (1 - m_t) * a_t * x0 - m_t * a_t * y) / math.sqrt(max(d_t, 1e-20))
    return (1 - m_prev) * a_prev * x0 + m_prev * a_prev * y + math.sqrt(d_prev) * direction


@torch.no_grad()
def enhance(denoise, y: torch.Tensor, schedule: NoiseSchedule, *, eta: float = 1.0, gamma: float = GAMMA,
            generator: torch.Generator | None = None, noise=None, clip_x0: float | None = None) -> torch.Tensor:
    """Clean data given ``y [B, ...]`` from ``denoise(x, level) -> eps~`` (conditioned on ``y`` by its caller) over
    ``schedule`` (CDiffuSE's 6 inference betas, or any): :func:`sample_conditional` with noise from ``generator``."""
    if not 0.0 <= eta <= 1.0 or not 0.0 <= gamma <= 1.0:
        raise UserInputError(f"eta and gamma must lie in [0, 1], got {eta}, {gamma}")
    _, draw = noise_source(None, noise, generator, y.device, y.dtype)
    alpha_bars = list(reversed(schedule.alphas_cumprod.tolist())) + [1.0]
    return sample_conditional(as_predictor(denoise), y, alpha_bars, draw, eta=eta, gamma=gamma, clip_x0=clip_x0)


# CDiffuSE's schedules (their params.py): 50 training betas, 6 inference ones ("fast" sampling)
TRAIN_BETAS = ("linear", 50, 1e-4, 0.035)
INFERENCE_BETAS = (1e-4, 1e-3, 0.01, 0.05, 0.2, 0.35)
