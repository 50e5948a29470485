"""The WaveGrad denoiser: eps_theta(y_n, sqrt(alpha_bar_n), mel) (Chen et al. 2020, arXiv 2009.00713).

Architecture (Fig. 3): the log-mel ``[B, n_mels, frames]`` goes through a 3x1 conv and is upsampled by
a stack of UBlocks (Fig. 4) to the waveform rate; the noisy waveform ``y_n [B, T]`` goes through a 5x1
conv and a stack of DBlocks (Fig. 5) down to the mel-side rates; at every rate a FiLM module (Fig. 6)
turns the downsampled signal plus the positional encoding of the noise level into (shift, scale)
that modulate the UBlock at that rate. A final 3x1 conv gives eps_hat ``[B, T]``.

Departures from the paper, and why:

* **Hop 256 by default.** The paper's mels have hop 300 at 24 kHz (factors 5,5,3,2,2); our default mel
  is HiFi-GAN's (hop 256 at 22.05 kHz), so the default factors are 4,4,4,2,2. The DBlock factors are
  the reverse of the UBlock factors without the first one, as in Fig. 3 (2,2,3,5 for hop 300).
* **Downsampling = average over each factor-sized window.** Fig. 5 only says "Downsample"; a box
  filter is parameter-free like decimation but does not alias the noisy input into the FiLM path.
* **Initialisation** (the paper does not state one): every conv is orthogonal with zero bias (norm-preserving,
  so activations neither vanish nor explode through the 30-odd convs of the UBlock path), as in common
  re-implementations, except the output conv, scaled by ``OUTPUT_INIT_GAIN`` so eps_hat starts near 0;
  the FiLM *scale* bias starts at 1 so that at initialisation the modulation is centred on the identity
  instead of multiplying every UBlock by zero-mean noise. No weight is zero-initialised: a zero output
  conv or FiLM conv would block the gradient of every parameter behind it on the first step.
* **Large.** As we read the paper, Large (23M) keeps Base's layout and adds a UBlock without upsampling
  (factor 1) after each upsampling UBlock. The extra block reuses the FiLM outputs of its rate
  (``ublocks_per_scale=2``); with its own FiLMs the count would be ~27.7M instead of the paper's 23M.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..config import from_dict
from ..errors import UserInputError
from .embedding import noise_level_embedding
from .layers import Conv, body_format

LEAKY_SLOPE = 0.2  # LeakyReLU slope used throughout Figs. 4-6
# The orthogonal body leaves eps_hat with a std of a few units at init; an L1 loss of ~5 then
# made the first lr-1e-3 Adam steps of the quick preset overshoot to losses of 30-120. A small
# output gain starts eps_hat near 0 (loss ≈ E|eps| = 0.8) while every weight still gets a gradient.
OUTPUT_INIT_GAIN = 0.01

_BASE_UP_CHANNELS = (512, 512, 256, 128, 128)
_BASE_DILATIONS = ((1, 2, 1, 2), (1, 2, 1, 2), (1, 2, 4, 8), (1, 2, 4, 8), (1, 2, 4, 8))
_BASE_DOWN_CHANNELS = (32, 128, 128, 256, 512)  # [0]: 5x1 input conv; [1:]: DBlock outputs
_KNOWN_FACTORS = {256: (4, 4, 4, 2, 2), 300: (5, 5, 3, 2, 2)}


def suggest_factors(hop_length: int, n: int) -> tuple[int, ...]:
    """Split ``hop_length`` into ``n`` factors, as even as its prime factors allow, largest first."""
    primes, rest, p = [], hop_length, 2
    while p * p <= rest:
        while rest % p == 0:
            primes.append(p)
            rest //= p
        p += 1
    if rest > 1:
        primes.append(rest)
    slots = [1] * n
    for q in sorted(primes, reverse=True):
        slots[slots.index(min(slots))] *= q
    return tuple(sorted(slots, reverse=True))


def _default_factors(hop_length: int, n: int = 5) -> tuple[int, ...]:
    return _KNOWN_FACTORS.get(hop_length) or suggest_factors(hop_length, n)


@dataclass
class WaveGradConfig:
    """Hyper-parameters of the WaveGrad network. Use the presets :meth:`base`, :meth:`large`, :meth:`tiny`.

    ``upsample_factors[i]`` is the upsampling of UBlock ``i`` (mel side first); their product must equal
    the mel hop ``hop_length``. ``downsample_channels[0]`` is the width of the 5x1 input conv and
    ``downsample_channels[j]`` the output width of DBlock ``j``; the FiLM feeding UBlock ``i`` reads
    ``downsample_channels[-1 - i]``.
    """

    n_mels: int = 80
    hop_length: int = 256
    upsample_factors: tuple[int, ...] = (4, 4, 4, 2, 2)
    upsample_channels: tuple[int, ...] = _BASE_UP_CHANNELS
    upsample_dilations: tuple[tuple[int, ...], ...] = _BASE_DILATIONS
    downsample_channels: tuple[int, ...] = _BASE_DOWN_CHANNELS
    dblock_dilations: tuple[int, ...] = (1, 2, 4)
    mel_channels: int = 768
    ublocks_per_scale: int = 1
    learn_sigma: bool = False   # a second output channel v: Improved DDPM's learned reverse variance

    def __post_init__(self) -> None:
        # Normalise lists (e.g. from JSON) to tuples so configs compare and hash predictably.
        self.upsample_factors = tuple(int(f) for f in self.upsample_factors)
        self.upsample_channels = tuple(int(c) for c in self.upsample_channels)
        self.upsample_dilations = tuple(tuple(int(d) for d in ds) for ds in self.upsample_dilations)
        self.downsample_channels = tuple(int(c) for c in self.downsample_channels)
        self.dblock_dilations = tuple(int(d) for d in self.dblock_dilations)
        self._validate()

    def _validate(self) -> None:
        n = len(self.upsample_factors)
        for name in ("n_mels", "hop_length", "mel_channels", "ublocks_per_scale"):
            if int(getattr(self, name)) <= 0:
                raise UserInputError(f"WaveGradConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if n == 0 or any(f <= 0 for f in self.upsample_factors):
            raise UserInputError(f"WaveGradConfig.upsample_factors must be positive integers, got {self.upsample_factors}")
        if math.prod(self.upsample_factors) != self.hop_length:
            raise UserInputError(
                f"WaveGradConfig.upsample_factors {self.upsample_factors} multiply to "
                f"{math.prod(self.upsample_factors)}, but the mel hop_length is {self.hop_length}: the network "
                f"must upsample one mel frame to exactly one hop of samples. Use factors multiplying to "
                f"{self.hop_length}, e.g. upsample_factors={suggest_factors(self.hop_length, n)}, or set "
                f"hop_length={math.prod(self.upsample_factors)} if your mels really have that hop")
        for name in ("upsample_channels", "upsample_dilations", "downsample_channels"):
            if len(getattr(self, name)) != n:
                raise UserInputError(f"WaveGradConfig.{name} has {len(getattr(self, name))} entries but there are "
                                 f"{n} upsample_factors; give one entry per UBlock")
        if any(len(ds) != 4 for ds in self.upsample_dilations):
            raise UserInputError("each WaveGradConfig.upsample_dilations entry needs 4 dilations "
                             f"(one per 3x1 conv of a UBlock, Fig. 4), got {self.upsample_dilations}")
        if min(self.upsample_channels + self.downsample_channels) <= 0 or not self.dblock_dilations:
            raise UserInputError("WaveGradConfig channel counts must be positive and dblock_dilations non-empty")

    # ---- presets -------------------------------------------------------------------------------
    @classmethod
    def base(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "WaveGradConfig":
        """WaveGrad Base (paper Sec. 5 / Fig. 3, ~15M parameters). ``base(n_mels=128, hop_length=300)``
        is the paper's own 24 kHz setting (pair it with ``MelConfig.paper_24k()``)."""
        factors = tuple(upsample_factors) if upsample_factors else _default_factors(hop_length)
        return cls(n_mels=n_mels, hop_length=hop_length, upsample_factors=factors)

    @classmethod
    def large(cls, n_mels: int = 80, hop_length: int = 256,
              upsample_factors: Sequence[int] | None = None) -> "WaveGradConfig":
        """WaveGrad Large (~23M): Base plus one factor-1 UBlock after each upsampling UBlock."""
        return dataclasses.replace(cls.base(n_mels, hop_length, upsample_factors), ublocks_per_scale=2)

    @classmethod
    def tiny(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "WaveGradConfig":
        """Base's layout at a quarter of its widths (< 1M parameters): a CPU quick start, not a vocoder
        of quality."""
        factors = tuple(upsample_factors) if upsample_factors else _default_factors(hop_length)
        return cls(n_mels=n_mels, hop_length=hop_length, upsample_factors=factors,
                   upsample_channels=(128, 128, 64, 32, 32), downsample_channels=(8, 32, 32, 64, 128),
                   mel_channels=128)

    # ---- (de)serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: ([list(x) for x in v] if k == "upsample_dilations" else list(v) if isinstance(v, tuple) else v)
                for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WaveGradConfig":
        return from_dict(cls, dict(d))


# ---- building blocks ------------------------------------------------------------------------------
# Every block works on ``[B, C, 1, L]`` tensors: the body has one layout, written once. Its memory format
# (time-major "channels-last" or channels-first) is chosen at one point, WaveGrad.denoise's entry, and
# every op below (a 1xk conv2d, nearest upsampling by (1, f), average pooling by (1, f), elementwise
# ops) keeps the format of its input.
def _conv(c_in: int, c_out: int, kernel: int, dilation: int = 1) -> Conv:
    """'Same'-length conv with orthogonal weight and zero bias (see the module docstring)."""
    conv = Conv(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
    nn.init.orthogonal_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


def _dilated_stack(c_in: int, c_out: int, dilations: Sequence[int]) -> nn.ModuleList:
    """The 3x1 convs of a UBlock / DBlock: c_in -> c_out at ``dilations[0]``, then c_out -> c_out."""
    return nn.ModuleList([_conv(c_in, c_out, 3, dilations[0])] + [_conv(c_out, c_out, 3, d) for d in dilations[1:]])


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, LEAKY_SLOPE)


def _lrelu_(x: torch.Tensor) -> torch.Tensor:
    """In-place LReLU, only for fresh temporaries that nothing else reads."""
    return F.leaky_relu_(x, LEAKY_SLOPE)


class FiLM(nn.Module):
    """Fig. 6: conv3 -> LReLU -> + PE(noise level) -> conv3 -> (shift, scale), at the signal's rate."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.input_conv = _conv(c_in, c_in, 3)
        self.output_conv = _conv(c_in, 2 * c_out, 3)
        with torch.no_grad():  # scale (second half) starts around 1: identity-centred modulation
            self.output_conv.bias[c_out:].fill_(1.0)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, c_in, 1, L]; emb: [B, c_in] = PE(5000 * noise_level), broadcast over time
        h = torch.add(_lrelu_(self.input_conv(x)), emb[:, :, None, None].to(x.dtype))  # [B, c_in, 1, L]
        # Two convs over the two halves of the output weight rather than one conv and a chunk: in the
        # time-major format the halves of one output would interleave in memory and slow every addcmul.
        c_out = self.output_conv.out_channels // 2
        return self.output_conv(h, slice(None, c_out)), self.output_conv(h, slice(c_out, None))


class UBlock(nn.Module):
    """Fig. 4: upsample by ``factor``; two residual stages of 3x1 dilated convs, FiLM after each first conv
    (``shift + scale * h``) and before the second stage."""

    def __init__(self, c_in: int, c_out: int, factor: int, dilations: Sequence[int]):
        super().__init__()
        self.factor = factor
        self.residual = _conv(c_in, c_out, 1)
        self.convs = _dilated_stack(c_in, c_out, dilations)

    def _up(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.factor == 1 else F.interpolate(x, scale_factor=(1, self.factor), mode="nearest")

    def forward(self, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        # x: [B, c_in, 1, L]; shift, scale: [B, c_out, 1, L * factor]
        # Same values as  res = residual(up(x)); h = c1(up(lrelu(x))); h = c2(lrelu(shift + scale * h)); ...
        # but: the 1x1 residual conv runs at the low rate (a per-position linear map commutes with nearest
        # upsampling: identical numbers, 1/factor of its FLOPs); LReLU runs before upsampling (elementwise
        # commutes too: factor x less work); FiLM's shift + scale * h is one fused addcmul, and the LReLU
        # after it works in place on that fresh temporary (autograd allows it: LReLU's backward reads its
        # output, addcmul's reads only its inputs).
        c1, c2, c3, c4 = self.convs
        res = self._up(self.residual(x))                                                # [B, c_out, 1, L*f]
        h = c1(self._up(_lrelu(x)))                                                     # [B, c_out, 1, L*f]
        h = c2(_lrelu_(torch.addcmul(shift, scale, h)))
        x = res.add_(h)                                                                 # res is a fresh temporary
        h = c3(_lrelu_(torch.addcmul(shift, scale, x)))
        h = c4(_lrelu_(torch.addcmul(shift, scale, h)))
        return x + h                                                                    # [B, c_out, 1, L*f]


class DBlock(nn.Module):
    """Fig. 5: 1x1 residual conv then downsample; main path downsample -> (LReLU -> dilated 3x1 conv) x3."""

    def __init__(self, c_in: int, c_out: int, factor: int, dilations: Sequence[int]):
        super().__init__()
        self.factor = factor
        self.residual = _conv(c_in, c_out, 1)
        self.convs = _dilated_stack(c_in, c_out, dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: [B, c_in, 1, L] -> [B, c_out, 1, L / factor]
        # residual(down(x)) == down(residual(x)) (a 1x1 conv and a box average are both linear per position,
        # up to float rounding), at 1/factor of the residual conv's FLOPs and reusing down(x).
        h = x if self.factor == 1 else F.avg_pool2d(x, (1, self.factor))
        res = self.residual(h)
        for conv in self.convs:
            h = conv(_lrelu(h))
        return h.add_(res)


# ---- the network ----------------------------------------------------------------------------------
class WaveGrad(nn.Module):
    """``WaveGrad(cfg)(x_noisy [B, T], noise_level [B], mel [B, n_mels, frames]) -> eps_hat [B, T]``,
    ``T = frames * hop_length``; ``noise_level`` is the continuous sqrt(alpha_bar) in (0, 1].

    For sampling, :meth:`noise_embeddings` (depends only on the level) and :meth:`encode_mel`
    (depends only on the mel) can be computed once and passed to :meth:`denoise`.

    ``channels_last`` (runtime, not saved) picks the memory layout of the body: ``None`` (default)
    runs CPU inference channels-last and everything else channels-first; the values are the same.
    """

    # Receptive half-width of one network call, in mel frames: eps at a sample depends on x and the mel within
    # ±5 frames for the default factors and dilations (measured by autograd in tests/test_wavegrad_model.py);
    # 8 leaves a margin. Long-form windows keep this much context beyond every seam.
    CONTEXT_FRAMES = 8

    def __init__(self, cfg: WaveGradConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else WaveGradConfig()
        n = len(cfg.upsample_factors)
        down, up = cfg.downsample_channels, cfg.upsample_channels
        self.input_conv = _conv(1, down[0], 5)                                          # y_n -> [B, d0, T]
        # DBlock j reads rate T / prod(factors[n-j+1:]) and divides it by factors[n-j] (Fig. 3).
        self.dblocks = nn.ModuleList(
            DBlock(down[j - 1], down[j], cfg.upsample_factors[n - j], cfg.dblock_dilations) for j in range(1, n))
        # FiLM i modulates UBlock i; it reads the downsampled signal at UBlock i's output rate.
        self.films = nn.ModuleList(FiLM(down[n - 1 - i], up[i]) for i in range(n))
        self.mel_conv = _conv(cfg.n_mels, cfg.mel_channels, 3)
        self.ublocks = nn.ModuleList()
        c_in = cfg.mel_channels
        for i in range(n):
            stage = [UBlock(c_in, up[i], cfg.upsample_factors[i], cfg.upsample_dilations[i])]
            stage += [UBlock(up[i], up[i], 1, cfg.upsample_dilations[i]) for _ in range(cfg.ublocks_per_scale - 1)]
            self.ublocks.append(nn.ModuleList(stage))
            c_in = up[i]
        self.output_conv = _conv(c_in, 2 if cfg.learn_sigma else 1, 3)
        self.channels_last: bool | None = None  # None: automatic (see _channels_last); not saved
        with torch.no_grad():  # eps_hat starts near 0 (std ~0.05), not at the body's std of a few units
            self.output_conv.weight.mul_(OUTPUT_INIT_GAIN)

    def _channels_last(self, x: torch.Tensor) -> bool:
        """Whether the body runs time-major for this input (see :func:`layers.body_format`)."""
        return body_format(x, self.channels_last) == torch.channels_last

    # -- conditioning that can be computed once per sampling step / per utterance --
    def noise_embeddings(self, noise_level: torch.Tensor) -> list[torch.Tensor]:
        """PE(5000 * noise_level) for every FiLM: a list of ``[B, c_i]`` (cache per sampling step)."""
        dims = [film.input_conv.in_channels for film in self.films]
        cache = {d: noise_level_embedding(noise_level, d) for d in set(dims)}
        return [cache[d] for d in dims]

    def encode_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, frames] -> [B, mel_channels, 1, frames]`` (independent of the noise: cache it)."""
        return self.mel_conv(mel[:, :, None])

    def denoise(self, x_noisy: torch.Tensor, noise_embs: Sequence[torch.Tensor],
                mel_features: torch.Tensor) -> torch.Tensor:
        """The network body on pre-computed conditioning; no input checks (use ``forward`` for those)."""
        # The one layout decision: every tensor of the body is [B, C, 1, L], time-major or channels-first.
        fmt = body_format(x_noisy, self.channels_last)
        h = self.input_conv(x_noisy[:, None, None]).contiguous(memory_format=fmt)      # [B, d0, 1, T]
        skips = [h]
        for dblock in self.dblocks:
            h = dblock(h)                                                               # [B, d_j, 1, T / ...]
            skips.append(h)
        x = mel_features.contiguous(memory_format=fmt)                                  # [B, mel_ch, 1, frames]
        for i, (film, stage) in enumerate(zip(self.films, self.ublocks)):
            shift, scale = film(skips[-1 - i], noise_embs[i])                           # [B, up_i, 1, L_i]
            for ublock in stage:
                x = ublock(x, shift, scale)                                             # [B, up_i, 1, L_i]
        out = self.output_conv(x).reshape(x.shape[0], -1, x_noisy.shape[-1])          # [B, 1 or 2, T]
        return (out[:, 0], out[:, 1]) if self.cfg.learn_sigma else out[:, 0]            # eps [B, T] (, v [B, T])

    def forward(self, x_noisy: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        noise_level = check_vocoder_inputs(self.cfg, x_noisy, noise_level, mel, "WaveGrad")
        return self.denoise(x_noisy, self.noise_embeddings(noise_level), self.encode_mel(mel))

def check_vocoder_inputs(cfg, x: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor, name: str) -> torch.Tensor:
    """Shapes of a vocoder call ``(x_noisy [B, T], noise_level [B], mel [B, n_mels, frames])`` against ``cfg``'s
    n_mels and hop; one-line errors that say what to change. Returns ``noise_level`` as ``[B]``."""
    if mel.dim() != 3:
        raise UserInputError(f"mel must be [B, n_mels, frames], got shape {tuple(mel.shape)}; "
                             "add a batch dimension with mel.unsqueeze(0)")
    if mel.shape[1] != cfg.n_mels:
        raise UserInputError(
            f"mel has {mel.shape[1]} bands but this {name} expects n_mels={cfg.n_mels}; compute the mel "
            f"with MelConfig(n_mels={cfg.n_mels}, hop_length={cfg.hop_length}) (mels from another front "
            "end do not vocode), or train a model with the matching n_mels")
    if x.dim() != 2:
        raise UserInputError(f"x_noisy must be [B, T], got shape {tuple(x.shape)}")
    frames, expected = mel.shape[2], mel.shape[2] * cfg.hop_length
    if frames == 0:
        raise UserInputError("mel has 0 frames; give at least one frame (hop_length samples of audio)")
    if x.shape[1] != expected:
        hint = ""
        if frames and x.shape[1] % frames == 0:
            hint = f" (that is {x.shape[1] // frames} samples per frame: a mel with a different hop?)"
        raise UserInputError(
            f"x_noisy has T={x.shape[1]} samples but the mel has {frames} frames x hop {cfg.hop_length} "
            f"= {expected}{hint}; crop or pad the audio to T = frames * {cfg.hop_length}")
    if x.shape[0] != mel.shape[0]:
        raise UserInputError(f"batch sizes differ: x_noisy has {x.shape[0]}, mel has {mel.shape[0]}")
    if noise_level.dim() == 0:
        noise_level = noise_level.expand(x.shape[0])
    if noise_level.shape != (x.shape[0],):
        raise UserInputError(f"noise_level must be [B] = [{x.shape[0]}] (one sqrt(alpha_bar) per example), "
                             f"got shape {tuple(noise_level.shape)}")
    return noise_level


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
