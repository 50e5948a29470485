"""Samplers: one short loop per sampler over an explicit sequence of noise levels, and one record per sampler.

Every sampler is a generator function ``fn(predict, x, alpha_bars, draw, *, <its options>, clip_x0=None)`` over

* ``predict(x [B, ...], level [B]) -> Prediction``: the variance-preserving eps-model at the continuous noise level
  ``a = sqrt(alpha_bar)`` (:mod:`.prediction`; conditioning bound by the caller, a closure or a wrapper such as the
  vocoder's windowed one);
* ``x``: the start, at the first level, variance-preserving form;
* ``alpha_bars``: the levels it walks as alpha_bar, noisiest first, followed by where it ends: 1.0 for clean data, or
  an intermediate level (k-diffusion's convention: stopping early is a shorter sequence). Any schedule works:
  respaced training schedules, Karras' rho spacing (``NoiseSchedule.karras``), searched ones;
* ``draw(like) -> noise``: the noise-source hook (EDM's ``randn_like``): prior-coloured noise shaped like ``like``,
  from the caller's generators; ``whiten(r)``: the prior's ``L⁻¹`` (the Langevin samplers measure their step in it).

It ``yield``s a :class:`Move` for every state it makes -- each step's (with the step's :class:`Step` for callbacks)
and each corrector's -- and continues from the state it is sent back: :func:`run` sends it back unchanged for
sampling, inpainting replaces the known part in between (:mod:`.inpainting`), so no sampler knows of either.
Scalars are float64 Python floats; the state stays in the caller's dtype. The EDM samplers integrate in the
variance-exploding form ``x_ve = x / a`` with ``sigma = sqrt(1 - a²) / a`` (:func:`level_to_sigma`), where
``D(x_ve; sigma) = x_ve - sigma · eps_hat(a · x_ve, a)`` is the denoiser of Karras et al. 2022 (eq. 7 with
c_out = -sigma, c_in = a). Adding a sampler is one function here and one :class:`SamplerSpec` in :data:`SAMPLERS`.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field
from typing import Callable, Generator

import torch

from ..errors import UserInputError
from ._util import append_dims
from .prediction import Prediction, posterior_mean_coefficients
from .priors import WHITE
from .schedule import level_to_sigma, sigma_to_level

Predict = Callable[[torch.Tensor, torch.Tensor], Prediction]
Draw = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Step:
    """What a sampler's ``callback`` sees once per step, in order (trajectory pictures, logging)."""

    i: int                   # 0 = the first (noisiest) step
    level: float             # the noise level a = sqrt(alpha_bar) of ``x``
    x: torch.Tensor          # the state at that level, variance-preserving form  [B, ...]
    denoised: torch.Tensor   # the sampler's estimate of x0 at this step            [B, ...]


@dataclass
class Move:
    """A state a sampler made: ``x`` at noise level ``level`` (VP form; None: a report only), and the step it ends
    (None for a corrector move that stays at its level)."""

    step: Step | None
    x: torch.Tensor | None
    level: float


Callback = Callable[[Step], None]
Sampler = Generator[Move, "torch.Tensor | None", torch.Tensor]


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


# ---- shared pieces -----------------------------------------------------------------------------------------------
def _full(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((x.shape[0],), value, device=x.device, dtype=x.dtype)                 # [B]


def _clip(x0: torch.Tensor, clip_x0: float | None) -> torch.Tensor:
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def _denoised_ve(predict: Predict, x_ve: torch.Tensor, sigma: float, clip_x0: float | None) -> torch.Tensor:
    """Karras et al. 2022's D(x; sigma) from the VP eps-model: x - sigma·eps_hat(x / sqrt(1 + sigma²))."""
    a = sigma_to_level(sigma)
    return _clip(x_ve - sigma * predict(x_ve * a, _full(x_ve, a)).eps, clip_x0)


def _sigmas(alpha_bars: list[float]) -> list[float]:
    """EDM sigmas of the levels, the end included (alpha_bar 1: sigma 0)."""
    return [0.0 if ab >= 1.0 else level_to_sigma(math.sqrt(ab)) for ab in alpha_bars]


def _ve_move(step: Step | None, x_ve: torch.Tensor, sigma: float):
    """Yield a VE state as a VP move at ``sigma``; the state sent back, in VE form (kept as is when unchanged)."""
    a = sigma_to_level(sigma)
    vp = x_ve * a if sigma > 0 else x_ve
    back = yield Move(step, vp, a)
    return x_ve if back is vp else back / a


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norms ``[B]`` (a clip's step never depends on the other clips of its batch)."""
    return t.reshape(t.shape[0], -1).norm(dim=1)


# ---- DDPM / DDIM -------------------------------------------------------------------------------------------------
def ddim_sigma(abar_t: float, abar_prev: float, eta: float) -> float:
    """sigma_t(eta) of Song et al. 2021, eq. 16.

    eta = 1 gives sqrt(beta~_t) = sqrt((1 - abar_prev)/(1 - abar_t) · beta_t), the DDPM posterior
    std (Ho et al. 2020, eq. 7); eta = 0 gives the deterministic DDIM.
    """
    beta_t = 1.0 - abar_t / abar_prev
    return eta * math.sqrt((1.0 - abar_prev) / (1.0 - abar_t) * beta_t)


def _ddim_update(x_t, eps, abar_t, abar_prev, eta, noise, clip_x0):
    """(x_{t-1}, x0^) by Song et al. 2021, eq. 12 (see :func:`ddim_step`)."""
    sigma = ddim_sigma(abar_t, abar_prev, eta)
    x0 = (x_t - math.sqrt(1.0 - abar_t) * eps) / math.sqrt(abar_t)
    if clip_x0 is not None:
        x0 = x0.clamp(-clip_x0, clip_x0)
        eps = (x_t - math.sqrt(abar_t) * x0) / math.sqrt(1.0 - abar_t)
    x_prev = math.sqrt(abar_prev) * x0 + math.sqrt(max(1.0 - abar_prev - sigma**2, 0.0)) * eps
    if sigma > 0:
        x_prev = x_prev + sigma * noise
    return x_prev, x0


def ddim_step(x_t: torch.Tensor, eps: torch.Tensor, abar_t: float, abar_prev: float, eta: float,
              noise: torch.Tensor | None, clip_x0: float | None = None) -> torch.Tensor:
    """x_{t-1} from x_t and the predicted eps (Song et al. 2021, eq. 12).

    x0^ = (x_t - sqrt(1 - abar_t)·eps) / sqrt(abar_t)
    x_{t-1} = sqrt(abar_prev)·x0^ + sqrt(1 - abar_prev - sigma²)·eps + sigma·z
    ``clip_x0`` clamps x0^ to the data range (|x0| <= clip_x0): it stops the runaway amplitude
    of under-trained networks at few steps; eps is then re-derived from the clipped x0^ so the
    update stays on the same line (as improved-diffusion's ``clip_denoised``).
    """
    return _ddim_update(x_t, eps, abar_t, abar_prev, eta, noise, clip_x0)[0]


def sample_ddim(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *, eta: float = 0.0,
                clip_x0: float | None = None) -> Sampler:
    """DDIM (Song et al. 2021, eq. 12) with sigma_t(eta) of eq. 16; eta = 1 is DDPM's ancestral sampler
    (Ho et al. 2020, Alg. 2). First order in the step size for eta = 0 (it is Euler on the VE ODE)."""
    for k, (abar_t, abar_prev) in enumerate(zip(alpha_bars, alpha_bars[1:])):
        eps = predict(x, _full(x, math.sqrt(abar_t))).eps
        noise = draw(x) if (eta > 0 and abar_prev < 1.0) else None
        x_prev, x0 = _ddim_update(x, eps.to(x.dtype), abar_t, abar_prev, eta, noise, clip_x0)
        x = yield Move(Step(k, math.sqrt(abar_t), x, x0), x_prev, math.sqrt(abar_prev))
    return x


def sample_ddpm(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *,
                clip_x0: float | None = None) -> Sampler:
    """Ancestral sampling, Ho et al. 2020, Alg. 2 (WaveGrad Alg. 2): the posterior mean plus sqrt(beta~)·z.

    A learned-variance network (a prediction with ``v``) gets Improved DDPM's reverse step instead (Nichol &
    Dhariwal 2021, eq. 15): the posterior mean plus exp(½·log Sigma_v)·z, with log Sigma_v interpolated by v between
    log beta and log beta~ of each step pair.
    """
    for k, (abar_t, abar_prev) in enumerate(zip(alpha_bars, alpha_bars[1:])):
        out = predict(x, _full(x, math.sqrt(abar_t)))
        last = abar_prev >= 1.0
        if out.v is None:
            x_prev, x0 = _ddim_update(x, out.eps.to(x.dtype), abar_t, abar_prev, 1.0, None if last else draw(x),
                                      clip_x0)
        else:
            x_prev, x0 = _learned_variance_update(x, out, abar_t, abar_prev, None if last else draw, clip_x0)
        x = yield Move(Step(k, math.sqrt(abar_t), x, x0), x_prev, math.sqrt(abar_prev))
    return x


def _learned_variance_update(x, out: Prediction, abar_t: float, abar_prev: float, draw: Draw | None, clip_x0):
    """(x_prev, x0^): the DDPM posterior mean given x0^, plus the learned std times prior noise."""
    from .vlb import learned_log_variance
    eps, v = out.eps.to(x.dtype), out.v.to(x.dtype)
    x0 = _clip((x - math.sqrt(1.0 - abar_t) * eps) / math.sqrt(abar_t), clip_x0)
    beta, beta_tilde, c0, ct = posterior_mean_coefficients(abar_t, abar_prev)
    mean = c0 * x0 + ct * x
    if draw is None:                                                      # the last step: no noise
        return mean, x0
    logvar = learned_log_variance(v, torch.full((x.shape[0],), beta, dtype=x.dtype, device=x.device),
                                  torch.full((x.shape[0],), math.log(beta_tilde), dtype=x.dtype, device=x.device))
    return mean + torch.exp(0.5 * logvar) * draw(x), x0


# ---- EDM (Karras et al. 2022) -------------------------------------------------------------------------------------
def _churn(x: torch.Tensor, sigma: float, draw: Draw, gamma: float, s_tmin: float, s_tmax: float,
           s_noise: float) -> tuple[torch.Tensor, float]:
    """Alg. 2, lines 4-6: raise the noise from sigma to sigma_hat = (1 + gamma)·sigma by fresh noise."""
    if gamma <= 0 or not s_tmin <= sigma <= s_tmax:
        return x, sigma
    sigma_hat = sigma * (1.0 + gamma)
    return x + math.sqrt(sigma_hat**2 - sigma**2) * s_noise * draw(x), sigma_hat


def _gamma(s_churn: float, n: int) -> float:
    return min(s_churn / n, math.sqrt(2.0) - 1.0)


def sample_euler(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *, s_churn: float = 0.0,
                 s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
                 clip_x0: float | None = None) -> Sampler:
    """Euler steps on the probability-flow ODE dx/dsigma = (x - D(x; sigma))/sigma (Karras et al. 2022, Alg. 2
    without its correction), with its stochastic churn: ``s_churn > 0`` adds noise before each step
    (gamma = min(s_churn/N, sqrt2 - 1) on sigmas in [s_tmin, s_tmax]). First order."""
    sigmas = _sigmas(alpha_bars)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)                                      # VP -> VE
    gamma = _gamma(s_churn, len(sigmas) - 1)
    for i in range(len(sigmas) - 1):
        x, sigma = _churn(x, sigmas[i], draw, gamma, s_tmin, s_tmax, s_noise)
        d = _denoised_ve(predict, x, sigma, clip_x0)
        step = Step(i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        x = yield from _ve_move(step, x + (sigmas[i + 1] - sigma) * (x - d) / sigma, sigmas[i + 1])
    return x * sigma_to_level(sigmas[-1])                                        # VE -> VP (identity at sigma 0)


def sample_heun(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *, s_churn: float = 0.0,
                s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0,
                clip_x0: float | None = None) -> Sampler:
    """Karras et al. 2022, Alg. 2: Heun's second-order method on the probability-flow ODE, with churn as
    :func:`sample_euler`. The last step, to sigma = 0, is an Euler step (the correction would divide by 0),
    so N steps cost 2N - 1 evaluations."""
    sigmas = _sigmas(alpha_bars)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    gamma = _gamma(s_churn, len(sigmas) - 1)
    for i in range(len(sigmas) - 1):
        x, sigma = _churn(x, sigmas[i], draw, gamma, s_tmin, s_tmax, s_noise)
        sigma_next = sigmas[i + 1]
        d = _denoised_ve(predict, x, sigma, clip_x0)
        step = Step(i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        slope = (x - d) / sigma
        x_next = x + (sigma_next - sigma) * slope
        if sigma_next > 0:                                                       # Heun's correction
            slope_next = (x_next - _denoised_ve(predict, x_next, sigma_next, clip_x0)) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (slope + slope_next)
        x = yield from _ve_move(step, x_next, sigma_next)
    return x * sigma_to_level(sigmas[-1])


def heun_error_gain(alpha_bars: list[float]) -> float:
    """How much :func:`sample_heun` (no churn) can amplify its network's errors on the schedule ``alpha_bars``.

    A corrected step from sigma to sigma' > 0 ends at ``x' = x_euler - (sigma - sigma') / (2 sigma') · (d - d')``,
    ``d = D(x; sigma)``, ``d' = D(x_euler; sigma')``: an error e in ``d'`` moves ``x'`` by
    ``(sigma - sigma') / (2 sigma') · e``, where an Euler or DDIM step passes its one evaluation's error on with a
    factor below 1. Returns the largest such factor of the schedule (0 without a corrected step): 7.9e3 for two
    Karras steps from sigma 157 to 0.01, 13 for six."""
    sigmas = _sigmas(alpha_bars)
    return max(((s - t) / (2.0 * t) for s, t in zip(sigmas, sigmas[1:]) if t > 0), default=0.0)


def sample_dpmpp_2m(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *,
                    clip_x0: float | None = None) -> Sampler:
    """DPM-Solver++(2M), Lu et al. 2022, Alg. 2 (multistep, second order, data prediction), in the VE form of
    k-diffusion's ``sample_dpmpp_2m``: with lambda = -log sigma, h = lambda_{i+1} - lambda_i, r = h_{i-1}/h,
    D' = (1 + 1/(2r))·D_i - 1/(2r)·D_{i-1} and x_{i+1} = (sigma_{i+1}/sigma_i)·x_i - expm1(-h)·D'. The first
    step is first order (DDIM); so is the last, to sigma = 0, which lands on D itself. Deterministic."""
    sigmas = _sigmas(alpha_bars)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    d_old, h_old = None, None
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = _denoised_ve(predict, x, sigma, clip_x0)
        step = Step(i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        if sigma_next == 0:
            x = yield from _ve_move(step, d, 0.0)
            continue
        h = math.log(sigma / sigma_next)
        d_mix = d if d_old is None else (1 + 1 / (2 * h_old / h)) * d - (1 / (2 * h_old / h)) * d_old
        x = yield from _ve_move(step, (sigma_next / sigma) * x - math.expm1(-h) * d_mix, sigma_next)
        d_old, h_old = d, h
    return x * sigma_to_level(sigmas[-1])


# ---- Langevin (Song & Ermon 2019; Song et al. 2021) ---------------------------------------------------------------
def _langevin(x: torch.Tensor, eps: torch.Tensor, scale: float, alpha: float, snr: float, draw: Draw,
              whiten: Callable) -> torch.Tensor:
    """One Langevin step at a level whose noise std (in ``x``'s units) is ``scale``, preconditioned by the
    prior: score = -Sigma⁻¹·eps/scale, so x + step·Sigma·score + sqrt(2·step)·L z. The step follows the
    signal-to-noise rule of Song et al. 2021 (App. G, Alg. 5): step = 2·alpha·(snr·||z|| / ||whitened score||)²,
    per example."""
    noise = draw(x)
    score_norm = _norms(whiten(eps))                                                         # [B]
    ratio = _norms(whiten(noise)) * scale / score_norm.clamp_min(1e-30)                     # [B]
    step = torch.where(score_norm > 1e-12, 2.0 * alpha * (snr * ratio) ** 2, torch.zeros_like(ratio))  # no score: stay
    step = append_dims(step, x.ndim).to(x.dtype)                                            # [B, 1, ...]
    return x - step * eps / scale + (2.0 * step).sqrt() * noise


def sample_pc(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *, whiten=WHITE.whiten,
              snr: float = 0.16, n_corrector: int = 1, clip_x0: float | None = None) -> Sampler:
    """Predictor-corrector sampling (Song et al. 2021, Alg. 5, VP): at each level ``n_corrector`` Langevin
    corrector steps (snr rule, alpha = 1 - beta_i), then an ancestral DDPM predictor step; the last step adds
    no noise. N steps cost N·(1 + n_corrector) evaluations. snr = 0.16: the paper's CIFAR-10 setting."""
    for k, (abar_t, abar_prev) in enumerate(zip(alpha_bars, alpha_bars[1:])):
        level = math.sqrt(abar_t)
        for _ in range(n_corrector):
            eps = predict(x, _full(x, level)).eps.to(x.dtype)
            x = yield Move(None, _langevin(x, eps, math.sqrt(1.0 - abar_t), abar_t / abar_prev, snr, draw, whiten),
                           level)
        eps = predict(x, _full(x, level)).eps.to(x.dtype)
        x_prev, x0 = _ddim_update(x, eps, abar_t, abar_prev, 1.0, None if abar_prev >= 1.0 else draw(x), clip_x0)
        x = yield Move(Step(k, level, x, x0), x_prev, math.sqrt(abar_prev))
    return x


def sample_langevin(predict: Predict, x: torch.Tensor, alpha_bars: list[float], draw: Draw, *,
                    whiten=WHITE.whiten, snr: float = 0.16, n_steps: int = 1,
                    clip_x0: float | None = None) -> Sampler:
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) in the VE form: ``n_steps`` Langevin steps at
    each level, noisiest first, with the snr step rule of Song et al. 2021 (their 'ald' corrector, alpha = 1),
    then one denoising step D(x; sigma_min) (Jolicoeur-Martineau et al. 2021's final denoise).
    N levels cost N·n_steps + 1 evaluations; it needs many of them (Song & Ermon: 10 levels x 100 steps).
    Ending at an intermediate level it returns the last level's sample, scaled to that level (no denoising)."""
    sigmas, end = _sigmas(alpha_bars)[:-1], alpha_bars[-1]
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    for i, sigma in enumerate(sigmas):
        a = sigma_to_level(sigma)
        for _ in range(n_steps):
            eps = predict(x * a, _full(x, a)).eps.to(x.dtype)
            x = yield from _ve_move(None, _langevin(x, eps, sigma, 1.0, snr, draw, whiten), sigma)
        yield Move(Step(i, a, x * a, _clip(x - sigma * eps, clip_x0)), None, a)
    final = x * math.sqrt(end) if end < 1.0 else _denoised_ve(predict, x, sigmas[-1], clip_x0)
    x = yield Move(None, final, math.sqrt(end) if end < 1.0 else 1.0)
    return x


# ---- the records ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SamplerSpec:
    """Everything the package knows of a sampler, in one place: its loop, its cost in network evaluations, and
    what it is (callers derive every list, check and help text from these)."""

    name: str
    fn: Callable[..., Sampler]
    cost: Callable[..., int]            # network evaluations of N steps: cost(N, **options)
    deterministic: bool                 # given its start, with its default options
    multistep: bool                     # reuses earlier steps' estimates (cannot step segment by segment)
    ode: bool                           # integrates the probability-flow ODE (benchmarks space it by Karras)
    cite: str                           # what it is and where it comes from, for help texts
    options: dict = field(default_factory=dict)   # its own options and their defaults (from fn's signature)

    def __post_init__(self) -> None:
        common = {"predict", "x", "alpha_bars", "draw", "whiten", "clip_x0"}
        params = inspect.signature(self.fn).parameters.values()
        object.__setattr__(self, "options", {p.name: p.default for p in params if p.name not in common})

    @property
    def takes_whiten(self) -> bool:
        return "whiten" in inspect.signature(self.fn).parameters


SAMPLERS: dict[str, SamplerSpec] = {s.name: s for s in (
    SamplerSpec("ddpm", sample_ddpm, lambda n, **o: n, deterministic=False, multistep=False, ode=False,
                cite="ancestral sampling, posterior variance beta~ (Ho et al. 2020, Alg. 2)"),
    SamplerSpec("ddim", sample_ddim, lambda n, **o: n, deterministic=True, multistep=False, ode=False,
                cite="DDIM, eta in [0, 1] (Song et al. 2021, eqs. 12, 16); eta = 0 is Euler on the VE ODE"),
    SamplerSpec("euler", sample_euler, lambda n, **o: n, deterministic=True, multistep=False, ode=True,
                cite="Euler on the probability-flow ODE, optional churn (Karras et al. 2022, Alg. 2)"),
    SamplerSpec("heun", sample_heun, lambda n, **o: 2 * n - 1, deterministic=True, multistep=False, ode=True,
                cite="Heun's 2nd order (Karras et al. 2022, Alg. 2); the last step, to sigma = 0, is Euler"),
    SamplerSpec("dpmpp-2m", sample_dpmpp_2m, lambda n, **o: n, deterministic=True, multistep=True, ode=True,
                cite="DPM-Solver++(2M), multistep 2nd order (Lu et al. 2022, Alg. 2)"),
    SamplerSpec("pc", sample_pc, lambda n, n_corrector=1, **o: n * (1 + int(n_corrector)), deterministic=False,
                multistep=False, ode=False,
                cite="predictor-corrector: Langevin corrector + ancestral step (Song et al. 2021, Alg. 5)"),
    SamplerSpec("langevin", sample_langevin, lambda n, n_steps=1, **o: n * int(n_steps) + 1, deterministic=False,
                multistep=False, ode=False,
                cite="annealed Langevin dynamics (Song & Ermon 2019), n_steps per level, then one denoising step"),
)}


def spec(name: str) -> SamplerSpec:
    """The record of sampler ``name``, or a one-line error listing the samplers."""
    if name not in SAMPLERS:
        raise UserInputError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def sampler_options(name: str) -> dict[str, object]:
    """The options a sampler takes beyond the common ones, with their defaults (e.g. heun: s_churn, s_noise...)."""
    return dict(spec(name).options)


def nfe(sampler: str, steps: int, **options) -> int:
    """Network evaluations of ``steps`` steps of ``sampler`` (its record's cost: Heun 2N - 1, pc N·(1 +
    n_corrector), langevin N·n_steps + 1, the others N)."""
    record = spec(sampler)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserInputError(f"a sampler needs at least one step, got {steps!r}")
    return record.cost(steps, **{**record.options, **options})


def steps_for_nfe(sampler: str, budget: int, **options) -> int:
    """The most steps of ``sampler`` whose cost is at most ``budget`` evaluations; a one-line error when even
    one step costs more."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise UserInputError(f"the number of network evaluations must be an integer, got {budget!r}")
    per_step = nfe(sampler, 2, **options) - nfe(sampler, 1, **options)
    fixed = nfe(sampler, 1, **options) - per_step                    # every cost is linear: per_step·N + fixed
    if budget < per_step + fixed:
        raise UserInputError(f"sampler {sampler!r} needs at least {per_step + fixed} network evaluation(s) for one "
                             f"step, got an NFE of {budget}")
    return (budget - fixed) // per_step
