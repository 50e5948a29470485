"""LJSpeech-layout corpora: metadata, corpus checks, train/val/test splits, a mel cache, and the
vocoder training Dataset of aligned (waveform crop, mel) pairs.

Layout (LJSpeech-1.1 and anything shaped like it)::

    DATA_DIR/metadata.csv        ID|transcription|normalized transcription   (UTF-8, no header)
    DATA_DIR/wavs/ID.wav         mono 16-bit PCM at the corpus rate (LJSpeech: 22050 Hz)
    DATA_DIR/{train,val,test}.txt  one ID per line (written by write_splits)

``metadata.csv`` is read as plain ``|``-separated lines, never through a CSV parser with quoting:
LJSpeech's transcriptions contain unbalanced double quotes (e.g. LJ001-0045) that a quoting parser
would swallow across lines. LJSpeech's own text never contains ``|``, so a row with other than
three fields is malformed.

Mel/audio alignment: with the HiFi-GAN front end (reflect padding of (n_fft-hop)/2, center=False),
mel frame k of a signal is centred on audio samples [k*hop, (k+1)*hop). So a crop starting at
sample f*hop with length n*hop corresponds to frames f .. f+n-1 of the whole clip's mel.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..audio import MelConfig, MelFeaturizer
from ..errors import UserInputError
from ..utils import atomic_path

SPLIT_NAMES = ("train", "val", "test")
METADATA = "metadata.csv"
# Above this many bytes of int16 audio, VocoderDataset reads crops from disk instead of holding the
# corpus in memory (LJSpeech: ~3.8 GB of int16, per DataLoader worker process after copy-on-write
# faults; the page cache serves repeated reads just as well).
PRELOAD_LIMIT_BYTES = 1 << 30


# ---- metadata ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Utterance:
    """One metadata row. ``line`` is its 1-based line number in metadata.csv (for error messages)."""

    id: str
    text: str
    normalized_text: str
    line: int

    def wav_path(self, data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / "wavs" / f"{self.id}.wav"


@dataclass(frozen=True)
class Problem:
    """Something wrong with a corpus: which file, what is wrong, how to fix it.

    ``severity`` is ``"error"`` (the folder cannot be used as is) or ``"warning"``.
    """

    file: str
    problem: str
    fix: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.file}: {self.problem}; fix: {self.fix}"


def _metadata_path(data_dir: str | os.PathLike) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserInputError(f"data folder not found: {data_dir}; pass the folder that holds "
                             "metadata.csv and wavs/ (e.g. LJSpeech-1.1)")
    path = data_dir / METADATA
    if not path.is_file():
        raise UserInputError(f"{path} not found; an LJSpeech-layout folder needs metadata.csv "
                             "(ID|transcription|normalized transcription) next to wavs/")
    return path


def _parse_metadata(path: Path) -> tuple[list[Utterance], list[Problem]]:
    """Parse every row; collect malformed rows, bad ids and duplicates as problems."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        return [], [Problem(str(path), f"not UTF-8 text (byte {exc.start})", "re-save it as UTF-8")]
    utts, problems, seen = [], [], {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue                                              # blank lines (e.g. a trailing one)
        fields = line.split("|")
        where = f"{path} line {n}"
        if len(fields) != 3:
            problems.append(Problem(where, f"expected 3 '|'-separated fields (ID|transcription|normalized "
                                           f"transcription), found {len(fields)}",
                                    "fix or delete the row ('|' may not appear inside a transcription)"))
            continue
        uid = fields[0].strip()
        if not uid or "/" in uid or "\\" in uid or uid.startswith("."):
            problems.append(Problem(where, f"invalid id {uid!r}",
                                    "use the wav's file name without .wav (no slashes, not starting with '.')"))
            continue
        if uid in seen:
            problems.append(Problem(where, f"duplicate id {uid} (first on line {seen[uid]})",
                                    "give each clip a unique id or delete the repeated row"))
            continue
        seen[uid] = n
        utts.append(Utterance(uid, fields[1], fields[2], n))
    if not utts and not problems:
        problems.append(Problem(str(path), "no rows", "list the clips as ID|transcription|normalized transcription"))
    return utts, problems


def read_metadata(data_dir: str | os.PathLike) -> list[Utterance]:
    """Rows of ``DATA_DIR/metadata.csv`` in file order.

    Raises :class:`UserInputError` naming the first bad line (malformed row, bad or duplicate id)
    and how many more there are; ``check_corpus`` lists them all.
    """
    utts, problems = _parse_metadata(_metadata_path(data_dir))
    if problems:
        more = f" ({len(problems) - 1} more problem(s); run `python data_prep/ljspeech.py check " \
               f"{data_dir}` for the full list)" if len(problems) > 1 else ""
        p = problems[0]
        raise UserInputError(f"{p.file}: {p.problem}; {p.fix}{more}")
    return utts


# ---- corpus check -------------------------------------------------------------------------------

def _check_wav(path: Path, rel: str, sample_rate: int, full: bool) -> list[Problem]:
    import soundfile as sf

    if not path.is_file():
        return [Problem(rel, "missing", "restore the file or delete its row from metadata.csv")]
    try:
        info = sf.info(str(path))
    except Exception as exc:  # libsndfile raises several types for broken headers
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return [Problem(rel, f"unreadable ({first})", "re-export it as 16-bit PCM WAV or delete its row")]
    out = []
    if info.channels != 1:
        out.append(Problem(rel, f"{info.channels} channels, expected mono",
                           "mix it down (e.g. `sox in.wav -c 1 out.wav`)"))
    if info.samplerate != sample_rate:
        out.append(Problem(rel, f"sample rate {info.samplerate} Hz, expected {sample_rate} Hz",
                           f"resample it (e.g. `sox in.wav -r {sample_rate} out.wav`)"))
    if info.frames == 0:
        out.append(Problem(rel, "empty (0 samples)", "re-export it or delete its row"))
    elif full and not out:
        out += _check_samples(path, rel)
    return out


def _check_samples(path: Path, rel: str) -> list[Problem]:
    import soundfile as sf

    try:
        wav, _ = sf.read(str(path), dtype="float32")
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return [Problem(rel, f"cannot be decoded ({first})", "re-export it as 16-bit PCM WAV or delete its row")]
    if not np.isfinite(wav).all():
        return [Problem(rel, "contains NaN or inf samples", "re-export it as 16-bit PCM")]
    if wav.size and float(np.abs(wav).max()) < 1e-5:
        return [Problem(rel, "silent (peak below 1e-5)", "check the export or delete its row")]
    return []


def check_corpus(data_dir: str | os.PathLike, sample_rate: int = 22050, *, full: bool = False,
                 progress: bool = False) -> list[Problem]:
    """Every problem of an LJSpeech-layout folder, as :class:`Problem` s (empty list: all good).

    Checks each metadata row (3 fields, valid unique id) and each listed wav: exists, readable
    header, mono, at ``sample_rate``, non-empty. ``full=True`` also decodes every file to catch
    truncated data, NaN/inf and all-silent clips (LJSpeech: about a minute). Wavs not listed in
    metadata.csv are reported as warnings. Raises only if the folder or metadata.csv is missing.
    """
    data_dir = Path(data_dir)
    meta = _metadata_path(data_dir)
    utts, problems = _parse_metadata(meta)
    items: Iterable[Utterance] = utts
    if progress:
        from tqdm import tqdm
        items = tqdm(utts, desc="checking wavs", unit="file")
    for u in items:
        problems += _check_wav(u.wav_path(data_dir), f"wavs/{u.id}.wav", sample_rate, full)
    wav_dir = data_dir / "wavs"
    if wav_dir.is_dir():
        listed = {u.id for u in utts}
        extra = sorted(p.name for p in wav_dir.glob("*.wav") if p.stem not in listed)
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
            problems.append(Problem("wavs/", f"{len(extra)} wav(s) not listed in metadata.csv: {shown}",
                                    "add rows for them if they should be used (they are ignored)", "warning"))
    return problems


def has_errors(problems: Sequence[Problem]) -> bool:
    return any(p.severity == "error" for p in problems)


# ---- splits -----------------------------------------------------------------------------------------

@dataclass
class Splits:
    """Disjoint id lists. ``note`` says how requested sizes were scaled down, if they were."""

    train: list[str]
    val: list[str]
    test: list[str]
    note: str | None = None

    def __getitem__(self, name: str) -> list[str]:
        if name not in SPLIT_NAMES:
            raise KeyError(f"unknown split {name!r}; use one of {SPLIT_NAMES}")
        return getattr(self, name)


def _held_out_sizes(n: int, n_val: int, n_test: int) -> tuple[int, int, str | None]:
    """Requested sizes, or, when they leave no training clip, sizes scaled so that the held-out
    clips are ~20 % of the corpus (same val:test ratio, at least 1 each that was asked for)."""
    if n_val + n_test < n:
        return n_val, n_test, None
    held = max(round(0.2 * n), (n_val > 0) + (n_test > 0))
    val = max(round(held * n_val / (n_val + n_test)), 1 if n_val > 0 else 0)
    test = max(held - val, 1 if n_test > 0 else 0)
    if val + test >= n:
        raise UserInputError(f"a corpus of {n} clip(s) is too small to split into train/val/test; "
                             "it needs at least 3 clips")
    note = (f"corpus has only {n} clips, fewer than n_val + n_test + 1 = {n_val + n_test + 1}; "
            f"using {val} validation and {test} test clips instead of {n_val} and {n_test}")
    return val, test, note


def make_splits(ids: Sequence[str], n_val: int = 150, n_test: int = 100, seed: int = 1234) -> Splits:
    """Deterministic disjoint train/val/test split of ``ids``.

    The ids are sorted before a seeded permutation, so the split depends only on the set of ids and
    the seed, not on their order in metadata.csv. Lists keep sorted order within each split.
    """
    for name, v in (("n_val", n_val), ("n_test", n_test), ("seed", seed)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise UserInputError(f"{name} must be a non-negative integer, got {v!r}")
    ids = sorted(ids)
    if len(set(ids)) != len(ids):
        raise UserInputError("make_splits: ids contain duplicates; fix metadata.csv first")
    n_val, n_test, note = _held_out_sizes(len(ids), n_val, n_test)
    order = np.random.default_rng(seed).permutation(len(ids))
    val = sorted(ids[i] for i in order[:n_val])
    test = sorted(ids[i] for i in order[n_val:n_val + n_test])
    train = sorted(ids[i] for i in order[n_val + n_test:])
    return Splits(train, val, test, note)


def _read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def write_splits(data_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                 n_val: int = 150, n_test: int = 100, seed: int = 1234, overwrite: bool = False) -> Splits:
    """Split the ids of ``data_dir``'s metadata.csv and write ``train.txt``/``val.txt``/``test.txt``
    (one id per line) to ``out_dir`` (default: ``data_dir``), atomically.

    Existing lists are kept unless ``overwrite``: identical lists are accepted silently (re-running
    is harmless); different ones raise :class:`UserInputError`.
    """
    splits = make_splits([u.id for u in read_metadata(data_dir)], n_val, n_test, seed)
    out_dir = Path(out_dir) if out_dir is not None else Path(data_dir)
    existing = [name for name in SPLIT_NAMES if (out_dir / f"{name}.txt").exists()]
    if existing and not overwrite:
        if all((out_dir / f"{n}.txt").exists() and _read_list(out_dir / f"{n}.txt") == splits[n]
               for n in SPLIT_NAMES):
            return splits
        raise UserInputError(f"{out_dir / (existing[0] + '.txt')} already exists with other ids; "
                             "pass --overwrite (overwrite=True) to replace the split lists")
    for name in SPLIT_NAMES:
        with atomic_path(out_dir / f"{name}.txt") as tmp:
            tmp.write_text("".join(f"{i}\n" for i in splits[name]), encoding="utf-8")
    return splits


def load_split(data_dir: str | os.PathLike, name: str) -> list[str]:
    """Ids listed in ``data_dir/<name>.txt`` (name: train | val | test)."""
    if name not in SPLIT_NAMES:
        raise UserInputError(f"unknown split {name!r}; use one of {', '.join(SPLIT_NAMES)}")
    path = Path(data_dir) / f"{name}.txt"
    if not path.is_file():
        raise UserInputError(f"{path} not found; write the split lists with "
                             f"`python data_prep/ljspeech.py split {data_dir}`")
    ids = _read_list(path)
    if not ids:
        raise UserInputError(f"{path} lists no ids; re-run `python data_prep/ljspeech.py split {data_dir} --overwrite`")
    return ids


# ---- mel cache --------------------------------------------------------------------------------------

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
            wav = _read_wav(Path(data_dir) / "wavs" / f"{uid}.wav", self.mel_config.sample_rate)
            wav = _to_float(wav)
            if self.peak_normalize:
                wav = _peak_normalize(wav)
            wav = wav[: len(wav) // hop * hop]
            if len(wav) < self.mel_config.min_length:
                raise UserInputError(f"wavs/{uid}.wav is too short for the mel front end ({len(wav)} samples, "
                                     f"need {self.mel_config.min_length}); delete its row from metadata.csv")
            with torch.no_grad():
                mel = featurizer(torch.from_numpy(wav))[0].numpy()           # [n_mels, T // hop]
            self.save(uid, mel)
        return len(todo)


# ---- audio helpers ---------------------------------------------------------------------------------

def _read_wav(path: Path, sample_rate: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Samples [start, stop) of a mono wav as int16 (16-bit PCM files) or float32 (others)."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        if info.channels != 1 or info.samplerate != sample_rate:
            raise UserInputError(f"{path} is {info.channels}-channel at {info.samplerate} Hz, expected mono "
                                 f"{sample_rate} Hz; run `python data_prep/ljspeech.py check DATA_DIR`")
        dtype = "int16" if info.subtype == "PCM_16" else "float32"
        wav, _ = sf.read(str(path), start=start, stop=stop, dtype=dtype)
    except UserInputError:
        raise
    except Exception as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserInputError(f"cannot read {path} ({first}); run `python data_prep/ljspeech.py check "
                             "DATA_DIR` to list every broken file") from None
    return wav


def _to_float(wav: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1) with soundfile's scaling (x / 32768); float32 passes through."""
    if wav.dtype == np.int16:
        return wav.astype(np.float32) / np.float32(32768.0)
    return wav.astype(np.float32, copy=False)


def _peak_normalize(wav: np.ndarray) -> np.ndarray:
    """HiFi-GAN's ``0.95 * x / max|x|`` (silent clips are left alone)."""
    peak = float(np.abs(wav).max()) if wav.size else 0.0
    return wav * np.float32(0.95 / peak) if peak > 0 else wav


# ---- dataset ----------------------------------------------------------------------------------------

def check_segment_length(segment_length: int, hop_length: int) -> None:
    """Raise :class:`UserInputError` unless ``segment_length`` is a positive multiple of hop."""
    if isinstance(segment_length, bool) or not isinstance(segment_length, (int, np.integer)) or segment_length <= 0:
        raise UserInputError(f"segment_length must be a positive integer, got {segment_length!r}")
    if segment_length % hop_length:
        lo = segment_length // hop_length * hop_length
        options = f"{lo} or {lo + hop_length}" if lo else f"{hop_length}"
        raise UserInputError(f"segment_length={segment_length} is not a multiple of hop_length={hop_length}; "
                             f"use {options}")


class VocoderDataset(Dataset):
    """Aligned (waveform, mel) examples from an LJSpeech-layout folder.

    Training mode (``whole_clips=False``), item i is a random crop of clip i:
    ``{"audio": float32 [segment_length]}`` plus, when ``mel_cache`` is given,
    ``"mel": float32 [n_mels, segment_length // hop]``.

    * Without a cache the crop may start at any sample; the trainer computes the mel on its
      device, batched, with :class:`MelFeaturizer` (the mel of exactly the returned audio).
    * With a cache the crop starts at a frame boundary f*hop and ``mel`` is cached frames f..f+n-1 of
      the whole clip (frames near the crop edges therefore see the neighbouring audio, as in
      HiFi-GAN's fine-tuning loader, instead of reflect padding).
    * Clips shorter than ``segment_length`` are zero-padded at the end. Their ``mel`` (cache mode)
      is then the mel of the padded audio computed here on CPU, i.e. the same as the trainer would
      compute: the padding frames sit at ln(log_floor) except where windows overlap the clip's end.

    Validation mode (``whole_clips=True``): ``{"id": str, "audio": float32 [T'], "mel"?: [n_mels, T'/hop]}``
    with the whole clip trimmed to T' = T // hop * hop samples (batch size 1, or collate yourself).

    ``peak_normalize``: scale each whole clip by 0.95 / max|x| first (HiFi-GAN); a cache must then
    have been built with ``peak_normalize=True`` too.

    Memory: ``preload=None`` keeps the corpus in RAM as int16 (2 bytes/sample) when it is at most
    ``PRELOAD_LIMIT_BYTES`` (the generated corpus, ~30 MB), else reads each crop from disk with a
    seek (LJSpeech: 3.8 GB as int16 would be duplicated per DDP rank); ``True``/``False`` force it.
    Both give identical items.

    Randomness: ``ds[(i, item_seed)]`` crops with ``item_seed`` alone (what the shared trainer's
    StepBatchSampler passes: reproducible across resume, workers and process counts); ``ds[i]``
    crops by (seed, epoch, i), with ``set_epoch(e)`` called before each epoch's iterator.
"""

    def __init__(self, data_dir: str | os.PathLike, ids: Sequence[str], mel_config: MelConfig | None = None,
                 segment_length: int = 7168, *, peak_normalize: bool = False, mel_cache: MelCache | None = None,
                 seed: int = 0, whole_clips: bool = False, preload: bool | None = None):
        self.cfg = mel_config or MelConfig()
        self.hop = self.cfg.hop_length
        check_segment_length(segment_length, self.hop)
        if mel_cache is not None and (mel_cache.mel_config != self.cfg or mel_cache.peak_normalize != peak_normalize):
            raise UserInputError(f"mel cache {mel_cache.dir} was built for another mel config or peak_normalize "
                                 "setting than this dataset; pass a matching MelCache")
        if not ids:
            raise UserInputError(f"no ids given for the dataset in {data_dir}; check the split list")
        self.data_dir = Path(data_dir)
        self.ids = list(ids)
        self.segment_length = int(segment_length)
        self.peak_normalize = peak_normalize
        self.mel_cache = mel_cache
        self.seed = int(seed)
        self.whole_clips = whole_clips
        self.epoch = 0
        self.paths = [self.data_dir / "wavs" / f"{i}.wav" for i in self.ids]
        self.lengths = [self._length(p) for p in self.paths]                       # samples per clip
        if preload is None:
            preload = 2 * sum(self.lengths) <= PRELOAD_LIMIT_BYTES
        self.audio = [_read_wav(p, self.cfg.sample_rate) for p in self.paths] if preload else None
        self._featurizer: MelFeaturizer | None = None

    def _length(self, path: Path) -> int:
        import soundfile as sf

        if not path.is_file():
            raise UserInputError(f"{path} not found; run `python data_prep/ljspeech.py check {self.data_dir}`")
        try:
            info = sf.info(str(path))
        except Exception:
            raise UserInputError(f"cannot read {path}; run `python data_prep/ljspeech.py check "
                                 f"{self.data_dir}` to list every broken file") from None
        if info.channels != 1 or info.samplerate != self.cfg.sample_rate or info.frames == 0:
            raise UserInputError(f"{path} is {info.channels}-channel, {info.samplerate} Hz, {info.frames} samples; "
                                 f"expected non-empty mono at {self.cfg.sample_rate} Hz (run `python "
                                 f"data_prep/ljspeech.py check {self.data_dir}`)")
        return int(info.frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.ids)

    def _samples(self, i: int, start: int, stop: int) -> np.ndarray:
        """float32 samples [start, stop) of clip i, after optional peak normalisation."""
        if self.audio is not None:
            whole = self.audio[i]
        elif self.peak_normalize:                                 # the peak needs the whole clip
            whole = _read_wav(self.paths[i], self.cfg.sample_rate)
        else:
            return _to_float(_read_wav(self.paths[i], self.cfg.sample_rate, start, stop))
        if self.peak_normalize:
            return _peak_normalize(_to_float(whole))[start:stop]
        return _to_float(whole[start:stop])

    def _cached_mel(self, i: int) -> np.ndarray:
        mel = self.mel_cache.load(self.ids[i])
        frames = self.lengths[i] // self.hop
        if mel.shape[1] != frames:
            raise UserInputError(f"cached mel {self.mel_cache.path(self.ids[i])} has {mel.shape[1]} frames but "
                                 f"{self.paths[i].name} needs {frames}; the audio changed: delete "
                                 f"{self.mel_cache.dir} and rebuild the cache")
        return mel

    def _mel_of(self, audio: np.ndarray) -> np.ndarray:
        if self._featurizer is None:
            self._featurizer = MelFeaturizer(self.cfg)
        with torch.no_grad():
            return self._featurizer(torch.from_numpy(audio))[0].numpy()

    def __getitem__(self, key: int | tuple[int, int]) -> dict:
        # key: an index, or (index, item seed) as the shared trainer's StepBatchSampler gives it, so
        # that crops are reproducible across resume and across process counts
        i, item_seed = key if isinstance(key, tuple) else (key, None)
        if self.whole_clips:
            return self._whole(i)
        n, seg = self.lengths[i], self.segment_length
        rng = np.random.default_rng([self.seed, self.epoch, i] if item_seed is None else [item_seed])
        if n < seg:                                               # short clip: all of it, zero-padded
            audio = np.zeros(seg, dtype=np.float32)
            audio[:n] = self._samples(i, 0, n)
            item = {"audio": torch.from_numpy(audio)}
            if self.mel_cache is not None:
                self._cached_mel(i)                               # still validate the cache entry
                item["mel"] = torch.from_numpy(self._mel_of(audio))
            return item
        if self.mel_cache is None:
            start = int(rng.integers(0, n - seg + 1))
            return {"audio": torch.from_numpy(np.ascontiguousarray(self._samples(i, start, start + seg)))}
        n_seg_frames = seg // self.hop
        frame = int(rng.integers(0, n // self.hop - n_seg_frames + 1))
        start = frame * self.hop
        audio = np.ascontiguousarray(self._samples(i, start, start + seg))
        mel = np.ascontiguousarray(self._cached_mel(i)[:, frame:frame + n_seg_frames])
        return {"audio": torch.from_numpy(audio), "mel": torch.from_numpy(mel)}

    def _whole(self, i: int) -> dict:
        n = self.lengths[i] // self.hop * self.hop
        item = {"id": self.ids[i], "audio": torch.from_numpy(np.ascontiguousarray(self._samples(i, 0, n)))}
        if self.mel_cache is not None:
            item["mel"] = torch.from_numpy(self._cached_mel(i))
        return item
