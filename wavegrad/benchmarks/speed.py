"""Speed and memory of the WaveGrad presets on this machine (a script, never a test).

    python -m wavegrad.benchmarks.speed [--presets tiny,base,large] [--seconds 1.0] [--threads N]
                                        [--device cpu|cuda] [--precision fp32|bf16] [--iters 3]

For each preset it prints, at the current device and thread count:
  s/it/aud-s   seconds of one denoiser call (= one sampling iteration) per second of audio: median of
               --iters calls, and (best) the fastest one, less sensitive to other load on a shared machine
  RTF@6        real-time factor of a 6-iteration sampler (6 x the above; < 1 is faster than real time)
  GFLOP/aud-s  FLOPs of one call per second of audio (torch.utils.flop_counter: convs and matmuls)
  %peak        achieved FLOP/s (median call) over this machine's measured matmul peak (2048^2 matmul loop)
  peak mem     peak RSS of a fresh process that ran only that preset (CPU), or CUDA peak allocated
Each preset runs in its own subprocess (unless --no-isolate) so that peak RSS belongs to it alone.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

SAMPLE_RATE = 22050  # the default MelConfig; the presets' hop is 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def matmul_peak(device: torch.device, precision: str, n: int = 2048, seconds: float = 1.0) -> float:
    """Best FLOP/s of an n x n matmul loop (2 n^3 FLOPs each) in the requested precision."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):                                    # warm up threads / kernels
        a @ b
    _sync(device)
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        best = max(best, 2 * n ** 3 / (time.perf_counter() - t0))
    return best


def bench_preset(preset: str, seconds: float, device: torch.device, precision: str, iters: int) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from wavegrad.models import WaveGrad, WaveGradConfig, count_parameters

    cfg = getattr(WaveGradConfig, preset)()
    net = WaveGrad(cfg).to(device).eval()
    frames = max(1, round(seconds * SAMPLE_RATE / cfg.hop_length))
    audio_s = frames * cfg.hop_length / SAMPLE_RATE
    g = torch.Generator().manual_seed(0)
    mel = (torch.randn(1, cfg.n_mels, frames, generator=g) - 5.0).to(device)     # [1, n_mels, frames]
    x = torch.randn(1, frames * cfg.hop_length, generator=g).to(device)         # [1, T]
    level = torch.full((1,), 0.5, device=device)                                # [1]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def call():
        with torch.inference_mode(), _autocast(device, precision):
            return net(x, level, mel)

    with FlopCounterMode(display=False) as counter:
        call()
    flops = counter.get_total_flops()
    call()                                                                      # warm-up
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - t0)
    t, best = statistics.median(times), min(times)
    if device.type == "cuda":
        peak_mem = torch.cuda.max_memory_allocated(device)
    else:
        peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # Linux: KiB
    return dict(preset=preset, params=count_parameters(net), audio_s=audio_s, s_per_iter=t, best_s_per_iter=best,
                flops=flops, peak_mem=peak_mem)


def _run_isolated(preset: str, args) -> dict:
    cmd = [sys.executable, "-m", "wavegrad.benchmarks.speed", "--worker", preset, "--seconds", str(args.seconds),
           "--device", args.device, "--precision", args.precision, "--iters", str(args.iters)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    root = str(Path(__file__).resolve().parents[2])                            # so -m finds this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m wavegrad.benchmarks.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="tiny,base,large", help="comma-separated WaveGradConfig presets")
    p.add_argument("--seconds", type=float, default=1.0, help="audio length per call (default 1.0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32", help="bf16 = autocast")
    p.add_argument("--iters", type=int, default=5, help="timed calls per preset (median and best reported)")
    p.add_argument("--no-isolate", action="store_true", help="run all presets in this process")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.worker:
        print(json.dumps(bench_preset(args.worker, args.seconds, device, args.precision, args.iters)))
        return

    # The peak is measured before and after the presets and the best kept: on a shared machine a single
    # measurement can land in someone else's busy moment and inflate every %peak.
    peak = matmul_peak(device, args.precision)
    print(f"device={device} threads={torch.get_num_threads()} precision={args.precision} torch={torch.__version__} "
          f"audio={args.seconds:g}s@{SAMPLE_RATE}Hz")
    rows = []
    for preset in [s.strip() for s in args.presets.split(",") if s.strip()]:
        r = (bench_preset(preset, args.seconds, device, args.precision, args.iters) if args.no_isolate
             else _run_isolated(preset, args))
        rows.append(r)
    peak = max(peak, matmul_peak(device, args.precision))
    print(f"matmul peak ({args.precision}, 2048^2): {peak / 1e9:.0f} GFLOP/s")
    print(f"{'preset':<7}{'params':>9}{'s/it/aud-s':>12}{'(best)':>8}{'RTF@6':>8}{'GFLOP/aud-s':>13}{'%peak':>7}"
          f"{'peak mem':>11}")
    for r in rows:
        per_s = r["s_per_iter"] / r["audio_s"]
        print(f"{r['preset']:<7}{r['params'] / 1e6:>8.2f}M{per_s:>12.3f}{r['best_s_per_iter'] / r['audio_s']:>8.3f}"
              f"{6 * per_s:>8.2f}"
              f"{r['flops'] / r['audio_s'] / 1e9:>13.1f}{100 * r['flops'] / r['s_per_iter'] / peak:>6.0f}%"
              f"{r['peak_mem'] / 2 ** 20:>8.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
