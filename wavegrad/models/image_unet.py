"""The DDPM image UNet: eps_theta(x_noisy, sqrt(alpha_bar), label) (Ho et al. 2020, arXiv 2006.11239, App. B).

Architecture (the authors' ``diffusion_tf/models/unet.py``, as in improved-diffusion and diffusers'
``UNet2DModel`` ports): a 3x3 input conv; per resolution level ``num_res_blocks`` residual blocks
(GroupNorm -> SiLU -> 3x3 conv, + a projection of the noise embedding, GroupNorm -> SiLU -> dropout ->
3x3 conv, 1x1 skip when the width changes), single-head self-attention after each block at the
resolutions in ``attn_resolutions``, a stride-2 3x3 conv between levels; a middle of
block / attention / block; the mirrored up path with ``num_res_blocks + 1`` blocks per level, each
reading a skip connection, nearest-neighbour x2 + 3x3 conv between levels; GroupNorm -> SiLU -> 3x3 conv out.
``cifar10()`` is the paper's CIFAR-10 model (35.7M parameters).

Departures from the paper, and why:

* **Continuous noise level, not a step index.** The sinusoidal embedding reads ``5000 * sqrt(alpha_bar)``
  (:func:`noise_level_embedding`, the vocoder's convention) instead of the integer t, so one network
  samples with any schedule (the project's one idea, README's "The diffusion core"). The embedding MLP is the paper's
  (dense 4C -> SiLU -> dense 4C).
* **Class conditioning** (optional, ``num_classes > 0``): a learned embedding of ``num_classes + 1``
  labels is added to the noise embedding; the extra label ``num_classes`` is the "null" label of
  classifier-free guidance (Ho & Salimans 2022). The task drops labels to it with probability p during
  training; :func:`guided_denoiser` builds eps = (1 + w)·eps(x, y) − w·eps(x, null) for the shared ``sample``.
* **Initialisation** as the TF code: Xavier-uniform (variance scaling 1, fan_avg) everywhere with zero
  biases, except the last conv of every residual block, every attention output and the output conv,
  scaled by ``ZERO_INIT_SCALE`` (their ``init_scale=1e-10``): each block starts as the identity.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn
from torch.nn import functional as F

from ..config import from_dict, param
from ..diffusion.prediction import Prediction, prediction_of
from ..errors import UserInputError
from .embedding import noise_level_embedding

ZERO_INIT_SCALE = 1e-10  # variance scale of the "zero" layers (DDPM's default_init(1e-10))


@dataclass
class ImageUNetConfig:
    """Hyper-parameters of :class:`ImageUNet`. Presets: :meth:`cifar10` (the paper), :meth:`mnist`, :meth:`tiny`.

    ``image_size`` must be divisible by ``2 ** (len(channel_mults) - 1)``; ``attn_resolutions`` are
    feature-map sizes (32x32 input: 32, 16, 8, 4 at mults of length 4); ``num_classes = 0`` is
    unconditional. Every width ``base_channels * m`` must be divisible by ``norm_groups``.
    """

    image_size: int = param(32, "image height and width", cli=False)
    in_channels: int = param(3, "image channels", cli=False)
    base_channels: int = param(128, "width C of the first level", paper="128 (CIFAR-10)")
    channel_mults: tuple[int, ...] = param((1, 2, 2, 2), "width multiplier of each resolution level",
                                           paper="1,2,2,2 (CIFAR-10)")
    num_res_blocks: int = param(2, "residual blocks per level (the up path has one more)", paper="2")
    attn_resolutions: tuple[int, ...] = param((16,), "feature-map sizes with self-attention", paper="16")
    dropout: float = param(0.1, "dropout in the residual blocks", paper="0.1 (CIFAR-10)")
    norm_groups: int = param(32, "GroupNorm groups", paper="32")
    num_classes: int = param(0, "class labels (0 = unconditional); set from the data set", cli=False)
    learn_sigma: bool = param(False, "also predict the reverse variance v per pixel (Improved DDPM) and train with the "
                                     "hybrid loss L_simple + 0.001 L_vlb", paper="off (Ho et al. 2020); on "
                                     "(Nichol & Dhariwal 2021)", flag="learn-sigma")

    def __post_init__(self) -> None:
        self.channel_mults = tuple(int(m) for m in self.channel_mults)
        self.attn_resolutions = tuple(int(r) for r in self.attn_resolutions)
        self._validate()

    def _validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise UserInputError(f"bad ImageUNetConfig: {msg}")
        for name in ("image_size", "in_channels", "base_channels", "num_res_blocks", "norm_groups"):
            need(isinstance(getattr(self, name), int) and getattr(self, name) >= 1,
                 f"{name} must be a positive integer, got {getattr(self, name)!r}")
        need(len(self.channel_mults) >= 1 and min(self.channel_mults) >= 1,
             f"channel_mults must be positive integers, got {self.channel_mults}")
        levels = len(self.channel_mults)
        need(self.image_size % 2 ** (levels - 1) == 0,
             f"image_size {self.image_size} must be divisible by 2^{levels - 1} = {2 ** (levels - 1)} "
             f"({levels} levels halve it {levels - 1} times); pad the images or use fewer channel_mults")
        for m in self.channel_mults:
            need((self.base_channels * m) % self.norm_groups == 0,
                 f"width {self.base_channels * m} (base_channels {self.base_channels} x {m}) is not divisible by "
                 f"norm_groups {self.norm_groups}")
        sizes = self.resolutions()
        bad = [r for r in self.attn_resolutions if r not in sizes]
        need(not bad, f"attn_resolutions {bad} are not feature-map sizes of this net (those are {sizes})")
        need(0.0 <= self.dropout < 1.0, f"dropout must lie in [0, 1), got {self.dropout}")
        need(isinstance(self.num_classes, int) and self.num_classes >= 0,
             f"num_classes must be >= 0 (0 = unconditional), got {self.num_classes!r}")

    def resolutions(self) -> list[int]:
        """Feature-map size of each level, input level first."""
        return [self.image_size // 2 ** i for i in range(len(self.channel_mults))]

    # ---- presets -------------------------------------------------------------------------------
    @classmethod
    def cifar10(cls, num_classes: int = 0) -> "ImageUNetConfig":
        """Ho et al. 2020's CIFAR-10 model: 128 channels, mults (1,2,2,2), 2 blocks per level, attention
        at 16x16, dropout 0.1 (35.7M parameters unconditional)."""
        return cls(image_size=32, in_channels=3, base_channels=128, channel_mults=(1, 2, 2, 2), num_res_blocks=2,
                   attn_resolutions=(16,), dropout=0.1, norm_groups=32, num_classes=num_classes)

    @classmethod
    def mnist(cls, num_classes: int = 0) -> "ImageUNetConfig":
        """28x28x1 at native size: levels 28, 14, 7 (mults (1,2,2)), 64 base channels, attention at 14x14."""
        return cls(image_size=28, in_channels=1, base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2,
                   attn_resolutions=(14,), dropout=0.1, norm_groups=32, num_classes=num_classes)

    @classmethod
    def tiny(cls, image_size: int = 32, in_channels: int = 3, num_classes: int = 0) -> "ImageUNetConfig":
        """A CPU quick start / test net (0.70M parameters at 32x32x3): 32 channels, two levels, one block each,
        attention at the lower level."""
        return cls(image_size=image_size, in_channels=in_channels, base_channels=32, channel_mults=(1, 2),
                   num_res_blocks=1, attn_resolutions=(image_size // 2,), dropout=0.0, norm_groups=8,
                   num_classes=num_classes)

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ImageUNetConfig":
        return from_dict(cls, dict(d))


# ---- building blocks ------------------------------------------------------------------------------
def _init(layer: nn.Module, scale: float = 1.0) -> nn.Module:
    """Variance scaling (fan_avg, uniform) with ``scale``, zero bias: DDPM's ``default_init(scale)``."""
    nn.init.xavier_uniform_(layer.weight, gain=math.sqrt(scale))
    nn.init.zeros_(layer.bias)
    return layer


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, scale: float = 1.0) -> nn.Conv2d:
    return _init(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), scale)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = _conv(c_in, c_out)
        self.emb_proj = _init(nn.Linear(emb_dim, c_out))
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _conv(c_out, c_out, scale=ZERO_INIT_SCALE)
        self.skip = _conv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        # x: [B, c_in, H, W]; emb: [B, emb_dim] (already through SiLU)
        h = self.conv1(F.silu(self.norm1(x)))                                            # [B, c_out, H, W]
        h = h + self.emb_proj(emb)[:, :, None, None].to(h.dtype)
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        return self.skip(x) + h


class AttnBlock(nn.Module):
    """Single-head self-attention over the H·W positions (DDPM's ``attn_block``), residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = _conv(channels, 3 * channels, 1)
        self.proj = _conv(channels, channels, 1, scale=ZERO_INIT_SCALE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(B, 3, C, H * W).transpose(2, 3).unbind(1)  # 3 x [B, HW, C]
        h = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]         # [B, HW, C]
        return x + self.proj(h.transpose(1, 2).reshape(B, C, H, W))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = _conv(channels, channels, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)                                                               # [B, C, H/2, W/2]


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = _conv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))                # [B, C, 2H, 2W]


# ---- the network ----------------------------------------------------------------------------------
class ImageUNet(nn.Module):
    """``ImageUNet(cfg)(x [B, C, H, W], noise_level [B], labels [B] | None) -> eps_hat [B, C, H, W]``.

    ``noise_level`` is the continuous sqrt(alpha_bar) in (0, 1]. ``labels`` are class indices in
    ``[0, num_classes]`` (``num_classes`` = the null label); ``None`` on a conditional net means
    "unconditional" (every label null). An unconditional net refuses labels.
    """

    def __init__(self, cfg: ImageUNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else ImageUNetConfig.cifar10()
        ch, emb_dim, g = cfg.base_channels, 4 * cfg.base_channels, cfg.norm_groups
        self.emb = nn.Sequential(_init(nn.Linear(ch, emb_dim)), nn.SiLU(), _init(nn.Linear(emb_dim, emb_dim)))
        self.label_emb = nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes else None
        self.input_conv = _conv(cfg.in_channels, ch)
        sizes = cfg.resolutions()
        attn = set(cfg.attn_resolutions)

        self.down = nn.ModuleList()           # flat list: ResBlock / AttnBlock-carrying stages and Downsamples
        skip_chs, c = [ch], ch
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.num_res_blocks):
                self.down.append(self._stage(c, ch * mult, sizes[level] in attn))
                c = ch * mult
                skip_chs.append(c)
            if level < len(cfg.channel_mults) - 1:
                self.down.append(Downsample(c))
                skip_chs.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, emb_dim, cfg.dropout, g), AttnBlock(c, g),
                                  ResBlock(c, c, emb_dim, cfg.dropout, g)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(self._stage(c + skip_chs.pop(), ch * mult, sizes[level] in attn))
                c = ch * mult
            if level > 0:
                self.up.append(Upsample(c))
        assert not skip_chs
        self.out_norm = nn.GroupNorm(g, c)
        self.out_conv = _conv(c, cfg.in_channels * (2 if cfg.learn_sigma else 1), scale=ZERO_INIT_SCALE)

    def _stage(self, c_in: int, c_out: int, with_attn: bool) -> nn.ModuleList:
        cfg = self.cfg
        blocks = [ResBlock(c_in, c_out, 4 * cfg.base_channels, cfg.dropout, cfg.norm_groups)]
        if with_attn:
            blocks.append(AttnBlock(c_out, cfg.norm_groups))
        return nn.ModuleList(blocks)

    @staticmethod
    def _run_stage(stage: nn.Module, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        if isinstance(stage, nn.ModuleList):
            for block in stage:
                h = block(h, emb) if isinstance(block, ResBlock) else block(h)
            return h
        return stage(h)

    @property
    def null_label(self) -> int:
        return self.cfg.num_classes

    def embed(self, noise_level: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """``[B]`` levels (and labels) -> the SiLU'd conditioning vector ``[B, 4C]`` every block reads."""
        e = self.emb(noise_level_embedding(noise_level, self.cfg.base_channels).to(self.input_conv.weight.dtype))
        if self.label_emb is not None:
            if labels is None:
                labels = torch.full_like(noise_level, self.null_label, dtype=torch.long)
            e = e + self.label_emb(labels)
        return F.silu(e)

    def forward(self, x: torch.Tensor, noise_level: torch.Tensor, labels: torch.Tensor | None = None):
        noise_level, labels = self._check_inputs(x, noise_level, labels)
        emb = self.embed(noise_level, labels)                                             # [B, 4C]
        h = self.input_conv(x)                                                            # [B, C, H, W]
        skips = [h]
        for stage in self.down:
            h = self._run_stage(stage, h, emb)
            skips.append(h)
        for block in self.mid:
            h = block(h, emb) if isinstance(block, ResBlock) else block(h)
        for stage in self.up:
            if isinstance(stage, nn.ModuleList):
                h = torch.cat([h, skips.pop()], dim=1)
            h = self._run_stage(stage, h, emb)
        out = self.out_conv(F.silu(self.out_norm(h)))                                     # [B, C_in (x2), H, W]
        return tuple(out.chunk(2, dim=1)) if self.cfg.learn_sigma else out                # eps (, v)

    def _check_inputs(self, x: torch.Tensor, noise_level: torch.Tensor, labels: torch.Tensor | None):
        cfg = self.cfg
        if x.dim() != 4:
            raise UserInputError(f"x must be [B, C, H, W], got shape {tuple(x.shape)}")
        if x.shape[1] != cfg.in_channels or x.shape[2] != cfg.image_size or x.shape[3] != cfg.image_size:
            raise UserInputError(f"x has shape {tuple(x.shape)} but this ImageUNet expects "
                                 f"[B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}]")
        B = x.shape[0]
        if noise_level.dim() == 0:
            noise_level = noise_level.expand(B)
        if noise_level.shape != (B,):
            raise UserInputError(f"noise_level must be [B] = [{B}] (one sqrt(alpha_bar) per image), "
                                 f"got shape {tuple(noise_level.shape)}")
        if labels is not None:
            if not cfg.num_classes:
                raise UserInputError("labels given to an unconditional ImageUNet (num_classes = 0); "
                                     "train with class conditioning or drop the labels")
            if labels.shape != (B,) or labels.dtype not in (torch.int64, torch.int32):
                raise UserInputError(f"labels must be integer [B] = [{B}], got {labels.dtype} {tuple(labels.shape)}")
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > cfg.num_classes):
                raise UserInputError(f"labels must lie in [0, {cfg.num_classes - 1}] "
                                     f"(or {cfg.num_classes} = the null label), got {labels.tolist()[:8]}")
            labels = labels.long()
        return noise_level, labels


def guided_denoiser(model: ImageUNet, labels: torch.Tensor | None = None, guidance: float = 0.0):
    """``denoise(x, noise_level) -> eps`` for the shared :func:`wavegrad.diffusion.sample`.

    Classifier-free guidance (Ho & Salimans 2022, eq. 6): eps = (1 + w)·eps(x, y) − w·eps(x, null),
    both halves in one batched call. ``guidance = 0`` is plain conditional sampling; ``labels=None``
    is unconditional (guidance then has nothing to act on and must be 0).
    """
    if guidance < 0 or not math.isfinite(guidance):
        raise UserInputError(f"guidance must be a finite number >= 0, got {guidance}")
    if labels is None:
        if guidance:
            raise UserInputError("guidance needs class labels (and a class-conditional model)")
        return lambda x, level: model(x, level)
    if model.cfg.num_classes == 0:
        raise UserInputError("this model is unconditional (num_classes = 0): it takes no labels or guidance")
    if guidance == 0:
        return lambda x, level: model(x, level, labels.to(x.device))

    def denoise(x: torch.Tensor, level: torch.Tensor):
        y = labels.to(x.device)
        null = torch.full_like(y, model.null_label)
        out = prediction_of(model(torch.cat([x, x]), torch.cat([level, level]), torch.cat([y, null])))
        eps_c, eps_u = out.eps.chunk(2)
        eps = (1.0 + guidance) * eps_c - guidance * eps_u
        return eps if out.v is None else Prediction(eps, out.v.chunk(2)[0])   # v: the conditional branch's
    return denoise
