"""Grid search of short noise schedules (in the spirit of WaveGrad, Chen et al. 2020, §4 and App. B).

WaveGrad finds its 6-iteration schedule by an exhaustive grid over beta sequences, scored by how well
the vocoded audio matches the real one. Exhaustive grids cost 10^3-10^4 candidates; here a
coarse-to-fine search over a two-parameter family, then a coordinate refinement of each beta:

1. geometric betas  beta_i = beta_1 · (beta_N / beta_1)^((i-1)/(N-1))  on a grid of
   (log beta_1, log(1 - beta_N)): the last beta must come close to 1 for a short schedule to reach
   pure noise (3 steps reach sqrt(alpha_bar_N) <= 0.1 only with beta_N >~ 0.98), where a log grid of
   beta itself would have no resolution;
2. zoom: a finer grid around the best pair, ``refine_rounds`` times, halving the log spacing;
3. coordinate search: each beta_i multiplied by r^{±1} in turn, keeping improvements, with r shrinking.

The start is handled knowingly: sampling begins from N(0, I), which is the marginal of the noisiest
step only when its noise level sqrt(alpha_bar_N) is near 0. Candidates with sqrt(alpha_bar_N) above
``max_last_level`` are skipped, never scored (a published 6-step schedule has 0.96 there), and so are
candidates whose noisiest level is below ``min_last_level`` (the network's trained range ends there).

The search knows nothing of audio: ``score(schedule) -> float`` (lower is better) is the caller's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from ..errors import UserInputError
from .schedule import NoiseSchedule


def geometric_betas(n: int, beta_first: float, beta_last: float) -> torch.Tensor:
    """n betas growing geometrically from ``beta_first`` to ``beta_last`` (float64)."""
    if n == 1:
        return torch.tensor([beta_last], dtype=torch.float64)
    r = torch.arange(n, dtype=torch.float64) / (n - 1)
    return beta_first * (beta_last / beta_first) ** r


@dataclass
class Candidate:
    stage: str
    betas: list[float]
    last_level: float
    score: float | None  # None: skipped (start level too high), never scored


@dataclass
class SearchResult:
    best: NoiseSchedule
    best_score: float
    candidates: list[Candidate] = field(default_factory=list)

    @property
    def evaluations(self) -> int:
        return sum(c.score is not None for c in self.candidates)


class _Searcher:
    def __init__(self, score: Callable[[NoiseSchedule], float], max_last_level: float, min_last_level: float,
                 progress: bool):
        self.score_fn, self.max_last_level, self.min_last_level = score, max_last_level, min_last_level
        self.cache: dict[tuple[float, ...], float | None] = {}
        self.candidates: list[Candidate] = []
        self.best: tuple[float, torch.Tensor] | None = None
        self.bar = tqdm(desc="schedule search", unit="cand", disable=None if progress else True, leave=False)

    def evaluate(self, betas: torch.Tensor, stage: str) -> float | None:
        betas = betas.clamp(1e-8, 0.999)
        key = tuple(round(float(b), 12) for b in betas)
        if key in self.cache:
            return self.cache[key]
        sched = NoiseSchedule(betas)
        last = float(sched.noise_levels[-1])
        s = None
        if self.min_last_level <= last <= self.max_last_level:
            s = float(self.score_fn(sched))
            if not math.isfinite(s):
                s = math.inf
            if self.best is None or s < self.best[0]:
                self.best = (s, betas.clone())
            self.bar.update(1)
            self.bar.set_postfix(best=f"{self.best[0]:.4f}")
        self.cache[key] = s
        self.candidates.append(Candidate(stage, betas.tolist(), last, s))
        return s


def search_schedule(score: Callable[[NoiseSchedule], float], n_steps: int, *, grid: int = 8,
                    beta_first_range: tuple[float, float] = (1e-6, 1e-1),
                    beta_last_range: tuple[float, float] = (1e-2, 0.9999), refine_rounds: int = 2,
                    coord_rounds: int = 2, max_last_level: float = 0.1, min_last_level: float = 0.0,
                    progress: bool = False) -> SearchResult:
    """Coarse-to-fine search of an ``n_steps`` beta sequence minimising ``score``."""
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    s = _Searcher(score, max_last_level, min_last_level, progress)

    def family(u: float, v: float) -> torch.Tensor:  # u = ln beta_1, v = ln(1 - beta_N)
        # a zoom step can leave the valid region (beta_N <= 0 would make the geometric sequence NaN): clamp into it
        beta_last = 1.0 - math.exp(min(v, math.log1p(-1e-6)))
        return geometric_betas(n_steps, min(math.exp(u), beta_last), beta_last)

    us = torch.linspace(math.log(beta_first_range[0]), math.log(beta_first_range[1]), grid, dtype=torch.float64)
    vs = torch.linspace(math.log(1 - beta_last_range[1]), math.log(1 - beta_last_range[0]), grid,
                        dtype=torch.float64)
    for u in us.tolist():
        for v in vs.tolist():
            if math.exp(u) <= 1.0 - math.exp(v):
                s.evaluate(family(u, v), "grid")
    if s.best is None:
        s.bar.close()
        raise UserInputError(f"no {n_steps}-step candidate has sqrt(alpha_bar_N) in [{min_last_level:.3g}, "
                             f"{max_last_level}]; widen beta_last_range or raise max_last_level")
    du = float(us[1] - us[0]) if grid > 1 else 1.0
    dv = float(vs[1] - vs[0]) if grid > 1 else 1.0
    for r in range(refine_rounds):  # zoom: 5 x 5 around the best pair at half the spacing
        b = s.best[1]
        u0, v0 = math.log(float(b[0])), math.log(1.0 - float(b[-1]))
        du, dv = du / 2, dv / 2
        for i in range(-2, 3):
            for j in range(-2, 3):
                s.evaluate(family(u0 + i * du, v0 + j * dv), f"zoom{r + 1}")
    ratio = 2.0
    for r in range(coord_rounds):  # coordinate search on each beta of the best so far
        for i in range(n_steps):
            for f in (ratio, 1 / ratio):
                betas = s.best[1].clone()
                betas[i] *= f
                s.evaluate(betas, f"coord{r + 1}")
        ratio = math.sqrt(ratio)
    s.bar.close()
    return SearchResult(NoiseSchedule(s.best[1]), s.best[0], s.candidates)
