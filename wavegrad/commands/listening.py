"""The benchmark's listening page: every row's audio and log-mel picture for every clip, in one HTML table that opens
from disk (relative links, no server, no network), like the demo pages of the papers.

Layout of a benchmark folder::

    benchmark.html                    systems x clips: an audio player and a mel image per cell, the metrics beside
    benchmark_mels.png                the first clip's log-mels of ground truth, Griffin-Lim and every row side by side
    audio/<row>/<clip>.wav            what each row made of each clip (16-bit PCM)
    mels/<row>/<clip>.png             its log-mel, on the colour scale of the ground truth
"""
from __future__ import annotations

import html
import math
import re
from pathlib import Path

import numpy as np
import torch

from ..audio import write_audio
from ..utils import atomic_path

METRIC_NAMES = {"rtf": "RTF", "log_mel_l1": "log-mel L1", "lsd_db": "LSD dB", "mrstft": "MR-STFT", "mcd_db": "MCD dB",
                "pesq_wb": "PESQ", "stoi": "STOI", "dnsmos_ovrl": "DNSMOS", "wer": "WER", "si_sdr": "SI-SDR dB",
                "si_sdr_i": "SI-SDRi dB"}


def row_key(row: dict) -> str:
    """A folder name for a row, unique within a benchmark: its system, schedule, steps and consistency as a slug."""
    text = " ".join(str(row.get(k, "")) for k in ("system", "schedule", "steps", "consistency") if row.get(k) != "none")
    text = text.replace("+", "p")              # gla / gla++ and gla+gl4 / gla+++gl4 stay apart
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "row"


def write_media(out_dir: Path, key: str, ids: list[str], wavs: list[torch.Tensor], mels: list[torch.Tensor],
                sample_rate: int, scale: tuple[float, float]) -> None:
    """``audio/<key>/<id>.wav`` and ``mels/<key>/<id>.png`` for each clip: ``wavs[i] [T_i]``, ``mels[i] [n_mels, F_i]``."""
    for clip, w, m in zip(ids, wavs, mels):
        w, m = w.cpu().float().numpy(), m.cpu().float().numpy()
        (out_dir / "audio" / key).mkdir(parents=True, exist_ok=True)
        (out_dir / "mels" / key).mkdir(parents=True, exist_ok=True)
        write_audio(out_dir / "audio" / key / f"{clip}.wav", np.clip(w, -1.0, 1.0), sample_rate)
        mel_png(out_dir / "mels" / key / f"{clip}.png", m, scale)


def mel_png(path: Path, mel: np.ndarray, scale: tuple[float, float]) -> None:
    """A log-mel ``[n_mels, F]`` as a picture: low bands at the bottom, ``scale`` (lo, hi) mapped onto magma (grey
    without matplotlib), two pixels per band."""
    from PIL import Image
    lo, hi = scale
    x = np.clip((mel[::-1] - lo) / max(hi - lo, 1e-6), 0.0, 1.0)                  # [n_mels, F], top = high bands
    try:
        from matplotlib import colormaps
        rgb = (colormaps["magma"](x)[..., :3] * 255).astype(np.uint8)               # [n_mels, F, 3]
    except ImportError:
        rgb = np.repeat((x * 255).astype(np.uint8)[..., None], 3, axis=-1)
    image = Image.fromarray(rgb).resize((mel.shape[1] * 2, mel.shape[0] * 2), Image.NEAREST)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def plot_mels(path: Path, panels: list[tuple[str, np.ndarray]], scale: tuple[float, float]) -> None:
    """One clip's log-mels ``[n_mels, F]``, a titled panel each, four to a row (skipped without matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    cols = min(4, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.4 * rows), squeeze=False)
    for ax, (title, mel) in zip(axes.flat, panels):
        ax.imshow(mel, origin="lower", aspect="auto", cmap="magma", vmin=scale[0], vmax=scale[1])
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("frame", fontsize=7)
        ax.set_ylabel("mel band", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)


_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;font-size:13px}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums}audio{width:220px;height:32px}img{display:block;width:220px;
image-rendering:pixelated}small{color:#666}#status{font-weight:600}"""

# Counts the players whose file loaded (or failed) and says so at the top: a reader sees a broken page at once, and a
# headless browser's DOM (chromium --dump-dom) carries the verdict in <body data-audio>.
_SCRIPT = """<script>
window.addEventListener('load', () => {
  const players = [...document.querySelectorAll('audio')], missing = [];
  let settled = 0;
  const status = document.getElementById('status');
  const done = () => {
    if (++settled < players.length) return;
    document.body.dataset.audio = missing.length ? 'missing' : 'ok';
    document.body.dataset.loaded = players.length - missing.length;
    status.textContent = missing.length ? missing.length + ' of ' + players.length + ' recordings missing: ' +
      missing.join(', ') : 'all ' + players.length + ' recordings load';
  };
  players.forEach(a => {
    if (a.readyState >= 1) { done(); return; }
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', () => { missing.push(a.getAttribute('src')); done(); }, {once: true});
    a.load();
  });
});
</script>"""


def write_page(out_dir: Path, rows: list[dict], ids: list[str], meta: dict) -> Path:
    """``benchmark.html``: one table row per benchmark row (``row["key"]`` names its media folders), one cell per clip
    with its player, its mel picture and its log-mel L1, the row's mean metrics in the first columns."""
    metrics = [k for k in METRIC_NAMES if any(isinstance(r.get(k), float) for r in rows)]
    head = ["system", "schedule", "steps", "NFE", "consistency"] + [METRIC_NAMES[k] for k in metrics] + ids
    lines = ["<!doctype html>", "<html><head><meta charset='utf-8'><title>wavegrad benchmark</title>",
             f"<style>{_STYLE}</style></head><body>", "<h1>wavegrad benchmark: listen and look</h1>",
             f"<p>{html.escape(_describe(meta))}</p>", "<p id='status'>checking the recordings&hellip;</p>",
             "<p><img src='benchmark.png' style='width:900px' alt='quality and speed against NFE'></p>",
             "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        cells = [html.escape(str(row.get(k, ""))) for k in ("system", "schedule", "steps", "nfe", "consistency")]
        cells = [f"<td>{c}</td>" for c in cells]
        cells += [f"<td class='num'>{_number(row.get(k))}</td>" for k in metrics]
        for i, clip in enumerate(ids):
            wav, png = (f"{kind}/{row['key']}/{clip}.{ext}" for kind, ext in (("audio", "wav"), ("mels", "png")))
            l1 = row.get("clip_log_mel_l1", [])
            note = f"<small>log-mel L1 {l1[i]:.3f}</small>" if i < len(l1) else ""
            cells.append(f"<td><audio controls preload='metadata' src='{html.escape(wav)}'></audio>"
                         f"<img src='{html.escape(png)}' alt='log-mel'>{note}</td>")
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</table>", "<p><img src='benchmark_mels.png' style='max-width:100%' alt='log-mels side by side'></p>",
              _SCRIPT, "</body></html>"]
    path = out_dir / "benchmark.html"
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path


def _number(v) -> str:
    return "" if not isinstance(v, float) else ("n/a" if math.isnan(v) else f"{v:.3f}")


def _describe(meta: dict) -> str:
    checkpoints = ", ".join(f"{k}: {v}" for k, v in meta.get("checkpoints", {}).items())
    return (f"{len(meta['clips'])} clips of {meta['seconds_per_clip']:.2f} s on average, seed {meta['seed']}, device "
            f"{meta['device']} ({meta['threads']} threads), torch {meta['torch']}; {checkpoints}. RTF: "
            f"{meta['rtf']}. Mel pictures share the ground truth's colour scale.")
