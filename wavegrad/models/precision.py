"""The precision a network runs in at inference: fp32, or bf16 autocast around the network calls only."""
from __future__ import annotations

import contextlib

import torch

from ..errors import UserInputError

PRECISIONS = ("fp32", "bf16")


def check_precision(precision) -> str:
    """``"fp32"`` or ``"bf16"`` (bf16: the network runs under ``torch.autocast(bfloat16)``)."""
    if precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has hardware bf16 here (AVX512-BF16/AMX); without it bf16 convs on the CPU take
    slow reference kernels (measured on an AVX2-only host: ~25x slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def network_autocast(device: torch.device | str, precision: str):
    """The context the network calls run in: bf16 autocast for ``precision="bf16"``, else nothing.

    Only the network goes under it; the schedule arithmetic, the sampler's state and the joined ``eps``
    stay float32 (the network's output is cast back before the update).
    """
    if check_precision(precision) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
