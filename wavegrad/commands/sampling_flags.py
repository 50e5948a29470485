"""The sampling flags of the commands: sampler, steps or NFE, schedule, the samplers' options (`vocode`, `sample`,
`benchmark`, `search-schedule`), and `vocode`'s mel-consistent sampling. Every list and help text comes from the
samplers' records (:data:`wavegrad.diffusion.SAMPLERS`)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from ..audio.consistency import MODES, Consistency
from ..config import add_arguments, from_args, param
from ..diffusion import SAMPLERS, SCHEDULE_KINDS, check_eta, sampler_options
from ..errors import UserInputError


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

    # flag -> the sampler functions' keyword (eta is sample()'s own argument)
    _NAMES = {"churn": "s_churn", "snr": "snr", "corrector_steps": "n_corrector", "langevin_steps": "n_steps"}

    def for_sampler(self, sampler: str, strict: bool = True) -> dict:
        """The options ``sampler`` takes (eta excluded). ``strict``: an option set for a sampler that does not take
        it is a one-line error, else it is left out."""
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


def sampler_help(default: str) -> str:
    """The ``--sampler`` help: every sampler's record, one clause each."""
    return "; ".join(f"{s.name}: {s.cite}" for s in SAMPLERS.values()) + f" (default: {default})"


def _cost_text(record) -> str:
    """A record's cost as a formula of N ("2N-1"), from the record itself."""
    per = record.cost(2, **record.options) - record.cost(1, **record.options)
    fixed = record.cost(1, **record.options) - per
    return f"{'' if per == 1 else per}N" + ("" if fixed == 0 else f"{fixed:+d}")


def add_sampling_args(p: argparse.ArgumentParser, default_steps: int, default_sampler: str) -> None:
    g = p.add_argument_group("sampling", "Which sampler, over which schedule, at what cost in network evaluations "
                                         "(NFE). Every sampler runs every schedule.")
    g.add_argument("--sampler", choices=tuple(SAMPLERS), default=None,
                   help=sampler_help(f"{default_sampler}, or the sampler a stored --schedule was searched for, or "
                                     "ddim when --eta is given"))
    g.add_argument("--steps", type=int, default=None,
                   help=f"sampling steps (default: {default_steps}, unless --nfe or a stored --schedule says)")
    g.add_argument("--nfe", type=int, default=None,
                   help="network-evaluation budget instead of --steps: as many steps as it pays for (N steps cost "
                        + ", ".join(f"{s.name} {_cost_text(s)}" for s in SAMPLERS.values()) + ", at default options)")
    g.add_argument("--schedule", default=None, metavar="respaced|karras|NAME",
                   help="respaced: the training schedule respaced uniformly; karras: rho = 7 spacing of the "
                        "trained sigma range (Karras et al. 2022, eq. 5); NAME: a schedule stored in the checkpoint "
                        "by `wavegrad search-schedule`. Default: karras for the ODE samplers (euler, heun, "
                        "dpmpp-2m) and for vocoders trained with --parametrization edm, else respaced")
    add_arguments(p, SamplerOptions, title="sampler options")


def sampling_plan(args: argparse.Namespace, stored_samplers: dict[str, str], stored: set[str], default_steps: int,
                  default_sampler: str) -> dict:
    """The keyword arguments of a vocoder / image sampling plan from the flags, checked with their names."""
    for flag in ("steps", "nfe"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            raise UserInputError(f"--{flag} must be >= 1, got {value}")
    opts = from_args(SamplerOptions, args)
    if opts.eta is not None:
        check_eta(opts.eta, "--eta")
    sampler = args.sampler or stored_samplers.get(args.schedule or "") or ("ddim" if opts.eta is not None
                                                                           else default_sampler)
    if opts.eta is not None and sampler not in ("ddim", "ddpm"):
        raise UserInputError(f"--eta is DDIM's parameter; --sampler {sampler} takes none")
    steps = args.steps
    if steps is None and args.nfe is None and (args.schedule is None or args.schedule in SCHEDULE_KINDS):
        steps = default_steps
    return {"sampler": sampler, "eta": opts.eta if sampler == "ddim" else None, "schedule": args.schedule,
            "steps": steps, "nfe": args.nfe, **opts.for_sampler(sampler)}


def add_consistency_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mel-consistent sampling", "Project every x0 estimate of the network onto the waveforms "
                             "whose STFT magnitude the mel describes (GLA-Grad), start from a Griffin-Lim "
                             "reconstruction (gla++, --start-level): intelligible speech from under-trained models. "
                             "Without --consistency and its options, the checkpoint's default (new checkpoints: "
                             "gla from a shallow start, then a 16-iteration polish; older ones: gla@0.9 or none).")
    g.add_argument("--consistency", default=None, metavar="{" + ",".join(MODES) + "}[@A0][+glK]",
                   help="none: the network alone; gla: projected x0 estimates (GLA-Grad, Liu et al. 2024); gla++: "
                        "the Griffin-Lim reconstruction as the x0 of the first --gl-steps steps, then gla (GLA-Grad++, "
                        "Baoueb et al. 2025); @A0 adds a shallow start at level A0 (as --start-level); +glK polishes "
                        "the finished sample with K fast Griffin-Lim iterations (as --polish-iterations)")
    add_arguments(p, Consistency, title="consistency options", only_given=True)


def consistency_from_args(args: argparse.Namespace, stored: Consistency) -> Consistency:
    """``--consistency`` and its option flags over ``stored`` (the checkpoint's default): a named mode starts from
    the options' defaults, flags amend either."""
    base = stored if args.consistency is None else Consistency.parse(args.consistency)
    return from_args(Consistency, args, base)
