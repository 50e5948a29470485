"""LJSpeech-layout reader, corpus check, splits, mel cache and the vocoder Dataset.

Corpora are written here with soundfile directly (not through wavegrad's writer), in the real
on-disk layout. Expected values come from closed forms or from MelFeaturizer applied independently
to the same samples.
"""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.data import (Clips, MelCache, VocoderDataset, check_corpus, has_errors, load_split,
                                    make_splits, read_metadata, write_splits)
from wavegrad.errors import UserInputError

SR = 22050
CFG = MelConfig()
HOP = CFG.hop_length
ROOT = Path(__file__).resolve().parents[1]


def _load_cli():
    spec = importlib.util.spec_from_file_location("prep_ljspeech_cli", ROOT / "data_prep" / "ljspeech.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tone(n: int, seed: int = 0, f0: float = 180.0) -> np.ndarray:
    """A harmonic-rich test signal with some noise, peak 0.5."""
    t = np.arange(n) / SR
    rng = np.random.default_rng(seed)
    x = sum(np.sin(2 * np.pi * k * f0 * t + k) / k for k in range(1, 8)) + 0.1 * rng.standard_normal(n)
    return (0.5 * x / np.abs(x).max()).astype(np.float32)


def make_folder(root: Path, clips: dict[str, np.ndarray], extra_rows: list[str] = ()) -> Path:
    """An LJSpeech-layout folder: 16-bit mono wavs at SR and a metadata.csv listing them."""
    (root / "wavs").mkdir(parents=True, exist_ok=True)
    rows = []
    for uid, wav in clips.items():
        sf.write(str(root / "wavs" / f"{uid}.wav"), wav, SR, subtype="PCM_16")
        rows.append(f'{uid}|Text of {uid}, "quoted.|text of {uid}, "quoted.')   # unbalanced quotes
    (root / "metadata.csv").write_text("\n".join(rows + list(extra_rows)) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def corpus(tmp_path):
    clips = {f"LJ001-{i:04d}": _tone(SR * 1 + 1000 * i + 37 * i, seed=i) for i in range(1, 5)}
    return make_folder(tmp_path / "lj", clips)


def test_read_metadata_keeps_quotes_and_line_numbers(corpus):
    meta = corpus / "metadata.csv"
    meta.write_text("\ufeff" + meta.read_text() + "\n\n")        # BOM and trailing blank lines
    utts = read_metadata(corpus)
    assert [u.id for u in utts] == [f"LJ001-{i:04d}" for i in range(1, 5)]
    assert utts[0].text == 'Text of LJ001-0001, "quoted.' and utts[0].normalized_text == 'text of LJ001-0001, "quoted.'
    assert [u.line for u in utts] == [1, 2, 3, 4]


@pytest.mark.parametrize("bad_row, words", [
    ("LJ009-0001|only two fields", ["line 5", "3", "found 2"]),
    ("LJ009-0001|a|b|c", ["line 5", "found 4"]),
    ("LJ001-0002|dup|dup", ["line 5", "duplicate", "line 2"]),
    ("../evil|x|x", ["line 5", "invalid id"]),
])
def test_read_metadata_rejects_bad_rows(corpus, bad_row, words):
    meta = corpus / "metadata.csv"
    meta.write_text(meta.read_text() + bad_row + "\n")
    with pytest.raises(UserInputError) as err:
        read_metadata(corpus)
    msg = str(err.value)
    assert "\n" not in msg and all(w in msg for w in words), msg


def test_missing_folder_and_metadata(tmp_path):
    with pytest.raises(UserInputError, match="not found"):
        read_metadata(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="metadata.csv"):
        check_corpus(tmp_path / "empty")


def test_check_corpus_reports_every_problem(tmp_path):
    good = _tone(SR)
    root = make_folder(tmp_path / "lj", {"A-0001": good, "A-0002": good, "A-0003": good},
                       extra_rows=["A-0001|dup|dup", "A-0004|missing|missing", "A-0005|no pipes",
                                   "A-0006|rate|rate", "A-0007|stereo|stereo", "A-0008|empty|empty",
                                   "A-0009|junk|junk"])
    sf.write(str(root / "wavs" / "A-0006.wav"), _tone(16000), 16000, subtype="PCM_16")
    sf.write(str(root / "wavs" / "A-0007.wav"), np.stack([good, good], 1), SR, subtype="PCM_16")
    sf.write(str(root / "wavs" / "A-0008.wav"), np.zeros(0, np.float32), SR, subtype="PCM_16")
    (root / "wavs" / "A-0009.wav").write_bytes(b"RIFF\x00\x00not really a wav file")
    sf.write(str(root / "wavs" / "stray.wav"), good, SR, subtype="PCM_16")

    problems = check_corpus(root, SR)
    text = "\n".join(str(p) for p in problems)
    assert has_errors(problems)
    assert all(p.fix for p in problems)
    for needle in ["line 4", "duplicate", "line 6", "found 2", "A-0004.wav: missing",
                   "A-0006.wav: sample rate 16000 Hz, expected 22050", "A-0007.wav: 2 channels",
                   "A-0008.wav: empty", "A-0009.wav: unreadable", "stray.wav"]:
        assert needle in text, (needle, text)
    assert sum(p.severity == "error" for p in problems) == 7          # all but the stray wav
    assert [p.severity for p in problems if "stray" in p.problem] == ["warning"]


def test_check_corpus_full_decode_finds_silent_and_nan(tmp_path):
    root = make_folder(tmp_path / "lj", {"B-1": _tone(SR), "B-2": np.zeros(SR, np.float32)})
    nan = _tone(SR)
    nan[100] = np.nan
    sf.write(str(root / "wavs" / "B-3.wav"), nan, SR, subtype="FLOAT")
    (root / "metadata.csv").write_text("B-1|a|a\nB-2|b|b\nB-3|c|c\n")
    assert check_corpus(root, SR) == []                               # headers are fine
    text = "\n".join(str(p) for p in check_corpus(root, SR, full=True))
    assert "B-2.wav: silent" in text and "B-3.wav: contains NaN" in text


def test_cli_check_exit_codes(corpus, tmp_path, capsys):
    cli = _load_cli()
    assert cli.main(["check", str(corpus)]) == 0
    (corpus / "wavs" / "LJ001-0003.wav").unlink()
    assert cli.main(["check", str(corpus)]) == 2
    out = capsys.readouterr().out
    assert "wavs/LJ001-0003.wav: missing" in out and "fix:" in out
    assert cli.main(["split", str(corpus)]) == 2                      # unusable folder: no lists
    assert not (corpus / "train.txt").exists()
    assert cli.main(["check", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ljspeech.py: error: ") and err.count("\n") == 1 and "Traceback" not in err


# ---- splits ---------------------------------------------------------------------------------------

def test_make_splits_deterministic_disjoint_complete():
    ids = [f"LJ{i:05d}" for i in range(1000)]
    s = make_splits(ids)
    assert (len(s.val), len(s.test), len(s.train)) == (150, 100, 750) and s.note is None
    assert set(s.train) | set(s.val) | set(s.test) == set(ids)
    assert not (set(s.train) & set(s.val) or set(s.train) & set(s.test) or set(s.val) & set(s.test))
    shuffled = list(np.random.default_rng(5).permutation(ids))
    assert make_splits(shuffled) == s                                 # order of metadata does not matter
    assert make_splits(ids, seed=1) != s


def test_make_splits_scales_down_small_corpora():
    ids = [f"X{i}" for i in range(100)]
    s = make_splits(ids)
    assert len(s.val) + len(s.test) == 20 and len(s.val) > len(s.test) >= 1   # 20 %, val:test = 3:2
    assert len(s.train) == 80 and "100 clips" in s.note
    tiny = make_splits(["a", "b", "c"])
    assert (len(tiny.train), len(tiny.val), len(tiny.test)) == (1, 1, 1)
    with pytest.raises(UserInputError, match="too small"):
        make_splits(["a", "b"])


def test_write_splits_no_overwrite(corpus):
    s = write_splits(corpus, n_val=1, n_test=1, seed=3)
    assert load_split(corpus, "val") == s.val and load_split(corpus, "train") == s.train
    assert write_splits(corpus, n_val=1, n_test=1, seed=3) == s      # same lists: accepted
    before = {n: (corpus / f"{n}.txt").read_text() for n in ("train", "val", "test")}
    differing = next(k for k in range(4, 40) if make_splits([u.id for u in read_metadata(corpus)], 1, 1, k) != s)
    with pytest.raises(UserInputError, match="overwrite"):
        write_splits(corpus, n_val=1, n_test=1, seed=differing)
    assert {n: (corpus / f"{n}.txt").read_text() for n in before} == before
    new = write_splits(corpus, n_val=1, n_test=1, seed=differing, overwrite=True)
    assert load_split(corpus, "test") == new.test
    with pytest.raises(UserInputError, match="unknown split"):
        load_split(corpus, "nonsense")
    (corpus / "val.txt").unlink()
    with pytest.raises(UserInputError, match="val.txt not found"):
        load_split(corpus, "val")


# ---- mel cache ------------------------------------------------------------------------------------

def _file_audio(root: Path, uid: str) -> np.ndarray:
    return sf.read(str(root / "wavs" / f"{uid}.wav"), dtype="float32")[0]


def test_mel_cache_contents_and_stale_config(corpus, tmp_path):
    cache = MelCache(tmp_path / "cache", CFG)
    assert cache.build(corpus) == 4 and cache.build(corpus) == 0     # second run: nothing to do
    assert cache.dir.name == CFG.fingerprint()
    wav = _file_audio(corpus, "LJ001-0002")
    wav = wav[: len(wav) // HOP * HOP]
    expected = MelFeaturizer(CFG)(torch.from_numpy(wav))[0].numpy()
    got = cache.load("LJ001-0002")
    assert got.dtype == np.float32 and got.shape == (80, len(wav) // HOP)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert not list(cache.dir.glob(".tmp-*"))                         # atomic writes left nothing
    stored = json.loads((cache.dir / "mel_config.json").read_text())
    assert MelConfig.from_dict(stored["mel_config"]) == CFG

    other = MelConfig(n_mels=64)
    assert MelCache(tmp_path / "cache", other).dir != cache.dir      # another config: another folder
    stored["mel_config"]["f_max"] = 11025.0                          # a cache edited/copied by hand
    (cache.dir / "mel_config.json").write_text(json.dumps(stored))
    with pytest.raises(UserInputError, match="different mel config"):
        MelCache(tmp_path / "cache", CFG)
    with pytest.raises(UserInputError, match="cache-mels"):
        MelCache(tmp_path / "cache2", CFG).load("LJ001-0001")


def test_cli_split_and_cache(corpus, tmp_path, capsys):
    cli = _load_cli()
    assert cli.main(["split", str(corpus)]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "4 clips" in out                        # scaled down, and says so
    assert cli.main(["cache-mels", str(corpus), "--cache-dir", str(tmp_path / "c")]) == 0
    assert len(list((tmp_path / "c" / CFG.fingerprint()).glob("*.npy"))) == 4


# ---- dataset --------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, hint", [(7000, "6912 or 7168"), (100, "use 256"), (0, "positive")])
def test_segment_length_must_be_multiple_of_hop(corpus, bad, hint):
    with pytest.raises(ValueError, match=hint):
        VocoderDataset(corpus, ["LJ001-0001"], CFG, segment_length=bad)


def _find(whole: np.ndarray, crop: np.ndarray) -> int:
    """Offset of ``crop`` inside ``whole`` (exact sample match)."""
    hits = [s for s in range(len(whole) - len(crop) + 1) if np.array_equal(whole[s:s + len(crop)], crop)]
    assert len(hits) == 1
    return hits[0]


def test_crop_alignment_with_cache(corpus, tmp_path):
    """Cached mel frames of a crop == the mel of the crop itself away from its edges.

    Frame j of a crop covers crop samples [j*hop - 384, j*hop + 640); for 2 <= j < n-2 that lies
    inside the crop, so reflect padding cannot matter there and the values must agree to float32
    FFT rounding (tolerance 1e-3 in ln units, i.e. 0.1 % in magnitude).
    """
    cache = MelCache(tmp_path / "cache", CFG)
    cache.build(corpus)
    seg = 16 * HOP
    ds = VocoderDataset(corpus, ["LJ001-0003"], CFG, segment_length=seg, mel_cache=cache)
    feat = MelFeaturizer(CFG)
    whole = _file_audio(corpus, "LJ001-0003")
    starts = set()
    for item_seed in range(4):
        item = ds[(0, item_seed)]
        audio, mel = item["audio"].numpy(), item["mel"].numpy()
        assert audio.shape == (seg,) and mel.shape == (80, 16) and audio.dtype == mel.dtype == np.float32
        start = _find(whole, audio)
        assert start % HOP == 0
        starts.add(start)
        f = start // HOP
        np.testing.assert_array_equal(mel, cache.load("LJ001-0003")[:, f:f + 16])
        own = feat(torch.from_numpy(audio))[0].numpy()
        np.testing.assert_allclose(mel[:, 2:-2], own[:, 2:-2], atol=1e-3)
        assert np.abs(mel[:, 0] - own[:, 0]).max() > 1e-3           # the edge frames do differ
    assert len(starts) > 1                                            # other item seeds draw other crops
    again = VocoderDataset(corpus, ["LJ001-0003"], CFG, segment_length=seg, mel_cache=cache)[(0, 2)]
    assert torch.equal(again["audio"], ds[(0, 2)]["audio"])           # a function of the item seed alone


def test_crops_without_cache_are_audio_only_and_batch(corpus):
    ids = [u.id for u in read_metadata(corpus)]
    ds = VocoderDataset(corpus, ids, CFG, segment_length=4096)
    item = ds[(1, 0)]
    assert set(item) == {"audio"}
    _find(_file_audio(corpus, ids[1]), item["audio"].numpy())        # a contiguous slice of the clip
    loader = torch.utils.data.DataLoader(ds, batch_sampler=[[(0, 5), (1, 6), (2, 7)]])
    assert next(iter(loader))["audio"].shape == (3, 4096)


def test_short_clip_is_zero_padded_and_mel_is_of_padded_audio(tmp_path):
    n = 3000
    root = make_folder(tmp_path / "lj", {"S-1": _tone(n)})
    cache = MelCache(tmp_path / "cache", CFG)
    cache.build(root)
    seg = 28 * HOP
    item = VocoderDataset(root, ["S-1"], CFG, segment_length=seg, mel_cache=cache)[(0, 0)]
    audio, mel = item["audio"].numpy(), item["mel"].numpy()
    np.testing.assert_array_equal(audio[:n], _file_audio(root, "S-1"))
    assert not audio[n:].any()
    expected = MelFeaturizer(CFG)(torch.from_numpy(audio))[0].numpy()
    np.testing.assert_allclose(mel, expected, atol=1e-5)
    # Frames whose window [j*hop - 384, j*hop + 640) lies wholly in the zeros sit at ln(log_floor).
    first_silent = math.ceil((n + 384) / HOP)
    np.testing.assert_allclose(mel[:, first_silent:], math.log(CFG.log_floor), atol=1e-6)


def test_whole_clips_peak_normalize_and_preload_equivalence(corpus, tmp_path):
    ids = ["LJ001-0001", "LJ001-0004"]
    cache = MelCache(tmp_path / "cache", CFG, peak_normalize=True)
    cache.build(corpus)
    for preload in (True, False):
        clips = Clips(corpus, ids, CFG, mel_cache=cache, peak_normalize=True, preload=preload)
        item = clips[1]
        raw = _file_audio(corpus, "LJ001-0004")
        n = len(raw) // HOP * HOP
        assert item["id"] == "LJ001-0004" and item["audio"].shape == (n,) and item["mel"].shape == (80, n // HOP)
        np.testing.assert_allclose(item["audio"].numpy(), 0.95 * raw[:n] / np.abs(raw).max(), rtol=1e-6)
    crops = [VocoderDataset(corpus, ids, CFG, segment_length=2048, preload=p)[(0, 4)]["audio"]
             for p in (True, False)]
    assert torch.equal(*crops)
    with pytest.raises(UserInputError, match="peak_normalize"):
        VocoderDataset(corpus, ids, CFG, mel_cache=cache, peak_normalize=False)


def test_dataset_rejects_bad_files(corpus):
    sf.write(str(corpus / "wavs" / "LJ001-0002.wav"), _tone(16000), 16000, subtype="PCM_16")
    with pytest.raises(UserInputError, match="LJ001-0002.wav.*16000 Hz"):
        VocoderDataset(corpus, ["LJ001-0001", "LJ001-0002"], CFG)
    with pytest.raises(UserInputError, match="LJ404.wav not found"):
        VocoderDataset(corpus, ["LJ404"], CFG)
