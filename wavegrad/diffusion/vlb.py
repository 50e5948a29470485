"""The variational bound of Ho et al. 2020 (eq. 5) and Improved DDPM's learned variances (Nichol & Dhariwal 2021).

For a step from noise level ``a_t = sqrt(abar_t)`` to ``a_prev = sqrt(abar_prev)`` the forward posterior is
``q(x_prev | x_t, x0) = N(mu~, beta~)`` with (Ho et al. 2020, eqs. 6-7)

    beta = 1 - abar_t / abar_prev,   beta~ = (1 - abar_prev) / (1 - abar_t) · beta,
    mu~  = sqrt(abar_prev) · beta / (1 - abar_t) · x0 + sqrt(1 - beta) · (1 - abar_prev) / (1 - abar_t) · x_t.

A learned-variance network outputs, besides eps_hat, a channel ``v`` per element that interpolates the reverse
variance between the two natural choices in the log domain (Nichol & Dhariwal 2021, eq. 15, with their code's
``frac = (v + 1) / 2``): ``log Sigma = frac·log(beta) + (1 - frac)·log(beta~)``, so ``v = 1`` gives beta and
``v = -1`` gives beta~, for the step pair of whatever schedule is sampled. Where ``beta~ = 0`` (the step to clean
data) its log is clipped to the next step's, as improved-diffusion's ``posterior_log_variance_clipped``.

The bound's terms, in bits per dimension (``mean`` over the non-batch dimensions, divided by ln 2):
``L_{t-1} = KL(q(x_prev | x_t, x0) || p(x_prev | x_t))`` and, for the last step, the decoder's negative
log-likelihood of ``x0`` under a Gaussian discretised to the data's bins (improved-diffusion's
``discretized_gaussian_log_likelihood``: 8-bit images in [-1, 1], bin width 2/255); the prior term
``KL(q(x_T | x0) || N(0, I))`` closes the sum.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from ._util import append_dims
from .prediction import as_predictor, posterior_mean_coefficients
from .priors import WHITE, Prior
from .schedule import NoiseSchedule

LN2 = math.log(2.0)
LAMBDA_VLB = 1e-3   # Nichol & Dhariwal 2021, §3.1: L_hybrid = L_simple + 0.001·L_vlb


def normal_kl(mean1: torch.Tensor, logvar1: torch.Tensor, mean2: torch.Tensor, logvar2: torch.Tensor) -> torch.Tensor:
    """KL(N(mean1, e^logvar1) || N(mean2, e^logvar2)) per element, in nats."""
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2) + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def approx_standard_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of the standard normal CDF that improved-diffusion uses (error < 2e-4)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_scale: torch.Tensor,
                                        bin_width: float = 2.0 / 255.0) -> torch.Tensor:
    """log P(x) per element, in nats, for data quantised to bins of ``bin_width`` in [-1, 1] under N(mean, e^(2 log_scale)):
    the Gaussian mass of x's bin, the outermost bins extended to ±inf (Ho et al. 2020, eq. 13)."""
    centred, inv_std = x - mean, torch.exp(-log_scale)
    cdf_plus = approx_standard_normal_cdf(inv_std * (centred + bin_width / 2))
    cdf_min = approx_standard_normal_cdf(inv_std * (centred - bin_width / 2))
    log_cdf_plus = cdf_plus.clamp(min=1e-12).log()
    log_one_minus_cdf_min = (1.0 - cdf_min).clamp(min=1e-12).log()
    log_mass = (cdf_plus - cdf_min).clamp(min=1e-12).log()
    edge = 1.0 - bin_width / 4         # between the outermost bins' centres (±1) and their neighbours' (0.998 for 8 bits)
    return torch.where(x < -edge, log_cdf_plus, torch.where(x > edge, log_one_minus_cdf_min, log_mass))


posterior = posterior_mean_coefficients   # (beta, beta~, coefficient of x0, coefficient of x_t), per example [B]


def learned_log_variance(v: torch.Tensor, beta: torch.Tensor, log_beta_tilde: torch.Tensor) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 15: frac·log(beta) + (1 - frac)·log(beta~), frac = (v + 1) / 2; v is not clamped."""
    frac = (v + 1.0) / 2.0
    return frac * append_dims(beta.log(), v.ndim) + (1.0 - frac) * append_dims(log_beta_tilde, v.ndim)


def clipped_log_beta_tilde(beta_tilde: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """log beta~, with the step to clean data (beta~ = 0) taking ``fallback`` (the next step's beta~)."""
    return torch.where(beta_tilde > 0, beta_tilde, fallback).log()


def vlb_term(x0: torch.Tensor, x_t: torch.Tensor, abar_t: torch.Tensor, abar_prev: torch.Tensor,
             eps_hat: torch.Tensor, v: torch.Tensor | None, fallback_beta_tilde: torch.Tensor, *,
             prior: Prior = WHITE, bin_width: float | None = 2.0 / 255.0) -> torch.Tensor:
    """L_{t-1} in bits per dimension, per example ``[B]``: the KL of the true posterior from the model's reverse
    step (mean from eps_hat, variance from ``v``, or beta~ when ``v`` is None), or, where ``abar_prev == 1``, the
    decoder NLL: discretised to ``bin_width`` (images), or with ``bin_width=None`` a Gaussian density (audio).

    With a prior, both Gaussians have covariance proportional to Sigma: the KL is taken in the whitened
    coordinates L⁻¹x, and so is the density decoder (up to the constant log-determinant of L); the discretised
    decoder needs the white prior.
    """
    beta, beta_tilde, c0, ct = posterior(abar_t, abar_prev)
    d = x0.ndim
    true_mean = append_dims(c0, d) * x0 + append_dims(ct, d) * x_t
    log_bt = clipped_log_beta_tilde(beta_tilde, fallback_beta_tilde)
    x0_hat = (x_t - append_dims((1 - abar_t).sqrt(), d) * eps_hat) / append_dims(abar_t.sqrt(), d)
    model_mean = append_dims(c0, d) * x0_hat + append_dims(ct, d) * x_t
    model_logvar = (learned_log_variance(v, beta, log_bt) if v is not None
                    else append_dims(log_bt, d).expand_as(x0))
    kl = normal_kl(prior.whiten(true_mean), append_dims(log_bt, d), prior.whiten(model_mean), model_logvar)
    if bin_width is not None:
        if prior is not WHITE:
            raise ValueError("the discretised decoder is defined for the white prior (8-bit images) only")
        nll = -discretized_gaussian_log_likelihood(x0, model_mean, 0.5 * model_logvar, bin_width)
    else:
        r = prior.whiten(x0 - model_mean)
        nll = 0.5 * (math.log(2 * math.pi) + model_logvar + r.square() * torch.exp(-model_logvar))
    last = append_dims(abar_prev >= 1.0, d)
    return torch.where(last, nll, kl).flatten(1).mean(1) / LN2                       # [B]


def prior_bpd(x0: torch.Tensor, abar_T: float) -> torch.Tensor:
    """KL(q(x_T | x0) || N(0, I)) in bits per dimension, per example ``[B]``."""
    mean = math.sqrt(abar_T) * x0
    logvar = torch.full_like(x0, math.log(1.0 - abar_T))
    return normal_kl(mean, logvar, torch.zeros_like(x0), torch.zeros_like(x0)).flatten(1).mean(1) / LN2


def training_step_pair(schedule: NoiseSchedule, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(abar_t, abar_prev, next beta~) for continuous training levels ``[B]``: the step from ``level`` to the next
    less noisy level of the training schedule (1 beyond its first), the pair a continuous level's VLB term uses."""
    levels = schedule.noise_levels.to(level.device)                                  # [T] decreasing
    ab = schedule.alphas_cumprod.to(level.device)
    idx = torch.searchsorted(-levels, -level.double(), right=False)                  # first index with l_i <= a
    prev = torch.where(idx > 0, ab[(idx - 1).clamp(min=0)], torch.ones_like(ab[0]))
    _, bt, _, _ = posterior(ab[1:2], ab[0:1])
    return level.double() ** 2, prev, bt.expand_as(prev)


def hybrid_loss(denoise: Callable, x0: torch.Tensor, level: torch.Tensor, z: torch.Tensor, schedule: NoiseSchedule,
                *, kind: str = "l2", prior: Prior = WHITE, lam: float = LAMBDA_VLB,
                bin_width: float | None = 2.0 / 255.0) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 16: L_simple + lambda·L_vlb for a learned-variance network ``denoise -> (eps, v)``.

    L_simple is the eps loss of ``kind`` (their MSE; WaveGrad's L1) on the whitened residual; L_vlb's one-sample
    estimate is T·L_t for the drawn step, its mean term computed from a detached eps_hat (the stop-gradient of
    §3.1: L_vlb trains the variance only).
    """
    from .objective import eps_loss, q_sample
    eps = prior.color(z)
    x_t = q_sample(x0, level, eps)
    eps_hat, v = denoise(x_t, level)
    residual = prior.whiten(eps_hat.float() - eps.float())
    simple = eps_loss(residual, torch.zeros_like(residual), kind)
    abar_t, abar_prev, fallback = training_step_pair(schedule, level)
    term = vlb_term(x0.double(), x_t.double(), abar_t, abar_prev, eps_hat.detach().double(), v.double(), fallback,
                    prior=prior, bin_width=bin_width)
    return simple + lam * len(schedule) * term.mean().float()


@torch.no_grad()
def nll_bpd(denoise: Callable, x0: torch.Tensor, schedule: NoiseSchedule, *, generator: torch.Generator | None = None,
            bin_width: float | None = 2.0 / 255.0, progress: bool = False) -> dict[str, torch.Tensor]:
    """The variational bound on -log p(x0) in bits per dimension (Ho et al. 2020, eq. 5; improved-diffusion's
    ``calc_bpd_loop``): one fresh x_t per step of ``schedule``, the model's term at each (``denoise`` returns eps_hat
    or ``(eps_hat, v)``), plus the prior term. Returns ``{"total": [B], "prior": [B], "terms": [T, B]}``."""
    from tqdm.auto import tqdm

    from ._util import randn
    from .objective import q_sample
    abar = schedule.alphas_cumprod.to(x0.device)                                     # float64 [T]
    predict = as_predictor(denoise)
    fallback = posterior(abar[1:2], abar[0:1])[1] if len(schedule) > 1 else (1 - abar[0:1])
    x = x0.double()
    terms = torch.zeros(len(schedule), x0.shape[0], dtype=torch.float64, device=x0.device)
    for i in tqdm(reversed(range(len(schedule))), total=len(schedule), disable=None if progress else True,
                  desc="bits/dim", leave=False):
        level = torch.full((x0.shape[0],), float(abar[i].sqrt()), device=x0.device, dtype=x0.dtype)
        x_t = q_sample(x0, level, randn(x0.shape, generator, x0.device, x0.dtype))
        eps_hat, v = predict(x_t, level)
        abar_prev = abar[i - 1] if i > 0 else torch.ones((), dtype=torch.float64, device=x0.device)
        terms[i] = vlb_term(x, x_t.double(), abar[i].expand(x0.shape[0]), abar_prev.expand(x0.shape[0]),
                            eps_hat.double(), None if v is None else v.double(), fallback.expand(x0.shape[0]),
                            bin_width=bin_width)
    prior = prior_bpd(x, float(abar[-1]))
    return {"total": terms.sum(0) + prior, "prior": prior, "terms": terms}
