"""Speed and memory of the vocoder presets on this machine (a script, never a test).

    python -m wavegrad.benchmarks.speed [--presets tiny,base,large,diffwave-base] [--seconds 1.0] [--threads N]
                                        [--device cpu|cuda] [--precision fp32,bf16] [--iters 3]
                                        [--vocode-clips 4] [--train] [--featurizer] [--long 60]
                                        [--priors white,priorgrad,specgrad]

For each preset it prints, at the current device and thread count:
  s/it/aud-s   seconds of one denoiser call (= one sampling iteration) per second of audio: median of
               --iters calls, and (best) the fastest one, less sensitive to other load on a shared machine
  RTF@6        real-time factor of a 6-iteration sampler (6 x the above; < 1 is faster than real time)
  GFLOP/aud-s  FLOPs of one call per second of audio (torch.utils.flop_counter: convs and matmuls)
  %peak        achieved FLOP/s (median call) over this machine's measured matmul peak (2048^2 matmul loop)
  peak mem     peak RSS of a fresh process that ran only that preset (CPU), or CUDA peak allocated
  voc aud-s/s  vocoding throughput: audio seconds produced per wall second by Vocoder.vocode_batch on
               --vocode-clips clips of --seconds each at 6 steps (random weights; speed does not depend on them)
Extra sections (each off unless asked):
  --train       training samples/s of one Adam step (batch 4 x 7168 samples, base preset, mel computed in
                batch by the featurizer in fp32, network under fp32 / bf16 autocast)
  --featurizer  MelFeaturizer vs librosa.feature.melspectrogram (same parameters, same audio) throughput
  --long S      peak RSS and time of Vocoder (chunked) at 6 steps on S seconds vs S/4 seconds, each in a
                fresh process (memory should be flat in length, time linear)
  --priors P    vocoding throughput of each preset with each noise prior, side by side in one process per
                preset, and each prior's slowdown against white (the prior's color() runs once per step)
Each preset runs in its own subprocess (unless --no-isolate) so that peak RSS belongs to it alone.
--precision takes a comma-separated list; bf16 = torch.autocast(bfloat16) around the network only.
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

from ..models.precision import hardware

SAMPLE_RATE = 22050  # the default MelConfig; the presets' hop is 256


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, iters: int, device: torch.device) -> list[float]:
    """Wall-clock seconds of ``iters`` calls of ``fn`` after one warm-up call, synchronising the device."""
    fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def matmul_peak(device: torch.device, precision: str, n: int = 2048, seconds: float = 1.0) -> float:
    """Best FLOP/s of an n x n matmul loop (2 n^3 FLOPs each) in the requested precision."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    # Without hardware bf16 (no AVX-512 BF16 / AMX) a CPU bf16 matmul can run at ~1 GFLOP/s, where one
    # 2048^2 product takes ~15 s: probe at 256 and shrink n so that one product stays under ~0.2 s.
    a = torch.randn(256, 256, device=device, dtype=dtype)
    a @ a
    _sync(device)
    t0 = time.perf_counter()
    a @ a
    _sync(device)
    rate = 2 * 256 ** 3 / max(time.perf_counter() - t0, 1e-9)
    while n > 256 and 2 * n ** 3 / rate > 0.2:
        n //= 2
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


def network(preset: str):
    """A random-weight network of a ``wavegrad train --model`` preset (WaveGrad, DiffWave or FreGrad)."""
    from wavegrad.models import VOCODERS, vocoder_architecture
    from wavegrad.training.runs import MODEL_PRESETS
    if preset not in MODEL_PRESETS:
        raise SystemExit(f"unknown preset {preset!r}; choose from {', '.join(MODEL_PRESETS)}")
    cfg = MODEL_PRESETS[preset]()
    return VOCODERS[vocoder_architecture(cfg)][0](cfg)


def bench_preset(preset: str, seconds: float, device: torch.device, precision: str, iters: int,
                 compiled: bool = False) -> dict:
    from torch.utils.flop_counter import FlopCounterMode

    from wavegrad.models import count_parameters

    net = network(preset).to(device).eval()
    cfg = net.cfg
    frames = max(1, round(seconds * SAMPLE_RATE / cfg.hop_length))
    audio_s = frames * cfg.hop_length / SAMPLE_RATE
    g = torch.Generator().manual_seed(0)
    mel = (torch.randn(1, cfg.n_mels, frames, generator=g) - 5.0).to(device)     # [1, n_mels, frames]
    x = torch.randn(1, frames * cfg.hop_length, generator=g).to(device)         # [1, T]
    level = torch.full((1,), 0.5, device=device)                                # [1]
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    run = torch.compile(net, dynamic=False) if compiled else net

    def call():
        with torch.inference_mode(), _autocast(device, precision):
            return run(x, level, mel)

    layout = getattr(net, "channels_last", None)
    net.channels_last = False       # counted on the conv form: the in-place GEMM body's addmm_ go uncounted
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode(), _autocast(device, precision):
            net(x, level, mel)
    finally:
        net.channels_last = layout
    flops = counter.get_total_flops()
    t0 = time.perf_counter()
    call()                                                                      # compiles, when compiling
    compile_s = time.perf_counter() - t0 if compiled else 0.0
    times = _timed(call, iters, device)
    t, best = statistics.median(times), min(times)
    if device.type == "cuda":
        peak_mem = torch.cuda.max_memory_allocated(device)
    else:
        peak_mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # Linux: KiB
    return dict(preset=preset, params=count_parameters(net), audio_s=audio_s, s_per_iter=t, best_s_per_iter=best,
                flops=flops, peak_mem=peak_mem, compile_s=compile_s)


def _random_vocoder(preset: str, device: torch.device, precision: str, prior: str = "white"):
    from wavegrad.audio import MelConfig
    from wavegrad.audio.priors import PriorConfig
    from wavegrad.diffusion import NoiseSchedule
    from wavegrad.vocoder import Vocoder
    torch.manual_seed(0)
    # energy_min: PriorGrad's statistic at its floor (every band at the log floor), a valid stand-in
    voc = Vocoder(network(preset), MelConfig(), NoiseSchedule.linear(1000), device=device, precision=precision,
                  prior=PriorConfig(kind=prior), prior_stats={"energy_min": (80 * 1e-5) ** 0.5})
    return voc, nullcontext


def bench_vocode(preset: str, seconds: float, clips: int, device: torch.device, precision: str, iters: int,
                 priors: tuple[str, ...] = ("white",)) -> dict:
    """Audio seconds per wall second of ``vocode_batch`` on ``clips`` clips of ``seconds`` at 6 steps, for each
    prior; the priors' calls are interleaved, round after round, so that load on the machine hits them alike."""
    vocs = {p: _random_vocoder(preset, device, precision, p)[0] for p in priors}
    hop = vocs[priors[0]].hop_length
    frames = max(1, round(seconds * SAMPLE_RATE / hop))
    g = torch.Generator().manual_seed(0)
    mels = [torch.randn(80, frames, generator=g) - 5.0 for _ in range(clips)]
    times = {p: [] for p in priors}
    for p, voc in vocs.items():
        voc.vocode_batch(mels, steps=6, seed=0, batch_size=clips)                   # warm-up
    for _ in range(max(1, iters // 2)):
        for p, voc in vocs.items():
            t0 = time.perf_counter()
            voc.vocode_batch(mels, steps=6, seed=0, batch_size=clips)
            _sync(device)
            times[p].append(time.perf_counter() - t0)
    audio = clips * frames * hop / SAMPLE_RATE
    return dict(preset=preset, clips=clips, audio_s=audio, s=statistics.median(times[priors[0]]),
                best_s=min(times[priors[0]]), priors={p: statistics.median(t) for p, t in times.items()})


def bench_long(preset: str, seconds: float, device: torch.device, precision: str) -> dict:
    """One Vocoder call (chunked windows, 6 steps) on ``seconds`` of audio; peak RSS of this process."""
    voc, ctx = _random_vocoder(preset, device, precision)
    frames = max(1, round(seconds * SAMPLE_RATE / voc.hop_length))
    mel = torch.randn(voc.mel_config.n_mels, frames, generator=torch.Generator().manual_seed(0)) - 5.0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with ctx():
        t0 = time.perf_counter()
        wav = voc(mel, steps=6, generator=torch.Generator().manual_seed(0))
        _sync(device)
        t = time.perf_counter() - t0
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(preset=preset, audio_s=wav.shape[-1] / SAMPLE_RATE, s=t, peak_mem=peak,
                finite=bool(torch.isfinite(wav).all()))


def bench_train(device: torch.device, precision: str, iters: int, batch: int = 4, length: int = 7168,
                compiled: bool = False) -> dict:
    """Samples/s of one full Adam step of the base preset (featurizer fp32, network under autocast; ``compiled``:
    the network's forward and backward under torch.compile)."""
    from wavegrad.audio import MelConfig, MelFeaturizer
    from wavegrad.diffusion import NoiseSchedule
    from wavegrad.diffusion.objective import draw_noise_level, eps_loss, q_sample
    from wavegrad.models import WaveGrad, WaveGradConfig
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.base()).to(device).train()
    feat = MelFeaturizer(MelConfig()).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-4)
    sched = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    audio = (0.3 * torch.randn(batch, length, generator=g)).clamp(-1, 1).to(device)
    forward = torch.compile(net, dynamic=False) if compiled else net

    def step():
        with torch.no_grad():
            mel = feat(audio)
        level = draw_noise_level(sched, batch).to(device=device, dtype=audio.dtype)
        eps = torch.randn_like(audio)
        with _autocast(device, precision):
            eps_hat = forward(q_sample(audio, level, eps), level, mel)
        loss = eps_loss(eps_hat.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    t0 = time.perf_counter()
    step()                                   # creates the Adam state, and compiles when compiling
    compile_s = time.perf_counter() - t0 if compiled else 0.0
    times = _timed(step, iters, device)
    t = statistics.median(times)
    return dict(precision=precision, s_per_step=t, best_s=min(times), samples_per_s=batch / t, compile_s=compile_s)


def bench_featurizer(seconds: float = 10.0, clips: int = 8, reps: int = 20) -> dict:
    """MelFeaturizer (torch, CPU) vs librosa.feature.melspectrogram on the same audio and parameters:
    one clip, and a batch of ``clips`` clips (librosa takes them one at a time). Each side is timed in
    its own block, best of ``reps``: interleaving them let numpy's BLAS threads, still spinning after
    librosa's filterbank product, slow the torch side down 2-3x."""
    import librosa
    import numpy as np

    from wavegrad.audio import MelConfig, MelFeaturizer
    cfg = MelConfig()
    feat = MelFeaturizer(cfg)
    g = torch.Generator().manual_seed(0)
    wavs = (0.3 * torch.randn(clips, int(seconds * cfg.sample_rate), generator=g)).clamp(-1, 1)

    def ours(x):
        with torch.inference_mode():
            return feat(x).numpy()

    def theirs(x):
        out = []
        for y in x.numpy():
            m = librosa.feature.melspectrogram(
                y=np.pad(y, cfg.padding, mode="reflect"), sr=cfg.sample_rate, n_fft=cfg.n_fft,
                hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann", center=False, power=1.0,
                n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max, htk=False, norm="slaney")
            out.append(np.log(np.maximum(m, cfg.log_floor)))
        return np.stack(out)

    def best(fn, x):
        fn(x)
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(x)
            ts.append(time.perf_counter() - t0)
        return min(ts)

    a, b = ours(wavs[:1]), theirs(wavs[:1])
    return dict(seconds=seconds, clips=clips, ours_s=best(ours, wavs[:1]), librosa_s=best(theirs, wavs[:1]),
                ours_batch_s=best(ours, wavs), librosa_batch_s=best(theirs, wavs),
                max_abs_diff=float(np.abs(a - b).max()), frames=(a.shape[-1], b.shape[-1]))


def _worker_cmd(args, kind: str, name: str, precision: str, seconds: float | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "wavegrad.benchmarks.speed", "--worker", name, "--worker-kind", kind,
           "--seconds", str(args.seconds if seconds is None else seconds), "--device", args.device,
           "--precision", precision, "--iters", str(args.iters), "--vocode-clips", str(args.vocode_clips),
           "--priors", args.priors] + (["--compile"] if args.compile else [])
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    return cmd


def _run_isolated(preset: str, args, kind: str = "net", precision: str | None = None,
                  seconds: float | None = None) -> dict:
    cmd = _worker_cmd(args, kind, preset, precision or args.precision.split(",")[0], seconds)
    root = str(Path(__file__).resolve().parents[2])                            # so -m finds this checkout
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m wavegrad.benchmarks.speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", default="tiny,base,large",
                   help="comma-separated model presets (tiny, base, large, diffwave-base, diffwave-large, fregrad)")
    p.add_argument("--seconds", type=float, default=1.0, help="audio length per call (default 1.0)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", default="fp32",
                   help="comma-separated list of fp32, bf16 (bf16 = autocast around the network), e.g. fp32,bf16")
    p.add_argument("--iters", type=int, default=5, help="timed calls per preset (median and best reported)")
    p.add_argument("--vocode-clips", type=int, default=4,
                   help="clips of --seconds each for the vocoding-throughput column (0: skip it)")
    p.add_argument("--train", action="store_true", help="also time one Adam step (base, batch 4 x 7168)")
    p.add_argument("--featurizer", action="store_true", help="also compare MelFeaturizer with librosa")
    p.add_argument("--long", type=float, default=0.0, metavar="S",
                   help="also vocode S and S/4 seconds (chunked, 6 steps), each in a fresh process: RSS and time")
    p.add_argument("--long-preset", default="base", help="preset for --long (default base)")
    p.add_argument("--priors", default="white",
                   help="comma-separated noise priors whose vocoding throughput is measured side by side (white first)")
    p.add_argument("--compile", action="store_true",
                   help="time the networks (and --train's step) under torch.compile too, beside eager; compile time "
                        "is reported apart")
    p.add_argument("--no-isolate", action="store_true", help="run all presets in this process")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-kind", default="net", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    precisions = [q.strip() for q in args.precision.split(",") if q.strip()]
    bad = [q for q in precisions if q not in ("fp32", "bf16")]
    if bad or not precisions:
        p.error(f"--precision takes fp32 and/or bf16 (comma-separated), got {args.precision!r}")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.worker:
        prec = precisions[0]
        kind = args.worker_kind
        if kind == "net":
            r = bench_preset(args.worker, args.seconds, device, prec, args.iters)
        elif kind == "netc":
            r = bench_preset(args.worker, args.seconds, device, prec, args.iters, compiled=True)
        elif kind == "vocode":
            r = bench_vocode(args.worker, args.seconds, args.vocode_clips, device, prec, args.iters,
                             tuple(args.priors.split(",")))
        elif kind == "long":
            r = bench_long(args.worker, args.seconds, device, prec)
        elif kind == "train":
            r = bench_train(device, prec, args.iters)
        elif kind == "trainc":
            r = bench_train(device, prec, args.iters, compiled=True)
        else:
            raise SystemExit(f"unknown worker kind {kind!r}")
        print(json.dumps(r))
        return

    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    print(f"device={device} precision={','.join(precisions)} {hardware()} audio={args.seconds:g}s@{SAMPLE_RATE}Hz",
          flush=True)
    for prec in precisions:
        # The peak is measured before and after the presets and the best kept: on a shared machine a single
        # measurement can land in someone else's busy moment and inflate every %peak.
        peak = matmul_peak(device, prec)
        rows = []
        for preset in presets:
            r = (bench_preset(preset, args.seconds, device, prec, args.iters) if args.no_isolate
                 else _run_isolated(preset, args, "net", prec))
            if args.vocode_clips > 0:
                v = (bench_vocode(preset, args.seconds, args.vocode_clips, device, prec, args.iters,
                                  tuple(args.priors.split(",")))
                     if args.no_isolate else _run_isolated(preset, args, "vocode", prec))
                r["vocode_rate"] = v["audio_s"] / v["s"]
                r["prior_s"] = v["priors"]
            rows.append(r)
            if args.compile:
                c = (bench_preset(preset, args.seconds, device, prec, args.iters, compiled=True) if args.no_isolate
                     else _run_isolated(preset, args, "netc", prec))
                rows.append(c | {"preset": preset + " (compiled)"})
        peak = max(peak, matmul_peak(device, prec))
        print(f"\n[{prec}] dtype={'bfloat16 autocast' if prec == 'bf16' else 'float32'}  "
              f"matmul peak (2048^2): {peak / 1e9:.0f} GFLOP/s")
        print(f"{'preset':<25}{'params':>9}{'s/it/aud-s':>12}{'(best)':>8}{'RTF@6':>8}{'GFLOP/aud-s':>13}{'%peak':>7}"
              f"{'peak mem':>11}{'voc aud-s/s':>13}")
        for r in rows:
            per_s = r["s_per_iter"] / r["audio_s"]
            voc = f"{r['vocode_rate']:>13.2f}" if "vocode_rate" in r else f"{'-':>13}"
            print(f"{r['preset']:<25}{r['params'] / 1e6:>8.2f}M{per_s:>12.3f}{r['best_s_per_iter'] / r['audio_s']:>8.3f}"
                  f"{6 * per_s:>8.2f}"
                  f"{r['flops'] / r['audio_s'] / 1e9:>13.1f}{100 * r['flops'] / r['s_per_iter'] / peak:>6.0f}%"
                  f"{r['peak_mem'] / 2 ** 20:>8.0f} MiB{voc}"
                  + (f"  (compiled in {r['compile_s']:.0f} s)" if r.get("compile_s") else ""), flush=True)
        if len(args.priors.split(",")) > 1 and args.vocode_clips > 0:
            print(f"vocoding at 6 steps with each prior ({args.vocode_clips} clips x {args.seconds:g} s, median "
                  f"of {max(1, args.iters // 2)} interleaved rounds):")
            for r in (r for r in rows if "prior_s" in r):
                white = r["prior_s"][args.priors.split(",")[0]]
                print(f"  {r['preset']:<14}" + "  ".join(f"{p} {t:.3f} s ({100 * (t / white - 1):+.1f}%)"
                                                        for p, t in r["prior_s"].items()), flush=True)

    if args.train:
        print("\ntraining: base preset, Adam, batch 4 x 7168 samples (one full step: mel + fwd + bwd + update)")
        for prec in precisions:
            for kind in ("train", "trainc") if args.compile else ("train",):
                r = (bench_train(device, prec, args.iters, compiled=kind == "trainc") if args.no_isolate
                     else _run_isolated("base", args, kind, prec))
                label = prec + (" compiled" if kind == "trainc" else "")
                print(f"  {label:<14} {r['s_per_step']:.3f} s/step (best {r['best_s']:.3f})  {r['samples_per_s']:.2f} "
                      f"samples/s ({r['samples_per_s'] * 7168 / SAMPLE_RATE:.2f} audio-s/s)"
                      + (f"  compiled in {r['compile_s']:.0f} s" if r["compile_s"] else ""), flush=True)

    if args.featurizer:
        r = bench_featurizer()
        print(f"\nfeaturizer, {r['seconds']:g} s clips, best of 20 (max |log-mel diff| vs librosa {r['max_abs_diff']:.1e}):")
        for label, ours_s, theirs_s, n in (("1 clip", r["ours_s"], r["librosa_s"], 1),
                                           (f"{r['clips']} clips", r["ours_batch_s"], r["librosa_batch_s"], r["clips"])):
            print(f"  {label:<8} MelFeaturizer {1000 * ours_s:7.1f} ms ({n * r['seconds'] / ours_s:6.0f} audio-s/s)  "
                  f"librosa {1000 * theirs_s:7.1f} ms ({n * r['seconds'] / theirs_s:5.0f} audio-s/s)  "
                  f"-> {theirs_s / ours_s:.1f}x", flush=True)

    if args.long > 0:
        print(f"\nlong-form: Vocoder({args.long_preset}) chunked, 6 steps, one fresh process per case")
        for prec in precisions:
            for secs in (args.long / 4, args.long):
                r = _run_isolated(args.long_preset, args, "long", prec, seconds=secs)
                print(f"  {prec:<5} {r['audio_s']:>6.1f} s audio: {r['s']:>7.1f} s ({r['s'] / r['audio_s']:.3f} s/aud-s, "
                      f"RTF {r['s'] / r['audio_s']:.2f})  peak RSS {r['peak_mem'] / 2 ** 20:.0f} MiB  "
                      f"finite={r['finite']}", flush=True)


if __name__ == "__main__":
    main()
