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


GAIN_LEVELS = (0.999, 0.99, 0.95)    # sqrt(alpha_bar): where harmonics and phase are decided, and a little above


@torch.inference_mode()
def x0_error_ratios(voc: Vocoder, clips: EvalClips, levels=GAIN_LEVELS, seed: int = 0) -> dict[float, float]:
    """How much of the noise one network call removes, per level ``a``: ``||x0_hat - x0|| / ||x_t/a - x0||`` over
    the clips (1: nothing removed, 0: the clip itself), ``x_t = a·x0 + sqrt(1 - a²)·eps`` with prior noise, x0_hat
    from the eps prediction (Ho et al. 2020, eq. 15); the padding past each clip is left out."""
    g = torch.Generator().manual_seed(seed)
    x0, prior = clips.wav, voc.prior(clips.mels())
    mask = torch.zeros_like(x0)
    for i, n in enumerate(clips.lengths):
        mask[i, :n] = 1.0
    denoise = voc.bundle.eps_denoiser(lambda x, level: voc.model(x, level, clips.mel))
    out = {}
    for a in levels:
        s = (1.0 - a * a) ** 0.5
        eps = prior.color(torch.randn(x0.shape, generator=g).to(x0.device))            # [B, T]
        x_t = a * x0 + s * eps
        level = torch.full((x0.shape[0],), a, device=x0.device)
        eps_hat = denoise(x_t, level)
        eps_hat = eps_hat[0] if isinstance(eps_hat, tuple) else eps_hat
        x0_hat = (x_t - s * eps_hat) / a
        out[a] = float(((x0_hat - x0) * mask).norm() / ((x_t / a - x0) * mask).norm())
    return out
