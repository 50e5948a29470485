"""`wavegrad enhance CHECKPOINT INPUT... --out-dir DIR`: noisy recordings -> enhanced ones (CDiffuSE).

Every input is read (mixed to mono, resampled to the checkpoint's rate) and checked before any is enhanced: a missing,
unreadable, empty, silent or NaN input, two inputs with the same stem, or a bad checkpoint stops the run with one
line on stderr and exit code 2, and nothing is written. Outputs: DIR/<input stem>.wav (16-bit PCM, atomic writes).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ..config import HelpFormatter
from ..errors import UserInputError


def register(sub, name: str = "enhance") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="noisy speech -> clean speech with a trained enhancement checkpoint",
                       description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="an enhancement checkpoint, run folder or export folder "
                                                            "(recipes/enhance.py)")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help="noisy recordings (WAV/FLAC/OGG)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the <input stem>.wav outputs")
    p.add_argument("--steps", type=int, default=None,
                   help="reverse steps: the training schedule respaced to STEPS (default: the checkpoint's inference "
                        "schedule, CDiffuSE's 6 betas)")
    p.add_argument("--sampler", choices=("cdiffuse", "ddim"), default="cdiffuse",
                   help="cdiffuse: the paper's ancestral reverse steps (Lu et al. 2022, eqs. 9-12); ddim: deterministic")
    p.add_argument("--seed", type=int, default=0, help="input i uses seed SEED + i")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import torch

    from ..audio import read_audio, write_audio
    from ..enhance import Enhancer
    from .vocode import _device, _plan_outputs
    inputs = [Path(p) for p in args.inputs]
    outs = _plan_outputs(inputs, Path(args.out_dir))
    if args.steps is not None and args.steps < 1:
        raise UserInputError(f"--steps must be >= 1, got {args.steps}")
    enh = Enhancer.from_checkpoint(args.checkpoint, device=_device(args.device))
    enh.schedule(args.steps)                                   # a bad --steps fails before any work
    wavs = []
    for path in inputs:
        if path.is_file() and path.stat().st_size == 0:
            raise UserInputError(f"input {path} is an empty file (0 bytes); re-export it")
        wav = torch.from_numpy(read_audio(path, enh.sample_rate))
        try:
            enh._prepare(wav)
        except UserInputError as e:
            raise UserInputError(f"{path}: {e}") from None
        wavs.append(wav)
    t0, seconds = time.perf_counter(), sum(len(w) for w in wavs) / enh.sample_rate
    for i, (wav, out) in enumerate(zip(wavs, outs)):
        clean = enh(wav, args.steps, sampler=args.sampler, seed=args.seed + i)
        if not bool(torch.isfinite(clean).all()):
            raise UserInputError(f"{inputs[i]}: the sampler diverged (NaN/inf); nothing written for it")
        write_audio(out, clean.clamp(-1, 1).cpu().numpy(), enh.sample_rate)
    took = time.perf_counter() - t0
    print(f"enhanced {len(outs)} file(s), {seconds:.2f} s of audio, to {args.out_dir} in {took:.2f} s "
          f"(RTF {took / seconds:.3f})")
    return 0
