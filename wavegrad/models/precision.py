"""How a network runs at inference, decided at one point: its precision (fp32, or bf16 autocast around the network
calls only), whether it is compiled (:class:`Compiled`), and what this machine's CPU can do (:func:`hardware`)."""
from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

import torch

from ..errors import UserInputError

PRECISIONS = ("auto", "fp32", "bf16")


def check_precision(precision, device: torch.device | str = "cpu") -> str:
    """``"fp32"`` or ``"bf16"`` (bf16: the network runs under ``torch.autocast(bfloat16)``); ``"auto"`` is bf16 on a
    CPU with hardware bf16 (AMX / AVX512-BF16), where its measured quality cost on held-out speech is within
    README's bound (log-mel L1 within 2%, PESQ within 0.05 of fp32 for every sampler), and fp32 elsewhere (on GPUs
    bf16 is unmeasured so far)."""
    if precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "bf16" if torch.device(device).type == "cpu" and cpu_has_fast_bf16() else "fp32"
    return precision


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has hardware bf16 here (AVX512-BF16/AMX); without it bf16 convs on the CPU take
    slow reference kernels (measured on an AVX2-only host: ~25x slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo that decide the network's speed (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return {f for f in flags if f.startswith(("avx", "amx", "fma"))}


def hardware() -> str:
    """One line naming what decides the network's speed here: torch's CPU capability, bf16 in oneDNN, AMX /
    AVX512-BF16 flags, threads, and the CUDA device if any."""
    flags = cpu_flags()
    bf16 = [f for f in ("amx_bf16", "avx512_bf16") if f in flags]
    text = (f"cpu={torch.backends.cpu.get_cpu_capability()} bf16_hardware={'+'.join(bf16) or 'no'} "
            f"onednn_bf16={cpu_has_fast_bf16()} threads={torch.get_num_threads()} torch={torch.__version__}")
    if torch.cuda.is_available():
        text += f" cuda={torch.cuda.get_device_name(0)}"
    return text


class Compiled:
    """``fn`` under ``torch.compile`` (inductor, static shapes), or ``fn`` itself where it cannot compile (no C++
    compiler, an unsupported op): one warning, then eager. ``compile_seconds`` sums the first call of every input
    shape (where compiling happens), so callers can report it apart from the run time."""

    def __init__(self, fn):
        self.fn, self.compiled = fn, torch.compile(fn, dynamic=False)
        self.shapes: set[tuple] = set()
        self.compile_seconds = 0.0

    def __call__(self, *args):
        if self.compiled is None:
            return self.fn(*args)
        shape = tuple(tuple(a.shape) for a in args if isinstance(a, torch.Tensor))
        t0 = time.perf_counter()
        try:
            out = self.compiled(*args)
        except Exception as e:  # noqa: BLE001 - inductor's failures have many types; eager always works
            first = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
            warnings.warn(f"torch.compile could not compile the network here ({type(e).__name__}: {first}); "
                          "running it eagerly", stacklevel=2)
            self.compiled = None
            return self.fn(*args)
        if shape not in self.shapes:
            self.shapes.add(shape)
            self.compile_seconds += time.perf_counter() - t0
        return out


def network_autocast(device: torch.device | str, precision: str):
    """The context the network calls run in: bf16 autocast for ``precision="bf16"``, else nothing.

    Only the network goes under it; the schedule arithmetic, the sampler's state and the joined ``eps``
    stay float32 (the network's output is cast back before the update).
    """
    if check_precision(precision) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
