"""`wavegrad vocode CHECKPOINT INPUT... --out-dir DIR`: log-mels (.npy) or audio files -> waveforms.

All inputs are loaded and validated before anything is vocoded: one bad input among many stops the run
with one line on stderr (exit code 2) and nothing written. Outputs go to ``DIR/<input stem>.wav``
(16-bit PCM, atomic writes). Input ``i`` (in command-line order) is vocoded with seed ``--seed + i``,
so ``wavegrad vocode CKPT x.npy --seed S+i`` reproduces the i-th output of a multi-input run.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..audio.consistency import WHOLE_CLIP
from ..config import HelpFormatter
from ..diffusion import repaint_steps
from ..errors import UserInputError, first_line
from ..trajectory import Trajectory, audio_figure
from .sampling_flags import add_consistency_args, add_sampling_args, consistency_from_args, sampling_plan

DEFAULT_STEPS = 50

DESCRIPTION = """\
Vocode log-mels or re-synthesise audio with a trained WaveGrad checkpoint.

INPUT is a .npy log-mel [n_mels, frames] (or [1, n_mels, frames]) in the checkpoint's mel convention
(natural log of the mel magnitude, floor included), or an audio file (WAV/FLAC/OGG...) that is read at
the checkpoint's sample rate (mixed to mono, resampled if needed) and turned into a log-mel by the
checkpoint's own front end. Output: OUT_DIR/<input stem>.wav, at the checkpoint's sample rate;
existing files are replaced atomically.

All inputs are validated before any is vocoded: a missing, unreadable, empty or malformed input
(NaN/inf, wrong number of mel bands, wrong rank), two inputs with the same stem, or a bad checkpoint
stops the run with one error line and exit code 2, and nothing is written. Input i (in the order
given) uses seed SEED + i. Long inputs are vocoded in overlapping windows of about CHUNK_SECONDS
(crossfaded at every sampling step), so memory does not grow with the length.
"""


def register(sub, name: str = "vocode") -> argparse.ArgumentParser:
    p = sub.add_parser(name, help="mel (.npy) or audio -> waveform with a trained checkpoint",
                       description=DESCRIPTION, formatter_class=HelpFormatter)
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a vocoder checkpoint (`wavegrad train` output)")
    p.add_argument("inputs", metavar="INPUT", nargs="+", help=".npy log-mel [n_mels, frames] or an audio file")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the <input stem>.wav outputs")
    add_sampling_args(p, DEFAULT_STEPS, "ddpm")
    add_consistency_args(p)
    p.add_argument("--seed", type=int, default=0, help="input i uses seed SEED + i")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1")
    p.add_argument("--compile", action="store_true",
                   help="run the network under torch.compile: windows of one fixed shape (a clip shorter than a window "
                        "is padded to it, so its last frames can differ slightly from eager); compiling takes 20-60 s on "
                        "a CPU, is reported apart and left out of the RTF")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                   help="bf16: the network under bfloat16 autocast (the sampler stays fp32), 2-7x faster on CPUs with "
                        "AVX512-BF16 / AMX and on GPUs, much slower elsewhere; auto (default): bf16 on such CPUs, fp32 "
                        "elsewhere (README: its measured quality cost)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="windows (clips or chunks of long clips) per network call (default: 1 on CPU, where one "
                        "window already keeps the cores busy and more only add memory; 4 on GPUs)")
    g = p.add_argument_group("infilling", "Regenerate time spans of recordings (clicks, dropouts, an edited word) and "
                                          "keep every other sample bit for bit: the spans are sampled conditioned on "
                                          "the mel while the rest is held to the recording at every step.")
    g.add_argument("--infill", default=None, metavar="START:END[,START:END...]", type=_spans,
                   help="spans to regenerate, in seconds; the INPUTs must be mono audio at the checkpoint's rate")
    g.add_argument("--mel", type=Path, default=None, metavar="FILE.npy",
                   help="the log-mel to condition on (one INPUT only; default: the recording's own), e.g. a TTS mel "
                        "of an edited sentence with the recording's frame count")
    g.add_argument("--jump-length", type=int, default=1,
                   help="RePaint's resampling: after every JUMP_LENGTH steps, diffuse back up that many steps ...")
    g.add_argument("--jump-n-sample", type=int, default=1,
                   help="... and denoise them again, JUMP_N_SAMPLE times in all (1: the replacement method alone; "
                        "RePaint: 10 and 10)")
    p.add_argument("--trajectory", type=Path, default=None, metavar="PNG",
                   help="also draw the denoising trajectory: waveform and log-mel of the state at up to 6 steps "
                        "beside the target mel (several INPUTs: PNG's stem gets -<input stem>)")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="window hop for long inputs, in seconds (each window adds an overlap of 4x the network's context, 32 "
                        "frames for WaveGrad, 52 for DiffWave; default: "
                        "the library's 256 frames, 2.97 s at hop 256 / 22.05 kHz); 0 disables chunking (memory then "
                        "grows with the input's length)")
    p.set_defaults(func=run)
    return p


# ---- input loading -------------------------------------------------------------------------------------------
def load_mel_npy(path: Path, n_mels: int | None) -> torch.Tensor:
    """A .npy log-mel -> float32 tensor [n_mels, frames] (any band count for ``n_mels=None``); a UserInputError
    naming ``path`` otherwise."""
    if not path.exists():
        raise UserInputError(f"input not found: {path}; check the path")
    if not path.is_file():
        raise UserInputError(f"input {path} is a directory or special file; give a .npy file")
    if path.stat().st_size == 0:
        raise UserInputError(f"input {path} is an empty file (0 bytes); re-export the mel")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:  # not a .npy, truncated, or an object array (pickle refused)
        raise UserInputError(f"cannot read {path} as a .npy array ({first_line(e)[:120]}); "
                             "save the mel with numpy.save") from None
    if not isinstance(arr, np.ndarray):
        raise UserInputError(f"{path} holds an .npz archive, not one array; save a single mel with numpy.save")
    if arr.dtype.kind not in "fiu":
        raise UserInputError(f"{path} has dtype {arr.dtype}; a log-mel must be a real float array")
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2:
        extra = " (a batch: save one mel per file)" if arr.ndim == 3 else ""
        raise UserInputError(f"{path} has shape {arr.shape}; expected a log-mel [n_mels={n_mels or 'N'}, frames] "
                             f"or [1, {n_mels or 'N'}, frames]{extra}")
    if n_mels is not None and arr.shape[0] != n_mels:
        hint = " — it looks like [frames, n_mels]: save mel.T instead" if arr.shape[1] == n_mels else ""
        raise UserInputError(f"{path} has {arr.shape[0]} mel bands (shape {arr.shape}) but the checkpoint "
                             f"expects {n_mels}{hint}")
    if arr.shape[1] == 0:
        raise UserInputError(f"{path} has 0 frames; nothing to vocode")
    if not np.isfinite(arr).all():
        raise UserInputError(f"{path} contains NaN or inf values; fix the mel (log of 0? clamp it at the floor)")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def load_input(path: Path, voc) -> torch.Tensor:
    """.npy -> log-mel; anything else -> audio read at the checkpoint's rate -> log-mel [n_mels, frames]."""
    if path.suffix.lower() == ".npy":
        return load_mel_npy(path, voc.mel_config.n_mels)
    from ..audio import read_audio
    if path.is_file() and path.stat().st_size == 0:
        raise UserInputError(f"input {path} is an empty file (0 bytes); re-export it")
    wav = read_audio(path, voc.mel_config.sample_rate)
    try:
        mel = voc.featurizer.paired(torch.from_numpy(wav).to(voc.device))[0]
    except UserInputError as e:
        raise UserInputError(f"{path}: {e}") from None
    return mel.cpu()


def _device(name: str) -> torch.device:
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise UserInputError(f"--device {name!r} is not a torch device; use e.g. cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserInputError(f"--device {name}: CUDA is not available in this torch build/machine; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise UserInputError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def _spans(text: str) -> list[tuple[float, float]]:
    spans = []
    for part in text.split(","):
        try:
            start, end = (float(v) for v in part.split(":"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected START:END[,START:END...] in seconds, got {text!r}") from None
        spans.append((start, end))
    return spans


def _check_args(args: argparse.Namespace) -> None:
    if args.mel is not None and (args.infill is None or len(args.inputs) != 1):
        raise UserInputError("--mel conditions an --infill of one INPUT; give exactly one audio INPUT with --infill")
    if args.infill is not None and any(Path(p).suffix.lower() == ".npy" for p in args.inputs):
        raise UserInputError("--infill regenerates spans of recordings: give audio INPUTs, not .npy mels")
    if args.trajectory is not None and Path(args.trajectory).suffix.lower() != ".png":
        raise UserInputError(f"--trajectory {args.trajectory}: the figure is written as PNG; give a path ending in .png")
    if args.batch_size is not None and args.batch_size < 1:
        raise UserInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.chunk_seconds is not None and (not math.isfinite(args.chunk_seconds) or args.chunk_seconds < 0):
        raise UserInputError(f"--chunk-seconds must be >= 0 (0: no chunking), got {args.chunk_seconds}")
    if args.compile and args.chunk_seconds == 0:
        raise UserInputError("--compile runs windows of one fixed shape: it needs chunking (drop --chunk-seconds 0)")
    if args.seed < 0:
        raise UserInputError(f"--seed must be >= 0, got {args.seed}")


def _plan_outputs(inputs: list[Path], out_dir: Path) -> list[Path]:
    if out_dir.exists() and not out_dir.is_dir():
        raise UserInputError(f"--out-dir {out_dir} exists and is not a directory; choose another path")
    outs, seen = [], {}
    for path in inputs:
        out = out_dir / f"{path.stem}.wav"
        if path.stem in seen:
            raise UserInputError(f"inputs {seen[path.stem]} and {path} have the same stem {path.stem!r} and would "
                                 f"both write {out}; rename one or vocode them into different --out-dir")
        seen[path.stem] = path
        if path.exists() and out.exists() and out.resolve() == path.resolve():
            raise UserInputError(f"output {out} would overwrite the input {path}; choose another --out-dir")
        outs.append(out)
    return outs


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ..vocoder import DEFAULT_CHUNK_FRAMES, Vocoder

    _check_args(args)
    inputs = [Path(p) for p in args.inputs]
    outs = _plan_outputs(inputs, Path(args.out_dir))
    device = _device(args.device)
    if args.batch_size is None:
        args.batch_size = 1 if device.type == "cpu" else 4
    voc = Vocoder.from_checkpoint(args.checkpoint, device=device, precision=args.precision, compile=args.compile)
    request = sampling_plan(args, voc.schedule_samplers, set(voc.schedules), DEFAULT_STEPS, "ddpm")
    consistency = consistency_from_args(args, voc.bundle.consistency_for(None, args.schedule))
    if args.infill is not None and args.consistency is None:          # stored whole-clip options are left out
        consistency = consistency.without_whole_clip(keep=[name for name in WHOLE_CLIP if hasattr(args, name)])
    plan = voc.plan(**request, consistency=consistency)        # a bad schedule / steps / nfe fails before any work
    sr, hop = voc.mel_config.sample_rate, voc.hop_length
    chunk_frames = (DEFAULT_CHUNK_FRAMES if args.chunk_seconds is None else
                    None if args.chunk_seconds == 0 else max(1, round(args.chunk_seconds * sr / hop)))

    if args.infill is not None:
        return _infill(args, voc, inputs, outs, plan, chunk_frames)
    mels = []                                                  # validate everything first: nothing written on error
    for path in inputs:
        mel = load_input(path, voc)
        try:
            voc.check_mel(mel)
        except UserInputError as e:
            raise UserInputError(f"{path}: {e}") from None
        mels.append(mel)

    if args.compile:
        took = voc.warm_up(args.batch_size, chunk_frames or DEFAULT_CHUNK_FRAMES)
        print(f"compiled the network in {took:.1f} s (not counted in the RTF below)")
    interactive = sys.stderr.isatty()
    t0, audio_seconds = time.perf_counter(), sum(m.shape[-1] for m in mels) * hop / sr
    with tqdm(total=len(mels), desc="vocoding", unit="file", disable=not interactive) as bar:
        size = 1 if args.trajectory else args.batch_size       # a trajectory follows one clip at a time
        for start in range(0, len(mels), size):
            group = list(range(start, min(start + size, len(mels))))
            record = Trajectory(Trajectory.evenly(len(plan.sampling.schedule), 6)) if args.trajectory else None
            wavs = voc.vocode_batch([mels[i] for i in group], seed=args.seed + start, batch_size=args.batch_size,
                                    chunk_frames=chunk_frames, callback=record, plan=plan)
            for i, wav in zip(group, wavs):
                _write(outs[i], wav, inputs[i], sr)
                if record is not None:
                    audio_figure(_figure_path(args.trajectory, inputs, i), record, wav, mels[i], voc.featurizer, sr)
                bar.update(1)
    took = time.perf_counter() - t0
    print(f"wrote {len(outs)} file(s), {audio_seconds:.2f} s of audio, to {args.out_dir} in {took:.2f} s "
          f"(RTF {took / audio_seconds:.3f})")
    return 0


def _figure_path(path: Path, inputs: list[Path], i: int) -> Path:
    return path if len(inputs) == 1 else path.with_name(f"{path.stem}-{inputs[i].stem}{path.suffix}")


def _write(out: Path, wav: torch.Tensor, source: Path, sr: int) -> None:
    from ..audio import write_audio
    if not bool(torch.isfinite(wav).all()):
        raise UserInputError(f"{source}: the sampler diverged (NaN/inf output); nothing written for it; try more "
                             f"--steps or another --sampler")
    write_audio(out, wav.cpu(), sr)


def _infill(args, voc, inputs: list[Path], outs: list[Path], plan, chunk_frames) -> int:
    """Every input read (mono, at the checkpoint's rate: the kept samples are the file's own) and checked with
    its spans before any is written; then each infilled and written."""
    from ..audio import read_audio
    sr = voc.mel_config.sample_rate
    wavs = []
    for path in inputs:
        wav = torch.from_numpy(read_audio(path, sr, mono="error", resample=False))
        try:
            voc.span_mask(args.infill, wav.shape[-1])
        except UserInputError as e:
            raise UserInputError(f"{path}: {e}") from None
        wavs.append(wav)
    mel = load_mel_npy(args.mel, voc.mel_config.n_mels) if args.mel is not None else None
    t0 = time.perf_counter()
    for i, (path, wav) in enumerate(zip(inputs, wavs)):
        steps = repaint_steps(len(plan.sampling.schedule), args.jump_length, args.jump_n_sample)
        record = Trajectory(Trajectory.evenly(steps, 6)) if args.trajectory else None
        try:
            out = voc.infill(wav, args.infill, mel=mel, seed=args.seed + i, jump_length=args.jump_length,
                             jump_n_sample=args.jump_n_sample, chunk_frames=chunk_frames, batch_size=args.batch_size,
                             callback=record, plan=plan)
        except UserInputError as e:
            raise UserInputError(f"{path}: {e}") from None
        _write(outs[i], out, path, sr)
        if record is not None:
            n = wav.shape[-1] // voc.hop_length * voc.hop_length
            target = mel if mel is not None else voc.featurizer.paired(wav[:n].to(voc.device))[0]
            audio_figure(_figure_path(args.trajectory, inputs, i), record, out[:n], target, voc.featurizer, sr,
                         spans=args.infill)
    print(f"infilled {len(outs)} file(s) ({', '.join(f'{a:g}-{b:g} s' for a, b in args.infill)}) to {args.out_dir} "
          f"in {time.perf_counter() - t0:.2f} s")
    return 0
