"""Image inference: sample grids from an image-diffusion checkpoint (``wavegrad sample``).

The image counterpart of :mod:`wavegrad.vocoder`: the checkpoint's EMA weights, the shared sampler,
classifier-free guidance bound as a denoiser wrapper (:func:`wavegrad.models.image_unet.guided_denoiser`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import load_family_checkpoint, rebuilding_from
from .data.images import to_uint8
from .diffusion import NoiseSchedule, plan_sampling, sample
from .errors import UserInputError, first_line
from .models.image_unet import ImageUNet, ImageUNetConfig, guided_denoiser

FAMILY = "image"


@torch.no_grad()
def sample_images(model: ImageUNet, schedule: NoiseSchedule, n: int, steps: int | None = None, *,
                  sampler: str | None = None, eta: float | None = None, nfe: int | None = None,
                  schedule_kind: str | None = None, guidance: float = 0.0, seed: int = 0,
                  labels: torch.Tensor | None = None, batch_size: int = 0, progress: bool = False,
                  callback=None, **options) -> np.ndarray:
    """``n`` images ``uint8 [n, H, W, C]`` from ``model`` trained on ``schedule``.

    Sampler, steps / nfe and schedule kind as :func:`wavegrad.diffusion.plan_sampling` (default: DDIM,
    ``schedule`` respaced to ``steps``). A class-conditional model gets ``labels`` (default: 0, 1, …, K-1,
    0, … across the grid); ``guidance`` is the classifier-free scale w. x0 is clipped to [-1, 1] at every
    step (``clip_denoised``). All noise comes from one generator seeded with ``seed``, batch after batch.
    """
    cfg = model.cfg
    if cfg.num_classes and labels is None:
        labels = torch.arange(n) % cfg.num_classes
    sched, name, options = plan_sampling(schedule, schedule_kind, steps, nfe=nfe, eta=eta,
                                         sampler=sampler or ("ddim" if eta is None else None), **options)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    bs = batch_size or n
    out = []
    for start in range(0, n, bs):
        b = min(bs, n - start)
        y = labels[start:start + b].to(device) if labels is not None else None
        x = sample(guided_denoiser(model, y, guidance), (b, cfg.in_channels, cfg.image_size, cfg.image_size),
                   sched, sampler=name, generator=g, device=device, clip_x0=1.0, progress=progress,
                   callback=callback, **options)
        out.append(to_uint8(x))
    return np.concatenate(out)


def load_image_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                          use_ema: bool = True) -> tuple[ImageUNet, NoiseSchedule, dict[str, Any]]:
    """(model in eval mode, training schedule, dataset meta) from an image checkpoint; UserInputError otherwise."""
    ckpt = load_family_checkpoint(path, FAMILY, "an image", " (train one with recipes/mnist.py or recipes/cifar10.py)")
    with rebuilding_from(path, "image", "re-train or re-export it with this wavegrad"):
        model = ImageUNet(ImageUNetConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt["ema"]["shadow"] if use_ema else ckpt["model"])
        schedule = NoiseSchedule.from_dict(ckpt["schedule"])
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as e:  # e.g. cuda asked for on a CPU-only build
        raise UserInputError(f"cannot use device {device} ({first_line(e)[:100]})") from None
    return model.eval(), schedule, dict(ckpt.get("dataset") or {})
