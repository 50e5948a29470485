"""Samplers: one short loop per sampler over an explicit schedule, all on one calling convention.

Every sampler function takes

* ``denoise(x [B, ...], level [B]) -> eps_hat [B, ...]``: the variance-preserving eps-model at the continuous
  noise level ``a = sqrt(alpha_bar)``, conditioning bound by the caller (a closure or a wrapper such as the
  vocoder's windowed one);
* ``x``: the start, prior noise at the schedule's noisiest level, variance-preserving form;
* ``schedule``: a :class:`NoiseSchedule` whose levels are the steps, noisiest first, followed by a final step to
  clean data. Every sampler accepts any schedule: respaced training schedules, Karras' rho spacing
  (``NoiseSchedule.karras``), searched ones;
* ``draw(like) -> noise``: the noise-source hook (EDM's ``randn_like``): prior-coloured noise shaped like
  ``like``, drawn from the caller's generators (so per-clip seeds stay independent of batch composition);
  ``whiten(r)``: the prior's ``L⁻¹`` (the Langevin samplers measure their step in whitened units);

and returns the sample ``x0``. Scalars are float64 Python floats; the state stays in the caller's dtype.
The EDM samplers integrate in the variance-exploding form ``x_ve = x / a`` with ``sigma = sqrt(1 - a²) / a``
(:func:`level_to_sigma`), where ``D(x_ve; sigma) = x_ve - sigma · eps_hat(a · x_ve, a)`` is the denoiser of
Karras et al. 2022 (eq. 7 with c_out = -sigma, c_in = a). Cost is counted in network evaluations,
:func:`nfe`: Heun's corrector and every Langevin corrector step cost one more.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, fields
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..config import param
from ..errors import UserInputError
from ._util import append_dims, randn
from .priors import WHITE, Prior
from .schedule import NoiseSchedule, level_to_sigma, sigma_to_level

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Draw = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Step:
    """What a sampler's ``callback`` sees once per step, in order (trajectory pictures, logging)."""

    i: int                   # 0 = the first (noisiest) step
    level: float             # the noise level a = sqrt(alpha_bar) of ``x``
    x: torch.Tensor          # the state at that level, variance-preserving form  [B, ...]
    denoised: torch.Tensor   # the sampler's estimate of x0 at this step            [B, ...]


Callback = Callable[[Step], None]


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
def _eps(out):
    """A denoiser's eps_hat: the tensor itself, or the first of ``(eps_hat, v)`` (a learned-variance network)."""
    return out[0] if isinstance(out, tuple) else out


def _full(x: torch.Tensor, value: float) -> torch.Tensor:
    return torch.full((x.shape[0],), value, device=x.device, dtype=x.dtype)                 # [B]


def _clip(x0: torch.Tensor, clip_x0: float | None) -> torch.Tensor:
    return x0 if clip_x0 is None else x0.clamp(-clip_x0, clip_x0)


def _denoised_ve(denoise: Denoiser, x_ve: torch.Tensor, sigma: float, clip_x0: float | None) -> torch.Tensor:
    """Karras et al. 2022's D(x; sigma) from the VP eps-model: x - sigma·eps_hat(x / sqrt(1 + sigma²))."""
    a = sigma_to_level(sigma)
    return _clip(x_ve - sigma * _eps(denoise(x_ve * a, _full(x_ve, a))), clip_x0)


def _sigmas(schedule: NoiseSchedule, final: float = 1.0) -> list[float]:
    """EDM sigmas, noisiest first, then the end: 0 (clean data), or the sigma of alpha_bar = ``final``."""
    end = 0.0 if final >= 1.0 else level_to_sigma(math.sqrt(final))
    return [level_to_sigma(math.sqrt(ab)) for ab in reversed(schedule.alphas_cumprod.tolist())] + [end]


def _pairs(schedule: NoiseSchedule, final: float = 1.0):
    """(k, abar_t, abar_prev, last) of every VP step, noisiest first; the last step goes to alpha_bar ``final``
    (1: clean data; ``last`` is True only for that step to clean data, which adds no noise)."""
    abar = schedule.alphas_cumprod.tolist()
    for k in range(len(abar)):
        i = len(abar) - 1 - k
        yield k, abar[i], (abar[i - 1] if i > 0 else final), (i == 0 and final >= 1.0)


def _project(project, x: torch.Tensor, level: float) -> torch.Tensor:
    """The caller's projection of the state at ``level`` (inpainting's known region), or x itself."""
    return x if project is None else project(x, level)


def _project_ve(project, x_ve: torch.Tensor, sigma: float) -> torch.Tensor:
    if project is None:
        return x_ve
    a = sigma_to_level(sigma)
    return project(x_ve * a, a) / a


def _steps(items, progress: bool):
    items = list(items)
    return tqdm(items, total=len(items), disable=None if progress else True, desc="sampling", leave=False)


def _norms(t: torch.Tensor) -> torch.Tensor:
    """Per-example L2 norms ``[B]`` (a clip's step never depends on the other clips of its batch)."""
    return t.reshape(t.shape[0], -1).norm(dim=1)


def _report(callback: Callback | None, i: int, level: float, x: torch.Tensor, x0: torch.Tensor) -> None:
    if callback is not None:
        callback(Step(i, level, x, x0))


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


def sample_ddim(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *, eta: float = 0.0,
                clip_x0: float | None = None, callback: Callback | None = None, progress: bool = False,
                project=None, final: float = 1.0) -> torch.Tensor:
    """DDIM (Song et al. 2021, eq. 12) with sigma_t(eta) of eq. 16; eta = 1 is DDPM's ancestral sampler
    (Ho et al. 2020, Alg. 2). First order in the step size for eta = 0 (it is Euler on the VE ODE)."""
    for k, abar_t, abar_prev, last in _steps(_pairs(schedule, final), progress):
        eps = _eps(denoise(x, _full(x, math.sqrt(abar_t))))
        noise = draw(x) if (eta > 0 and not last) else None
        x_prev, x0 = _ddim_update(x, eps.to(x.dtype), abar_t, abar_prev, eta, noise, clip_x0)
        _report(callback, k, math.sqrt(abar_t), x, x0)
        x = _project(project, x_prev, math.sqrt(abar_prev))
    return x


def sample_ddpm(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *,
                clip_x0: float | None = None, callback: Callback | None = None, progress: bool = False,
                project=None, final: float = 1.0) -> torch.Tensor:
    """Ancestral sampling, Ho et al. 2020, Alg. 2 (WaveGrad Alg. 2): the posterior mean plus sqrt(beta~)·z.

    A learned-variance network (``denoise -> (eps_hat, v)``) gets Improved DDPM's reverse step instead
    (Nichol & Dhariwal 2021, eq. 15): the posterior mean plus exp(½·log Sigma_v)·z, with log Sigma_v
    interpolated by v between log beta and log beta~ of each step pair of ``schedule``.
    """
    for k, abar_t, abar_prev, last in _steps(_pairs(schedule, final), progress):
        out = denoise(x, _full(x, math.sqrt(abar_t)))
        if not isinstance(out, tuple):
            x_prev, x0 = _ddim_update(x, out.to(x.dtype), abar_t, abar_prev, 1.0, None if last else draw(x),
                                      clip_x0)
        else:
            x_prev, x0 = _learned_variance_update(x, out, abar_t, abar_prev, None if last else draw, clip_x0)
        _report(callback, k, math.sqrt(abar_t), x, x0)
        x = _project(project, x_prev, math.sqrt(abar_prev))
    return x


def _learned_variance_update(x, out, abar_t: float, abar_prev: float, draw: Draw | None, clip_x0):
    """(x_prev, x0^): the DDPM posterior mean given x0^, plus the learned std times prior noise."""
    from .vlb import learned_log_variance
    eps, v = (t.to(x.dtype) for t in out)
    x0 = _clip((x - math.sqrt(1.0 - abar_t) * eps) / math.sqrt(abar_t), clip_x0)
    beta = 1.0 - abar_t / abar_prev
    mean = (math.sqrt(abar_prev) * beta / (1.0 - abar_t)) * x0 + \
        (math.sqrt(1.0 - beta) * (1.0 - abar_prev) / (1.0 - abar_t)) * x
    if draw is None:                                                      # the last step: no noise
        return mean, x0
    beta_tilde = (1.0 - abar_prev) / (1.0 - abar_t) * beta
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


def sample_euler(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *, s_churn: float = 0.0,
                 s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0, clip_x0: float | None = None,
                 callback: Callback | None = None, progress: bool = False, project=None,
                 final: float = 1.0) -> torch.Tensor:
    """Euler steps on the probability-flow ODE dx/dsigma = (x - D(x; sigma))/sigma (Karras et al. 2022, Alg. 2
    without its correction), with its stochastic churn: ``s_churn > 0`` adds noise before each step
    (gamma = min(s_churn/N, sqrt2 - 1) on sigmas in [s_tmin, s_tmax]). First order."""
    sigmas = _sigmas(schedule, final)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)                                      # VP -> VE
    gamma = _gamma(s_churn, len(sigmas) - 1)
    for i in _steps(range(len(sigmas) - 1), progress):
        x, sigma = _churn(x, sigmas[i], draw, gamma, s_tmin, s_tmax, s_noise)
        d = _denoised_ve(denoise, x, sigma, clip_x0)
        _report(callback, i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        x = _project_ve(project, x + (sigmas[i + 1] - sigma) * (x - d) / sigma, sigmas[i + 1])
    return x * sigma_to_level(sigmas[-1])                                        # VE -> VP (identity at sigma 0)


def sample_heun(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *, s_churn: float = 0.0,
                s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0, clip_x0: float | None = None,
                callback: Callback | None = None, progress: bool = False, project=None,
                final: float = 1.0) -> torch.Tensor:
    """Karras et al. 2022, Alg. 2: Heun's second-order method on the probability-flow ODE, with churn as
    :func:`sample_euler`. The last step, to sigma = 0, is an Euler step (the correction would divide by 0),
    so N steps cost 2N - 1 evaluations."""
    sigmas = _sigmas(schedule, final)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    gamma = _gamma(s_churn, len(sigmas) - 1)
    for i in _steps(range(len(sigmas) - 1), progress):
        x, sigma = _churn(x, sigmas[i], draw, gamma, s_tmin, s_tmax, s_noise)
        sigma_next = sigmas[i + 1]
        d = _denoised_ve(denoise, x, sigma, clip_x0)
        _report(callback, i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        slope = (x - d) / sigma
        x_next = x + (sigma_next - sigma) * slope
        if sigma_next > 0:                                                       # second-order correction
            slope_next = (x_next - _denoised_ve(denoise, x_next, sigma_next, clip_x0)) / sigma_next
            x_next = x + (sigma_next - sigma) * 0.5 * (slope + slope_next)
        x = _project_ve(project, x_next, sigma_next)
    return x * sigma_to_level(sigmas[-1])


# ---- DPM-Solver++ (Lu et al. 2022) --------------------------------------------------------------------------------
def sample_dpmpp_2m(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *,
                    clip_x0: float | None = None, callback: Callback | None = None,
                    progress: bool = False, project=None, final: float = 1.0) -> torch.Tensor:
    """DPM-Solver++(2M), Lu et al. 2022, Alg. 2 (multistep, second order, data prediction), in the VE form of
    k-diffusion's ``sample_dpmpp_2m``: with lambda = -log sigma, h = lambda_{i+1} - lambda_i, r = h_{i-1}/h,
    D' = (1 + 1/(2r))·D_i - 1/(2r)·D_{i-1} and x_{i+1} = (sigma_{i+1}/sigma_i)·x_i - expm1(-h)·D'. The first
    step is first order (DDIM); so is the last, to sigma = 0, which lands on D itself. Deterministic."""
    sigmas = _sigmas(schedule, final)
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    d_old, h_old = None, None
    for i in _steps(range(len(sigmas) - 1), progress):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        d = _denoised_ve(denoise, x, sigma, clip_x0)
        _report(callback, i, sigma_to_level(sigma), x * sigma_to_level(sigma), d)
        if sigma_next == 0:
            x = _project_ve(project, d, 0.0)
            continue
        h = math.log(sigma / sigma_next)
        d_mix = d if d_old is None else (1 + 1 / (2 * h_old / h)) * d - (1 / (2 * h_old / h)) * d_old
        x = _project_ve(project, (sigma_next / sigma) * x - math.expm1(-h) * d_mix, sigma_next)
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


def sample_pc(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *, whiten=WHITE.whiten,
              snr: float = 0.16, n_corrector: int = 1, clip_x0: float | None = None, callback: Callback | None = None,
              progress: bool = False, project=None, final: float = 1.0) -> torch.Tensor:
    """Predictor-corrector sampling (Song et al. 2021, Alg. 5, VP): at each level ``n_corrector`` Langevin
    corrector steps (snr rule, alpha = 1 - beta_i), then an ancestral DDPM predictor step; the last step adds
    no noise. N steps cost N·(1 + n_corrector) evaluations. snr = 0.16: the paper's CIFAR-10 setting."""
    for k, abar_t, abar_prev, last in _steps(_pairs(schedule, final), progress):
        level = math.sqrt(abar_t)
        for _ in range(n_corrector):
            eps = _eps(denoise(x, _full(x, level))).to(x.dtype)
            x = _project(project, _langevin(x, eps, math.sqrt(1.0 - abar_t), abar_t / abar_prev, snr, draw, whiten),
                         level)
        eps = _eps(denoise(x, _full(x, level))).to(x.dtype)
        x_prev, x0 = _ddim_update(x, eps, abar_t, abar_prev, 1.0, None if last else draw(x), clip_x0)
        _report(callback, k, level, x, x0)
        x = _project(project, x_prev, math.sqrt(abar_prev))
    return x


def sample_langevin(denoise: Denoiser, x: torch.Tensor, schedule: NoiseSchedule, draw: Draw, *,
                    whiten=WHITE.whiten, snr: float = 0.16, n_steps: int = 1, clip_x0: float | None = None,
                    callback: Callback | None = None, progress: bool = False, project=None,
                    final: float = 1.0) -> torch.Tensor:
    """Annealed Langevin dynamics (Song & Ermon 2019, Alg. 1) in the VE form: ``n_steps`` Langevin steps at
    each level, noisiest first, with the snr step rule of Song et al. 2021 (their 'ald' corrector, alpha = 1),
    then one denoising step D(x; sigma_min) (Jolicoeur-Martineau et al. 2021's final denoise).
    N levels cost N·n_steps + 1 evaluations; it needs many of them (Song & Ermon: 10 levels x 100 steps).
    Stopped at an intermediate ``final`` level it returns the last level's sample (no denoising step)."""
    sigmas = _sigmas(schedule)[:-1]
    x = x * math.sqrt(1.0 + sigmas[0] ** 2)
    for i in _steps(range(len(sigmas)), progress):
        sigma, a = sigmas[i], sigma_to_level(sigmas[i])
        for _ in range(n_steps):
            eps = _eps(denoise(x * a, _full(x, a))).to(x.dtype)
            x = _project_ve(project, _langevin(x, eps, sigma, 1.0, snr, draw, whiten), sigma)
        _report(callback, i, a, x * a, _clip(x - sigma * eps, clip_x0))
    if final < 1.0:
        return _project(project, x * math.sqrt(final), math.sqrt(final))
    return _project(project, _denoised_ve(denoise, x, sigmas[-1], clip_x0), 1.0)


# ---- dispatch -----------------------------------------------------------------------------------------------------
SAMPLERS: dict[str, Callable] = {"ddpm": sample_ddpm, "ddim": sample_ddim, "euler": sample_euler,
                                 "heun": sample_heun, "dpmpp-2m": sample_dpmpp_2m, "pc": sample_pc,
                                 "langevin": sample_langevin}
# Deterministic given the start (with their default options): what a schedule search can score with one seed.
DETERMINISTIC = ("ddim", "euler", "heun", "dpmpp-2m")


def sampler_options(name: str) -> dict[str, object]:
    """The options a sampler takes beyond the common ones, with their defaults (e.g. heun: s_churn, s_noise...)."""
    common = {"denoise", "x", "schedule", "draw", "whiten", "clip_x0", "callback", "progress", "project", "final"}
    params = inspect.signature(_sampler(name)).parameters.values()
    return {p.name: p.default for p in params if p.name not in common}


def _sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise UserInputError(f"unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def resolve_sampler(sampler: str | None, eta: float | None, options: dict) -> tuple[str, dict]:
    """(sampler name, its options) from ``sample``'s arguments, checked: ``sampler=None`` keeps the original
    API (eta = 1: DDPM, the default; any other eta: DDIM(eta)); ``eta`` belongs to DDIM alone."""
    if sampler is None:
        sampler = "ddpm" if eta is None or float(eta) == 1.0 else "ddim"
    known = sampler_options(sampler)
    options = dict(options)
    if eta is not None:
        if sampler == "ddim":
            options["eta"] = check_eta(eta)
        elif not (sampler == "ddpm" and float(eta) == 1.0):
            raise UserInputError(f"eta is DDIM's parameter; sampler {sampler!r} takes none (use sampler='ddim')")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UserInputError(f"sampler {sampler!r} takes no option(s) {unknown}; its options are {sorted(known) or 'none'}")
    return sampler, options


def nfe(sampler: str, steps: int, **options) -> int:
    """Network evaluations of ``steps`` steps of ``sampler`` (Heun: 2N - 1; pc: N·(1 + n_corrector);
    langevin: N·n_steps + 1; the others: N)."""
    opts = {**sampler_options(sampler), **options}
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise UserInputError(f"a sampler needs at least one step, got {steps!r}")
    if sampler == "heun":
        return 2 * steps - 1
    if sampler == "pc":
        return steps * (1 + int(opts["n_corrector"]))
    if sampler == "langevin":
        return steps * int(opts["n_steps"]) + 1
    return steps


def steps_for_nfe(sampler: str, budget: int, **options) -> int:
    """The most steps of ``sampler`` whose cost is at most ``budget`` evaluations; a one-line error when even
    one step costs more."""
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise UserInputError(f"the number of network evaluations must be an integer, got {budget!r}")
    per_step, fixed = nfe(sampler, 2, **options) - nfe(sampler, 1, **options), 0
    fixed = nfe(sampler, 1, **options) - per_step                    # every cost is linear: per_step·N + fixed
    if budget < per_step + fixed:
        raise UserInputError(f"sampler {sampler!r} needs at least {per_step + fixed} network evaluation(s) for one "
                             f"step, got an NFE of {budget}")
    return (budget - fixed) // per_step


@torch.no_grad()
def sample(denoise: Denoiser, shape: tuple[int, ...] | torch.Size, schedule: NoiseSchedule, *,
           sampler: str | None = None, eta: float | None = None, generator: torch.Generator | None = None,
           x_T: torch.Tensor | None = None, prior: Prior | None = None,
           noise: Callable[[torch.Size], torch.Tensor] | None = None, callback: Callback | None = None,
           progress: bool = False, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32,
           clip_x0: float | None = None, **options) -> torch.Tensor:
    """Draw ``x_0 [shape]`` with ``sampler`` over ``schedule`` from ``denoise(x [B, ...], noise_level [B]) -> eps``.

    ``sampler``: one of ``SAMPLERS`` (ddpm, ddim, euler, heun, dpmpp-2m, pc, langevin); ``None`` keeps the
    original API, ``eta=1`` (the default) DDPM and any other ``eta`` DDIM(eta). ``options`` are the sampler's
    own (:func:`sampler_options`: ``s_churn`` for euler/heun, ``snr``/``n_corrector`` for pc, ...).
    Noise: the start ``x_T`` (drawn unless given) and every step's noise are ``prior.color(noise(shape))``,
    ``noise`` defaulting to standard normal draws from ``generator``, so a seeded generator reproduces the
    sample exactly. ``clip_x0`` clamps every x0 estimate to [-clip_x0, clip_x0]; ``callback(Step)`` sees
    each step once, in order. Schedule arithmetic is float64; ``x`` stays in ``dtype``.
    """
    name, options = resolve_sampler(sampler, eta, options)
    prior = prior or WHITE
    if device is None:
        device = x_T.device if x_T is not None else (generator.device if generator is not None else "cpu")
    if noise is None:
        def noise(size):
            return randn(size, generator, device, dtype)

    def draw(like: torch.Tensor) -> torch.Tensor:
        return prior.color(noise(like.shape)).to(like.dtype)

    x = prior.color(noise(torch.Size(shape))).to(dtype) if x_T is None else x_T.to(device=device, dtype=dtype)
    if "whiten" in inspect.signature(SAMPLERS[name]).parameters:
        options["whiten"] = prior.whiten
    return SAMPLERS[name](denoise, x, schedule, draw, clip_x0=clip_x0, callback=callback, progress=progress,
                          **options)


# ---- what to run: a sampler, its options, and a schedule --------------------------------------------------------
SCHEDULE_KINDS = ("respaced", "karras")
KARRAS_RHO = 7.0          # Karras et al. 2022, eq. 5 and §3: rho = 7 throughout their experiments


@dataclass
class SamplerOptions:
    """The samplers' own options, as flags; each applies to the samplers that take it."""

    eta: float | None = param(None, "DDIM's eta: 0 = deterministic DDIM, 1 = DDPM; alone it selects DDIM (Song et "
                                    "al. 2021, eq. 16)")
    churn: float | None = param(None, "euler/heun: EDM's S_churn, noise added back before each step (0 = the ODE)",
                                paper="0-80 (Karras et al. 2022, Table 5)")
    snr: float | None = param(None, "pc/langevin: signal-to-noise ratio of the Langevin step", paper="0.16 "
                                    "(Song et al. 2021, CIFAR-10)")
    corrector_steps: int | None = param(None, "pc: Langevin corrector steps per level", paper="1")
    langevin_steps: int | None = param(None, "langevin: Langevin steps per level", paper="100 (Song & Ermon 2019)")

    _NAMES = {"churn": "s_churn", "snr": "snr", "corrector_steps": "n_corrector", "langevin_steps": "n_steps"}

    def for_sampler(self, sampler: str, strict: bool = True) -> dict:
        """The options ``sampler`` takes (eta excluded: it is ``sample``'s own argument). ``strict``: an option
        set for a sampler that does not take it is a one-line error, else it is left out."""
        known = sampler_options(sampler)
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "eta" or value is None:
                continue
            key = self._NAMES[f.name]
            if key in known:
                out[key] = value
            elif strict:
                raise UserInputError(f"--{f.name.replace('_', '-')} does not apply to sampler {sampler!r} "
                                     f"(its options: {', '.join(known) or 'none'})")
        return out


def plan_sampling(train: NoiseSchedule, schedule: str | NoiseSchedule | None = None, steps: int | None = None, *,
                  sampler: str | None = None, nfe: int | None = None, eta: float | None = None,
                  stored: dict[str, NoiseSchedule] | None = None, stored_samplers: dict[str, str] | None = None,
                  start_level: float | None = None, **options) -> tuple[NoiseSchedule, str, dict]:
    """(schedule, sampler, options) for sampling a network trained on ``train``, every argument checked.

    ``schedule``: a NoiseSchedule, a name in ``stored`` (whose ``stored_samplers`` entry is the default
    sampler), ``"respaced"`` (default: ``train`` respaced uniformly) or ``"karras"`` (rho = 7 spacing between
    ``train``'s sigma range); the latter two get ``steps`` steps, or as many as ``nfe`` evaluations of the
    sampler pay for, or ``len(train)``. A schedule noisier than ``train`` is refused: the network never saw it.
    ``start_level`` (a shallow start): only levels >= it, i.e. ``train`` cut there before respacing, Karras' sigma_max
    lowered to its sigma, a given or stored schedule's noisier steps dropped (:meth:`NoiseSchedule.truncate`).
    """
    stored, stored_samplers = stored or {}, stored_samplers or {}
    if isinstance(schedule, str) and schedule not in SCHEDULE_KINDS and schedule not in stored:
        raise UserInputError(f"no schedule named {schedule!r} (use {' or '.join(SCHEDULE_KINDS)}, or a stored one: "
                             f"{', '.join(sorted(stored)) or 'none stored'}; `wavegrad search-schedule` stores them)")
    if sampler is None and eta is None and isinstance(schedule, str):
        sampler = stored_samplers.get(schedule)
    name, options = resolve_sampler(sampler, eta, options)
    if steps is not None and nfe is not None:
        raise UserInputError("give the number of steps or of network evaluations (nfe), not both")
    if start_level is not None and not 0.0 < float(start_level) <= 1.0:
        raise UserInputError(f"the start level a0 must lie in (0, 1], got {start_level}")
    if isinstance(schedule, NoiseSchedule) or schedule in stored:
        sched = schedule if isinstance(schedule, NoiseSchedule) else stored[schedule]
        if steps is not None or nfe is not None:
            raise UserInputError(f"schedule {schedule if isinstance(schedule, str) else ''} has its own {len(sched)} "
                                 "steps: drop steps/nfe")
        sched = sched if start_level is None else sched.truncate(start_level)
    else:
        base = train if start_level is None else train.truncate(start_level)
        n = steps if steps is not None else (steps_for_nfe(name, nfe, **options) if nfe is not None else len(base))
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(base):
            where = "" if start_level is None else f" below the start level {start_level:g}"
            raise UserInputError(f"steps must be an integer in [1, {len(base)}]{where}, got {n!r}")
        sched = base.respace(n) if (schedule or "respaced") == "respaced" or len(base) < 2 else \
            NoiseSchedule.karras(n, float(base.sigmas[0]), float(base.sigmas[-1]), KARRAS_RHO)
    lo = float(train.noise_levels[-1])
    if float(sched.noise_levels[-1]) < lo * (1 - 1e-6):
        raise UserInputError(f"the schedule starts at noise level {float(sched.noise_levels[-1]):.3g} (sigma "
                             f"{float(sched.sigmas[-1]):.3g}), noisier than the network was trained on (level {lo:.3g}, "
                             f"sigma {float(train.sigmas[-1]):.3g}); use a schedule within the trained range")
    return sched, name, options
