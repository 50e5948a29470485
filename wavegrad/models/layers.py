"""Building blocks shared by the vocoder networks (WaveGrad, DiffWave), written once.

Both networks run their bodies on ``[B, C, 1, L]`` tensors: one layout, whose memory format (time-major
"channels-last" or channels-first) each model chooses at one point, its entry. :class:`Conv` is a 1-D
convolution over that layout.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Conv(nn.Conv1d):
    """A 'same'-length 1-D conv (``nn.Conv1d`` parameters and state-dict keys) run on ``[B, C, 1, L]`` as a
    1xk conv2d, in whatever memory format its input has. ``out`` selects output channels (FiLM's shift and
    scale halves come out as two dense tensors)."""

    def forward(self, x: torch.Tensor, out: slice = slice(None)) -> torch.Tensor:
        weight = self.weight[out].unsqueeze(2)                                       # [O, C, 1, k]
        bias = None if self.bias is None else self.bias[out]
        return F.conv2d(x, weight, bias, padding=(0, self.padding[0]), dilation=(1, self.dilation[0]))


def body_format(x: torch.Tensor, channels_last: bool | None) -> torch.memory_format:
    """The memory format of a vocoder body: ``channels_last`` if set, else time-major exactly for CPU inference.
    Measured on 2 AVX2 cores (WaveGrad): CPU inference 15% (base) to 35% (tiny) faster time-major (oneDNN's
    dilated-conv kernels), but a CPU training step 10-40% slower (its time-major backward kernels)."""
    if channels_last is None:
        channels_last = x.device.type == "cpu" and not torch.is_grad_enabled()
    return torch.channels_last if channels_last else torch.contiguous_format
