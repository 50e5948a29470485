"""Image inference: sample grids and bits per dimension from an image-diffusion checkpoint (``wavegrad sample``).

The image counterpart of :mod:`wavegrad.vocoder`: the checkpoint's EMA weights, the shared sampler,
classifier-free guidance bound as a denoiser wrapper (:func:`wavegrad.models.image_unet.guided_denoiser`).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import find_checkpoint, load, load_family_checkpoint, rebuilding_from, save_pretrained_folder
from .data.images import to_uint8
from .diffusion import NoiseSchedule, SamplingPlan, sample
from .diffusion.prediction import Prediction, prediction_of
from .errors import UserInputError, first_line
from .models.image_unet import ImageUNet, ImageUNetConfig, guided_denoiser

FAMILY = "image"


@torch.no_grad()
def sample_images(model: ImageUNet, train_schedule: NoiseSchedule, n: int, steps: int | None = None, *,
                  sampler: str | None = None, eta: float | None = None, nfe: int | None = None,
                  schedule_kind: str | None = None, guidance: float = 0.0, seed: int = 0,
                  labels: torch.Tensor | None = None, batch_size: int = 0, progress: bool = False,
                  callback=None, **options) -> np.ndarray:
    """``n`` images ``uint8 [n, H, W, C]`` from ``model`` trained on ``train_schedule``.

    Sampler, steps / nfe and schedule kind as :meth:`wavegrad.diffusion.SamplingPlan.build` (default: DDIM,
    the training schedule respaced to ``steps``). A class-conditional model gets ``labels`` (default: 0, 1, …, K-1,
    0, … across the grid); ``guidance`` is the classifier-free scale w. x0 is clipped to [-1, 1] at every
    step (``clip_denoised``). All noise comes from one generator seeded with ``seed``, batch after batch.
    """
    cfg = model.cfg
    if cfg.num_classes and labels is None:
        labels = torch.arange(n) % cfg.num_classes
    plan = SamplingPlan.build(train_schedule, schedule_kind, steps, nfe=nfe, eta=eta,
                              sampler=sampler or ("ddim" if eta is None else None), **options)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    bs = batch_size or n
    out = []
    for start in range(0, n, bs):
        b = min(bs, n - start)
        y = labels[start:start + b].to(device) if labels is not None else None
        x = sample(guided_denoiser(model, y, guidance), (b, cfg.in_channels, cfg.image_size, cfg.image_size),
                   plan, generator=g, device=device, clip_x0=1.0, progress=progress, callback=callback)
        out.append(to_uint8(x))
    return np.concatenate(out)


def load_image_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                          use_ema: bool = True) -> tuple[ImageUNet, NoiseSchedule, dict[str, Any]]:
    """(model in eval mode, training schedule, dataset meta) from an image checkpoint (or a run folder's newest);
    UserInputError otherwise."""
    ckpt, weights, path = load(path, FAMILY, "an image", use_ema=use_ema,
                               hint=" (train one with recipes/mnist.py or recipes/cifar10.py)")
    with rebuilding_from(path, "image", "re-train or re-export it with this wavegrad"):
        model = ImageUNet(ImageUNetConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(weights)
        schedule = NoiseSchedule.from_dict(ckpt["schedule"])
    try:
        model = model.to(device)
    except (RuntimeError, AssertionError) as e:  # e.g. cuda asked for on a CPU-only build
        raise UserInputError(f"cannot use device {device} ({first_line(e)[:100]})") from None
    return model.eval(), schedule, dict(ckpt.get("dataset") or {})


@torch.no_grad()
def image_nll(model: ImageUNet, schedule: NoiseSchedule, images: np.ndarray, steps: int | None = None, *,
              fixed_variance: bool = False, batch_size: int = 64, seed: int = 0,
              progress: bool = False) -> dict[str, float]:
    """Bits per dimension of uint8 ``images [N, H, W(, C)]`` under ``model``: the variational bound of the model
    sampled over ``schedule`` respaced to ``steps`` (Ho et al. 2020, eq. 5, with the 8-bit discretised decoder;
    Nichol & Dhariwal 2021 report it with the full schedule). A learned-variance model uses its variances
    unless ``fixed_variance`` (then beta~, the fixed choice of Ho et al.). A class-conditional model is
    scored unconditionally (the null label). Returns the mean, its standard error and the prior term's mean."""
    from .data.images import ImageDataset
    from .diffusion.vlb import nll_bpd
    sched = schedule if steps is None else schedule.respace(steps)
    ds = ImageDataset(images, np.zeros(len(images), dtype=np.int64), pad_to=model.cfg.image_size)
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    denoise = guided_denoiser(model)

    def scored(x, level):
        out = prediction_of(denoise(x, level))
        return Prediction(out.eps) if fixed_variance else out

    totals, priors = [], []
    for start in range(0, len(ds), batch_size):
        x0 = torch.stack([ds[(i, 0)]["x"] for i in range(start, min(start + batch_size, len(ds)))]).to(device)
        res = nll_bpd(scored, x0, sched, generator=g, progress=progress)
        totals.append(res["total"])
        priors.append(res["prior"])
    total = torch.cat(totals)
    se = float(total.std() / math.sqrt(len(total))) if len(total) > 1 else float("nan")
    return {"bits_per_dim": float(total.mean()), "se": se, "prior_bits_per_dim": float(torch.cat(priors).mean()),
            "steps": len(sched), "images": len(total)}


@torch.no_grad()
def inpaint_images(model: ImageUNet, train_schedule: NoiseSchedule, image: np.ndarray, mask: np.ndarray, n: int,
                   steps: int | None = None, *, sampler: str = "ddpm", nfe: int | None = None,
                   schedule_kind: str | None = None, eta: float | None = None, jump_length: int = 1,
                   jump_n_sample: int = 1, guidance: float = 0.0, labels: torch.Tensor | None = None,
                   seed: int = 0, progress: bool = False, callback=None, **options) -> np.ndarray:
    """``n`` completions ``uint8 [n, H, W, C]`` of the uint8 ``image [H, W(, C)]`` whose ``mask [H, W]`` (True =
    keep) pixels are kept exactly: :func:`wavegrad.diffusion.inpaint` with ``sampler`` (ancestral DDPM by default;
    RePaint's jumps with ``jump_length`` / ``jump_n_sample``), class labels and guidance as :func:`sample_images`."""
    from .diffusion import inpaint
    cfg = model.cfg
    image = np.asarray(image)
    image = image[..., None] if image.ndim == 2 else image
    if image.shape != (cfg.image_size, cfg.image_size, cfg.in_channels) or image.dtype != np.uint8:
        raise UserInputError(f"the image is {image.dtype} {image.shape}, the model draws uint8 "
                             f"{cfg.image_size}x{cfg.image_size}x{cfg.in_channels}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != image.shape[:2]:
        raise UserInputError(f"the mask is {'x'.join(map(str, mask.shape))}, the image {image.shape[0]}x{image.shape[1]}: "
                             "give a mask of the image's height and width")
    if mask.all() or not mask.any():
        raise UserInputError("the mask keeps every pixel (nothing to inpaint)" if mask.all() else
                             "the mask keeps no pixel: that is sampling, not inpainting (use wavegrad sample)")
    if cfg.num_classes and labels is None:
        labels = torch.arange(n) % cfg.num_classes
    plan = SamplingPlan.build(train_schedule, schedule_kind, steps, nfe=nfe, eta=eta, sampler=sampler, **options)
    device = next(model.parameters()).device
    x_known = (torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1.0).to(device)      # [C, H, W]
    keep = torch.from_numpy(mask).to(device)[None, None]                                         # [1, 1, H, W]
    y = labels.to(device) if labels is not None else None
    x = inpaint(guided_denoiser(model, y, guidance), x_known.expand(n, -1, -1, -1), keep, plan,
                jump_length=jump_length, jump_n_sample=jump_n_sample, generator=torch.Generator().manual_seed(seed),
                clip_x0=1.0, progress=progress, callback=callback)
    return to_uint8(x)


def read_png(path: str | Path) -> np.ndarray:
    """A PNG (or any image Pillow reads) as uint8 ``[H, W]`` (grey) or ``[H, W, C]``; a one-line error naming the
    file otherwise."""
    try:
        from PIL import Image
    except ImportError:
        raise UserInputError("reading images needs Pillow: pip install pillow") from None
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            gray = im.mode in ("1", "L", "LA", "I", "I;16")
            return np.asarray(im.convert("L" if gray else "RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as e:
        raise UserInputError(f"cannot read {path} as an image ({first_line(e)})") from None


def export_image_checkpoint(path: str | Path | dict, folder: str | Path) -> Path:
    """An image checkpoint's (a path, or its loaded entries) EMA weights and configs as ``folder/model.safetensors`` +
    ``config.json``."""
    ckpt = path if isinstance(path, dict) else load_family_checkpoint(find_checkpoint(path), FAMILY, "an image")
    config = {"family": FAMILY, "model_config": ckpt["model_config"], "schedule": ckpt["schedule"],
              "dataset": ckpt.get("dataset") or {}}
    return save_pretrained_folder(folder, ckpt["ema"]["shadow"], config)
