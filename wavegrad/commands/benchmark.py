"""`wavegrad benchmark`: quality against network evaluations (NFE) and speed, for every sampler, in one table
and one plot."""
from __future__ import annotations

import argparse
import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..audio import metrics as M
from ..audio.consistency import Consistency
from ..checkpoint import find_checkpoint
from ..config import HelpFormatter, add_arguments, from_args, param
from ..diffusion import SAMPLERS, SCHEDULE_KINDS, steps_for_nfe
from ..diffusion.samplers import heun_error_gain
from ..errors import UserInputError
from ..models.precision import hardware
from ..utils import atomic_path
from ..vocoder import Vocoder
from . import listening
from .evaluation import EvalClips, load_eval_clips, vocode_clips
from .sampling_flags import SamplerOptions

# a Heun row whose correction amplifies the network's errors more than this gets a note (6 Karras steps from the
# VP schedule's sigma 157: 13, its output fine; 3 steps: 295 and 2 steps: 7.9e3, their output noise, measured)
HEUN_GAIN_NOTE = 100.0

SEARCHED = "searched"          # every schedule stored by search-schedule, with the sampler it was searched for
COLUMNS = ["system", "schedule", "steps", "nfe", "consistency", "rtf", "log_mel_l1", "lsd_db", "mrstft", "mcd_db",
           "pesq_wb", "stoi", "dnsmos_ovrl", "wer"]


@dataclass
class BenchmarkConfig:
    """Which samplers at which NFE budgets `benchmark` runs, on which clips, and where the reports go."""

    nfe: tuple[int, ...] = param((1000, 100, 50, 25, 12, 6, 3), "network-evaluation budgets; each sampler runs as "
                                 "many steps as a budget pays for (Heun: 2N-1, pc: N(1+corrector steps))")
    samplers: tuple[str, ...] = param(("ddpm", "ddim", "euler", "heun", "dpmpp-2m", "pc", SEARCHED),
                                      "comma-separated samplers; 'searched' adds every schedule stored by "
                                      "search-schedule", choices=(*SAMPLERS, SEARCHED))
    schedule: str = param("auto", "schedule of the sampled steps: respaced training schedule, Karras rho=7 spacing, "
                          "or auto (karras for the ODE samplers: "
                          + ", ".join(n for n, s in SAMPLERS.items() if s.ode) + ", and for every sampler of a "
                          "network trained with EDM's objective, as vocode runs them; respaced for the others)",
                          choices=("auto", *SCHEDULE_KINDS))
    options: SamplerOptions = param(factory=SamplerOptions, prefix="", help="options of the samplers that take them")
    consistency: tuple[str, ...] = param(("none",), "comma-separated mel-consistent sampling modes, every sampler row "
                                         "run with each: none, gla (GLA-Grad), gla++ (GLA-Grad++); MODE@A0 adds a "
                                         "shallow start at noise level A0 (e.g. gla@0.9), +glK K fast Griffin-Lim "
                                         "iterations on the finished sample (e.g. gla@0.9+gl16)")
    gla: Consistency = param(factory=Consistency, prefix="", help="options of the consistency rows")
    split: str = param("test", "split whose clips are vocoded and scored")
    clips: int = param(4, "clips vocoded per row")
    seconds: float = param(2.0, "longer clips are cut to this length (their WER is then left out: the transcript no "
                                "longer matches)")
    seed: int = param(0, "noise seed (clip i uses seed + i)")
    out_dir: str = param("", "folder for benchmark.md/.csv/.json/.png (empty: <run>/benchmark next to the checkpoint)")
    device: str = param("cpu", "torch device, e.g. cpu, cuda")
    precision: str = param("auto", "the networks' precision: fp32, bf16 autocast around the network calls (fast only "
                                   "on CPUs with AVX512-BF16 / AMX and on GPUs), or auto (bf16 on such CPUs, else "
                                   "fp32)", choices=("auto", "fp32", "bf16"))
    compile: bool = param(False, "run the networks under torch.compile (compiled once before the rows, the time "
                                 "reported in the notes and left out of every RTF)")
    optional: bool = param(True, "also score PESQ/STOI/DNSMOS/MCD when the eval extra is installed")

    def validate(self, train_steps: int) -> None:
        if not self.nfe or min(self.nfe) < 1:
            raise UserInputError(f"--nfe must be positive evaluation counts, got {list(self.nfe)}")
        bad = [s for s in self.samplers if s not in SAMPLERS and s != SEARCHED]
        if bad or not self.samplers:
            raise UserInputError(f"unknown sampler(s) {bad}; choose from {', '.join((*SAMPLERS, SEARCHED))}")
        if self.schedule not in ("auto", *SCHEDULE_KINDS):
            raise UserInputError(f"--schedule must be auto, respaced or karras, got {self.schedule!r}")
        if not self.consistency:
            raise UserInputError("--consistency needs at least one mode (none, gla, gla++)")
        self.modes()

    def modes(self) -> list[Consistency]:
        """The consistency of each ``--consistency`` item, with the ``--gla-*`` options."""
        return [Consistency.parse(item, self.gla) for item in self.consistency]

    def jobs(self, voc: Vocoder) -> tuple[list[dict], list[str]]:
        """Every row to run, its plan built once: each sampler at each NFE budget (each (sampler, steps) once) and
        each searched schedule, with each consistency mode -- a schedule search-schedule stored with a consistency
        keeps its own, one row; and notes on what could not run."""
        jobs: list[dict] = []
        notes: list[str] = []

        def add(system: str, mode: Consistency, **request) -> None:
            try:
                plan = voc.plan(consistency=mode, **request)
            except UserInputError as e:
                notes.append(f"{system} ({mode.label()}): {e}")
                return
            row = {"system": system, "schedule": request["schedule"], "steps": len(plan.sampling.schedule),
                   "nfe": plan.nfe, "consistency": plan.consistency.label()}
            if any(all(j[k] == v for k, v in row.items()) for j in jobs):
                return
            jobs.append(row | {"plan": plan})
            gain = heun_error_gain(plan.sampling.alpha_bars()) if plan.sampling.sampler == "heun" else 0.0
            if gain > HEUN_GAIN_NOTE:
                notes.append(f"{system} {row['steps']} steps ({mode.label()}): a Heun correction on this schedule "
                             f"multiplies an error of its denoised estimate by up to {gain:.3g} (sigma ratio too "
                             "large; fine with an exact denoiser): more steps, or ddim, or a shallow start "
                             "(gla@0.9) avoid it")

        for mode in self.modes():
            train = voc.train_schedule if mode.start_level is None else voc.train_schedule.truncate(mode.start_level)
            for sampler in (s for s in self.samplers if s != SEARCHED):
                options = self.options.for_sampler(sampler, strict=False)
                for budget in sorted(self.nfe, reverse=True):
                    try:
                        steps = min(steps_for_nfe(sampler, budget, **options), len(train))
                    except UserInputError as e:
                        notes.append(f"{sampler} at NFE {budget}: {e}")
                        continue
                    kind = self.schedule if self.schedule != "auto" else (
                        voc.bundle.default_schedule(steps, sampler=sampler))                   # what vocode runs
                    add(sampler, mode, sampler=sampler, schedule=kind, steps=steps,
                        eta=self.options.eta if sampler == "ddim" else None, **options)
            for name in sorted(n for n in voc.schedules if n.startswith("search-")) if SEARCHED in self.samplers else ():
                sampler = voc.schedule_samplers.get(name, "ddpm")
                stored = voc.bundle.schedules[name].consistency or mode
                add(f"{SEARCHED} {sampler}", stored, schedule=name, sampler=sampler,
                    **self.options.for_sampler(sampler, strict=False))
        if SEARCHED in self.samplers and not any(n.startswith("search-") for n in voc.schedules):
            notes.append("searched: no schedule stored in the checkpoint (run wavegrad search-schedule)")
        return jobs, list(dict.fromkeys(notes))


def register(sub, name: str) -> None:
    p = sub.add_parser(name, formatter_class=HelpFormatter, help="quality vs network evaluations vs speed for a checkpoint",
                       description="Vocode held-out test clips with every sampler at every NFE budget (and every "
                                   "searched schedule) and score them against the real audio; writes markdown, CSV, "
                                   "JSON and a PNG plot of quality and speed against network evaluations.")
    p.add_argument("checkpoints", type=Path, nargs="+", metavar="CHECKPOINT",
                   help="one vocoder checkpoint, or several to compare side by side on the same clips (e.g. the same "
                        "model trained with --prior white and --prior specgrad)")
    p.add_argument("--data-dir", type=Path, required=True, help="LJSpeech-layout folder with a test.txt split")
    p.add_argument("--labels", type=lambda t: [v for v in t.split(",") if v], default=None,
                   help="comma-separated names of the checkpoints' rows (default: their run folders)")
    add_arguments(p, BenchmarkConfig)
    p.set_defaults(func=run)


def score_clips(clips: EvalClips, est: torch.Tensor, mel_config, optional: dict) -> dict:
    """Mean of every metric over the clips (``est [B, T_max]``, clip i's first ``clips.lengths[i]`` samples against
    the real ones), and each clip's log-mel L1 (``clip_log_mel_l1``). WER: over the whole clips with a transcript."""
    rows, sr = [], mel_config.sample_rate
    for i, (r, e) in enumerate(zip(clips.clips(clips.wav.cpu()), clips.clips(est.cpu()))):
        r, e = r.numpy(), e.numpy()
        m = {"log_mel_l1": M.log_mel_l1(r, e, mel_config), "lsd_db": M.lsd(r, e), "mrstft": M.mrstft(r, e)}
        if optional.get("mcd") is True:
            m["mcd_db"] = M.mcd(r, e, sr)
        for name, fn in (("pesq_wb", M.pesq_wb), ("stoi", M.stoi)):
            if optional.get(name) is True:
                try:
                    m[name] = fn(r, e, sr)
                except (UserInputError, ValueError, RuntimeError):  # e.g. silent output: PESQ undefined
                    m[name] = math.nan
        if optional.get("dnsmos") is True:
            m["dnsmos_ovrl"] = M.dnsmos(e, sr)["ovrl"]
        if optional.get("wer") is True and clips.whole[i] and clips.texts[i]:
            from ..audio.intelligibility import wer
            m["wer"] = wer(clips.texts[i], e, sr)
        rows.append(m)
    keys = list(dict.fromkeys(k for row in rows for k in row))
    return {k: float(np.nanmean([row.get(k, math.nan) for row in rows])) for k in keys} | {
        "clip_log_mel_l1": [row["log_mel_l1"] for row in rows]}


def griffin_lim(voc: Vocoder, clips: EvalClips) -> tuple[torch.Tensor, float]:
    """Seeded Griffin-Lim (32 iterations) from the same log-mels: the no-training reference."""
    import time

    import librosa
    cfg = voc.mel_config
    t0 = time.perf_counter()
    outs, T = [], clips.wav.shape[1]
    window = "hann" if cfg.window_periodic else ("hann", False)
    for mel, n in zip(clips.mels(), clips.lengths):
        mel = cfg.decode_log(mel.double()).clamp(min=0).cpu().numpy()           # [n_mels, F] linear mel
        if cfg.normalized:  # the bank was divided by the window's energy: undo it before inverting the bank
            mel = mel * float(torch.hann_window(cfg.win_length, periodic=cfg.window_periodic,
                                                dtype=torch.float64).square().sum().sqrt())
        S = librosa.feature.inverse.mel_to_stft(mel, sr=cfg.sample_rate, n_fft=cfg.n_fft, power=1.0, fmin=cfg.f_min,
                                                fmax=cfg.f_max, htk=cfg.mel_scale == "htk", norm=cfg.mel_norm)
        # centred frames invert with center=True; HiFi-GAN's frames sit over a signal padded by (n_fft - hop)/2
        # each side: invert with center=False and cut that padding off again
        y = librosa.griffinlim(S, n_iter=32, hop_length=cfg.hop_length, win_length=cfg.win_length, n_fft=cfg.n_fft,
                               window=window, center=cfg.center, random_state=0)
        y = y if cfg.center else y[cfg.padding[0]:]
        y = y[:n]
        outs.append(torch.from_numpy(np.pad(y, (0, T - len(y))).astype(np.float32)))
    return torch.stack(outs), time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    benchmark_checkpoints(args.checkpoints, args.data_dir, from_args(BenchmarkConfig, args), labels=args.labels)
    return 0


def benchmark_checkpoint(checkpoint: Path, data_dir: Path, cfg: BenchmarkConfig) -> list[dict]:
    """:func:`benchmark_checkpoints` of one checkpoint."""
    return benchmark_checkpoints([checkpoint], data_dir, cfg)


def benchmark_checkpoints(checkpoints: list[Path], data_dir: Path, cfg: BenchmarkConfig,
                          labels: list[str] | None = None) -> list[dict]:
    """Ground truth, Griffin-Lim, then every (sampler, NFE) row of every checkpoint on the same clips; writes
    the reports and prints the table. Several checkpoints must share their mel convention (same clips, same
    features); their rows are prefixed with ``labels`` (default: each run folder's name)."""
    checkpoints = [find_checkpoint(c) for c in checkpoints]
    labels = _labels(checkpoints, labels)
    vocs = [Vocoder.from_checkpoint(c, device=cfg.device, precision=cfg.precision, compile=cfg.compile)
            for c in checkpoints]
    for c, voc in zip(checkpoints[1:], vocs[1:]):
        if voc.mel_config != vocs[0].mel_config:
            raise UserInputError(f"{c} uses another mel convention than {checkpoints[0]}; compare checkpoints "
                                 "trained on the same features")
    for voc in vocs:
        cfg.validate(len(voc.train_schedule))
    clips = load_eval_clips(vocs[0], data_dir, cfg.split, cfg.clips, cfg.seconds)
    optional = M.available_optional_metrics() if cfg.optional else {}
    mel_config = vocs[0].mel_config
    out_dir = Path(cfg.out_dir) if cfg.out_dir else checkpoints[0].parent.parent / (
        "benchmark" if len(checkpoints) == 1 else "benchmark-compare")
    media = Media(out_dir, clips, vocs[0])
    rows = [media.add({"system": "ground truth", "schedule": "", "steps": "", "nfe": "", "consistency": "", "rtf": "",
                       **score_clips(clips, clips.wav, mel_config, optional)}, clips.wav)]
    gl, gl_t = griffin_lim(vocs[0], clips)
    rows.append(media.add({"system": "Griffin-Lim (32 it., seeded)", "schedule": "", "steps": 32, "nfe": "",
                           "consistency": "", "rtf": gl_t / clips.seconds,
                           **score_clips(clips, gl, mel_config, optional)}, gl))
    notes = []
    for label, voc in zip(labels, vocs):
        if cfg.compile:
            notes.append(f"{label or 'checkpoint'}: compiled the network in {voc.warm_up():.1f} s (not in the RTF)")
        jobs, job_notes = cfg.jobs(voc)
        notes += [f"{label}: {n}" if label else n for n in job_notes]
        for job in tqdm(jobs, desc=f"benchmark {label}".strip(), unit="run", disable=None):
            system = f"{label}: {job['system']}" if label else job["system"]
            out, took = vocode_clips(voc, clips, cfg.seed, plan=job["plan"])
            if not torch.isfinite(out).all():
                notes.append(f"{system} {job['steps']} steps: non-finite output")
                continue
            rows.append(media.add({"system": system} | {k: job[k] for k in ("schedule", "steps", "nfe", "consistency")}
                                  | {"rtf": took / clips.seconds} | score_clips(clips, out, mel_config, optional),
                                  out))
    for name, status in optional.items():
        if status is not True:
            notes.append(f"{name} skipped: {str(status).splitlines()[0]}")
    if optional.get("wer") is True and not any(w and t for w, t in zip(clips.whole, clips.texts)):
        notes.append("wer skipped: " + ("no transcripts in metadata.csv" if not any(clips.texts) else
                                        f"every clip was cut to --seconds {cfg.seconds:g}; give a longer --seconds"))
    meta = {"checkpoints": dict(zip(labels or ["checkpoint"], map(str, checkpoints))),
            "priors": {lab or "checkpoint": v.prior_config.kind for lab, v in zip(labels or [""], vocs)},
            "device": str(vocs[0].device), "threads": torch.get_num_threads(), "torch": torch.__version__,
            "hardware": hardware(), "precision": vocs[0].precision, "compiled": cfg.compile,
            "clips": clips.ids, "seconds_per_clip": clips.seconds / len(clips.ids),
            "seed": cfg.seed, "samplers": list(cfg.samplers), "nfe": "network evaluations per clip",
            "rtf": "wall-clock seconds per audio-second for the whole batch of clips, the path of `wavegrad vocode`",
            "mcd": "pysptk mcep order 24, c0 excluded, no DTW (time-aligned)", "notes": notes}
    write_reports(out_dir, rows, meta)
    media.finish(rows, meta)
    print(markdown_table(rows, meta))
    print(f"\nwritten: {out_dir}/benchmark.md, .csv, .json, .png; listen in {out_dir}/benchmark.html "
          f"(every row's audio/ and mels/, and benchmark_mels.png)")
    return rows


class Media:
    """Writes each row's audio and mel pictures as it is scored, and the listening page at the end."""

    def __init__(self, out_dir: Path, clips: EvalClips, voc: Vocoder):
        self.out_dir, self.clips, self.voc = out_dir, clips, voc
        truth = torch.cat(clips.mels(), dim=-1).cpu().float().numpy()
        self.scale = (float(np.percentile(truth, 1)), float(truth.max()))   # every picture on the truth's scale
        self.panels: list[tuple[str, np.ndarray]] = []

    def add(self, row: dict, wav: torch.Tensor) -> dict:
        """Write ``wav [B, T]``'s clips and pictures under the row's key; returns the row with its key."""
        row["key"] = listening.row_key(row)
        wavs = self.clips.clips(wav.to(self.voc.device))
        mels = [self.voc.featurizer.paired(w)[0] for w in wavs]                       # [n_mels, F_i] each
        listening.write_media(self.out_dir, row["key"], self.clips.ids, wavs, mels, self.clips.sample_rate, self.scale)
        steps = f", {row['steps']} steps" if row.get("nfe") != "" else ""
        mode = f", {row['consistency']}" if row.get("consistency") not in ("", "none", None) else ""
        self.panels.append((f"{row['system']}{steps}{mode}", mels[0].cpu().float().numpy()))
        return row

    def finish(self, rows: list[dict], meta: dict) -> None:
        listening.plot_mels(self.out_dir / "benchmark_mels.png", self.panels, self.scale)
        listening.write_page(self.out_dir, rows, self.clips.ids, meta)


def _labels(checkpoints: list[Path], labels: list[str] | None) -> list[str]:
    """No prefix for one checkpoint; else the given labels or the run folders' names (made unique)."""
    if labels:
        if len(labels) != len(checkpoints):
            raise UserInputError(f"--labels has {len(labels)} names for {len(checkpoints)} checkpoints")
        return list(labels)
    if len(checkpoints) == 1:
        return [""]
    names = [c.parent.parent.name or c.stem for c in checkpoints]
    return [n if names.count(n) == 1 else f"{n}/{c.stem}" for n, c in zip(names, checkpoints)]


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3f}"
    return str(v)


def table(rows: list[dict], meta: dict, columns: Sequence[str], head: str) -> str:
    """A markdown report: ``head``, the table of ``columns`` that some row has, then ``meta["notes"]``."""
    cols = [c for c in columns if any(c in r for r in rows)]
    lines = [head, "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    lines += [f"- {n}" for n in meta["notes"]]
    return "\n".join(lines)


def write_tables(out_dir: Path, rows: list[dict], meta: dict, columns: Sequence[str], markdown: str) -> None:
    """``out_dir/benchmark.md`` (``markdown``), ``.json`` (meta and rows) and ``.csv`` (the ``columns`` some row
    has), each written atomically; shared by the vocoder and the enhancement benchmarks."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "benchmark.md") as tmp:
        tmp.write_text(markdown + "\n")
    with atomic_path(out_dir / "benchmark.json") as tmp:
        tmp.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    with atomic_path(out_dir / "benchmark.csv") as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=[c for c in columns if any(c in r for r in rows)], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def markdown_table(rows: list[dict], meta: dict) -> str:
    head = (f"device {meta['device']} ({meta.get('hardware', '')}), {meta.get('precision', 'fp32')}"
            f"{', compiled' if meta.get('compiled') else ''}; "
            f"{len(meta['clips'])} clips x {meta['seconds_per_clip']:.2f} s, seed {meta['seed']}")
    return table(rows, meta, COLUMNS, head)


def write_reports(out_dir: Path, rows: list[dict], meta: dict) -> None:
    write_tables(out_dir, rows, meta, COLUMNS, markdown_table(rows, meta))
    plot(out_dir / "benchmark.png", rows)


def plot(path: Path, rows: list[dict]) -> None:
    """Quality (log-mel L1, and PESQ where scored) and speed (RTF) against NFE, one line per system and consistency
    mode; Griffin-Lim as a reference."""
    try:
        import matplotlib
        import matplotlib.ticker
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    sampled = [r for r in rows if isinstance(r.get("nfe"), int)]
    metrics = [("log_mel_l1", "log-mel L1 (lower is better)")]
    if any(isinstance(r.get("pesq_wb"), float) and not math.isnan(r["pesq_wb"]) for r in sampled):
        metrics.append(("pesq_wb", "PESQ-WB (higher is better)"))
    metrics.append(("rtf", "real-time factor (s per audio-s)"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.5))
    systems = list(dict.fromkeys(r["system"] for r in sampled))
    modes = list(dict.fromkeys(r.get("consistency", "none") for r in sampled))
    # compared checkpoints ("label: sampler"): a colour per sampler, a line style per checkpoint, a marker per mode
    samplers = list(dict.fromkeys(s.split(": ")[-1] for s in systems))
    labels = list(dict.fromkeys(s.split(": ")[0] for s in systems if ": " in s))
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v", "P"]
    for system in systems:
        for mode in modes:
            pts = sorted((r["nfe"], *(r.get(k, math.nan) for k, _ in metrics)) for r in sampled
                         if r["system"] == system and r.get("consistency", "none") == mode)
            if not pts:
                continue
            look = {"color": f"C{samplers.index(system.split(': ')[-1]) % 10}", "marker": markers[modes.index(mode) % 6],
                    "ls": styles[labels.index(system.split(": ")[0]) % 4] if ": " in system else "-"}
            name = system if mode == "none" else f"{system} + {mode}"
            for j, ax in enumerate(axes):
                ax.plot([p[0] for p in pts], [p[j + 1] for p in pts], label=name, **look)
    for r in rows:
        if r["system"].startswith("Griffin"):
            for (key, _), ax in zip(metrics[:-1], axes):
                ax.axhline(r.get(key, math.nan), color="grey", ls="--", label="Griffin-Lim")
    ticks = _spread(sorted({r["nfe"] for r in sampled}))
    for ax, (_, label) in zip(axes, metrics):
        ax.set_xscale("log")
        ax.minorticks_off()  # log-scale minor labels collide; label the measured NFE instead
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[-1].set_yscale("log")
    axes[-1].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[-1].yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    axes[-1].axhline(1.0, color="grey", lw=0.8, ls=":")  # real time
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def _spread(ticks: list[int], gap: float = 0.06) -> list[int]:
    """The NFE ticks that stay at least ``gap`` decades apart on a log axis (11 and 12, 49 and 50 overlap)."""
    kept: list[int] = []
    for t in sorted(ticks, reverse=True):
        if not kept or math.log10(kept[-1]) - math.log10(t) >= gap:
            kept.append(t)
    return sorted(kept)
