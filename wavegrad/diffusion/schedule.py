"""Noise schedules: a float64 beta sequence and what follows from it.

Notation (Ho et al. 2020, §2): ``alpha_t = 1 - beta_t``, ``alpha_bar_t = prod_{s<=t} alpha_s``.
WaveGrad (Chen et al. 2020, §3) conditions the network on the continuous noise level
``sqrt(alpha_bar)``; we call it ``noise_level`` ``a`` (1 = clean, 0 = pure noise).
Index 0 of every tensor here is the least noisy step (the paper's t = 1).

The variance-preserving state ``x = a·x0 + sqrt(1 - a²)·eps`` and EDM's variance-exploding one
``x_ve = x / a = x0 + sigma·eps`` (Karras et al. 2022, §2 and App. C.1; Song et al. 2021, eq. 30)
describe the same process: ``sigma = sqrt(1 - a²) / a`` and ``a = 1 / sqrt(1 + sigma²)``. Those two
conversions are :func:`level_to_sigma` / :func:`sigma_to_level`, the only place they are written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from ..config import param
from ..errors import UserInputError


def level_to_sigma(level: float) -> float:
    """EDM's sigma of a noise level a = sqrt(alpha_bar): sigma = sqrt(1 - a²) / a (float64 arithmetic)."""
    return math.sqrt(max(1.0 - level * level, 0.0)) / level


def sigma_to_level(sigma: float) -> float:
    """The noise level a = 1 / sqrt(1 + sigma²) of an EDM sigma (a = sqrt(alpha_bar))."""
    return 1.0 / math.sqrt(1.0 + sigma * sigma)


def _validate_betas(betas: torch.Tensor) -> torch.Tensor:
    if betas.ndim != 1:
        raise ValueError(f"betas must be 1-D, got shape {tuple(betas.shape)}")
    if betas.numel() == 0:
        raise ValueError("betas is empty: a schedule needs at least one step")
    if not torch.isfinite(betas).all():
        raise ValueError("betas contains NaN or inf")
    bad = ((betas <= 0) | (betas >= 1)).nonzero().flatten()
    if bad.numel():
        i = int(bad[0])
        raise ValueError(f"every beta must lie in (0, 1); beta[{i}] = {float(betas[i])!r}")
    return betas


class NoiseSchedule:
    """A diffusion schedule defined by its betas (float64, 1-D, each in (0, 1))."""

    def __init__(self, betas: torch.Tensor | Sequence[float]):
        betas = torch.as_tensor(betas, dtype=torch.float64).detach().clone().cpu()
        self.betas = _validate_betas(betas)
        self.alphas_cumprod = torch.cumprod(1.0 - self.betas, dim=0)
        self.noise_levels = self.alphas_cumprod.sqrt()

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def from_betas(cls, betas: torch.Tensor | Sequence[float]) -> "NoiseSchedule":
        return cls(betas)

    @classmethod
    def linear(cls, n: int, start: float = 1e-4, end: float = 0.02) -> "NoiseSchedule":
        """Betas linear in t (Ho et al. 2020, §4: 1e-4 … 0.02 over 1000 steps)."""
        _check_n(n)
        return cls(torch.linspace(start, end, n, dtype=torch.float64))

    @classmethod
    def cosine(cls, n: int, s: float = 0.008, max_beta: float = 0.999) -> "NoiseSchedule":
        """Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = f(t)/f(0), f(t) = cos²((t/T + s)/(1 + s)·π/2).

        betas = 1 - alpha_bar_t / alpha_bar_{t-1}, clipped at ``max_beta`` (0.999) to avoid the
        singularity at t = T.
        """
        _check_n(n)
        t = torch.arange(n + 1, dtype=torch.float64) / n
        f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
        betas = 1.0 - f[1:] / f[:-1]
        return cls(betas.clamp(max=max_beta))

    @classmethod
    def from_alphas_cumprod(cls, alphas_cumprod: torch.Tensor | Sequence[float]) -> "NoiseSchedule":
        """Betas re-derived from a decreasing alpha_bar sequence: beta_i = 1 - abar_i / abar_{i-1}."""
        abar = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if abar.ndim != 1 or abar.numel() == 0:
            raise ValueError(f"alphas_cumprod must be a non-empty 1-D sequence, got shape {tuple(abar.shape)}")
        prev = torch.cat([abar.new_ones(1), abar[:-1]])
        return cls(1.0 - abar / prev)

    @classmethod
    def from_sigmas(cls, sigmas: torch.Tensor | Sequence[float]) -> "NoiseSchedule":
        """The schedule whose EDM sigmas are ``sigmas`` (strictly increasing, > 0): alpha_bar = 1 / (1 + sigma²)."""
        sig = torch.as_tensor(sigmas, dtype=torch.float64)
        if sig.ndim != 1 or sig.numel() == 0 or not bool((sig > 0).all()) or bool((sig.diff() <= 0).any()):
            raise ValueError("sigmas must be a non-empty, strictly increasing 1-D sequence of positive numbers")
        return cls.from_alphas_cumprod(1.0 / (1.0 + sig * sig))

    @classmethod
    def karras(cls, n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> "NoiseSchedule":
        """Karras et al. 2022, eq. 5: sigma_i = (sigma_max^(1/rho) + i/(n-1)·(sigma_min^(1/rho) - sigma_max^(1/rho)))^rho,
        i = 0..n-1 (noisiest first), as a NoiseSchedule (index 0 = sigma_min). rho = 7 (EDM) puts most steps at
        low noise; rho = 1 is uniform in sigma. The sampler adds the final step to sigma = 0 itself."""
        _check_n(n)
        if not (0 < sigma_min < sigma_max) or not math.isfinite(sigma_max) or not rho > 0:
            raise ValueError(f"need 0 < sigma_min < sigma_max < inf and rho > 0, got {sigma_min}, {sigma_max}, {rho}")
        if n == 1:
            return cls.from_sigmas([sigma_max])
        ramp = torch.linspace(1, 0, n, dtype=torch.float64)                       # index 0 = sigma_min
        lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
        return cls.from_sigmas((hi + ramp * (lo - hi)) ** rho)

    @property
    def sigmas(self) -> torch.Tensor:
        """EDM's sigma of every step, float64: sqrt((1 - alpha_bar) / alpha_bar)."""
        return ((1.0 - self.alphas_cumprod) / self.alphas_cumprod).sqrt()

    # -- derived schedules -------------------------------------------------------------------------
    def respace(self, n: int) -> "NoiseSchedule":
        """A uniformly spaced n-step sub-sequence of alpha_bar that keeps the last (noisiest) step.

        Indices ``floor(i·T/n) - 1`` for i = 1..n (n = T gives the schedule back). Betas are
        re-derived as ``1 - abar_i / abar_{i-1}`` so that the sub-schedule has exactly the chosen
        alpha_bars (Song et al. 2021, §4.2; Nichol & Dhariwal 2021, §4).
        """
        return self.subset(respaced_indices(len(self), n))

    def subset(self, indices: Sequence[int] | torch.Tensor) -> "NoiseSchedule":
        """The schedule whose alpha_bars are ``alphas_cumprod[indices]`` (indices strictly increasing)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if idx.ndim != 1 or idx.numel() == 0 or (idx.numel() > 1 and (idx.diff() <= 0).any()):
            raise ValueError("indices must be a non-empty, strictly increasing 1-D sequence")
        if idx[0] < 0 or idx[-1] >= len(self):
            raise ValueError(f"indices must lie in [0, {len(self) - 1}]")
        return NoiseSchedule.from_alphas_cumprod(self.alphas_cumprod[idx])

    def truncate(self, level: float) -> "NoiseSchedule":
        """The steps whose noise level sqrt(alpha_bar) is at least ``level`` (always the least noisy one): the
        schedule of a shallow start at ``level`` (SDEdit, Meng et al. 2022), which skips the noisier steps."""
        keep = max(int((self.noise_levels >= level).sum()), 1)
        return self if keep == len(self) else NoiseSchedule.from_alphas_cumprod(self.alphas_cumprod[:keep])

    # -- misc ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self.betas.numel()

    def __repr__(self) -> str:
        return (f"NoiseSchedule(n={len(self)}, beta=[{float(self.betas[0]):.3g} … {float(self.betas[-1]):.3g}], "
                f"noise_level=[{float(self.noise_levels[0]):.4g} … {float(self.noise_levels[-1]):.4g}])")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoiseSchedule) and torch.equal(self.betas, other.betas)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python floats (exact for float64): loads under ``torch.load(weights_only=True)``."""
        return {"betas": self.betas.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NoiseSchedule":
        if not isinstance(d, dict) or "betas" not in d:
            raise ValueError("a schedule dict needs a 'betas' entry")
        return cls(d["betas"])


def respaced_indices(T: int, n: int) -> torch.Tensor:
    """Indices floor(i·T/n) - 1, i = 1..n: n uniformly spaced steps of T ending at T - 1."""
    _check_n(n)
    if n > T:
        raise ValueError(f"cannot respace a {T}-step schedule to {n} steps (more than it has)")
    i = torch.arange(1, n + 1, dtype=torch.long)
    return (i * T) // n - 1


def _check_n(n: int) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"the number of steps must be a positive integer, got {n!r}")


SCHEDULE_KINDS = ("linear", "cosine")


@dataclass
class ScheduleConfig:
    """The training noise schedule (the levels a network is trained on; sampling may use any other)."""

    kind: str = param("linear", "beta schedule: linear betas (Ho et al. 2020) or cosine alpha_bar "
                      "(Nichol & Dhariwal 2021, eq. 17)", choices=SCHEDULE_KINDS, paper="linear")
    n: int = param(1000, "number of training steps T", paper="1000 (Ho et al. 2020; WaveGrad)")
    beta_start: float = param(1e-4, "first beta of the linear schedule", paper="1e-4")
    beta_end: float = param(0.02, "last beta of the linear schedule; 1e-4 ... 0.02 over 1000 steps ends at "
                            "sqrt(alpha_bar_T) = 0.0064, so sampling's N(0, I) start is faithful", paper="0.02")

    def build(self) -> NoiseSchedule:
        if self.kind not in SCHEDULE_KINDS:
            raise UserInputError(f"schedule kind must be one of {', '.join(SCHEDULE_KINDS)}, got {self.kind!r}")
        try:
            if self.kind == "linear":
                return NoiseSchedule.linear(self.n, self.beta_start, self.beta_end)
            return NoiseSchedule.cosine(self.n)
        except ValueError as e:
            raise UserInputError(f"bad schedule config {self}: {e}") from None
