"""What users hand the vocoder, checked: mels, recordings, infill spans, padded batches and counts. Each check is a
one-line :class:`UserInputError` that says what is wrong and how to fix it."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .audio import MelConfig
from .audio.conventions import check_values
from .errors import UserInputError


def check_mel(mel, cfg: MelConfig) -> torch.Tensor:
    """A log-mel ``[n_mels, frames]`` or ``[B, n_mels, frames]`` in convention ``cfg`` -> ``[B, n_mels, frames]``."""
    mel = torch.as_tensor(mel)
    if mel.ndim == 2:
        mel = mel.unsqueeze(0)
    if mel.ndim != 3:
        raise UserInputError(f"mel must be [n_mels, frames] or [B, n_mels, frames], got shape {tuple(mel.shape)}")
    if mel.shape[1] != cfg.n_mels:
        hint = " (is it [frames, n_mels]? transpose it)" if mel.shape[2] == cfg.n_mels else ""
        raise UserInputError(f"mel has {mel.shape[1]} bands, this vocoder expects {cfg.n_mels}{hint}")
    if mel.shape[2] < 1:
        raise UserInputError("mel has no frames")
    if not torch.isfinite(mel).all():
        raise UserInputError("mel contains NaN or inf values")
    check_values(mel, cfg, "the mel")
    return mel


def check_mels(mels: Sequence, cfg: MelConfig) -> list[torch.Tensor]:
    """A list of ``[n_mels, frames_i]`` log-mels, each checked; errors name the mel's index."""
    checked = []
    for i, mel in enumerate(mels):
        if torch.as_tensor(mel).ndim != 2:
            raise UserInputError(f"mel #{i}: vocode_batch takes a list of [n_mels, frames] log-mels, got shape "
                                 f"{tuple(torch.as_tensor(mel).shape)}")
        try:
            checked.append(check_mel(mel, cfg)[0])
        except UserInputError as e:
            raise UserInputError(f"mel #{i}: {e}") from None
    return checked


def unpad(mels, lengths) -> list:
    """A list of [n_mels, frames] mels from a list, or from a padded [B, n_mels, F] batch cut to ``lengths``."""
    if isinstance(mels, torch.Tensor) and mels.ndim == 3:
        mels = list(mels.unbind(0))
    elif lengths is not None and not isinstance(mels, (list, tuple)):
        raise UserInputError("lengths go with a padded batch [B, n_mels, F] (or a list of mels)")
    if lengths is None:
        return list(mels)
    lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    if len(lengths) != len(mels):
        raise UserInputError(f"{len(lengths)} lengths for {len(mels)} mels")
    out = []
    for i, (mel, n) in enumerate(zip(mels, lengths)):
        frames = torch.as_tensor(mel).shape[-1]
        if not 1 <= n <= frames:
            raise UserInputError(f"mel #{i}: length {n} is outside 1..{frames} (its padded frame count)")
        out.append(torch.as_tensor(mel)[..., :n])
    return out


def check_count(name: str, value, allow_none: bool = False, minimum: int = 1) -> None:
    """An integer >= ``minimum`` (or None where allowed), else a one-line error naming it."""
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}")


def check_recording(wav, cfg: MelConfig, hop: int) -> torch.Tensor:
    """A float waveform ``[T]`` long enough to infill, finite -> float32."""
    wav = torch.as_tensor(wav)
    if wav.ndim != 1 or not wav.is_floating_point():
        raise UserInputError(f"the recording must be a float waveform [T], got {wav.dtype} {tuple(wav.shape)}")
    if wav.shape[0] < max(hop, cfg.min_length):
        raise UserInputError(f"the recording has {wav.shape[0]} samples: too short to infill")
    if not torch.isfinite(wav).all():
        raise UserInputError("the recording contains NaN or inf samples")
    return wav.to(torch.float32)


def span_mask(spans: Sequence[tuple[float, float]], length: int, sample_rate: int, device=None) -> torch.Tensor:
    """A bool mask ``[length]``, False inside the time ``spans`` (seconds), checked: in range, non-empty,
    not overlapping."""
    if not spans:
        raise UserInputError("give at least one span START:END (seconds) to infill")
    mask = torch.ones(length, dtype=torch.bool, device=device)
    bounds = []
    for start, end in spans:
        a, b = round(start * sample_rate), round(end * sample_rate)
        if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end > length / sample_rate + 1e-9:
            raise UserInputError(f"span {start:g}:{end:g} s lies outside the recording (0:{length / sample_rate:.3f} s)")
        if b <= a:
            raise UserInputError(f"span {start:g}:{end:g} s is empty; give START < END")
        bounds.append((a, b, start, end))
    for (a1, b1, s1, e1), (a2, b2, s2, e2) in zip(sorted(bounds), sorted(bounds)[1:]):
        if a2 < b1:
            raise UserInputError(f"spans {s1:g}:{e1:g} and {s2:g}:{e2:g} overlap; merge them")
    for a, b, _, _ in bounds:
        mask[a:b] = False
    return mask
