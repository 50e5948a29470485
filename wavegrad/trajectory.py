"""Pictures of the denoising trajectory: the sampler's per-step callback, recorded and drawn.

``Trajectory`` is a callback for :func:`wavegrad.diffusion.sample` (and every caller that forwards one) that keeps
the state ``x_t`` and the predicted ``x0`` of chosen steps. :func:`audio_figure` draws WaveGrad's picture of a
waveform refined step by step (waveform and log-mel of the state at each kept step, beside the target mel);
:func:`image_gif` writes the image grid of every step as an animated GIF.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .diffusion import Step
from .errors import UserInputError
from .utils import atomic_path


class Trajectory:
    """A sampling callback that keeps ``(i, level, x_t, x0_hat)`` of the steps in ``keep`` (all when None), on CPU."""

    def __init__(self, keep: Sequence[int] | None = None):
        self.keep = None if keep is None else set(keep)
        self.steps: list[tuple[int, float, torch.Tensor, torch.Tensor]] = []

    def __call__(self, step: Step) -> None:
        if self.keep is None or step.i in self.keep:
            self.steps.append((step.i, step.level, step.x.detach().float().cpu(), step.denoised.detach().float().cpu()))

    @staticmethod
    def evenly(total: int, count: int) -> list[int]:
        """``count`` step indices spread over ``total`` steps, the first and the last included."""
        if total <= count:
            return list(range(total))
        return sorted({round(k * (total - 1) / (count - 1)) for k in range(count)})


def _pyplot():
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserInputError("drawing a trajectory needs matplotlib: pip install wavegrad[plot]") from None
    return plt


def audio_figure(path: str | Path, trajectory: Trajectory, output: torch.Tensor, target_mel: torch.Tensor,
                 featurizer, sample_rate: int, row: int = 0, spans: Sequence[tuple[float, float]] = ()) -> Path:
    """A PNG: the target log-mel, then per kept step the waveform and log-mel of the state ``x_t`` (with its noise
    level), then the output; clip ``row`` of the batch the trajectory saw. ``spans`` (seconds) are shaded: the
    regions an infill regenerates, so the eye finds them."""
    plt = _pyplot()
    rows = [("target (the conditioning mel)", None, target_mel.cpu())]
    n = output.shape[-1]
    for i, level, x, _ in trajectory.steps:
        state = x[row, :n]
        rows.append((f"step {i + 1}, noise level {level:.3g}", state, featurizer.paired(state.to(featurizer.mel_basis.device))[0].cpu()))
    out = output.detach().float().cpu()
    rows.append(("output", out, featurizer.paired(out.to(featurizer.mel_basis.device))[0].cpu()))
    lo, hi = float(target_mel.min()), float(target_mel.max())
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 1.6 * len(rows)), squeeze=False)
    t = np.arange(n) / sample_rate
    for (title, wav, mel), (ax_w, ax_m) in zip(rows, axes):
        if wav is None:
            ax_w.axis("off")
        else:
            ax_w.plot(t, wav.numpy(), lw=0.3, color="C0")
            ax_w.set_ylim(-1.05, 1.05)
            ax_w.set_title(title, fontsize=8, loc="left")
        ax_m.imshow(mel.numpy(), origin="lower", aspect="auto", vmin=lo, vmax=hi, cmap="magma")
        ax_m.set_title(f"log-mel: {title}", fontsize=8, loc="left")
        for ax in (ax_w, ax_m):
            ax.tick_params(labelsize=6)
        frames_per_second = sample_rate / featurizer.cfg.hop_length
        for start, end in spans:                    # shaded on the waveform, outlined on the mel (kept visible)
            if wav is not None:
                ax_w.axvspan(start, end, color="C2", alpha=0.25, lw=0)
            for edge in (start, end):
                ax_m.axvline(edge * frames_per_second, color="C2", lw=0.8, ls="--")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return Path(path)


def image_gif(path: str | Path, frames: Sequence[np.ndarray], seconds_per_frame: float = 0.12,
              hold_last: float = 1.5) -> Path:
    """An animated GIF of uint8 ``[H, W, C]`` (or ``[H, W]``) frames, the last one held a while; written atomically."""
    try:
        from PIL import Image
    except ImportError:
        raise UserInputError("writing a GIF needs Pillow: pip install pillow (it comes with matplotlib)") from None
    images = [Image.fromarray(f[..., 0] if f.ndim == 3 and f.shape[-1] == 1 else f) for f in frames]
    durations = [int(1000 * seconds_per_frame)] * (len(images) - 1) + [int(1000 * hold_last)]
    with atomic_path(path) as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    return Path(path)
