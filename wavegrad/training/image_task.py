"""Image diffusion (DDPM, Ho et al. 2020) as a task for the shared training loop (see trainer.py).

The loop, the schedule, the continuous noise level, the sampler and EMA are the vocoder's; only the
data (MNIST / CIFAR-10 from their official files), the network (:class:`ImageUNet`) and what a
validation writes (a PNG grid of samples) are image-specific. ``recipe_main`` is the body of
``recipes/mnist.py`` and ``recipes/cifar10.py``; ``load_image_checkpoint`` serves ``wavegrad sample``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.images import (CIFAR10_CLASSES, MNIST_CLASSES, ImageDataset, cifar10_class_names, make_grid,
                           read_cifar10, read_mnist, save_grid, to_uint8)
from ..diffusion import NoiseSchedule, eps_loss, q_sample, sample
from ..errors import UserInputError
from ..models.image_unet import ImageUNet, ImageUNetConfig, guided_denoiser
from .configargs import add_dataclass_args
from .vocoder_task import ScheduleConfig

FAMILY = "image"
DATASETS = {  # name -> (reader, class names, (channels, size), random horizontal flip by default)
    "mnist": (read_mnist, MNIST_CLASSES, (1, 28), False),
    "cifar10": (read_cifar10, CIFAR10_CLASSES, (3, 32), True),
}


@dataclass
class ImageDataConfig:
    dataset: str = "cifar10"       # "mnist" | "cifar10"
    data_dir: str = ""
    limit: int = 0                 # train on the first N images only (0 = all)
    random_flip: bool = True       # horizontal flips (DDPM's CIFAR-10 setting; off for MNIST)
    class_cond: bool = False       # condition on the class label (model num_classes = 10)
    label_dropout: float = 0.1     # p of replacing the label by the null label (classifier-free guidance)
    val_n: int = 64                # images in the validation grid
    val_steps: int = 100           # respaced sampling steps for the grid
    val_eta: float = 0.0           # 0: DDIM (good at few steps); 1: DDPM ancestral
    val_guidance: float = 0.0      # classifier-free guidance scale w for the grid (class_cond only)
    val_seed: int = 0

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UserInputError(f"bad image data config: {msg}")
        need(self.dataset in DATASETS, f"dataset must be one of {sorted(DATASETS)}, got {self.dataset!r}")
        need(self.limit >= 0, f"limit must be >= 0 (0 = all), got {self.limit}")
        need(0.0 <= self.label_dropout < 1.0, f"label_dropout must lie in [0, 1), got {self.label_dropout}")
        need(self.val_n >= 1, f"val_n must be >= 1, got {self.val_n}")
        need(self.val_steps >= 1, f"val_steps must be >= 1, got {self.val_steps}")
        need(0.0 <= self.val_eta <= 1.0, f"val_eta must lie in [0, 1], got {self.val_eta}")
        need(math.isfinite(self.val_guidance) and self.val_guidance >= 0,
             f"val_guidance must be >= 0, got {self.val_guidance}")


def read_dataset(name: str, folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    if name not in DATASETS:
        raise UserInputError(f"unknown image dataset {name!r}; choose from {sorted(DATASETS)}")
    if not str(folder):
        raise UserInputError(f"--data-dir is required: a folder with the official {name} files "
                             f"(get them with `python data_prep/images.py download {name} DIR`)")
    return DATASETS[name][0](folder, split)


class ImageTask:
    """``train_set`` items: ``{"x": [C, H, W] in [-1, 1], "label", "label_u"}``; loss: L2 (or L1) on eps."""

    family = FAMILY

    def __init__(self, model_cfg: ImageUNetConfig, data_cfg: ImageDataConfig,
                 sched_cfg: ScheduleConfig | None = None, loss_kind: str = "l2", *,
                 train_data: tuple[np.ndarray, np.ndarray] | None = None,
                 val_data: tuple[np.ndarray, np.ndarray] | None = None, verbose: bool = False):
        data_cfg.validate()
        self.model_cfg, self.data_cfg = model_cfg, data_cfg
        self.sched_cfg = sched_cfg or ScheduleConfig()
        self.loss_kind = loss_kind
        channels, size = DATASETS[data_cfg.dataset][2]
        self.class_names = DATASETS[data_cfg.dataset][1]
        if train_data is None:
            train_data = read_dataset(data_cfg.dataset, data_cfg.data_dir, "train")
            if data_cfg.dataset == "cifar10":
                self.class_names = cifar10_class_names(data_cfg.data_dir)
        if val_data is None and data_cfg.data_dir:
            try:
                val_data = read_dataset(data_cfg.dataset, data_cfg.data_dir, "test")
            except UserInputError as e:
                if verbose:
                    print(f"note: no test split for the validation metric ({e}); using training images",
                          file=sys.stderr)
        images, labels = train_data
        if data_cfg.limit:
            images, labels = images[: data_cfg.limit], labels[: data_cfg.limit]
        c = 1 if images.ndim == 3 else images.shape[-1]
        if c != model_cfg.in_channels or images.shape[1] > model_cfg.image_size:
            raise UserInputError(f"{data_cfg.dataset} images are {images.shape[1]}x{images.shape[2]}x{c} but the model "
                                 f"expects {model_cfg.image_size}x{model_cfg.image_size}x{model_cfg.in_channels}")
        if data_cfg.class_cond and model_cfg.num_classes != len(self.class_names):
            raise UserInputError(f"class_cond needs a model with num_classes = {len(self.class_names)}, "
                                 f"got {model_cfg.num_classes}")
        pad = model_cfg.image_size if images.shape[1] < model_cfg.image_size else 0
        self.train_set = ImageDataset(images, labels, random_flip=data_cfg.random_flip, pad_to=pad)
        vi, vl = val_data if val_data is not None else (images, labels)
        self.val_set = ImageDataset(vi[:64], vl[:64], pad_to=pad)
        self.model = ImageUNet(model_cfg)
        self.schedule = self.sched_cfg.build()

    # -- the loop's interface ----------------------------------------------------------------------
    def _labels(self, batch: dict[str, torch.Tensor], drop: bool) -> torch.Tensor | None:
        if not self.model_cfg.num_classes:
            return None
        y = batch["label"]
        if drop and self.data_cfg.label_dropout > 0:  # from the item seeds: same on resume and on W processes
            y = torch.where(batch["label_u"] < self.data_cfg.label_dropout, self.model_cfg.num_classes, y)
        return y

    def loss(self, model, batch: dict[str, torch.Tensor], noise) -> torch.Tensor:
        x0 = batch["x"]                                                       # [B, C, H, W]
        level, eps = noise(x0)                                                # [B], [B, C, H, W]
        eps_hat = model(q_sample(x0, level, eps), level, self._labels(batch, drop=True))
        return eps_loss(eps_hat, eps, self.loss_kind)

    @torch.no_grad()
    def sample_grid(self, model: ImageUNet, n: int, steps: int, *, eta: float = 0.0, guidance: float = 0.0,
                    seed: int = 0, labels: torch.Tensor | None = None) -> np.ndarray:
        return sample_images(model, self.schedule, n, steps, eta=eta, guidance=guidance, seed=seed, labels=labels)

    @torch.no_grad()
    def validate(self, model: ImageUNet, step: int, writer, out_dir: Path) -> dict[str, float]:
        """A fixed-seed sample grid (PNG + TensorBoard) and the eps-MSE on a fixed held-out batch."""
        d = self.data_cfg
        imgs = self.sample_grid(model, d.val_n, min(d.val_steps, len(self.schedule)), eta=d.val_eta,
                                guidance=d.val_guidance if self.model_cfg.num_classes else 0.0, seed=d.val_seed)
        save_grid(imgs, Path(out_dir) / "grid.png")
        if writer is not None:
            writer.add_image("val/samples", make_grid(imgs), step, dataformats="HWC")
        return {"eps_mse": self.eval_eps_mse(model)}

    @torch.no_grad()
    def eval_eps_mse(self, model: ImageUNet) -> float:
        """Mean squared eps error on up to 64 held-out images, at levels spread over the schedule, fixed noise."""
        device = next(model.parameters()).device
        items = [self.val_set[(i, i)] for i in range(len(self.val_set))]
        x0 = torch.stack([it["x"] for it in items]).to(device)
        batch = {"label": torch.stack([it["label"] for it in items]).to(device)}
        g = torch.Generator().manual_seed(self.data_cfg.val_seed + 1)
        t = torch.linspace(0, len(self.schedule) - 1, len(items)).round().long()
        level = self.schedule.noise_levels[t].float().to(device)
        eps = torch.randn(x0.shape, generator=g).to(device)
        eps_hat = model(q_sample(x0, level, eps), level, self._labels(batch, drop=False))
        return float(eps_loss(eps_hat, eps, "l2"))

    def checkpoint_meta(self) -> dict[str, Any]:
        c, h, w = self.train_set.images.shape[1:]
        return {"family": self.family, "model_config": self.model_cfg.to_dict(),
                "dataset": {"name": self.data_cfg.dataset, "class_names": list(self.class_names),
                            "channels": int(c), "image_size": [int(h), int(w)], "train_images": len(self.train_set)},
                "data_config": dataclasses.asdict(self.data_cfg),
                "schedule_config": dataclasses.asdict(self.sched_cfg), "schedules": {}}

    def check_compatible(self, ckpt: dict, path) -> None:
        if ckpt.get("family") != self.family or ckpt.get("model_config") != self.model_cfg.to_dict():
            raise UserInputError(f"{path}: cannot resume: it holds a different model "
                                 f"({ckpt.get('family')}, {ckpt.get('model_config')}); use a new --run-dir")
        if (ckpt.get("dataset") or {}).get("name") != self.data_cfg.dataset:
            raise UserInputError(f"{path}: cannot resume: trained on {(ckpt.get('dataset') or {}).get('name')}, "
                                 f"this run is {self.data_cfg.dataset}; use a new --run-dir")


@torch.no_grad()
def sample_images(model: ImageUNet, schedule: NoiseSchedule, n: int, steps: int, *, eta: float = 0.0,
                  guidance: float = 0.0, seed: int = 0, labels: torch.Tensor | None = None,
                  batch_size: int = 0, progress: bool = False) -> np.ndarray:
    """``n`` images ``uint8 [n, H, W, C]`` from ``model`` over ``schedule`` respaced to ``steps``.

    A class-conditional model gets ``labels`` (default: 0, 1, …, K-1, 0, … across the grid); ``guidance``
    is the classifier-free scale w. x0 is clipped to [-1, 1] at every step (``clip_denoised``). All
    noise comes from one generator seeded with ``seed``, batch after batch.
    """
    cfg = model.cfg
    if cfg.num_classes and labels is None:
        labels = torch.arange(n) % cfg.num_classes
    device = next(model.parameters()).device
    sched = schedule.respace(steps)
    g = torch.Generator().manual_seed(seed)
    bs = batch_size or n
    out = []
    for start in range(0, n, bs):
        b = min(bs, n - start)
        y = labels[start:start + b].to(device) if labels is not None else None
        x = sample(guided_denoiser(model, y, guidance), (b, cfg.in_channels, cfg.image_size, cfg.image_size),
                   sched, eta=eta, generator=g, device=device, clip_x0=1.0, progress=progress)
        out.append(to_uint8(x))
    return np.concatenate(out)


def load_image_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                          use_ema: bool = True) -> tuple[ImageUNet, NoiseSchedule, dict[str, Any]]:
    """(model in eval mode, training schedule, dataset meta) from an image checkpoint; UserInputError otherwise."""
    from .checkpoint import load_family_checkpoint, rebuilding_from
    ckpt = load_family_checkpoint(path, FAMILY, "an image", " (train one with recipes/mnist.py or recipes/cifar10.py)")
    with rebuilding_from(path, "image", "re-train or re-export it with this wavegrad"):
        model = ImageUNet(ImageUNetConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt["ema"]["shadow"] if use_ema else ckpt["model"])
        schedule = NoiseSchedule.from_dict(ckpt["schedule"])
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as e:  # e.g. cuda asked for on a CPU-only build
        raise UserInputError(f"cannot use device {device} ({str(e).splitlines()[0][:100]})") from None
    return model.eval(), schedule, dict(ckpt.get("dataset") or {})


# ---- recipes ----------------------------------------------------------------------------------------------------
def _collect(args: argparse.Namespace, cls, prefix: str, fixed: dict[str, Any] | None = None):
    values = {f.name: getattr(args, prefix + f.name) for f in dataclasses.fields(cls) if hasattr(args, prefix + f.name)}
    return cls(**{**values, **(fixed or {})})


def recipe_main(dataset: str, presets: dict[str, dict[str, Any]], description: str,
                argv: Sequence[str] | None = None) -> int:
    """Parse recipe flags (a preset's defaults, every field overridable), train with the shared loop,
    print where the checkpoint and the last sample grid are."""
    from ..cli import _Formatter
    from .trainer import TrainConfig, Trainer
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = f"{dataset} recipe"
    preset = "quick" if "--quick" in argv else "paper"
    for i, a in enumerate(argv):  # the preset sets the defaults of every other flag: find it first
        if a == "--preset":
            preset = argv[i + 1] if i + 1 < len(argv) else ""
        elif a.startswith("--preset="):
            preset = a.split("=", 1)[1]
    if preset not in presets:
        print(f"{prog}: error: --preset must be one of {', '.join(presets)}, got {preset!r}", file=sys.stderr)
        return 2
    p = presets[preset]
    parser = argparse.ArgumentParser(description=description, formatter_class=_Formatter)
    parser.add_argument("--preset", choices=sorted(presets), default=preset,
                        help="paper: Ho et al.'s settings (GPU); quick: a tiny net for a minute or two on CPU")
    parser.add_argument("--quick", action="store_true", help="same as --preset quick")
    parser.add_argument("--data-dir", required=True,
                        help=f"folder with the official {dataset} files (python data_prep/images.py download "
                             f"{dataset} DIR fetches them)")
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="resume from a checkpoint ('auto' = the newest one in RUN_DIR/checkpoints)")
    add_dataclass_args(parser, ImageUNetConfig, "model.", "model-", dataclasses.asdict(p["model"]),
                        skip=("image_size", "in_channels", "num_classes"))
    add_dataclass_args(parser, TrainConfig, "train.", "", p["train"])
    add_dataclass_args(parser, ImageDataConfig, "data.", "", p["data"], skip=("dataset", "data_dir"))
    add_dataclass_args(parser, ScheduleConfig, "sched.", "schedule-", {})
    args = parser.parse_args(argv)
    try:
        train = _collect(args, TrainConfig, "train.")
        train.validate()
        data = _collect(args, ImageDataConfig, "data.", {"dataset": dataset, "data_dir": args.data_dir})
        data.validate()
        model = _collect(args, ImageUNetConfig, "model.", {
            "image_size": p["model"].image_size, "in_channels": p["model"].in_channels,
            "num_classes": len(DATASETS[dataset][1]) if data.class_cond else 0})
        sched = _collect(args, ScheduleConfig, "sched.")
        t0 = time.time()
        task = ImageTask(model, data, sched, loss_kind=train.loss, verbose=True)
        n_params = sum(q.numel() for q in task.model.parameters())
        print(f"{dataset}: {len(task.train_set)} training images; ImageUNet {n_params / 1e6:.2f}M parameters; "
              f"preset {preset}")
        trainer = Trainer(task, train)
        if args.resume:
            trainer.resume(args.resume)
        ckpt = trainer.fit()
        grids = sorted((Path(train.run_dir) / "samples").glob("step-*/grid.png"))
        print(f"trained to step {trainer.step} in {time.time() - t0:.0f} s; checkpoint {ckpt}")
        if grids:
            print(f"latest sample grid: {grids[-1]}")
        if ckpt is not None:
            print(f"sample more: wavegrad sample {ckpt} --n 64 --steps 50 --out grid.png")
    except UserInputError as e:
        print(f"{prog}: error: {str(e).splitlines()[0] if str(e) else 'bad input'}", file=sys.stderr)
        return 2
    return 0
