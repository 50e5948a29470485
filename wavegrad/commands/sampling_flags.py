"""The sampling flags of `wavegrad vocode` and `wavegrad sample`: sampler, steps or NFE, schedule, options; and
`vocode`'s mel-consistent sampling."""
from __future__ import annotations

import argparse

from ..audio.consistency import MODES, Consistency
from ..config import add_arguments, from_args
from ..diffusion import SAMPLERS, SCHEDULE_KINDS, SamplerOptions, check_eta
from ..errors import UserInputError


def add_sampling_args(p: argparse.ArgumentParser, default_steps: int, default_sampler: str) -> None:
    g = p.add_argument_group("sampling", "Which sampler, over which schedule, at what cost in network evaluations "
                                         "(NFE). Every sampler runs every schedule.")
    g.add_argument("--sampler", choices=tuple(SAMPLERS), default=None,
                   help=f"ddpm (Ho et al. 2020), ddim (Song et al. 2021), euler / heun (Karras et al. 2022), dpmpp-2m "
                        f"(DPM-Solver++, Lu et al. 2022), pc (predictor-corrector, Song et al. 2021), langevin "
                        f"(annealed Langevin, Song & Ermon 2019) (default: {default_sampler}, or the sampler a stored "
                        f"--schedule was searched for, or ddim when --eta is given)")
    g.add_argument("--steps", type=int, default=None,
                   help=f"sampling steps (default: {default_steps}, unless --nfe or a stored --schedule says)")
    g.add_argument("--nfe", type=int, default=None,
                   help="network-evaluation budget instead of --steps: as many steps as it pays for (heun: 2N-1, "
                        "pc: N(1 + corrector steps))")
    g.add_argument("--schedule", default=None, metavar="respaced|karras|NAME",
                   help="respaced: the training schedule respaced uniformly (default); karras: rho = 7 spacing of "
                        "the trained sigma range (Karras et al. 2022, eq. 5); NAME: a schedule stored in the "
                        "checkpoint by `wavegrad search-schedule`")
    add_arguments(p, SamplerOptions, title="sampler options")


def sampling_plan(args: argparse.Namespace, stored_samplers: dict[str, str], stored: set[str], default_steps: int,
                  default_sampler: str) -> dict:
    """The keyword arguments of a vocoder / image sampling call from the flags, checked with their names."""
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
                             "gla from a shallow start; older ones: none).")
    g.add_argument("--consistency", default=None, metavar="{" + ",".join(MODES) + "}[@A0]",
                   help="none: the network alone; gla: projected x0 estimates (GLA-Grad, Liu et al. 2024); gla++: "
                        "the Griffin-Lim reconstruction as the x0 of the first --gl-steps steps, then gla (GLA-Grad++, "
                        "Baoueb et al. 2025); @A0 adds a shallow start at level A0 (as --start-level)")
    add_arguments(p, Consistency, title="consistency options", only_given=True)


def consistency_from_args(args: argparse.Namespace, stored: Consistency) -> Consistency:
    """``--consistency`` and its option flags over ``stored`` (the checkpoint's default): a named mode starts from
    the options' defaults, flags amend either."""
    base = stored if args.consistency is None else Consistency.parse(args.consistency)
    return from_args(Consistency, args, base)
