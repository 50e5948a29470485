"""Aligned (waveform, mel) data from an LJSpeech-layout folder: training crops and whole clips.

Two views over one clip store, one indexing convention each:

* :class:`VocoderDataset` -- training crops, indexed ``ds[(i, item_seed)]`` as the shared trainer's
  ``StepBatchSampler`` gives them: the crop of clip ``i`` is a function of ``item_seed`` alone, so it is
  reproducible across resume, data-loader workers and process counts;
* :class:`Clips` -- whole clips (validation, evaluation), indexed ``clips[i]``.

Mel/audio alignment: with the HiFi-GAN front end (reflect padding of (n_fft-hop)/2, center=False),
mel frame k of a signal is centred on audio samples [k*hop, (k+1)*hop). So a crop starting at
sample f*hop with length n*hop corresponds to frames f .. f+n-1 of the whole clip's mel.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio import MelConfig, MelFeaturizer, pcm_to_float, read_pcm
from ..audio import peak_normalize as scale_to_peak
from ..errors import UserInputError
from .mel_cache import MelCache

# Above this many bytes of int16 audio, clips are read from disk per access instead of held in memory
# (LJSpeech: ~3.8 GB of int16, per DataLoader worker process after copy-on-write faults; the page
# cache serves repeated reads just as well).
PRELOAD_LIMIT_BYTES = 1 << 30


def check_segment_length(segment_length: int, hop_length: int) -> None:
    """Raise :class:`UserInputError` unless ``segment_length`` is a positive multiple of hop."""
    if isinstance(segment_length, bool) or not isinstance(segment_length, (int, np.integer)) or segment_length <= 0:
        raise UserInputError(f"segment_length must be a positive integer, got {segment_length!r}")
    if segment_length % hop_length:
        lo = segment_length // hop_length * hop_length
        options = f"{lo} or {lo + hop_length}" if lo else f"{hop_length}"
        raise UserInputError(f"segment_length={segment_length} is not a multiple of hop_length={hop_length}; "
                             f"use {options}")


class ClipStore:
    """The samples of the clips ``ids`` of ``data_dir``: storage only, no randomness.

    ``preload=None`` keeps the clips in RAM as int16 (2 bytes/sample) when they take at most
    ``PRELOAD_LIMIT_BYTES`` (the generated corpus: ~30 MB), else reads each access from disk with a
    seek; ``True``/``False`` force either. Both give identical samples. ``peak_normalize`` scales each
    whole clip by 0.95 / max|x| (HiFi-GAN).
    """

    def __init__(self, data_dir: str | os.PathLike, ids: Sequence[str], sample_rate: int, *,
                 peak_normalize: bool = False, preload: bool | None = None):
        if not ids:
            raise UserInputError(f"no ids given for the dataset in {data_dir}; check the split list")
        self.data_dir, self.ids, self.sample_rate = Path(data_dir), list(ids), int(sample_rate)
        self.peak_normalize = bool(peak_normalize)
        self.paths = [self.data_dir / "wavs" / f"{i}.wav" for i in self.ids]
        self.lengths = [self._length(p) for p in self.paths]                       # samples per clip
        if preload is None:
            preload = 2 * sum(self.lengths) <= PRELOAD_LIMIT_BYTES
        self.audio = [read_pcm(p, self.sample_rate) for p in self.paths] if preload else None

    def _length(self, path: Path) -> int:
        import soundfile as sf

        if not path.is_file():
            raise UserInputError(f"{path} not found; run `python data_prep/ljspeech.py check {self.data_dir}`")
        try:
            info = sf.info(str(path))
        except Exception:  # libsndfile raises several types for broken headers
            raise UserInputError(f"cannot read {path}; run `python data_prep/ljspeech.py check "
                                 f"{self.data_dir}` to list every broken file") from None
        if info.channels != 1 or info.samplerate != self.sample_rate or info.frames == 0:
            raise UserInputError(f"{path} is {info.channels}-channel, {info.samplerate} Hz, {info.frames} samples; "
                                 f"expected non-empty mono at {self.sample_rate} Hz (run `python "
                                 f"data_prep/ljspeech.py check {self.data_dir}`)")
        return int(info.frames)

    def __len__(self) -> int:
        return len(self.ids)

    def samples(self, i: int, start: int, stop: int) -> np.ndarray:
        """float32 samples [start, stop) of clip i, after optional peak normalisation."""
        if self.audio is not None:
            whole = self.audio[i]
        elif self.peak_normalize:                                 # the peak needs the whole clip
            whole = read_pcm(self.paths[i], self.sample_rate)
        else:
            return pcm_to_float(read_pcm(self.paths[i], self.sample_rate, start, stop))
        if self.peak_normalize:
            return scale_to_peak(pcm_to_float(whole))[start:stop]
        return pcm_to_float(whole[start:stop])


class _MelSource:
    """Mels of whole clips from a cache (validated against the clip lengths), or computed here on CPU."""

    def __init__(self, store: ClipStore, mel_config: MelConfig, mel_cache: MelCache | None):
        if mel_cache is not None and (mel_cache.mel_config != mel_config
                                      or mel_cache.peak_normalize != store.peak_normalize):
            raise UserInputError(f"mel cache {mel_cache.dir} was built for another mel config or peak_normalize "
                                 "setting than this dataset; pass a matching MelCache")
        self.store, self.cfg, self.cache = store, mel_config, mel_cache
        self._featurizer: MelFeaturizer | None = None

    def cached(self, i: int) -> np.ndarray:
        """The cached mel of the whole clip i, ``[n_mels, length // hop]``."""
        mel = self.cache.load(self.store.ids[i])
        frames = self.cfg.num_frames(self.store.lengths[i] // self.cfg.hop_length * self.cfg.hop_length)
        if mel.shape[1] != frames:
            raise UserInputError(f"cached mel {self.cache.path(self.store.ids[i])} has {mel.shape[1]} frames but "
                                 f"{self.store.paths[i].name} needs {frames}; the audio changed: delete "
                                 f"{self.cache.dir} and rebuild the cache")
        return mel

    def of(self, audio: np.ndarray) -> np.ndarray:
        """The mel of ``audio`` itself."""
        if self._featurizer is None:
            self._featurizer = MelFeaturizer(self.cfg)
        with torch.no_grad():
            return self._featurizer.paired(torch.from_numpy(audio))[0].numpy()


class VocoderDataset(Dataset):
    """Training crops: ``ds[(i, item_seed)]`` is a random crop of clip i drawn with ``item_seed`` alone.

    Item: ``{"audio": float32 [segment_length]}`` plus, when ``mel_cache`` is given,
    ``"mel": float32 [n_mels, segment_length // hop]``.

    * Without a cache the crop may start at any sample; the trainer computes the mel on its
      device, batched, with :class:`MelFeaturizer` (the mel of exactly the returned audio).
    * With a cache the crop starts at a frame boundary f*hop and ``mel`` is cached frames f..f+n-1 of
      the whole clip (frames near the crop edges therefore see the neighbouring audio, as in
      HiFi-GAN's fine-tuning loader, instead of reflect padding).
    * Clips shorter than ``segment_length`` are zero-padded at the end. Their ``mel`` (cache mode)
      is then the mel of the padded audio computed here on CPU, i.e. the same as the trainer would
      compute: the padding frames sit at ln(log_floor) except where windows overlap the clip's end.

    ``peak_normalize`` (see :class:`ClipStore`): a cache must then have been built with it too.
    """

    def __init__(self, data_dir: str | os.PathLike, ids: Sequence[str], mel_config: MelConfig | None = None,
                 segment_length: int = 7168, *, peak_normalize: bool = False, mel_cache: MelCache | None = None,
                 preload: bool | None = None):
        self.cfg = mel_config or MelConfig()
        self.hop = self.cfg.hop_length
        check_segment_length(segment_length, self.hop)
        self.segment_length = int(segment_length)
        self.store = ClipStore(data_dir, ids, self.cfg.sample_rate, peak_normalize=peak_normalize, preload=preload)
        self.mels = _MelSource(self.store, self.cfg, mel_cache)
        self.mel_cache = mel_cache

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, key: tuple[int, int]) -> dict:
        i, item_seed = key
        n, seg = self.store.lengths[i], self.segment_length
        rng = np.random.default_rng([item_seed])
        if n < seg:                                               # short clip: all of it, zero-padded
            audio = np.zeros(seg, dtype=np.float32)
            audio[:n] = self.store.samples(i, 0, n)
            item = {"audio": torch.from_numpy(audio)}
            if self.mel_cache is not None:
                self.mels.cached(i)                               # still validate the cache entry
                item["mel"] = torch.from_numpy(self.mels.of(audio))
            return item
        if self.mel_cache is None:
            start = int(rng.integers(0, n - seg + 1))
            return {"audio": torch.from_numpy(np.ascontiguousarray(self.store.samples(i, start, start + seg)))}
        n_seg_frames = seg // self.hop
        frame = int(rng.integers(0, n // self.hop - n_seg_frames + 1))
        start = frame * self.hop
        audio = np.ascontiguousarray(self.store.samples(i, start, start + seg))
        mel = np.ascontiguousarray(self.mels.cached(i)[:, frame:frame + n_seg_frames])
        return {"audio": torch.from_numpy(audio), "mel": torch.from_numpy(mel)}


class Clips:
    """Whole clips: ``clips[i] = {"id": str, "audio": float32 [T'], "mel"?: float32 [n_mels, T'/hop]}``,
    the clip trimmed to T' = T // hop * hop samples; ``mel`` only when a ``mel_cache`` is given."""

    def __init__(self, data_dir: str | os.PathLike, ids: Sequence[str], mel_config: MelConfig | None = None, *,
                 peak_normalize: bool = False, mel_cache: MelCache | None = None, preload: bool | None = None):
        self.cfg = mel_config or MelConfig()
        self.store = ClipStore(data_dir, ids, self.cfg.sample_rate, peak_normalize=peak_normalize, preload=preload)
        self.mels = _MelSource(self.store, self.cfg, mel_cache)
        self.mel_cache = mel_cache

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> dict:
        n = self.store.lengths[i] // self.cfg.hop_length * self.cfg.hop_length
        item = {"id": self.store.ids[i], "audio": torch.from_numpy(np.ascontiguousarray(self.store.samples(i, 0, n)))}
        if self.mel_cache is not None:
            item["mel"] = torch.from_numpy(self.mels.cached(i))
        return item
