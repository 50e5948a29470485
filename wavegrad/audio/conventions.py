"""Between mel conventions: which ones a log-mel array is consistent with, and converting where a closed form exists.

Two conventions are related elementwise only when they compute the same linear mel -- same rate, framing, window,
magnitude, filterbank and band edges -- and differ in what follows it: the log's base and floor, an affine map,
a clip, or a mean-variance normalisation (ESPnet's ``feats_stats.npz``). Then ``convert`` decodes the values to
the linear mel and encodes them in the other convention (exact above both floors and inside both clips); any
other pair is refused with the first step that differs.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from ..errors import UserInputError, first_line
from .mel import MEL_PRESETS, MelConfig, mel_basis

# The fields that decide the linear mel: conventions that differ in any of them have no elementwise map.
LINEAR_FIELDS = {
    "sample_rate": "sample rate", "n_fft": "FFT size", "hop_length": "hop", "win_length": "window length",
    "n_mels": "band count", "f_min": "lowest band edge", "f_max": "highest band edge",
    "center": "framing (centred vs HiFi-GAN's half-hop-shifted frames)", "pad_mode": "edge padding",
    "window_periodic": "window (periodic vs symmetric Hann)", "power_eps": "magnitude epsilon",
    "power_floor": "magnitude floor", "normalized": "STFT normalisation", "mel_scale": "mel scale (Slaney vs HTK)",
    "mel_norm": "filterbank normalisation",
}
# Linear mel magnitudes of [-1, 1] audio lie far below this: a convention's largest plausible value.
MAX_LINEAR_MEL = 1e3


def convention_of(name_or_path: str) -> MelConfig:
    """A preset name, or a JSON file of MelConfig fields (or an exported folder's config.json, its ``mel_config``)."""
    if name_or_path in MEL_PRESETS:
        return MelConfig.preset(name_or_path)
    path = Path(name_or_path)
    if path.suffix.lower() == ".json" and path.is_file():
        import json
        try:
            fields = json.loads(path.read_text())
            fields = fields.get("mel_config", fields) if isinstance(fields, dict) else fields   # an export's config
            return MelConfig.from_dict(fields)
        except (ValueError, TypeError) as e:
            raise UserInputError(f"{path}: not a MelConfig JSON ({first_line(e)})") from None
    raise UserInputError(f"unknown mel convention {name_or_path!r}: a preset ({', '.join(MEL_PRESETS)}) or a "
                         "JSON file of MelConfig fields")


def why_not_convertible(a: MelConfig, b: MelConfig) -> str | None:
    """None when ``a``'s values map elementwise onto ``b``'s, else the first linear-mel step that differs."""
    for field, what in LINEAR_FIELDS.items():
        va, vb = getattr(a, field), getattr(b, field)
        if field == "f_max":
            va, vb = va or a.sample_rate / 2, vb or b.sample_rate / 2
        if va != vb:
            return f"their {what} differ ({va} vs {vb}): the linear mels differ, not only their log"
    return None


def load_stats(path: str | Path, n_mels: int) -> tuple[np.ndarray, np.ndarray]:
    """ESPnet's GlobalMVN statistics (``feats_stats.npz``: count, sum, sum_square) -> (mean, std) per band,
    std = sqrt(max(var, 1e-20)) as espnet2/layers/global_mvn.py computes it."""
    path = Path(path)
    try:
        stats = np.load(path, allow_pickle=False)
        count, total, square = (np.asarray(stats[k], dtype=np.float64) for k in ("count", "sum", "sum_square"))
    except (OSError, ValueError, KeyError) as e:
        raise UserInputError(f"{path}: not ESPnet feats_stats.npz with count, sum and sum_square ({first_line(e)})") from None
    if total.shape != (n_mels,) or square.shape != (n_mels,) or not float(count) > 0:
        raise UserInputError(f"{path}: statistics for {total.shape} bands, the mel has {n_mels}; use the stats of "
                             "the model that made the mel")
    mean = total / count
    return mean, np.sqrt(np.maximum(square / count - mean * mean, 1e-20))


def convert(mel: np.ndarray, src: MelConfig, dst: MelConfig, stats: tuple[np.ndarray, np.ndarray] | None = None
            ) -> np.ndarray:
    """``mel [n_mels, frames]`` in ``src``'s convention (mean-variance normalised with ``stats`` if given) -> ``dst``'s.

    Exact where both conventions are invertible: values at ``src``'s floor or clip carry no more than "at most
    this" and come out at ``dst``'s floor or clip value for that level.
    """
    reason = why_not_convertible(src, dst)
    if reason is not None:
        raise UserInputError(f"no closed-form conversion: {reason}; re-compute the mels from audio in the target "
                             "convention, or train for the source one (wavegrad train --mel-preset)")
    x = np.asarray(mel, dtype=np.float64)
    if stats is not None:
        mean, std = stats
        x = x * std[:, None] + mean[:, None]                            # GlobalMVN.inverse
    linear = src.decode_log(torch.from_numpy(x))
    return dst.encode_log(linear.clamp(min=0)).numpy().astype(np.float32)


def consistent_conventions(mel: np.ndarray) -> list[str]:
    """The presets whose value range admits ``mel``: nothing below their silence level (floor or clip) or above
    their clip or the log of ``MAX_LINEAR_MEL``, and the right band count."""
    found = []
    lo, hi = float(np.min(mel)), float(np.max(mel))
    for name in MEL_PRESETS:
        cfg = MelConfig.preset(name)
        if mel.shape[0] != cfg.n_mels:
            continue
        low, high = value_range(cfg)
        tol = 1e-3 * max(1.0, abs(low), abs(high))
        if lo >= low - tol and hi <= high + tol:
            found.append(name)
    return found


@functools.lru_cache(maxsize=32)
def value_range(cfg: MelConfig) -> tuple[float, float]:
    """The smallest and largest value a convention can produce for [-1, 1] audio: the silence level is the log
    floor, or higher where the magnitude itself is floored (ESPnet's sqrt(1e-10) per bin, summed by each band)."""
    per_bin = math.sqrt(max(cfg.power_eps, cfg.power_floor))
    weights = mel_basis(cfg).sum(1)                          # [n_mels] each band's sum of weights
    if cfg.normalized:
        weights = weights / float(np.sqrt(np.sum(_hann(cfg) ** 2)))
    silence = per_bin * float(weights.min())
    low = float(cfg.encode_log(torch.tensor(silence, dtype=torch.float64)))
    high = float(cfg.encode_log(torch.tensor(MAX_LINEAR_MEL, dtype=torch.float64)))
    return low, high


def _hann(cfg: MelConfig) -> np.ndarray:
    n = cfg.win_length
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / (n if cfg.window_periodic else n - 1))


def check_values(mel: torch.Tensor, cfg: MelConfig, where: str) -> None:
    """A one-line error when ``mel``'s values cannot come from ``cfg``'s convention (below its silence level or
    above what [-1, 1] audio gives), naming the conventions they fit and the converter."""
    low, high = value_range(cfg)
    lo, hi = float(mel.min()), float(mel.max())
    tol = 1e-3 * max(1.0, abs(low), abs(high))
    if lo >= low - tol and hi <= high + tol:
        return
    fits = consistent_conventions(mel.detach().cpu().numpy())
    hint = (f"it fits {', '.join(fits)}: convert it with `wavegrad mel convert` if a closed form exists"
            if fits else "check how it was computed (`wavegrad mel info`)")
    raise UserInputError(f"{where} has values in [{lo:.3g}, {hi:.3g}], outside what this checkpoint's mel "
                         f"convention gives ([{low:.3g}, {high:.3g}]); {hint}")


def describe(mel: np.ndarray) -> str:
    """``wavegrad mel info``'s report: shape, range, mean, and the presets consistent with the values."""
    fits = consistent_conventions(mel)
    lo, hi = float(np.min(mel)), float(np.max(mel))
    lines = [f"shape {list(mel.shape)} ([n_mels, frames]), dtype {mel.dtype}",
             f"values in [{lo:.4g}, {hi:.4g}], mean {float(np.mean(mel)):.4g}, "
             f"{float(np.mean(np.isclose(mel, lo))):.1%} of the values at the minimum"]
    for name in MEL_PRESETS:
        cfg = MelConfig.preset(name)
        low, high = value_range(cfg)
        mark = "consistent" if name in fits else ("other band count" if mel.shape[0] != cfg.n_mels else "no")
        lines.append(f"  {name:20s} {mark:17s} silence {low:8.3f}, range [{low:.3g}, {high:.3g}], "
                     f"{cfg.sample_rate} Hz, hop {cfg.hop_length}")
    if not fits:
        lines.append("consistent with no preset (a mean-variance normalised mel? give its stats to `mel convert`)")
    return "\n".join(lines)
