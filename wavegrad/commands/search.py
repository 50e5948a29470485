"""`wavegrad search-schedule`: find a short noise schedule for a trained checkpoint and store it."""
from __future__ import annotations

import argparse
import csv
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from ..audio.consistency import Consistency
from ..audio.metrics import log_mel_l1
from ..checkpoint import find_checkpoint
from ..config import HelpFormatter, add_arguments, from_args, param
from ..diffusion import SAMPLERS, nfe
from ..diffusion.search import SearchResult, search_schedule
from ..errors import UserInputError
from ..utils import atomic_path
from ..vocoder import Vocoder
from .evaluation import load_eval_clips, vocode_clips
from .sampling_flags import SamplerOptions

DESCRIPTION = """\
Coarse-to-fine search of an N-step beta sequence (WaveGrad §4) scored by the log-mel L1 between vocoded and
real validation clips (fixed seed); the best is stored in the checkpoint (atomically) under --name, and every
candidate goes to a CSV next to it.
"""


@dataclass
class SearchConfig:
    """What `search-schedule` searches and how it scores candidates."""

    steps: tuple[int, ...] = param((6,), "number(s) of steps of the schedule(s) to find, comma-separated",
                                   paper="6 (WaveGrad's searched schedule)")
    split: str = param("val", "split whose clips score the candidates (never tune on test)")
    clips: int = param(2, "clips scored per candidate")
    seconds: float = param(1.0, "length each clip is cut to")
    sampler: str = param("ddpm", "sampler the schedule is searched for and stored with (a stochastic one is scored "
                                 "with the same noise for every candidate)", choices=tuple(SAMPLERS),
                         paper="ddpm (WaveGrad)")
    options: SamplerOptions = param(factory=SamplerOptions, prefix="", help="the sampler's options")
    consistency: str = param("none", "mel-consistent sampling the schedule is searched for and stored with: none, gla, "
                                     "gla++; MODE@A0 starts every candidate from the Griffin-Lim reconstruction at its "
                                     "own noisiest level and lets that start level range up to A0 (a searched "
                                     "shallow start); +glK polishes every candidate (see vocode --help)")
    gla: Consistency = param(factory=Consistency, prefix="", help="options of the consistency")
    seed: int = param(0, "noise seed, the same for every candidate")
    grid: int = param(8, "coarse grid size per axis")
    max_last_level: float = param(0.1, "largest sqrt(alpha_bar) allowed at the noisiest step (sampling starts "
                                       "from N(0, I))")
    name: str = param("", "schedule name in the checkpoint (empty: search-STEPS for ddpm, search-SAMPLER-STEPS "
                          "for the others, with -MODE before STEPS when searched with consistency; only with one step "
                          "count)")
    csv: str = param("", "CSV of every candidate (empty: next to the checkpoint)")
    device: str = param("cpu", "torch device, e.g. cpu, cuda")

    def validate(self) -> None:
        if not self.steps or min(self.steps) < 1:
            raise UserInputError(f"--steps must be step counts >= 1, got {list(self.steps)}")
        if self.sampler not in SAMPLERS:
            raise UserInputError(f"unknown sampler {self.sampler!r}; choose from {', '.join(SAMPLERS)}")
        self.options.for_sampler(self.sampler)           # options the sampler does not take: one line
        if self.clips < 1 or not self.seconds > 0 or self.grid < 1:
            raise UserInputError("--clips and --grid must be >= 1 and --seconds > 0")
        self.mode()

    def mode(self) -> Consistency:
        return Consistency.parse(self.consistency, self.gla)


def register(sub, name: str) -> None:
    p = sub.add_parser(name, formatter_class=HelpFormatter, help="grid-search a short noise schedule for a checkpoint",
                       description=DESCRIPTION)
    p.add_argument("checkpoint", type=Path, help="a vocoder checkpoint")
    p.add_argument("--data-dir", type=Path, required=True, help="LJSpeech-layout folder with a val.txt split")
    add_arguments(p, SearchConfig)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    search_checkpoint(args.checkpoint, args.data_dir, from_args(SearchConfig, args))
    return 0


def search_checkpoint(checkpoint: Path, data_dir: Path, cfg: SearchConfig) -> list[SearchResult]:
    """For every step count: search, store the best schedule in ``checkpoint``, write the candidates' CSV and
    print a summary."""
    cfg.validate()
    if cfg.name and len(cfg.steps) > 1:
        raise UserInputError("--name names one schedule: give one --steps count with it")
    checkpoint = find_checkpoint(checkpoint)
    voc = Vocoder.from_checkpoint(checkpoint, device=cfg.device)
    clips = load_eval_clips(voc, data_dir, cfg.split, cfg.clips, cfg.seconds)
    return [_search(voc, checkpoint, clips, cfg, steps) for steps in cfg.steps]


def _search(voc: Vocoder, checkpoint: Path, clips, cfg: SearchConfig, steps: int) -> SearchResult:
    mode = cfg.mode()
    shallow = mode.start_level is not None
    name = cfg.name or "-".join(["search"] + ([cfg.sampler] if cfg.sampler != "ddpm" else [])
                                + ([mode.mode] if mode.active else []) + [str(steps)])
    plan = {"sampler": cfg.sampler, "eta": cfg.options.eta, **cfg.options.for_sampler(cfg.sampler)}

    def consistency(schedule) -> Consistency:        # a shallow start begins at the candidate's own noisiest level
        return dataclasses.replace(mode, start_level=float(schedule.noise_levels[-1])) if shallow else mode

    def score(schedule) -> float:
        out, _ = vocode_clips(voc, clips, cfg.seed, schedule=schedule, consistency=consistency(schedule), **plan)
        return log_mel_l1(clips.clips(clips.wav), clips.clips(out), voc.mel_config)

    t0 = time.time()
    max_last = max(cfg.max_last_level, mode.start_level) if shallow else cfg.max_last_level
    res = search_schedule(score, steps, grid=cfg.grid, max_last_level=max_last,
                          min_last_level=float(voc.train_schedule.noise_levels[-1]), progress=True)
    took = time.time() - t0
    respaced = score(voc.train_schedule.respace(steps))
    csv_path = Path(cfg.csv) if cfg.csv else checkpoint.with_name(f"{checkpoint.stem}.{name}.csv")
    _write_candidates(csv_path, res, steps)
    voc.add_schedule(checkpoint, name, res.best, sampler=cfg.sampler,
                     consistency=consistency(res.best) if mode.active else None)
    passes = res.evaluations * nfe(cfg.sampler, steps, **cfg.options.for_sampler(cfg.sampler))
    print(f"searched {res.evaluations} candidates ({len(res.candidates) - res.evaluations} skipped: start level "
          f"outside [{float(voc.train_schedule.noise_levels[-1]):.3g}, {max_last}]) = {passes} network passes over {len(clips.ids)} clips of "
          f"{clips.seconds / len(clips.ids):.2f} s ({passes * clips.seconds:.0f} audio-seconds) "
          f"in {took:.0f} s")
    print(f"best {steps}-step {cfg.sampler} schedule '{name}'"
          f"{'' if not mode.active else ' with ' + consistency(res.best).label()}: log-mel L1 {res.best_score:.4f} "
          f"(respaced training schedule: {respaced:.4f}); betas = "
          + ", ".join(f"{b:.3g}" for b in res.best.betas.tolist())
          + f"; sqrt(alpha_bar) at the start = {float(res.best.noise_levels[-1]):.4f}")
    print(f"stored in {checkpoint}; every candidate in {csv_path}")
    return res


def _write_candidates(path: Path, res: SearchResult, steps: int) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "log_mel_l1", "last_noise_level"] + [f"beta_{i + 1}" for i in range(steps)])
        for c in res.candidates:
            w.writerow([c.stage, "" if c.score is None else f"{c.score:.6f}", f"{c.last_level:.6g}"]
                       + [f"{b:.6g}" for b in c.betas])
