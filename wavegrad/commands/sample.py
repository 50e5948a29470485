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
    p.add_argument("--out", type=Path, metavar="PNG", default=None, help="output grid, a .png file (required "
                   "unless --nll)")
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
    g = p.add_argument_group("inpainting", "Complete an image: pixels where MASK is white (> 127) are kept exactly, "
                                           "the others sampled to join them (the replacement method; RePaint's "
                                           "resampling with --jump-length / --jump-n-sample). Default sampler: ddpm.")
    g.add_argument("--inpaint", type=Path, default=None, metavar="IMAGE", help="the image to complete (PNG), at the "
                   "model's size and channels")
    g.add_argument("--mask", type=Path, default=None, metavar="MASK", help="PNG of the same size: white = keep")
    g.add_argument("--jump-length", type=int, default=1, help="RePaint: diffuse back up this many steps ...")
    g.add_argument("--jump-n-sample", type=int, default=1, help="... this many times in all (RePaint: 10, 10)")
    p.add_argument("--trajectory", type=Path, default=None, metavar="GIF",
                   help="also write the denoising as an animated GIF, a frame per step")
    p.add_argument("--trajectory-of", choices=("x", "x0"), default="x",
                   help="the GIF shows the state x_t (x) or the predicted clean image (x0) of each step")
    g = p.add_argument_group("log-likelihood", "--nll scores held-out images instead of sampling: bits per "
                                               "dimension from the variational bound (Ho et al. 2020, eq. 5; "
                                               "Nichol & Dhariwal 2021), over --steps respaced steps (default: "
                                               "the whole training schedule)")
    g.add_argument("--nll", action="store_true", help="report bits/dim of the first N images of --split")
    g.add_argument("--data-dir", type=Path, default=None, help="folder with the data set's official files")
    g.add_argument("--split", choices=("train", "test"), default="test", help="images scored by --nll")
    g.add_argument("--fixed-variance", action="store_true",
                   help="score a learned-variance model with the fixed beta~ instead (the comparison of IDDPM §3.1)")
    p.set_defaults(func=run)
    return p


def _check_args(args: argparse.Namespace) -> None:
    if args.n <= 0:
        raise UserInputError(f"--n must be >= 1, got {args.n}")
    if not math.isfinite(args.guidance) or args.guidance < 0:
        raise UserInputError(f"--guidance must be a number >= 0, got {args.guidance}")
    if args.batch_size <= 0 or args.nrow < 0:
        raise UserInputError("--batch-size must be >= 1 and --nrow >= 0")
    if args.nll:
        if args.data_dir is None:
            raise UserInputError("--nll needs --data-dir: the folder with the data set's files to score")
        return
    if args.out is None:
        raise UserInputError("--out is required: the .png file of the grid")
    if (args.inpaint is None) != (args.mask is None):
        raise UserInputError("--inpaint and --mask go together: the image to complete and what to keep of it")
    if args.trajectory is not None and Path(args.trajectory).suffix.lower() != ".gif":
        raise UserInputError(f"--trajectory {args.trajectory}: the animation is written as GIF; give a path ending in .gif")
    if Path(args.out).suffix.lower() != ".png":
        raise UserInputError(f"--out {args.out}: the grid is written as PNG; give a path ending in .png")
    if Path(args.out).is_dir():
        raise UserInputError(f"--out {args.out} is a folder; give a file path ending in .png")


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    from ..data.images import save_grid
    from ..images import inpaint_images, load_image_checkpoint, read_png, sample_images
    from ..trajectory import Trajectory
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise UserInputError(f"--device {args.device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    model, schedule, meta = load_image_checkpoint(args.checkpoint, device, use_ema=not args.raw)
    if args.nll:
        return _nll(args, model, schedule, meta)
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
    plan = sampling_plan(args, {}, set(), 50, "ddpm" if args.inpaint else "ddim")
    if plan["steps"] is not None and plan["steps"] > len(schedule):
        raise UserInputError(f"--steps {plan['steps']} exceeds the {len(schedule)}-step training schedule")
    plan["schedule_kind"] = plan.pop("schedule")
    record = Trajectory() if args.trajectory else None
    t0 = time.time()
    if args.inpaint is not None:
        image, keep = read_png(args.inpaint), read_png(args.mask)                 # grey [H, W] or colour [H, W, C]
        mask = (keep if keep.ndim == 2 else keep.max(axis=-1)) > 127
        imgs = inpaint_images(model, schedule, image, mask, args.n, jump_length=args.jump_length,
                              jump_n_sample=args.jump_n_sample, guidance=args.guidance, labels=labels, seed=args.seed,
                              progress=True, callback=record, **plan)
    else:
        imgs = sample_images(model, schedule, args.n, guidance=args.guidance, seed=args.seed, labels=labels,
                             batch_size=args.batch_size, progress=True, callback=record, **plan)
    took = time.time() - t0
    save_grid(imgs, args.out, nrow=args.nrow or None)
    if record is not None:
        _write_gif(args.trajectory, record, imgs, args.trajectory_of, args.nrow)
    what = f"class {args.label}" if args.label is not None else ("classes in turn" if k else "unconditional")
    print(f"wrote {args.out}: {args.n} images ({what}, {plan['sampler']}, {plan['steps'] or plan['nfe']} "
          f"{'steps' if plan['steps'] else 'NFE'}, guidance {args.guidance}, "
          f"seed {args.seed}) in {took:.1f} s")
    return 0


def _nll(args: argparse.Namespace, model, schedule, meta: dict) -> int:
    from ..data.images import read_cifar10, read_mnist
    from ..images import image_nll
    readers = {"mnist": read_mnist, "cifar10": read_cifar10}
    if meta.get("name") not in readers:
        raise UserInputError(f"{args.checkpoint} does not say which data set it was trained on; --nll needs MNIST "
                             "or CIFAR-10 checkpoints")
    if args.steps is not None and not 1 <= args.steps <= len(schedule):
        raise UserInputError(f"--steps must lie in [1, {len(schedule)}], got {args.steps}")
    images, _ = readers[meta["name"]](args.data_dir, args.split)
    t0 = time.time()
    res = image_nll(model, schedule, images[: args.n], args.steps, fixed_variance=args.fixed_variance,
                    batch_size=args.batch_size, seed=args.seed, progress=True)
    variance = ("fixed beta~" if args.fixed_variance or not model.cfg.learn_sigma else "learned")
    print(f"{res['bits_per_dim']:.4f} bits/dim (SE {res['se']:.4f}; prior term {res['prior_bits_per_dim']:.2e}) over "
          f"{res['images']} {args.split} images, {res['steps']} steps, {variance} variance, in {time.time() - t0:.1f} s")
    return 0


def _write_gif(path: Path, record, final, which: str, nrow: int) -> None:
    """A frame per step: the grid of every image's state (or predicted x0) at that step, then the final grid."""
    from ..data.images import make_grid, to_uint8
    from ..trajectory import image_gif
    steps: dict[int, list] = {}
    for i, _, x, x0 in record.steps:                     # several batches: the same step index per batch
        steps.setdefault(i, []).append((x if which == "x" else x0).clamp(-1, 1))
    frames = [make_grid(to_uint8(torch.cat(parts)), nrow or None) for _, parts in sorted(steps.items())]
    image_gif(path, frames + [make_grid(final, nrow or None)])
