"""What the network predicts, and how its training levels are drawn and weighed (Karras et al. 2022, "EDM",
arXiv 2206.00364, §5 and Table 1).

EDM writes every model as a denoiser ``D(x_ve; sigma) = c_skip·x_ve + c_out·F(c_in·x_ve; c_noise)`` of the
variance-exploding state ``x_ve = x0 + sigma·n`` and trains ``F``; the choice of the c's is the parametrisation:

* ``eps`` (DDPM, WaveGrad: today's networks): ``c_skip = 1``, ``c_out = -sigma``, ``c_in = 1/sqrt(1 + sigma²)`` (= a,
  the VP input ``x_vp``), i.e. ``F`` is eps_hat;
* ``edm``: ``c_skip = sd²/(sigma² + sd²)``, ``c_out = sigma·sd/sqrt(sigma² + sd²)``, ``c_in = 1/sqrt(sigma² + sd²)``
  with ``sd`` the data's standard deviation: unit-variance inputs and targets at every level.

:class:`Preconditioned` turns a raw network ``F(x, level)`` into the core's eps-denoiser, ``eps = (x_ve - D)/sigma`` in
the VP state's terms, so every sampler, schedule and prior runs it unchanged (the network keeps its level input as
c_noise). Training noise levels (:func:`draw_levels`): WaveGrad's (a step index, then uniform within it), EDM's
log-normal ``ln sigma ~ N(p_mean, p_std²)``, or log-uniform sigma over the trained range; all clipped to the training
schedule's levels. :func:`loss_weights`: EDM's ``lambda(sigma) = (sigma² + sd²)/(sigma·sd)²`` on the denoiser's
error, which in eps terms (``||D - x0||² = sigma²·||eps_hat - eps||²``) is ``1 + sigma²/sd²``; with the edm
parametrisation it makes the loss unit-weighted in ``F``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from ..config import param
from ..errors import UserInputError
from ._util import append_dims, randn
from .objective import draw_noise_level
from .prediction import Prediction, prediction_of
from .schedule import NoiseSchedule

PARAMETRIZATIONS = ("eps", "edm")
LEVEL_DISTRIBUTIONS = ("wavegrad", "lognormal", "log-uniform")
WEIGHTINGS = ("none", "edm")


@dataclass
class ObjectiveConfig:
    """How a network is trained: its parametrisation, where its training noise levels come from, how they weigh."""

    parametrization: str = param("eps", "what the network predicts: eps (DDPM/WaveGrad), or edm (EDM's "
                                        "preconditioned denoiser, Karras et al. 2022, Table 1); sampling is the same",
                                 choices=PARAMETRIZATIONS, paper="eps (WaveGrad)")
    sigma_data: float = param(0.1, "edm: the data's standard deviation (measured: 0.08 for a CMU ARCTIC clip, 0.11 "
                                   "for the quick-start corpus)",
                              paper="0.5 (EDM, images in [-1, 1])")
    levels: str = param("wavegrad", "training noise levels: wavegrad (a step index, then uniform within it; Chen et "
                                    "al. 2020, Alg. 1), lognormal (EDM: ln sigma ~ N(p_mean, p_std²)), log-uniform "
                                    "(sigma log-uniform over [sigma_min, the schedule's largest])", choices=LEVEL_DISTRIBUTIONS,
                        paper="wavegrad (WaveGrad)")
    p_mean: float = param(-1.2, "lognormal: mean of ln sigma (lower: more low-noise levels)", paper="-1.2 (EDM)")
    p_std: float = param(1.2, "lognormal: standard deviation of ln sigma", paper="1.2 (EDM)")
    sigma_min: float = param(1e-3, "lognormal, log-uniform: the smallest sigma drawn (draws are clipped to [sigma_min, "
                                   "the training schedule's largest sigma])", paper="0.002 (EDM)")
    weighting: str = param("none", "loss weight per level: none, or edm (lambda(sigma) = (sigma²+sd²)/(sigma·sd)² on "
                                   "the denoiser's error)", choices=WEIGHTINGS, paper="none (WaveGrad)")

    def validate(self) -> None:
        for name, allowed in (("parametrization", PARAMETRIZATIONS), ("levels", LEVEL_DISTRIBUTIONS),
                              ("weighting", WEIGHTINGS)):
            if getattr(self, name) not in allowed:
                raise UserInputError(f"--{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not (self.sigma_data > 0 and self.p_std > 0 and self.sigma_min > 0):
            raise UserInputError(f"--sigma-data, --p-std and --sigma-min must be > 0, got {self.sigma_data}, "
                                 f"{self.p_std}, {self.sigma_min}")

    def network_parametrization(self) -> "Parametrization":
        """The part of this config that says what the trained network's output means (its checkpoint's entry)."""
        return Parametrization(self.parametrization, None if self.parametrization == "eps" else self.sigma_data)


@dataclass(frozen=True)
class Parametrization:
    """What a trained network's output means (stored in its checkpoint): ``eps``, or ``edm`` with its
    ``sigma_data``. :meth:`wrap` makes a raw network the core's eps-denoiser."""

    name: str = "eps"
    sigma_data: float | None = None

    def wrap(self, raw: Callable) -> Callable:
        return raw if self.name == "eps" else Preconditioned(raw, self.name, self.sigma_data)

    def to_dict(self) -> dict:
        return {"name": self.name} if self.name == "eps" else {"name": self.name, "sigma_data": self.sigma_data}

    @classmethod
    def from_dict(cls, d: dict | None) -> "Parametrization":
        """The entry of a checkpoint (none: one written before parametrisations were stored, i.e. eps)."""
        d = d or {}
        name = d.get("name", "eps")
        if name not in PARAMETRIZATIONS:
            raise UserInputError(f"unknown parametrization {name!r} (this wavegrad knows {', '.join(PARAMETRIZATIONS)})")
        return cls(name, None if name == "eps" else float(d["sigma_data"]))


def level_sigma(level: torch.Tensor) -> torch.Tensor:
    """EDM's sigma of continuous levels ``a`` (tensor form of :func:`level_to_sigma`)."""
    return (1.0 - level * level).clamp_min(0).sqrt() / level


def coefficients(sigma: torch.Tensor, parametrization: str, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """(c_skip, c_out, c_in) of a parametrisation at ``sigma`` (Karras et al. 2022, Table 1)."""
    if parametrization == "eps":
        return torch.ones_like(sigma), -sigma, 1.0 / (1.0 + sigma * sigma).sqrt()
    total = sigma * sigma + sigma_data ** 2
    return sigma_data ** 2 / total, sigma * sigma_data / total.sqrt(), 1.0 / total.sqrt()


class Preconditioned:
    """``raw(x_in, level) -> F`` (a network with its conditioning bound) as the core's eps-denoiser
    ``(x_vp, level) -> eps``: ``x_in = c_in·x_ve``, ``D = c_skip·x_ve + c_out·F``, ``eps = (x_ve - D)/sigma``. A
    learned-variance network keeps its ``v``."""

    def __init__(self, raw: Callable, parametrization: str = "edm", sigma_data: float = 0.1):
        self.raw, self.parametrization, self.sigma_data = raw, parametrization, sigma_data

    def __call__(self, x: torch.Tensor, level: torch.Tensor):
        a = append_dims(level.to(x.dtype), x.ndim)                                       # [B, 1, ...]
        c_x, k_x, k_f = vp_coefficients(a, self.parametrization, self.sigma_data)
        out = prediction_of(self.raw(c_x * x, level))
        eps = k_x * x + k_f * out.eps.to(x.dtype)
        return eps if out.v is None else Prediction(eps, out.v)


def vp_coefficients(a: torch.Tensor, parametrization: str, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """``(c, k_x, k_f)`` with network input ``c·x`` and ``eps = k_x·x + k_f·F`` in the VP variable ``x = a·x_ve``:
    Table 1's ``c_in·x_ve`` and ``(x_ve - c_skip·x_ve - c_out·F)/sigma`` with ``sigma = s/a``, ``s = sqrt(1 - a²)``,
    multiplied out so that nothing divides by ``s`` or ``a``: a level that rounds to 1 in float32 (``sigma = 0``)
    gives eps = -F instead of 0/0. edm: ``m = s² + a²·sd²``, ``c = m^-1/2``, ``k_x = s/m``, ``k_f = -a·sd/sqrt(m)``."""
    if parametrization == "eps":
        return torch.ones_like(a), torch.zeros_like(a), torch.ones_like(a)
    s2 = (1.0 - a * a).clamp_min(0)
    m = s2 + a * a * sigma_data ** 2
    return m.rsqrt(), s2.sqrt() / m, -a * sigma_data * m.rsqrt()


def draw_levels(schedule: NoiseSchedule, batch: int, cfg: ObjectiveConfig | None, *,
                generator: torch.Generator | None = None, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Training levels ``[batch]`` from ``cfg.levels``, inside the training schedule's range."""
    if cfg is None or cfg.levels == "wavegrad":
        return draw_noise_level(schedule, batch, generator=generator, device=device, dtype=dtype)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    lo, hi = cfg.sigma_min, float(schedule.sigmas[-1])
    u = torch.rand(batch, generator=generator, device=gen_device, dtype=torch.float64)
    if cfg.levels == "lognormal":       # inverse-CDF draw of N(p_mean, p_std²) for ln sigma, from the one uniform
        log_sigma = cfg.p_mean + cfg.p_std * math.sqrt(2.0) * torch.erfinv(2.0 * u.clamp(1e-12, 1 - 1e-12) - 1.0)
    else:
        log_sigma = math.log(lo) + u * (math.log(hi) - math.log(lo))
    sigma = log_sigma.exp().clamp(lo, hi)
    return (1.0 / (1.0 + sigma * sigma).sqrt()).to(device=device, dtype=dtype)


def loss_weights(level: torch.Tensor, cfg: ObjectiveConfig | None, kind: str = "l2") -> torch.Tensor | None:
    """Per-example weights ``[B]`` of the eps loss, or None (unweighted): EDM's ``lambda`` in eps terms,
    ``1 + sigma²/sd²`` for the L2 loss, its square root for L1 (either way the loss of the edm ``F`` has weight 1)."""
    if cfg is None or cfg.weighting == "none":
        return None
    w = 1.0 + level_sigma(level.double()).square() / cfg.sigma_data ** 2
    return (w if kind == "l2" else w.sqrt()).to(level.dtype)


def training_noise(schedule: NoiseSchedule, shape: tuple[int, ...], *, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32, objective=None
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One training draw for a batch of ``shape = [B, ...]``: the continuous level ``[B]`` and white ``z [B, ...]``,
    both from ``generator`` (level first), so a seeded generator fixes the whole draw. ``objective``: an
    :class:`ObjectiveConfig` whose ``levels`` distribution is drawn (default:
    WaveGrad's)."""
    level = draw_levels(schedule, shape[0], objective, generator=generator, device=device)  # [B]
    return level, randn(shape, generator, device, dtype)
