"""The GPU check: what a lent CUDA machine measures, in one command (a script, never a test).

    python -m wavegrad.benchmarks.gpu [--out gpu.json] [--minutes 8]
    python -m wavegrad.benchmarks.gpu --dry-run            # the same sections, tiny sizes, on the CPU (CI runs it)

Sections, each a row of the table it prints and an entry of the JSON it writes:
  tests     ``pytest -m cuda`` (the CUDA-marked tests: vocoding on the GPU equals the CPU, autocast steps are finite)
  train     WaveGrad base, Adam, 100 steps of batch 16 x 7168 samples in fp32, bf16 and fp16 autocast (fp16 with a
            gradient scaler): samples/s, audio-seconds/s, peak memory, whether every loss was finite
  vocode    WaveGrad base and DiffWave base at 6 and 50 NFE (DDPM), 4 clips x 2 s in windows of 288 frames: RTF and
            peak memory, eager, compiled (inductor) and compiled with CUDA graphs ("reduce-overhead"); compile time
            apart
  long      60 s of audio at 6 steps in windows: time and peak memory (flat in length by design)
It needs only torch (with accelerate, numpy, tensorboard, safetensors, pillow beside it): mels are random (speed does
not depend on them), so librosa and soundfile are never imported on this path. Network weights are random too.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from ..models.precision import Compiled, hardware

SAMPLE_RATE, HOP = 22050, 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak(device: torch.device) -> float:
    """Peak memory in MiB since the last reset: CUDA allocated, or the process's peak RSS on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _network(preset: str):
    from ..models import VOCODERS, vocoder_architecture
    from ..training.runs import MODEL_PRESETS
    cfg = MODEL_PRESETS[preset]()
    return VOCODERS[vocoder_architecture(cfg)][0](cfg)


def _autocast(device: torch.device, precision: str):
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def run_tests(dry_run: bool) -> dict:
    """``pytest -m cuda`` in this checkout; its summary line and return code."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "tests").is_dir():
        return {"skipped": "no tests/ folder next to this package (run from a checkout)"}
    t0 = time.perf_counter()
    where = "tests/test_cuda.py" if dry_run else "tests"                 # a dry run: no need to collect the suite
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider", where],
                       cwd=root, capture_output=True, text=True)
    summary = (r.stdout.strip().splitlines() or [""])[-1]
    return {"returncode": r.returncode, "summary": summary, "seconds": time.perf_counter() - t0}


def bench_train(device: torch.device, precision: str, preset: str, steps: int, batch: int, length: int) -> dict:
    """``steps`` Adam steps of ``preset`` under autocast(``precision``): samples/s, peak memory, losses finite."""
    from ..diffusion import NoiseSchedule
    from ..diffusion.objective import draw_noise_level, eps_loss, q_sample
    torch.manual_seed(0)
    net = _network(preset).to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    sched = NoiseSchedule.linear(1000)
    audio = (0.3 * torch.randn(batch, length)).clamp(-1, 1).to(device)
    mel = (torch.randn(batch, net.cfg.n_mels, length // HOP) - 5.0).to(device)
    losses, times = [], []
    _reset(device)
    for i in range(steps + 1):                                       # the first step warms up (kernels, Adam state)
        t0 = time.perf_counter()
        level = draw_noise_level(sched, batch).to(device=device, dtype=audio.dtype)
        eps = torch.randn_like(audio)
        with _autocast(device, precision):
            eps_hat = net(q_sample(audio, level, eps), level, mel)
        loss = eps_loss(eps_hat.float(), eps)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        losses.append(float(loss))
        _sync(device)
        if i:
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    return {"preset": preset, "precision": precision, "s_per_step": t, "samples_per_s": batch / t,
            "audio_s_per_s": batch * length / SAMPLE_RATE / t, "peak_mib": _peak(device),
            "losses_finite": all(math.isfinite(v) for v in losses)}


def bench_vocode(device: torch.device, preset: str, nfe: int, mode: str, clips: int, seconds: float,
                 window: tuple[int, int]) -> dict:
    """RTF of DDPM at ``nfe`` steps on ``clips`` random mels through the windowed network, ``mode`` eager /
    compiled / cudagraphs (compile time apart)."""
    from ..diffusion import NoiseSchedule, sample
    from ..long_form import WindowedDenoiser
    torch.manual_seed(0)
    net = _network(preset).to(device).eval()
    frames = max(1, round(seconds * SAMPLE_RATE / HOP))
    mels = [(torch.randn(net.cfg.n_mels, frames) - 5.0).to(device) for _ in range(clips)]
    network = None
    if mode != "eager":
        network = Compiled(net.denoise)
        if mode == "cudagraphs":
            network.compiled = torch.compile(net.denoise, dynamic=False, mode="reduce-overhead")
    schedule = NoiseSchedule.linear(1000).respace(nfe)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            denoise = WindowedDenoiser(net, mels, chunk_frames=window[0], overlap_frames=window[1],
                                       batch_size=clips, network=network, fixed=network is not None)
            return sample(denoise, (clips, frames * HOP), schedule, generator=torch.Generator().manual_seed(0),
                          device=device, clip_x0=1.0)

    t0 = time.perf_counter()
    run()                                                            # warm-up: compiles, cuDNN picks its kernels
    _sync(device)
    warm = time.perf_counter() - t0
    _reset(device)
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        out = run()
        _sync(device)
        times.append(time.perf_counter() - t0)
    audio = clips * frames * HOP / SAMPLE_RATE
    return {"preset": preset, "nfe": nfe, "mode": mode, "rtf": min(times) / audio, "peak_mib": _peak(device),
            "compile_s": network.compile_seconds if network is not None else 0.0, "warm_up_s": warm,
            "eager_fallback": network is not None and network.compiled is None,
            "finite": bool(torch.isfinite(out).all())}


def bench_long(device: torch.device, preset: str, seconds: float, window: tuple[int, int]) -> dict:
    """Time and peak memory of 6 DDPM steps on ``seconds`` of audio in windows."""
    r = bench_vocode(device, preset, 6, "eager", 1, seconds, window)
    return {"preset": preset, "audio_s": seconds, "s": r["rtf"] * seconds, "peak_mib": r["peak_mib"],
            "finite": r["finite"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wavegrad.benchmarks.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: checks that every section runs")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --dry-run)")
    p.add_argument("--out", type=Path, default=Path("gpu.json"), help="where the JSON goes")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out (tests, train, vocode, long)")
    args = p.parse_args(argv)
    device = torch.device(args.device or ("cpu" if args.dry_run else "cuda"))
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible to torch: nothing to measure (use --dry-run to check the script on the CPU)")
        return 2
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    small = args.dry_run
    presets = ("tiny", "diffwave-base") if small else ("base", "diffwave-base")
    report = {"hardware": hardware(), "device": str(device), "dry_run": small}
    print(report["hardware"], flush=True)
    if "tests" not in skip:
        report["tests"] = run_tests(small)
        print(f"tests (pytest -m cuda): {report['tests']}", flush=True)
    if "train" not in skip:
        report["train"] = [bench_train(device, prec, "tiny" if small else "base", 2 if small else 100,
                                       2 if small else 16, 2048 if small else 7168)
                           for prec in (("fp32",) if small else ("fp32", "bf16", "fp16"))]
        for r in report["train"]:
            print(f"train {r['preset']} {r['precision']:>4}: {r['s_per_step']:.3f} s/step, {r['samples_per_s']:.1f} "
                  f"samples/s ({r['audio_s_per_s']:.1f} audio-s/s), peak {r['peak_mib']:.0f} MiB, losses finite "
                  f"{r['losses_finite']}", flush=True)
    window = (8, 8) if small else (256, 32)
    if "vocode" not in skip:
        modes = ("eager",) if small else ("eager", "compiled", "cudagraphs")
        report["vocode"] = [bench_vocode(device, preset, nfe, mode, 1 if small else 4, 0.2 if small else 2.0, window)
                            for preset in presets[:1 if small else 2] for nfe in ((2,) if small else (6, 50))
                            for mode in modes]
        for r in report["vocode"]:
            print(f"vocode {r['preset']:<14} NFE {r['nfe']:>3} {r['mode']:<10}: RTF {r['rtf']:.4f}, peak "
                  f"{r['peak_mib']:.0f} MiB, compile {r['compile_s']:.1f} s{' (eager fallback)' if r['eager_fallback'] else ''}"
                  f", finite {r['finite']}", flush=True)
    if "long" not in skip:
        report["long"] = [bench_long(device, presets[0], s, window) for s in ((0.5, 1.0) if small else (15.0, 60.0))]
        for r in report["long"]:
            print(f"long {r['preset']} {r['audio_s']:.1f} s: {r['s']:.2f} s, peak {r['peak_mib']:.0f} MiB, "
                  f"finite {r['finite']}", flush=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
