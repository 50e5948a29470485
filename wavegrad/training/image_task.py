"""Image diffusion (DDPM, Ho et al. 2020) as a task for the shared training loop (see trainer.py).

The loop, the schedule, the continuous noise level, the sampler and EMA are the vocoder's; only the
data (MNIST / CIFAR-10 from their official files), the network (:class:`ImageUNet`) and what a
validation writes (a PNG grid of samples) are image-specific. Inference lives in :mod:`wavegrad.images`.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import param, to_dict
from ..data.images import (CIFAR10_CLASSES, MNIST_CLASSES, ImageDataset, cifar10_class_names, make_grid,
                           read_cifar10, read_mnist, save_grid)
from ..diffusion import ScheduleConfig, diffusion_loss, eps_loss, q_sample
from ..diffusion.prediction import prediction_of
from ..diffusion.vlb import hybrid_loss
from ..errors import UserInputError
from ..images import FAMILY, sample_images
from ..models.image_unet import ImageUNet, ImageUNetConfig

DATASETS = {  # name -> (reader, class names, (channels, size), random horizontal flip by default)
    "mnist": (read_mnist, MNIST_CLASSES, (1, 28), False),
    "cifar10": (read_cifar10, CIFAR10_CLASSES, (3, 32), True),
}


@dataclass
class ImageDataConfig:
    """The image data set, its augmentation and conditioning, and what a validation samples."""

    dataset: str = param("cifar10", "image data set", choices=tuple(DATASETS), cli=False)
    data_dir: str = param("", "folder with the official files (`python data_prep/images.py download NAME DIR`)")
    limit: int = param(0, "train on the first N images only (0 = all)")
    random_flip: bool = param(True, "random horizontal flips", paper="on for CIFAR-10 (DDPM); off for digits")
    class_cond: bool = param(False, "condition on the class label (classifier-free guidance at sampling)")
    label_dropout: float = param(0.1, "probability of replacing the label by the null label in training",
                                 paper="0.1-0.2 (Ho & Salimans 2022)")
    val_n: int = param(64, "images in the validation grid")
    val_steps: int = param(100, "respaced sampling steps of the validation grid")
    val_eta: float = param(0.0, "validation sampler: 0 = DDIM (good at few steps), 1 = DDPM ancestral")
    val_guidance: float = param(0.0, "classifier-free guidance scale w of the grid (class_cond only)")
    val_seed: int = param(0, "noise seed of the validation grid")

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
                 val_data: tuple[np.ndarray, np.ndarray] | None = None, verbose: bool = False, seed: int = 0):
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
        with torch.random.fork_rng(devices=[]):  # the initial weights are a function of the run's seed alone
            torch.manual_seed(seed)
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
        level, z = noise(x0)                                                  # [B], [B, C, H, W]
        labels = self._labels(batch, drop=True)
        if self.model_cfg.learn_sigma:   # Improved DDPM: L_simple + 0.001 L_vlb, the 8-bit discretised decoder
            return hybrid_loss(lambda x, l: model(x, l, labels), x0, level, z, self.schedule, kind=self.loss_kind)
        return diffusion_loss(lambda x, l: model(x, l, labels), x0, level, z, kind=self.loss_kind)

    @torch.no_grad()
    def validate(self, model: ImageUNet, step: int, writer, out_dir: Path) -> dict[str, float]:
        """A fixed-seed sample grid (PNG + TensorBoard) and the eps-MSE on a fixed held-out batch."""
        d = self.data_cfg
        imgs = sample_images(model, self.schedule, d.val_n, min(d.val_steps, len(self.schedule)), eta=d.val_eta,
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
        out = model(q_sample(x0, level, eps), level, self._labels(batch, drop=False))
        eps_hat = prediction_of(out).eps
        return float(eps_loss(eps_hat, eps, "l2"))

    def checkpoint_meta(self) -> dict[str, Any]:
        c, h, w = self.train_set.images.shape[1:]
        return {"family": self.family, "model_config": self.model_cfg.to_dict(),
                "dataset": {"name": self.data_cfg.dataset, "class_names": list(self.class_names),
                            "channels": int(c), "image_size": [int(h), int(w)], "train_images": len(self.train_set)},
                "dataset_name": self.data_cfg.dataset, "data_config": to_dict(self.data_cfg),
                "schedule_config": to_dict(self.sched_cfg), "schedules": {}}

    def identity(self) -> dict[str, Any]:
        meta = self.checkpoint_meta()
        return {k: meta[k] for k in ("family", "model_config", "dataset_name")}

    def identity_configs(self) -> dict[str, type]:
        """The class the stored model config is read through before comparing (fields added later: defaults)."""
        return {"model_config": ImageUNetConfig}
