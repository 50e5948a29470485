"""What to run: a sampler, its options and a schedule, decided once and checked once (:class:`SamplingPlan`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import UserInputError
from .samplers import SAMPLERS, check_eta, spec, steps_for_nfe
from .schedule import NoiseSchedule

SCHEDULE_KINDS = ("respaced", "karras")   # the schedules a plan builds from a network's training schedule
KARRAS_RHO = 7.0          # Karras et al. 2022, eq. 5 and §3: rho = 7 throughout their experiments


@dataclass(frozen=True, eq=False)
class SamplingPlan:
    """A sampler (a name of ``SAMPLERS``), its own options and the schedule it walks: everything :func:`sample`,
    :func:`inpaint`, the vocoder and image sampling need to know of "how to sample", built once (by
    :meth:`build` from a network's training schedule, or :meth:`of` from a schedule in hand) and checked once."""

    schedule: NoiseSchedule
    sampler: str = "ddpm"
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = spec(self.sampler).options
        unknown = sorted(set(self.options) - set(known))
        if unknown:
            raise UserInputError(f"sampler {self.sampler!r} takes no option(s) {unknown}; its options are "
                                 f"{sorted(known) or 'none'}")
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

    @classmethod
    def of(cls, schedule: NoiseSchedule, sampler: str | None = None, eta: float | None = None,
           **options) -> "SamplingPlan":
        """A plan over ``schedule``: ``sampler=None`` keeps the original API (eta = 1: DDPM, the default; any other
        eta: DDIM(eta)); ``eta`` belongs to DDIM alone."""
        if sampler is None:
            sampler = "ddpm" if eta is None or float(eta) == 1.0 else "ddim"
        spec(sampler)
        options = dict(options)
        if eta is not None:
            if sampler == "ddim":
                options["eta"] = check_eta(eta)
            elif not (sampler == "ddpm" and float(eta) == 1.0):
                raise UserInputError(f"eta is DDIM's parameter; sampler {sampler!r} takes none (use sampler='ddim')")
        return cls(schedule, sampler, options)

    @classmethod
    def build(cls, train: NoiseSchedule, schedule: str | NoiseSchedule | None = None, steps: int | None = None, *,
              sampler: str | None = None, nfe: int | None = None, eta: float | None = None,
              stored: Mapping[str, NoiseSchedule] | None = None, stored_samplers: Mapping[str, str] | None = None,
              start_level: float | None = None, **options) -> "SamplingPlan":
        """The plan for sampling a network trained on ``train``, every argument checked.

        ``schedule``: a NoiseSchedule, a name in ``stored`` (whose ``stored_samplers`` entry is the default
        sampler), ``"respaced"`` (``train`` respaced uniformly) or ``"karras"`` (rho = 7 spacing between ``train``'s
        sigma range), None: :meth:`default_kind`; the latter two get ``steps`` steps, or as many as ``nfe``
        evaluations of the sampler pay for, or ``len(train)``. A schedule noisier than ``train`` is refused: the network never saw
        it. ``start_level`` (a shallow start): only levels >= it, i.e. ``train`` cut there before respacing,
        Karras' sigma_max lowered to its sigma, a given or stored schedule's noisier steps dropped
        (:meth:`NoiseSchedule.truncate`).
        """
        stored, stored_samplers = stored or {}, stored_samplers or {}
        if isinstance(schedule, str) and schedule not in SCHEDULE_KINDS and schedule not in stored:
            raise UserInputError(f"no schedule named {schedule!r} (use {' or '.join(SCHEDULE_KINDS)}, or a stored "
                                 f"one: {', '.join(sorted(stored)) or 'none stored'}; `wavegrad search-schedule` "
                                 "stores them)")
        if sampler is None and eta is None and isinstance(schedule, str):
            sampler = stored_samplers.get(schedule)
        draft = cls.of(train, sampler, eta, **options)                    # the sampler and its options, checked
        if steps is not None and nfe is not None:
            raise UserInputError("give the number of steps or of network evaluations (nfe), not both")
        if start_level is not None and not 0.0 < float(start_level) <= 1.0:
            raise UserInputError(f"the start level a0 must lie in (0, 1], got {start_level}")
        if isinstance(schedule, NoiseSchedule) or schedule in stored:
            sched = schedule if isinstance(schedule, NoiseSchedule) else stored[schedule]
            if steps is not None or nfe is not None:
                raise UserInputError(f"schedule {schedule if isinstance(schedule, str) else ''} has its own "
                                     f"{len(sched)} steps: drop steps/nfe")
            sched = sched if start_level is None else sched.truncate(start_level)
        else:
            sched = _built(train, schedule or cls.default_kind(draft.sampler, steps, nfe), steps, nfe, start_level,
                           draft)
        lo = float(train.noise_levels[-1])
        if float(sched.noise_levels[-1]) < lo * (1 - 1e-6):
            raise UserInputError(f"the schedule starts at noise level {float(sched.noise_levels[-1]):.3g} (sigma "
                                 f"{float(sched.sigmas[-1]):.3g}), noisier than the network was trained on (level "
                                 f"{lo:.3g}, sigma {float(train.sigmas[-1]):.3g}); use a schedule within the trained "
                                 "range")
        return cls(sched, draft.sampler, draft.options)

    @staticmethod
    def default_kind(sampler: str | None, steps: int | None = None, nfe: int | None = None) -> str:
        """The schedule kind of a plan that names none: ``"karras"`` for a given number of steps or evaluations of
        an ODE sampler (Euler, Heun and DPM-Solver++ were designed on Karras' spacing; EDM Alg. 1-2), else
        ``"respaced"``."""
        ode = sampler is not None and spec(sampler).ode
        return "karras" if ode and (steps is not None or nfe is not None) else "respaced"

    # -- what it costs and how it starts ---------------------------------------------------------------------------
    @property
    def nfe(self) -> int:
        """Network evaluations of a sampling with this plan."""
        return spec(self.sampler).cost(len(self.schedule), **{**spec(self.sampler).options, **self.options})

    def alpha_bars(self, end: float = 1.0) -> list[float]:
        """The schedule's alpha_bars, noisiest first, then ``end`` (1: clean data): what a sampler walks."""
        return list(reversed(self.schedule.alphas_cumprod.tolist())) + [end]

    def start(self, predict, x, alpha_bars: list[float], draw, prior, clip_x0: float | None):
        """The sampler's generator over ``alpha_bars`` from ``x`` (:mod:`.sampling` runs it)."""
        record = SAMPLERS[self.sampler]
        extra = {"whiten": prior.whiten} if record.takes_whiten else {}
        return record.fn(predict, x, alpha_bars, draw, clip_x0=clip_x0, **extra, **self.options)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"SamplingPlan({self.sampler}{opts}, {len(self.schedule)} steps, NFE {self.nfe})"


def _built(train: NoiseSchedule, kind: str, steps, nfe, start_level, draft: SamplingPlan) -> NoiseSchedule:
    """``train`` respaced, or Karras-spaced in its sigma range, to ``steps`` steps (or what ``nfe`` pays for)."""
    base = train if start_level is None else train.truncate(start_level)
    n = steps if steps is not None else (steps_for_nfe(draft.sampler, nfe, **draft.options) if nfe is not None
                                         else len(base))
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= len(base):
        where = "" if start_level is None else f" below the start level {start_level:g}"
        raise UserInputError(f"steps must be an integer in [1, {len(base)}]{where}, got {n!r}")
    if kind == "respaced" or len(base) < 2:
        return base.respace(n)
    return NoiseSchedule.karras(n, float(base.sigmas[0]), float(base.sigmas[-1]), KARRAS_RHO)
