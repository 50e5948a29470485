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
    wav: torch.Tensor       # [B, T_max]: clip i in wav[i, :lengths[i]], zeros after (lengths are multiples of the hop)
    mel: torch.Tensor       # [B, n_mels, T_max / hop], each clip's mel padded with the convention's silence
    lengths: list[int]      # samples of each clip: its whole length, or --seconds where it was cut
    texts: list[str]        # transcripts (metadata.csv's normalised column; "" where there is none)
    whole: list[bool]       # False where the clip was cut to --seconds: its transcript no longer matches
    sample_rate: int

    @property
    def seconds(self) -> float:
        """Audio-seconds over all clips."""
        return sum(self.lengths) / self.sample_rate

    def mels(self) -> list[torch.Tensor]:
        """Each clip's own mel ``[n_mels, lengths[i] / hop]``."""
        hop = self.wav.shape[1] // self.mel.shape[-1] if self.mel.shape[-1] else 1
        return [m[:, :n // hop] for m, n in zip(self.mel, self.lengths)]

    def clips(self, wav: torch.Tensor) -> list[torch.Tensor]:
        """Rows of a ``[B, T_max]`` batch cut to each clip's length."""
        return [w[:n] for w, n in zip(wav, self.lengths)]


def load_eval_clips(voc: Vocoder, data_dir: str | Path, split: str, n: int, seconds: float) -> EvalClips:
    """The first ``n`` clips of a split, each whole or cut to ``seconds`` (a multiple of the hop) if longer."""
    from ..data import Clips, load_split, read_metadata
    cfg = voc.mel_config
    if n < 1 or not seconds > 0:
        raise UserInputError(f"need at least one clip of positive length, got {n} clips of {seconds} s")
    clips = Clips(data_dir, load_split(data_dir, split)[:n], cfg)
    wavs = [clips[i]["audio"] for i in range(len(clips))]
    hop = cfg.hop_length
    limit = int(seconds * cfg.sample_rate) // hop * hop
    lengths = [min(len(w), limit) for w in wavs]
    if min(lengths) < 4 * hop:
        raise UserInputError(f"the {split} clips of {data_dir} are too short to evaluate (need >= {4 * hop} samples)")
    wav = torch.zeros(len(wavs), max(lengths))
    for i, (w, m) in enumerate(zip(wavs, lengths)):
        wav[i, :m] = w[:m]
    wav = wav.to(voc.device)                                                             # [B, T_max]
    mel = torch.full((len(wavs), cfg.n_mels, wav.shape[1] // hop), voc.silence_level, device=voc.device)
    for i, m in enumerate(lengths):
        mel[i, :, :m // hop] = voc.featurizer.paired(wav[i, :m])[0]
    texts = _transcripts(data_dir, clips.store.ids, read_metadata)
    return EvalClips(clips.store.ids, wav, mel, lengths, texts, [m == len(w) for w, m in zip(wavs, lengths)],
                     cfg.sample_rate)


def _transcripts(data_dir, ids: list[str], read_metadata) -> list[str]:
    try:
        rows = {u.id: u.normalized_text or u.text for u in read_metadata(data_dir)}
    except UserInputError:
        return [""] * len(ids)
    return [rows.get(i, "") for i in ids]


def vocode_clips(voc: Vocoder, clips: EvalClips, seed: int, **plan) -> tuple[torch.Tensor, float]:
    """Vocode every clip through :meth:`Vocoder.vocode_batch` -- the path `wavegrad vocode` takes, so the
    timings are the command's -- with clip ``i`` seeded ``seed + i``; ``plan`` is its sampler, schedule,
    steps or nfe, options and consistency. Returns (wav [B, T_max] padded with zeros, seconds taken)."""
    t0 = time.perf_counter()
    wavs = voc.vocode_batch(clips.mels(), seed=seed, **plan)
    took = time.perf_counter() - t0
    out = torch.zeros_like(clips.wav)
    for i, w in enumerate(wavs):
        out[i, :w.shape[-1]] = w
    return out, took
