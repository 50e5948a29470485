"""Log-mels of whole clips precomputed on disk (``data_prep/ljspeech.py cache-mels``), keyed by the mel config."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from ..audio import MelConfig, MelFeaturizer, pcm_to_float, read_pcm
from ..audio import peak_normalize as scale_to_peak
from ..errors import UserInputError
from ..utils import atomic_path
from .metadata import read_metadata


class MelCache:
    """Log-mels of whole clips on disk: ``cache_dir/<fingerprint>/ID.npy`` (float32 [n_mels, T//hop]).

    The subfolder is named by ``mel_config.fingerprint()`` (plus ``-peaknorm`` when the mels are of
    peak-normalised audio), and holds ``mel_config.json`` with the full config. Opening a subfolder
    whose json differs from the requested config raises :class:`UserInputError` rather than
    serving stale features. Each mel is computed from the clip trimmed to a multiple of hop, so
    it has exactly ``T // hop`` frames. Files are written atomically.
    The cache is keyed by the mel config only: if the audio changes, delete the cache.
    """

    CONFIG_NAME = "mel_config.json"

    def __init__(self, cache_dir: str | os.PathLike, mel_config: MelConfig, *, peak_normalize: bool = False):
        self.mel_config = mel_config
        self.peak_normalize = bool(peak_normalize)
        suffix = "-peaknorm" if self.peak_normalize else ""
        self.dir = Path(cache_dir) / f"{mel_config.fingerprint()}{suffix}"
        self._meta = {"mel_config": mel_config.to_dict(), "peak_normalize": self.peak_normalize}
        stored_path = self.dir / self.CONFIG_NAME
        if stored_path.exists():
            try:
                stored = json.loads(stored_path.read_text())
            except ValueError:
                stored = None
            if stored != self._meta:
                raise UserInputError(f"mel cache {self.dir} was written with a different mel config "
                                     f"({stored_path}); delete that folder or pass another cache dir")

    def path(self, uid: str) -> Path:
        return self.dir / f"{uid}.npy"

    def has(self, uid: str) -> bool:
        return self.path(uid).is_file()

    def load(self, uid: str) -> np.ndarray:
        path = self.path(uid)
        if not path.is_file():
            raise UserInputError(f"mel cache has no {path.name} in {self.dir}; build it with "
                                 "`python data_prep/ljspeech.py cache-mels DATA_DIR --cache-dir DIR`")
        mel = np.load(path, allow_pickle=False)
        if mel.ndim != 2 or mel.shape[0] != self.mel_config.n_mels:
            raise UserInputError(f"{path} has shape {mel.shape}, expected [{self.mel_config.n_mels}, frames]; "
                                 f"delete {self.dir} and rebuild the cache")
        return mel

    def save(self, uid: str, mel: np.ndarray) -> None:
        mel = np.ascontiguousarray(mel, dtype=np.float32)
        if not (self.dir / self.CONFIG_NAME).exists():
            with atomic_path(self.dir / self.CONFIG_NAME) as tmp:
                tmp.write_text(json.dumps(self._meta, indent=2, sort_keys=True) + "\n")
        with atomic_path(self.path(uid)) as tmp:
            np.save(tmp, mel, allow_pickle=False)

    def build(self, data_dir: str | os.PathLike, ids: Sequence[str] | None = None, *,
              progress: bool = False, featurizer: MelFeaturizer | None = None) -> int:
        """Compute and store the mels of ``ids`` (default: all of metadata.csv) not yet cached.

        Returns how many were written.
        """
        if ids is None:
            ids = [u.id for u in read_metadata(data_dir)]
        todo = [i for i in ids if not self.has(i)]
        featurizer = featurizer or MelFeaturizer(self.mel_config)
        hop = self.mel_config.hop_length
        items: Iterable[str] = todo
        if progress:
            from tqdm import tqdm
            items = tqdm(todo, desc="caching mels", unit="clip")
        for uid in items:
            wav = pcm_to_float(read_pcm(Path(data_dir) / "wavs" / f"{uid}.wav", self.mel_config.sample_rate))
            if self.peak_normalize:
                wav = scale_to_peak(wav)
            wav = wav[: len(wav) // hop * hop]
            if len(wav) < self.mel_config.min_length:
                raise UserInputError(f"wavs/{uid}.wav is too short for the mel front end ({len(wav)} samples, "
                                     f"need {self.mel_config.min_length}); delete its row from metadata.csv")
            with torch.no_grad():
                mel = featurizer(torch.from_numpy(wav))[0].numpy()           # [n_mels, T // hop]
            self.save(uid, mel)
        return len(todo)
