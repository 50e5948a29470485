"""The speech-enhancement benchmark: clean speech mixed with held-out noise at a fixed SNR, enhanced by a checkpoint
and by a classical baseline, scored against the clean speech, with a listening page.

Rows: the noisy input itself, spectral gating (Sainburg et al. 2020, the maintained ``noisereduce`` package of the
eval extra: its stationary noise estimate from the recording itself), and the checkpoint with each sampler and step
count. Columns: PESQ-WB, STOI, SI-SDR and its improvement over the noisy input (SI-SDRi), DNSMOS and log-mel L1,
means over the mixtures; every row's audio and log-mel picture for every mixture on ``benchmark.html``.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..audio import metrics as M
from ..errors import UserInputError
from . import listening
from .benchmark import table, write_tables

COLUMNS = ["system", "steps", "rtf", "pesq_wb", "stoi", "si_sdr", "si_sdr_i", "dnsmos_ovrl", "log_mel_l1"]


@dataclass
class Mixture:
    name: str
    clean: np.ndarray      # [T]
    noisy: np.ndarray      # [T], peak at most 0.95 (clean scaled by the same factor)


def make_mixtures(speech: Sequence[tuple[str, np.ndarray]], noises: Sequence[tuple[str, np.ndarray]],
                  snr_db: float, seed: int = 0) -> list[Mixture]:
    """Every clip with every noise at ``snr_db``: a seeded segment of the noise, mixed and scaled as in training."""
    from ..data.enhancement import scaled_pair
    from ..data.noise import mix
    out = []
    for i, (sid, clean) in enumerate(speech):
        for j, (kind, noise) in enumerate(noises):
            rng = np.random.default_rng([seed, i, j])
            if len(noise) < len(clean):
                noise = np.tile(noise, len(clean) // len(noise) + 1)
            start = int(rng.integers(len(noise) - len(clean) + 1))
            c, y = scaled_pair(clean, mix(clean, noise[start:start + len(clean)], snr_db))
            out.append(Mixture(f"{sid}+{kind}", c, y))
    return out


def spectral_gating(noisy: np.ndarray, sr: int) -> np.ndarray | str:
    """noisereduce's stationary spectral gating of ``noisy``, or why it cannot run (a string)."""
    try:
        import noisereduce
    except ImportError as e:
        return f"spectral gating skipped: {e} (pip install wavegrad[eval])"
    return noisereduce.reduce_noise(y=noisy, sr=sr, stationary=True).astype(np.float32)


def score(mixture: Mixture, est: np.ndarray, sr: int, mel_config, optional: dict) -> dict:
    m = {"si_sdr": M.si_sdr(mixture.clean, est), "log_mel_l1": M.log_mel_l1(mixture.clean, est, mel_config)}
    m["si_sdr_i"] = m["si_sdr"] - M.si_sdr(mixture.clean, mixture.noisy)
    for name, fn in (("pesq_wb", M.pesq_wb), ("stoi", M.stoi)):
        if optional.get(name) is True:
            try:
                m[name] = fn(mixture.clean, est, sr)
            except (UserInputError, ValueError, RuntimeError):
                m[name] = math.nan
    if optional.get("dnsmos") is True:
        m["dnsmos_ovrl"] = M.dnsmos(est, sr)["ovrl"]
    return m


def benchmark_enhancer(checkpoint: str | Path, mixtures: Sequence[Mixture], out_dir: str | Path, *,
                       runs: Sequence[tuple[str, int | None]] = (("cdiffuse", None), ("ddim", None)), seed: int = 0,
                       device: str = "cpu", optional_metrics: bool = True) -> list[dict]:
    """Score the noisy input, spectral gating and the checkpoint's ``runs`` ((sampler, steps); steps None: the
    checkpoint's inference schedule) on ``mixtures``; write benchmark.md/.csv/.json/.html; return the rows."""
    from ..enhance import Enhancer
    if not mixtures:
        raise UserInputError("no mixtures to score: give speech clips and noise recordings")
    enh = Enhancer.from_checkpoint(checkpoint, device=device)
    sr, out_dir = enh.sample_rate, Path(out_dir)
    optional = M.available_optional_metrics() if optional_metrics else {}
    seconds = sum(len(m.clean) for m in mixtures) / sr
    systems: list[tuple[str, object, list[np.ndarray] | str, float]] = [("noisy input", "", [m.noisy for m in mixtures], 0.0)]
    t0 = time.perf_counter()
    gated = [spectral_gating(m.noisy, sr) for m in mixtures]
    took = time.perf_counter() - t0
    notes = []
    if isinstance(gated[0], str):
        notes.append(gated[0])
    else:
        systems.append(("spectral gating (noisereduce)", "", gated, took / seconds))
    for sampler, steps in runs:
        t0 = time.perf_counter()
        outs = [enh(torch.from_numpy(m.noisy), steps, sampler=sampler, seed=seed + i).cpu().numpy()
                for i, m in enumerate(mixtures)]
        systems.append((f"{sampler}", len(enh.schedule(steps)), outs, (time.perf_counter() - t0) / seconds))
    rows = []
    scale = _scale(enh, mixtures)
    for system, steps, outs, rtf in systems:
        per = [score(m, o, sr, enh.bundle.mel_config, optional) for m, o in zip(mixtures, outs)]
        row = {"system": system, "steps": steps, "rtf": rtf if system != "noisy input" else ""}
        row |= {k: float(np.nanmean([p.get(k, math.nan) for p in per])) for k in per[0]}
        row["clip_log_mel_l1"] = [p["log_mel_l1"] for p in per]
        row["key"] = listening.row_key(row)
        wavs = [torch.from_numpy(np.asarray(o, dtype=np.float32)) for o in outs]
        listening.write_media(out_dir, row["key"], [m.name for m in mixtures], wavs,
                              [enh.featurizer.paired(w.to(enh.device))[0] for w in wavs], sr, scale)
        rows.append(row)
    meta = {"checkpoints": {"enhancer": str(checkpoint)}, "clips": [m.name for m in mixtures],
            "seconds_per_clip": seconds / len(mixtures), "seed": seed, "device": str(enh.device),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "rtf": "wall-clock seconds per audio-second over every mixture", "notes": notes +
            [f"{k} skipped: {str(v).splitlines()[0]}" for k, v in optional.items() if v is not True and k != "wer"]}
    _write_reports(out_dir, rows, meta)
    return rows


def _scale(enh, mixtures: Sequence[Mixture]) -> tuple[float, float]:
    """The colour scale of every picture: the clean speech's log-mel range."""
    truth = torch.cat([enh.featurizer.paired(torch.from_numpy(m.clean).to(enh.device))[0] for m in mixtures], -1)
    truth = truth.cpu().numpy()
    return float(np.percentile(truth, 1)), float(truth.max())


def markdown_table(rows: list[dict], meta: dict) -> str:
    head = f"{len(meta['clips'])} mixtures, {meta['seconds_per_clip']:.2f} s each on average, seed {meta['seed']}"
    return table(rows, meta, COLUMNS, head)


def _write_reports(out_dir: Path, rows: list[dict], meta: dict) -> None:
    write_tables(out_dir, rows, meta, COLUMNS, markdown_table(rows, meta))
    listening.write_page(out_dir, rows, meta["clips"], meta)
