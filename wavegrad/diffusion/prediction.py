"""What a denoiser returns, read in one place, and the DDPM posterior it implies.

A denoiser is any callable ``denoise(x [B, ...], level [B])`` returning eps_hat, or ``(eps_hat, v)`` for a
learned-variance network (Nichol & Dhariwal 2021: ``v`` interpolates the reverse variance, :mod:`.vlb`).
:func:`as_predictor` turns either into a callable returning a :class:`Prediction`, the one form every sampler and
bound reads.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch


class Prediction(NamedTuple):
    """A denoiser's output: ``eps`` (eps_hat, shaped like x) and, for a learned-variance network, ``v``."""

    eps: torch.Tensor
    v: torch.Tensor | None = None


def prediction_of(out) -> Prediction:
    """A network's or denoiser's output as a :class:`Prediction`: a tensor is eps_hat, a pair (eps_hat, v)."""
    if isinstance(out, Prediction):
        return out
    return Prediction(*out) if isinstance(out, tuple) else Prediction(out)


def as_predictor(denoise: Callable) -> Callable[[torch.Tensor, torch.Tensor], Prediction]:
    """``denoise`` as a callable that always returns a :class:`Prediction`."""
    def predict(x: torch.Tensor, level: torch.Tensor) -> Prediction:
        return prediction_of(denoise(x, level))
    return predict


def posterior_mean_coefficients(abar_t, abar_prev):
    """(beta, beta~, coefficient of x0, coefficient of x_t) of the forward posterior q(x_prev | x_t, x0) (Ho et al.
    2020, eqs. 6-7), for Python floats or tensors alike:

        beta = 1 - abar_t / abar_prev,   beta~ = (1 - abar_prev) / (1 - abar_t) · beta,
        mu~  = sqrt(abar_prev) · beta / (1 - abar_t) · x0 + sqrt(1 - beta) · (1 - abar_prev) / (1 - abar_t) · x_t.
    """
    sqrt = math.sqrt if isinstance(abar_t, float) else torch.sqrt
    beta = 1.0 - abar_t / abar_prev
    beta_tilde = (1.0 - abar_prev) / (1.0 - abar_t) * beta
    coef_x0 = sqrt(abar_prev) * beta / (1.0 - abar_t)
    coef_xt = sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar_t)
    return beta, beta_tilde, coef_x0, coef_xt
