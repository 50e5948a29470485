"""The DiffWave denoiser (Kong et al., ICLR 2021, arXiv 2009.09761, §3 and §5.1), on the continuous noise level.

Architecture: a 1x1 input conv (1 -> C) and ReLU; ``residual_layers`` residual layers in dilation cycles of
``dilation_cycle`` (dilations 1, 2, ..., 2^(cycle-1), repeated); in each, the noise embedding's layer-specific
projection is added, a dilated 3x1 conv (C -> 2C) plus the layer's 1x1 projection of the upsampled mel
(n_mels -> 2C, "a bias term for the dilated convolution", §3.2) feed the gated unit tanh(.)·sigmoid(.), and a
1x1 conv (C -> 2C) splits into the residual (added to the layer's input, scaled by 1/sqrt(2)) and the skip
output. The skips are summed, scaled by 1/sqrt(L), and pass 1x1 conv -> ReLU -> 1x1 conv (zero-initialised)
to eps_hat. The mel is upsampled to the audio rate by transposed 2-D convolutions over (band, time) with
leaky ReLU (0.4) between them (§5.1: two layers of time stride 16 and filter [32, 3] for hop 256).

Departures from the paper, and why:

* **Continuous noise level, not a step index.** The embedding reads ``5000 · sqrt(alpha_bar)`` through the same
  sinusoidal encoding as WaveGrad (``noise_level_embedding``, 128 dimensions, then the paper's two shared
  512-unit FC layers with swish), so one trained DiffWave samples with any schedule and sampler.
* **Any hop.** The hop is split into as many transposed convs as ``upsample_factors`` lists (default two factors
  as even as the hop allows: 16·16 for 256, 20·15 for 300), each with the paper's kernel of twice its stride in
  time and 3 in frequency (odd strides get one sample of output padding).
* **One mel upsampler shared by all layers** (as lmnt-com/diffwave, the authors' lab's code), and no weight
  normalisation: 2,619,971 parameters for base (the paper's 2.64M counts a separate upsampler per layer and
  weight-norm gains), 6,885,315 for large (paper 6.91M).
* **The mel is upsampled once per utterance** (:meth:`encode_mel`), not per step; the 30 per-layer 1x1
  projections of it run per step: caching them would hold 2C·L channels at the audio rate (1.1 GB per 3 s window
  for base in fp32) to save about a quarter of a step's work.
* **CPU inference runs the same layers as matrix products** (:class:`GemmBody`): time-major, every conv tap and
  projection one in-place GEMM into buffers allocated once per utterance. Same function (within float rounding,
  test), but no audio-rate tensor allocated per op and oneDNN's slow kernels for large dilations avoided.
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
from .wavegrad import check_vocoder_inputs, suggest_factors

EMBEDDING_DIM = 128       # the sinusoidal encoding (paper §3.1, eq. 8)
EMBEDDING_HIDDEN = 512    # the two shared FC layers
UPSAMPLE_SLOPE = 0.4      # leaky ReLU between the transposed convs (§5.1)


@dataclass
class DiffWaveConfig:
    """Hyper-parameters of DiffWave. Presets: :meth:`base` (C = 64, the paper's 2.64M) and :meth:`large`
    (C = 128, 6.91M), both 30 layers in 3 dilation cycles of 10."""

    n_mels: int = 80
    hop_length: int = 256
    residual_channels: int = 64
    residual_layers: int = 30
    dilation_cycle: int = 10
    upsample_factors: tuple[int, ...] = (16, 16)
    learn_sigma: bool = False   # a second output channel v: Improved DDPM's learned reverse variance
    # every layer also sees a waveform at the audio rate (enhancement: the noisy recording), one more channel beside
    # the upsampled mel in its conditioner projection
    signal_condition: bool = False

    def __post_init__(self) -> None:
        self.upsample_factors = tuple(int(f) for f in self.upsample_factors)
        for name in ("n_mels", "hop_length", "residual_channels", "residual_layers", "dilation_cycle"):
            if int(getattr(self, name)) <= 0:
                raise UserInputError(f"DiffWaveConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.upsample_factors or math.prod(self.upsample_factors) != self.hop_length:
            raise UserInputError(f"DiffWaveConfig.upsample_factors {self.upsample_factors} must multiply to the hop "
                                 f"{self.hop_length}, e.g. {suggest_factors(self.hop_length, 2)}")

    @classmethod
    def base(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "DiffWaveConfig":
        """DiffWave BASE (§5.1): 64 residual channels, 30 layers, dilation cycle [1, ..., 512]."""
        factors = tuple(upsample_factors) if upsample_factors else suggest_factors(hop_length, 2)
        return cls(n_mels=n_mels, hop_length=hop_length, upsample_factors=factors)

    @classmethod
    def tiny(cls, n_mels: int = 80, hop_length: int = 256,
             upsample_factors: Sequence[int] | None = None) -> "DiffWaveConfig":
        """BASE at half the width and 12 layers in cycles of 6 (~0.2M parameters): a CPU quick start."""
        return dataclasses.replace(cls.base(n_mels, hop_length, upsample_factors), residual_channels=32,
                                   residual_layers=12, dilation_cycle=6)

    @classmethod
    def large(cls, n_mels: int = 80, hop_length: int = 256,
              upsample_factors: Sequence[int] | None = None) -> "DiffWaveConfig":
        """DiffWave LARGE (§5.1): 128 residual channels, otherwise BASE."""
        return dataclasses.replace(cls.base(n_mels, hop_length, upsample_factors), residual_channels=128)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DiffWaveConfig":
        return from_dict(cls, dict(d))


def _conv(c_in: int, c_out: int, kernel: int = 1, dilation: int = 1) -> Conv:
    """'Same'-length conv with Kaiming-normal weights (lmnt-com/diffwave's init) and default biases."""
    conv = Conv(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
    nn.init.kaiming_normal_(conv.weight)
    return conv


class MelUpsampler(nn.Module):
    """Transposed 2-D convs over (band, time), leaky ReLU (0.4) after each: ``[B, n_mels, F] -> [B, n_mels, F·hop]``."""

    def __init__(self, factors: Sequence[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.ConvTranspose2d(1, 1, (3, 2 * s), stride=(1, s), padding=(1, s // 2 + s % 2), output_padding=(0, s % 2))
            for s in factors)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = mel[:, None]                                                               # [B, 1, n_mels, F]
        for conv in self.convs:
            x = F.leaky_relu(conv(x), UPSAMPLE_SLOPE)                                  # time x stride
        return x[:, 0]                                                                 # [B, n_mels, F·hop]


class ResidualLayer(nn.Module):
    """§3 and Fig. 2: x + noise projection -> dilated conv + mel projection -> tanh·sigmoid -> 1x1 -> (residual, skip).

    The gate ``sigmoid(a)·tanh(b)`` is computed as ``s_a - 2·s_a·s_b'`` with ``s = sigmoid`` over both halves at once
    and ``s_b' = sigmoid(-2b)`` (tanh(b) = 1 - 2·sigmoid(-2b)): the filter half's weights and biases are scaled by -2,
    which is exact in floating point. One sigmoid and one fused multiply-add replace tanh, sigmoid and a product
    (CPU tanh is 3.4x slower than sigmoid here): DiffWave base 0.76 -> 0.64 s per call per audio-second on 2 AVX2
    cores, within 2e-7 of the tanh form.
    """

    def __init__(self, channels: int, n_mels: int, dilation: int):
        super().__init__()
        self.noise_projection = nn.Linear(EMBEDDING_HIDDEN, channels)
        self.dilated_conv = _conv(channels, 2 * channels, 3, dilation)
        self.mel_projection = _conv(n_mels, 2 * channels)
        self.output_projection = _conv(channels, 2 * channels)
        scale = torch.cat([torch.ones(channels), torch.full((channels,), -2.0)])
        self.register_buffer("gate_scale", scale, persistent=False)                   # [2C]

    def _scaled(self, conv: Conv, x: torch.Tensor) -> torch.Tensor:
        """``conv(x)`` with its output channels scaled by ``gate_scale`` (the weights scaled, not the output)."""
        return F.conv2d(x, (conv.weight * self.gate_scale[:, None, None]).unsqueeze(2), conv.bias * self.gate_scale,
                        padding=(0, conv.padding[0]), dilation=(1, conv.dilation[0]))

    def forward(self, x: torch.Tensor, emb: torch.Tensor, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: [B, C, 1, T]; emb: [B, 512]; mel: [B, n_mels, 1, T] (upsampled)
        y = x + self.noise_projection(emb)[:, :, None, None].to(x.dtype)
        y = self._scaled(self.dilated_conv, y).add_(self._scaled(self.mel_projection, mel))   # [B, 2C, 1, T]
        gate, filt = torch.sigmoid(y).chunk(2, dim=1)                                  # sigmoid(a), sigmoid(-2b)
        y = self.output_projection(torch.addcmul(gate, gate, filt, value=-2.0))        # [B, 2C, 1, T]
        residual, skip = y.chunk(2, dim=1)
        return (x + residual) / math.sqrt(2.0), skip

    def gemm_weights(self, k: int) -> dict[str, Any]:
        """This layer (the ``k``-th) as the matrices :class:`GemmBody` multiplies by; see there for the scales."""
        taps = (self.dilated_conv.weight * self.gate_scale[:, None, None]).permute(2, 1, 0)   # [3, C, 2C] on x
        c = taps.shape[1]
        grow = torch.ones(2 * c, dtype=taps.dtype, device=taps.device)
        grow[:c] = 2.0 ** (k / 2)                                                      # residual half times 2^(k/2)
        return {"dilation": self.dilated_conv.dilation[0],
                "taps": (taps * 2.0 ** (-k / 2)).contiguous(), "taps_x": taps,           # the former read u
                "mel": (self.mel_projection.weight[:, :, 0] * self.gate_scale[:, None]).t().contiguous(),
                "bias": (self.dilated_conv.bias + self.mel_projection.bias) * self.gate_scale,
                "out": (self.output_projection.weight[:, :, 0].t() * grow).contiguous(),
                "out_bias": self.output_projection.bias, "noise": self.noise_projection}


class GemmBody:
    """DiffWave's residual stack for CPU inference as in-place matrix products on time-major ``[T, channels]``
    rows, one utterance at a time. The function is the layers' (:meth:`ResidualLayer.forward`); the algebra:

    * With ``x_{k+1} = (x_k + r_k + b_k)/sqrt(2)`` (``r_k`` the residual half of the output projection, ``b_k`` its
      bias), ``x_k = 2^(-k/2)·u_k + c_k`` where ``u_0 = x_0``, ``u_{k+1} = u_k + 2^(k/2)·r_k`` and the constant
      ``c_{k+1} = (c_k + b_k)/sqrt(2)``. So the residual is one accumulating GEMM into ``u`` (and the skip half
      into the skip sum, the same GEMM), and the 2^(-k/2) sits in the next layer's taps.
    * The dilated conv reads ``x_k + e_k`` (``e_k`` the noise projection), zero-padded: the constant
      ``v = c_k + e_k`` contributes ``sum_j W_j v`` to the bias, minus the taps that read the padding
      (``W_0 v`` on the first ``d`` rows, ``W_2 v`` on the last ``d``); the taps read ``u`` through row offsets
      into a buffer with ``max(d)`` zero rows either side.
    """

    def __init__(self, net: "DiffWave"):
        self.net = net
        self.layers = [layer.gemm_weights(k) for k, layer in enumerate(net.layers)]   # once per call: never stale

    def __call__(self, x_noisy: torch.Tensor, emb: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        # x_noisy: [B, T]; emb: [B, 512]; mel: [B, n_mels, 1, T] -> the output projection's input [B, T, C]
        (b,) = torch.broadcast_shapes(x_noisy.shape[:1], emb.shape[:1], mel.shape[:1])   # batches of 1 broadcast
        x_noisy, emb, mel = x_noisy.expand(b, -1), emb.expand(b, -1), mel.expand(b, -1, -1, -1)
        return torch.stack([self._one(x, e[None], m[:, 0].t()) for x, e, m in zip(x_noisy, emb, mel)])

    def _one(self, x_noisy: torch.Tensor, emb: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        # x_noisy: [T]; emb: [1, 512]; mel: [T, n_mels]
        t, c, pad = x_noisy.shape[0], self.net.cfg.residual_channels, max(w["dilation"] for w in self.layers)
        rows = x_noisy.new_zeros(pad + t + pad, 2 * c)                               # [u | skip sum], zero margins
        body = rows[pad:pad + t]                                                       # [T, 2C]
        proj = self.net.input_projection
        body[:, :c] = F.relu(torch.addmm(proj.bias, x_noisy[:, None], proj.weight[:, :, 0].t()))
        y, g = x_noisy.new_empty(t, 2 * c), x_noisy.new_empty(t, c)
        const, skip_bias = torch.zeros_like(proj.bias), 0.0                            # c_k; sum of skip biases
        for w in self.layers:
            d, v = w["dilation"], const + w["noise"](emb)[0]                           # v: [C]
            torch.addmm(w["bias"] + v @ w["taps_x"].sum(0), rows[pad - d:pad - d + t, :c], w["taps"][0], out=y)
            y.addmm_(body[:, :c], w["taps"][1]).addmm_(rows[pad + d:pad + d + t, :c], w["taps"][2])
            y.addmm_(mel, w["mel"])                                                    # [T, 2C]
            y[:min(d, t)] -= v @ w["taps_x"][0]                                        # the padding, not x + e
            y[max(t - d, 0):] -= v @ w["taps_x"][2]
            y.sigmoid_()                                                               # as ResidualLayer's gate
            torch.addcmul(y[:, :c], y[:, :c], y[:, c:], value=-2.0, out=g)             # [T, C]
            body.addmm_(g, w["out"])
            const, skip_bias = (const + w["out_bias"][:c]) / math.sqrt(2.0), skip_bias + w["out_bias"][c:]
        return body[:, c:] + skip_bias                                                 # [T, C] the skip sum


class DiffWave(nn.Module):
    """``DiffWave(cfg)(x_noisy [B, T], noise_level [B], mel [B, n_mels, frames]) -> eps_hat [B, T]``
    (``(eps_hat, v)`` with ``learn_sigma``); ``T = frames * hop_length``, ``noise_level`` = sqrt(alpha_bar).

    The sampling interface is WaveGrad's: :meth:`encode_mel` once per utterance, :meth:`noise_embeddings` once
    per step, :meth:`denoise` on both. ``channels_last`` (runtime) picks the body's memory format as WaveGrad's.
    """

    def __init__(self, cfg: DiffWaveConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg if cfg is not None else DiffWaveConfig.base()
        c = cfg.residual_channels
        self.input_projection = _conv(1, c)
        self.embedding = nn.Sequential(nn.Linear(EMBEDDING_DIM, EMBEDDING_HIDDEN), nn.SiLU(),
                                       nn.Linear(EMBEDDING_HIDDEN, EMBEDDING_HIDDEN), nn.SiLU())
        self.upsampler = MelUpsampler(cfg.upsample_factors)
        self.layers = nn.ModuleList(ResidualLayer(c, cfg.n_mels + int(cfg.signal_condition), 2 ** (i % cfg.dilation_cycle))
                                    for i in range(cfg.residual_layers))
        self.skip_projection = _conv(c, c)
        self.output_projection = _conv(c, 2 if cfg.learn_sigma else 1)
        nn.init.zeros_(self.output_projection.weight)   # eps_hat starts at a constant (lmnt-com's init)
        self.channels_last: bool | None = None

    @property
    def CONTEXT_FRAMES(self) -> int:  # noqa: N802 (the vocoders' shared constant-like attribute)
        """Receptive half-width of one network call in mel frames: the sum of the dilations (3 x 1023 samples for 30
        layers in cycles of 10, §3.3: 6139 samples in all; 12 frames at hop 256), plus a frame for the mel
        upsampler's kernels (each spans two input frames)."""
        reach = sum(2 ** (i % self.cfg.dilation_cycle) for i in range(self.cfg.residual_layers))
        return math.ceil(reach / self.cfg.hop_length) + 1

    def noise_embeddings(self, noise_level: torch.Tensor) -> torch.Tensor:
        """The shared 512-dimensional embedding of the noise level ``[B] -> [B, 512]`` (once per step)."""
        pe = noise_level_embedding(noise_level, EMBEDDING_DIM)
        return self.embedding(pe.to(self.embedding[0].weight.dtype))

    def encode_mel(self, mel: torch.Tensor, signal: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, n_mels, frames] -> [B, n_mels, 1, frames · hop]``: the upsampled mel (once per utterance); with
        ``signal_condition``, the waveform ``signal [B, frames · hop]`` as one more channel."""
        up = self.upsampler(mel)[:, :, None]
        if not self.cfg.signal_condition:
            return up
        if signal is None or signal.shape != (mel.shape[0], up.shape[-1]):
            raise UserInputError(f"this DiffWave is conditioned on a waveform too: give signal [B, {up.shape[-1]}]")
        return torch.cat([up, signal[:, None, None].to(up.dtype)], dim=1)              # [B, n_mels + 1, 1, T]

    def denoise(self, x_noisy: torch.Tensor, emb: torch.Tensor, mel_features: torch.Tensor):
        """The network on pre-computed conditioning; no input checks (use ``forward`` for those)."""
        fmt = body_format(x_noisy, self.channels_last)                                 # the one layout decision
        if fmt is torch.channels_last and self._gemm_ok(x_noisy):
            skip = GemmBody(self)(x_noisy, emb, mel_features).transpose(1, 2)[:, :, None]   # [B, C, 1, T]
        else:
            x = F.relu(self.input_projection(x_noisy[:, None, None])).contiguous(memory_format=fmt)   # [B, C, 1, T]
            mel = mel_features.contiguous(memory_format=fmt)                           # [B, n_mels, 1, T]
            skip = 0.0
            for layer in self.layers:
                x, s = layer(x, emb, mel)
                skip = skip + s                                                        # [B, C, 1, T]
        x = F.relu(self.skip_projection(skip / math.sqrt(len(self.layers))))
        out = self.output_projection(x).reshape(x.shape[0], -1, x_noisy.shape[-1])    # [B, 1 or 2, T]
        return (out[:, 0], out[:, 1]) if self.cfg.learn_sigma else out[:, 0]

    @staticmethod
    def _gemm_ok(x: torch.Tensor) -> bool:
        """The GEMM body serves fp32/fp64 CPU inference outside autocast: it writes in place (no autograd), bf16
        autocast keeps oneDNN's convs, and its ``u`` grows as 2^(L/2) (32768 for 30 layers: past fp16's range)."""
        try:
            autocast = torch.is_autocast_enabled("cpu")
        except TypeError:                                    # torch < 2.4 takes no device
            autocast = torch.is_autocast_cpu_enabled()
        return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and not torch.is_grad_enabled()
                and not autocast and x.shape[0] > 0)

    def forward(self, x_noisy: torch.Tensor, noise_level: torch.Tensor, mel: torch.Tensor,
                signal: torch.Tensor | None = None):
        noise_level = check_vocoder_inputs(self.cfg, x_noisy, noise_level, mel, "DiffWave")
        return self.denoise(x_noisy, self.noise_embeddings(noise_level), self.encode_mel(mel, signal))
