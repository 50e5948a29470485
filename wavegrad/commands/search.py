"""`wavegrad search-schedule`: find a short noise schedule for a trained checkpoint and store it."""
from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from ..diffusion.search import search_schedule
from ..errors import UserInputError
from ..utils import atomic_path
from ..vocoder import Vocoder
from .evaluation import load_eval_clips, log_mel_l1, vocode_clips


def register(sub, name: str, formatter) -> None:
    p = sub.add_parser(name, formatter_class=formatter, help="grid-search a short noise schedule for a checkpoint",
                       description="Coarse-to-fine search of an N-step beta sequence (WaveGrad §4) scored by the "
                                   "log-mel L1 between vocoded and real validation clips; the best is stored in the "
                                   "checkpoint (atomically) under --name.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data-dir", type=Path, required=True, help="LJSpeech-layout folder with a val.txt split")
    p.add_argument("--steps", type=int, default=6, help="number of steps of the schedule to find")
    p.add_argument("--split", default="val", help="split whose clips score the candidates (never tune on test)")
    p.add_argument("--clips", type=int, default=2, help="clips scored per candidate")
    p.add_argument("--seconds", type=float, default=1.0, help="length each clip is cut to")
    p.add_argument("--eta", type=float, default=1.0, help="sampler: 1 = ancestral (WaveGrad), 0 = DDIM")
    p.add_argument("--seed", type=int, default=0, help="noise seed, the same for every candidate")
    p.add_argument("--grid", type=int, default=8, help="coarse grid size per axis")
    p.add_argument("--max-last-level", type=float, default=0.1,
                   help="largest sqrt(alpha_bar) allowed at the noisiest step (sampling starts from N(0, I))")
    p.add_argument("--name", default=None, help="schedule name in the checkpoint (default: search-STEPS)")
    p.add_argument("--csv", type=Path, default=None, help="CSV of every candidate (default: next to the checkpoint)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise UserInputError(f"--steps must be >= 1, got {args.steps}")
    voc = Vocoder.from_checkpoint(args.checkpoint, device=args.device)
    clips = load_eval_clips(voc, args.data_dir, args.split, args.clips, args.seconds)
    name = args.name or f"search-{args.steps}"

    def score(schedule) -> float:
        out, _ = vocode_clips(voc, clips, schedule, args.eta, args.seed)
        return log_mel_l1(voc, clips, out)

    t0 = time.time()
    res = search_schedule(score, args.steps, grid=args.grid, max_last_level=args.max_last_level, progress=True)
    took = time.time() - t0
    respaced = score(voc.train_schedule.respace(args.steps))
    passes = res.evaluations * args.steps
    csv_path = args.csv or args.checkpoint.with_name(f"{args.checkpoint.stem}.{name}.csv")
    with atomic_path(csv_path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["stage", "log_mel_l1", "last_noise_level"] + [f"beta_{i + 1}" for i in range(args.steps)])
        for c in res.candidates:
            w.writerow([c.stage, "" if c.score is None else f"{c.score:.6f}", f"{c.last_level:.6g}"]
                       + [f"{b:.6g}" for b in c.betas])
    voc.add_schedule(args.checkpoint, name, res.best)
    audio_s = clips.seconds
    print(f"searched {res.evaluations} candidates ({len(res.candidates) - res.evaluations} skipped: start level "
          f"> {args.max_last_level}) = {passes} network passes over {len(clips.ids)} clips x "
          f"{clips.wav.shape[1] / voc.mel_config.sample_rate:.2f} s ({passes * audio_s:.0f} audio-seconds) in {took:.0f} s")
    print(f"best {args.steps}-step schedule '{name}': log-mel L1 {res.best_score:.4f} "
          f"(respaced training schedule: {respaced:.4f}); betas = "
          + ", ".join(f"{b:.3g}" for b in res.best.betas.tolist())
          + f"; sqrt(alpha_bar) at the start = {float(res.best.noise_levels[-1]):.4f}")
    print(f"stored in {args.checkpoint}; every candidate in {csv_path}")
    return 0
