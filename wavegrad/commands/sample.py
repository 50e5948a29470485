"""`wavegrad sample CHECKPOINT --n 64 --steps 50 --out grid.png`: a PNG grid from an image checkpoint."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from ..config import HelpFormatter
from ..errors import UserInputError
from .sampling_flags import add_sampling_args, sampling_plan

DESCRIPTION = """\
Sample images from an image-diffusion checkpoint (recipes/mnist.py, recipes/cifar10.py) with the EMA
weights, with any sampler over the training schedule respaced uniformly to STEPS (or Karras' spacing),
and write them as one PNG grid.

The default sampler is DDIM (deterministic given the seed; good at 25-100 steps); --sampler ddpm is
ancestral sampling (Ho et al.; needs more steps), heun / dpmpp-2m are the second-order ODE solvers that
reach DDIM's quality with fewer network evaluations (--nfe). For a class-conditional checkpoint, --label K draws class K only (default:
the classes in turn, 0, 1, ..., K-1, 0, ...) and --guidance W applies classifier-free guidance
eps = (1 + W) eps(x, y) - W eps(x, null) (Ho & Salimans 2022; W around 1-4 trades diversity for fidelity).
The same --seed, --n and --batch-size give the same grid. The PNG is written atomically.
"""


def register(sub, name: str = "sample") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="sample an image grid (PNG) from an image checkpoint", description=DESCRIPTION,
                       formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", type=Path, help="an image checkpoint (recipe output)")
    p.add_argument("--out", required=True, type=Path, metavar="PNG", help="output grid, a .png file")
    p.add_argument("--n", type=int, default=64, help="number of images")
    add_sampling_args(p, 50, "ddim")
    p.add_argument("--label", type=int, default=None, help="class index (class-conditional checkpoints only)")
    p.add_argument("--guidance", type=float, default=0.0,
                   help="classifier-free guidance scale W >= 0 (class-conditional checkpoints only)")
    p.add_argument("--seed", type=int, default=0, help="noise seed")
    p.add_argument("--nrow", type=int, default=0, help="images per grid row (0: about sqrt(N))")
    p.add_argument("--batch-size", type=int, default=64, help="images per network call")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    p.add_argument("--raw", action="store_true", help="use the raw (not EMA) weights")
    p.set_defaults(func=run)
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.n <= 0:
        raise UserInputError(f"--n must be >= 1, got {args.n}")
    if not math.isfinite(args.guidance) or args.guidance < 0:
        raise UserInputError(f"--guidance must be a number >= 0, got {args.guidance}")
    if args.batch_size <= 0 or args.nrow < 0:
        raise UserInputError("--batch-size must be >= 1 and --nrow >= 0")
    if Path(args.out).suffix.lower() != ".png":
        raise UserInputError(f"--out {args.out}: the grid is written as PNG; give a path ending in .png")
    if Path(args.out).is_dir():
        raise UserInputError(f"--out {args.out} is a folder; give a file path ending in .png")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from ..data.images import save_grid
    from ..images import load_image_checkpoint, sample_images
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UserInputError(f"--device {args.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    model, schedule, meta = load_image_checkpoint(args.checkpoint, device, use_ema=not args.raw)
    k = model.cfg.num_classes
    labels = None
    if k == 0 and (args.label is not None or args.guidance):
        raise UserInputError(f"{args.checkpoint} is an unconditional model: --label and --guidance need a "
                             f"class-conditional one (train with --class-cond true)")
    if args.label is not None:
        if not 0 <= args.label < k:
            names = meta.get("class_names") or []
            hint = f" ({', '.join(f'{i}={n}' for i, n in enumerate(names))})" if len(names) == k else ""
            raise UserInputError(f"--label {args.label} is out of range: this model has classes 0..{k - 1}{hint}")
        labels = torch.full((args.n,), args.label, dtype=torch.long)
    plan = sampling_plan(args, {}, set(), 50, "ddim")
    if plan["steps"] is not None and plan["steps"] > len(schedule):
        raise UserInputError(f"--steps {plan['steps']} exceeds the {len(schedule)}-step training schedule")
    plan["schedule_kind"] = plan.pop("schedule")
    t0 = time.time()
    imgs = sample_images(model, schedule, args.n, guidance=args.guidance, seed=args.seed, labels=labels,
                         batch_size=args.batch_size, progress=True, **plan)
    took = time.time() - t0
    save_grid(imgs, args.out, nrow=args.nrow or None)
    what = f"class {args.label}" if args.label is not None else ("classes in turn" if k else "unconditional")
    print(f"wrote {args.out}: {args.n} images ({what}, {plan['sampler']}, {plan['steps'] or plan['nfe']} "
          f"{'steps' if plan['steps'] else 'NFE'}, guidance {args.guidance}, "
          f"seed {args.seed}) in {took:.1f} s")
    return 0
