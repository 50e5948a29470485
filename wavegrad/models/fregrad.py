"""The FreGrad denoiser (Nguyen et al., ICASSP 2024, arXiv 2401.10032; kaistmm/fregrad), on the continuous noise level.

FreGrad is a small DiffWave that runs on wavelet sub-bands. The waveform ``x [B, T]`` is split by one level of the
orthonormal Haar DWT into a low and a high band at half the audio rate (``[B, 2, T/2]``); the network works on those,
and its two output bands go back to the audio rate by the inverse DWT. The body is DiffWave's:

* a 1x1 input conv (2 bands -> C) and ReLU;
* ``residual_layers`` residual layers in dilation cycles of ``dilation_cycle`` (1, 2, ..., 2^(cycle-1), repeated);
  in each, the layer's projection of the noise embedding is added, the **frequency-aware dilated convolution**
  (FreConv, paper Fig. 3) plus the layer's 1x1 projection of the upsampled mel (n_mels -> 2C) feed the gated unit
  sigmoid(.)·tanh(.), and a 1x1 conv (C -> 2C) splits into the residual (added to the input, scaled by 1/sqrt(2))
  and the skip output;
* the skips are summed, scaled by 1/sqrt(L), and pass 1x1 conv -> ReLU -> 1x1 conv to 2 bands (weights
  zero-initialised), then the inverse DWT.

**FreConv.** The layer's features ``[B, C, L]`` (L = T/2) are themselves Haar-transformed along time into low and
high halves ``[B, C, L/2]`` each; the two are stacked as 2C channels and one dilated 3-tap conv (2C -> 4C, dilation
d) mixes them, so every output band sees both input bands; the first 2C output channels are the low band, the last
2C the high band, and the inverse DWT interleaves them back to ``[B, 2C, L]``. The conv thus runs at a quarter of
the audio rate: a dilation d spans 4d audio samples.

The mel is upsampled by DiffWave's transposed 2-D convs (:class:`~wavegrad.models.diffwave.MelUpsampler`) to the
band rate, hop/2 samples per frame (16·8 = 128 for hop 256, the reference's two layers exactly).

Base (paper §4.1 / the reference's params.py): C = 32, 30 layers, dilation cycle 7, 80 mels, hop 256:
**1,782,548 parameters, the reference model's count exactly** (paper: 1.78M). Per layer 26C² + (2·n_mels + 521)·C
(FreConv 24C² + 4C, noise projection 513C, mel projection (2·n_mels + 2)·C, output projection 2C² + 2C); once: the
input conv 3C, the embedding MLP 128 -> 512 -> 512 (328,704), skip C² + C, output 2C + 2, and the upsampler
(6s + 1 per factor s: 146 for 16·8).

Departures from the reference, and why:

* **Continuous noise level, not a step index.** The reference embeds the integer step (a 64-frequency table of
  ``step · 10^(4k/63)``, interpolated for fractional steps); here ``5000 · sqrt(alpha_bar)`` goes through
  ``noise_level_embedding`` (128 dimensions, as WaveGrad and our DiffWave), then the same two 512-unit FC layers
  with SiLU, so one trained FreGrad samples with any schedule and sampler. Same parameter count.
* **Waveform in, waveform out.** The reference network takes and returns the sub-bands (its trainer applies the
  DWT, its sampler the inverse); here both sit inside the network, so it has DiffWave's interface and the library's
  objectives, samplers and long-form windows apply unchanged. Because the Haar DWT is orthonormal this is the same
  model: white N(0, I) noise on the waveform is white N(0, I) noise on the bands, and the squared error of eps is
  the same summed over T samples or over 2 x T/2 band samples.
* **The prior is applied outside the network.** The reference uses PriorGrad's prior with separate per-band
  standard deviations; the library's priors (wavegrad/audio/priors.py) act on the waveform, outside the network.
  The reference's optional prior-as-conditioning inputs (``condition_prior``, ``condition_prior_global``, both off
  in its params) are not implemented.
* **No sampling-time post-processing.** The reference optionally filters both bands around the cut-off before the
  final inverse DWT (``remove_cutoff_alias``); that is a step of its sampler, not of the network, and is not here.
  Its zero-terminal-SNR schedule is likewise a schedule choice, outside the network.
* **Any even hop.** The reference hard-codes x16·x8 = 128 (hop 256). Here ``upsample_factors`` multiply to hop/2
  (default: two factors as even as hop/2 allows, factors of 1 dropped, e.g. 15·10 for hop 300); each transposed
  conv has DiffWave's kernel of twice its stride. When hop/2 is odd and the clip has an odd number of frames, the
  band length is odd: FreConv then pads one zero sample before its DWT and drops it after the inverse (what the
  reference's wavelet library does in its zero-padding mode).
* **The Haar transform is two lines here** (:func:`haar_dwt` / :func:`haar_idwt`), not the ``pytorch_wavelets``
  dependency; high = (even - odd)/sqrt(2). The sign of the high band is a convention the learned weights absorb.
* **learn_sigma** (not in the reference): the output conv has 4 channels, the second pair is Improved DDPM's v
  in band form, also taken back to the audio rate by the inverse DWT (a fixed orthonormal read-out).
* **The mel is upsampled once per utterance** (:meth:`encode_mel`), as in our DiffWave; the reference upsamples
  per call.

Initialisation follows the reference: Kaiming-normal 1x1 convs, PyTorch's default init for FreConv, the output
conv's weights zero and its bias default. At initialisation eps_hat therefore ignores its inputs and is constant
per band, ``(b_low, b_high)``: on the waveform the period-2 pattern ``(b_low + b_high)/sqrt(2), (b_low -
b_high)/sqrt(2), ...``.
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
from .diffwave import EMBEDDING_DIM, EMBEDDING_HIDDEN, MelUpsampler, _conv
from .embedding import noise_level_embedding
from .layers import Conv, body_format
from .wavegrad import check_vocoder_inputs, suggest_factors

_HALF_SQRT2 = math.sqrt(0.5)    # the Haar filters' taps, 1/sqrt(2)


def haar_dwt(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One level of the orthonormal Haar DWT along the last (even-length) dimension: ``[..., 2n] -> ([..., n],
    [..., n])``, low = (x[0::2] + x[1::2])/sqrt(2), high = (x[0::2] - x[1::2])/sqrt(2)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return (even + odd) * _HALF_SQRT2, (even - odd) * _HALF_SQRT2


def haar_idwt(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`haar_dwt`: ``([..., n], [..., n]) -> [..., 2n]``, even/odd samples interleaved."""
    even, odd = (low + high) * _HALF_SQRT2, (low - high) * _HALF_SQRT2
    return torch.stack((even, odd), dim=-1).flatten(-2)


def _default_factors(hop_length: int) -> tuple[int, ...]:
    """Two factors of hop/2 as even as it allows, without factors of 1 (a stride-1 transposed conv is not needed)."""
    return tuple(f for f in suggest_factors(max(hop_length // 2, 1), 2) if f > 1)


@dataclass
class FreGradConfig:
    """Hyper-parameters of FreGrad. Presets: :meth:`base` (the paper's 1.78M: C = 32, 30 layers in cycles of 7)
    and :meth:`tiny` (C = 16, 12 layers in cycles of 6). ``upsample_factors`` multiply to ``hop_length / 2``."""

    n_mels: int = 80
    hop_length: int = 256
    residual_channels: int = 32
    residual_layers: int = 30
    dilation_cycle: int = 7
    upsample_factors: tuple[int, ...] = (16, 8)
    learn_sigma: bool = False   # two more output bands v: Improved DDPM's learned reverse variance

    def __post_init__(self) -> None:
        self.upsample_factors = tuple(int(f) for f in self.upsample_factors)
        for name in ("n_mels", "hop_length", "residual_channels", "residual_layers", "dilation_cycle"):
            if int(getattr(self, name)) <= 0:
                raise UserInputError(f"FreGradConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.hop_length % 2:
            raise UserInputError(f"FreGradConfig.hop_length must be even (FreGrad runs on two Haar bands at half the "
                                 f"audio rate, hop/2 samples per frame), got {self.hop_length}")
        half = self.hop_length // 2
        if any(f < 2 for f in self.upsample_factors) or math.prod(self.upsample_factors) != half:
            raise UserInputError(f"FreGradConfig.upsample_factors {self.upsample_factors} must be integers >= 2 that "
                                 f"multiply to hop/2 = {half}, e.g. {_default_factors(self.hop_length)}")

    @classmethod
    def base(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "FreGradConfig":
        """FreGrad (§4.1): 32 residual channels, 30 layers, dilation cycle [1, ..., 64]; 1,782,548 parameters."""
        factors = tuple(upsample_factors) if upsample_factors is not None else _default_factors(hop_length)
        return cls(n_mels=n_mels, hop_length=hop_length, upsample_factors=factors)

    @classmethod
    def tiny(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "FreGradConfig":
        """Base at half the width and 12 layers in cycles of 6 (539,828 parameters, 329k of them the noise
        embedding): a CPU quick start."""
        return dataclasses.replace(cls.base(n_mels, hop_length, upsample_factors), residual_channels=16,
                                   residual_layers=12, dilation_cycle=6)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FreGradConfig":
        return from_dict(cls, dict(d))


class FreConv(Conv):
    """The frequency-aware dilated conv (Fig. 3): ``[B, C, 1, L] -> [B, 2C, 1, L]`` as DWT along time -> one dilated
    3-tap conv over the stacked bands (2C -> 4C) at half the input rate -> inverse DWT. Parameters and init are
    those of ``nn.Conv1d(2C, 4C, 3, dilation=d)`` (PyTorch's default init, as the reference)."""

    def __init__(self, channels: int, dilation: int):
        super().__init__(2 * channels, 4 * channels, 3, dilation=dilation, padding=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = x.shape[-1]
        if n % 2:                                                                      # odd hop/2 x odd frames
            x = F.pad(x, (0, 1))
        low, high = haar_dwt(x)                                                        # [B, C, 1, ceil(L/2)] each
        y = super().forward(torch.cat((low, high), dim=1))                             # [B, 4C, 1, ceil(L/2)]
        low, high = y.chunk(2, dim=1)
        return haar_idwt(low, high)[..., :n]                                           # [B, 2C, 1, L]


class ResidualLayer(nn.Module):
    """x + noise projection -> FreConv + mel projection -> sigmoid·tanh -> 1x1 -> (residual, skip)."""

    def __init__(self, channels: int, n_mels: int, dilation: int):
        super().__init__()
        self.noise_projection = nn.Linear(EMBEDDING_HIDDEN, channels)
        self.dilated_conv = FreConv(channels, dilation)
        self.mel_projection = _conv(n_mels, 2 * channels)
        self.output_projection = _conv(channels, 2 * channels)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, C, 1, L]; emb: [B, 512]; mel: [B, n_mels, 1, L] (upsampled to the band rate)
        y = x + self.noise_projection(emb)[:, :, None, None].to(x.dtype)
        y = self.dilated_conv(y) + self.mel_projection(mel)                            # [B, 2C, 1, L]
        gate, filt = y.chunk(2, dim=1)
        y = self.output_projection(torch.sigmoid(gate) * torch.tanh(filt))             # [B, 2C, 1, L]
        residual, skip = y.chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip


class FreGrad(nn.Module):
    """``FreGrad(cfg)(x_noisy [B, T], noise_level [B], mel [B, n_mels, frames]) -> eps_hat [B, T]``
    (``(eps_hat, v)`` with ``learn_sigma``); ``T = frames * hop_length``, ``noise_level`` = sqrt(alpha_bar).

    The body runs on the two Haar bands of ``x_noisy`` at half the audio rate; input and output are waveforms.
    The sampling interface is DiffWave's: :meth:`encode_mel` once per utterance, :meth:`noise_embeddings` once per
    step, :meth:`denoise` on both. ``channels_last`` (runtime) picks the body's memory format as DiffWave's.
    """

    def __init__(self, cfg: FreGradConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else FreGradConfig.base()
        c = cfg.residual_channels
        self.input_projection = _conv(2, c)
        self.embedding = nn.Sequential(nn.Linear(EMBEDDING_DIM, EMBEDDING_HIDDEN), nn.SiLU(),
                                       nn.Linear(EMBEDDING_HIDDEN, EMBEDDING_HIDDEN), nn.SiLU())
        self.upsampler = MelUpsampler(cfg.upsample_factors)
        self.layers = nn.ModuleList(ResidualLayer(c, cfg.n_mels, 2 ** (i % cfg.dilation_cycle))
                                    for i in range(cfg.residual_layers))
        self.skip_projection = _conv(c, c)
        self.output_projection = _conv(c, 4 if cfg.learn_sigma else 2)
        nn.init.zeros_(self.output_projection.weight)   # eps_hat starts constant per band (the reference's init)
        self.channels_last: bool | None = None

    @property
    def CONTEXT_FRAMES(self) -> int:  # noqa: N802 (the vocoders' shared constant-like attribute)
        """Receptive half-width of one network call in mel frames. FreConv's taps sit 2d band samples = 4d audio
        samples apart, and the two Haar stages each group samples in aligned pairs, so an output sample depends on
        input samples at most 4·Σd + 3 away (Σd = 511 for base: 2047 samples, 8 frames at hop 256); plus a frame
        for the mel upsampler's kernels (each spans two input frames): 9 for base."""
        reach = 4 * sum(2 ** (i % self.cfg.dilation_cycle) for i in range(self.cfg.residual_layers)) + 3
        return math.ceil(reach / self.cfg.hop_length) + 1

    def noise_embeddings(self, noise_level: torch.Tensor) -> torch.Tensor:
        """The shared 512-dimensional embedding of the noise level ``[B] -> [B, 512]`` (once per step)."""
        pe = noise_level_embedding(noise_level, EMBEDDING_DIM)
        return self.embedding(pe.to(self.embedding[0].weight.dtype))

    def encode_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """``[B, n_mels, frames] -> [B, n_mels, 1, frames · hop/2]``: the mel upsampled to the band rate (once per
        utterance)."""
        return self.upsampler(mel)[:, :, None]

    def denoise(self, x_noisy: torch.Tensor, emb: torch.Tensor, mel_features: torch.Tensor):
        """The network on pre-computed conditioning; no input checks (use ``forward`` for those)."""
        fmt = body_format(x_noisy, self.channels_last)                                 # the one layout decision
        bands = torch.stack(haar_dwt(x_noisy), dim=1)[:, :, None]                      # [B, 2, 1, T/2]
        x = F.relu(self.input_projection(bands)).contiguous(memory_format=fmt)         # [B, C, 1, T/2]
        mel = mel_features.contiguous(memory_format=fmt)                               # [B, n_mels, 1, T/2]
        skip = 0.0
        for layer in self.layers:
            x, s = layer(x, emb, mel)
            skip = skip + s                                                            # [B, C, 1, T/2]
        x = F.relu(self.skip_projection(skip / math.sqrt(len(self.layers))))
        out = self.output_projection(x)[:, :, 0]                                       # [B, 2 or 4, T/2]
        eps = haar_idwt(out[:, 0], out[:, 1])                                          # [B, T]
        return (eps, haar_idwt(out[:, 2], out[:, 3])) if self.cfg.learn_sigma else eps

    def forward(self, x_noisy: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor):
        noise_level = check_vocoder_inputs(self.cfg, x_noisy, noise_level, mel, "FreGrad")
        return self.denoise(x_noisy, self.noise_embeddings(noise_level), self.encode_mel(mel))
