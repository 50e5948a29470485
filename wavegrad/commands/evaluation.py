"""Held-out clips and the vocode-and-score loop shared by `search-schedule` and `benchmark`."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserInputError
from ..vocoder import Vocoder


@dataclass
class EvalClips:
    ids: list[str]
    wav: torch.Tensor   # [B, T], T a multiple of the hop: every clip cut to the same length
    mel: torch.Tensor   # [B, n_mels, T / hop]
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Audio-seconds over all clips."""
        return self.wav.numel() / self.sample_rate


def load_eval_clips(voc: Vocoder, data_dir: str | Path, split: str, n: int, seconds: float) -> EvalClips:
    """The first ``n`` clips of a split, each cut to the same length (<= ``seconds``, a multiple of the hop)."""
    from ..data import Clips, load_split
    cfg = voc.mel_config
    if n < 1 or not seconds > 0:
        raise UserInputError(f"need at least one clip of positive length, got {n} clips of {seconds} s")
    clips = Clips(data_dir, load_split(data_dir, split)[:n], cfg)
    wavs = [clips[i]["audio"] for i in range(len(clips))]
    hop = cfg.hop_length
    T = min(min(len(w) for w in wavs), int(seconds * cfg.sample_rate)) // hop * hop
    if T < 4 * hop:
        raise UserInputError(f"the {split} clips of {data_dir} are too short to evaluate (need >= {4 * hop} samples)")
    wav = torch.stack([w[:T] for w in wavs]).to(voc.device)  # [B, T]
    return EvalClips(clips.store.ids, wav, voc.featurizer.paired(wav), cfg.sample_rate)


def vocode_clips(voc: Vocoder, clips: EvalClips, seed: int, **plan) -> tuple[torch.Tensor, float]:
    """Vocode every clip through :meth:`Vocoder.vocode_batch` -- the path `wavegrad vocode` takes, so the
    timings are the command's -- with clip ``i`` seeded ``seed + i``; ``plan`` is its sampler, schedule,
    steps or nfe and options. Returns (wav [B, T], seconds taken)."""
    t0 = time.perf_counter()
    wavs = voc.vocode_batch(list(clips.mel), seed=seed, **plan)
    return torch.stack(wavs), time.perf_counter() - t0
