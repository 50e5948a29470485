"""The generated quick-start corpus: layout, determinism, and that it sounds speech-like by
independent measures (periodicity at a voice-range F0, noisy unvoiced stretches, pauses)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from wavegrad.data import check_corpus, read_metadata
from wavegrad.data.synthetic import make_speech_like_corpus, synthesize_clip
from wavegrad.errors import UserInputError

SR = 22050
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_speech_like_corpus(tmp_path_factory.mktemp("syn") / "corpus", n_clips=6, seed=3)


def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, size)[::hop]


def _analyse(wav: np.ndarray) -> dict[str, int]:
    """Count voiced, unvoiced and silent 40 ms frames (hop 10 ms) by textbook measures.

    voiced:   normalised autocorrelation peak > 0.6 at a lag of 1/400 .. 1/50 s (F0 50-400 Hz)
    unvoiced: active, autocorrelation peak < 0.3 and zero-crossing rate > 0.2 (noise above ~2 kHz)
    silent:   RMS below 1 % of the loudest frame
    """
    frames = _frames(wav.astype(np.float64), int(0.04 * SR), int(0.01 * SR))
    rms = np.sqrt((frames ** 2).mean(axis=1))
    lo, hi = SR // 400, SR // 50
    counts = {"voiced": 0, "unvoiced": 0, "silent": 0}
    for f, r in zip(frames, rms):
        if r < 0.01 * rms.max():
            counts["silent"] += 1
            continue
        if r < 0.03 * rms.max():
            continue                                               # transitions: leave uncounted
        f = f - f.mean()
        ac = np.correlate(f, f, mode="full")[len(f) - 1:]
        ac = ac / ac[0] * len(f) / (len(f) - np.arange(len(f)))    # unbiased, normalised
        lag = lo + int(np.argmax(ac[lo:hi + 1]))
        zcr = np.mean(np.abs(np.diff(np.sign(f))) > 0)
        if ac[lag] > 0.6 and 50 <= SR / lag <= 400:
            counts["voiced"] += 1
        elif ac[lag] < 0.3 and zcr > 0.2:
            counts["unvoiced"] += 1
    return counts


def test_layout_format_and_lengths(corpus):
    utts = read_metadata(corpus)
    assert len(utts) == 6 and all(u.text and u.text == u.normalized_text for u in utts)
    assert check_corpus(corpus, SR, full=True) == []
    for u in utts:
        info = sf.info(str(u.wav_path(corpus)))
        assert (info.samplerate, info.channels, info.subtype, info.format) == (SR, 1, "PCM_16", "WAV")
        assert 1.0 <= info.duration <= 6.0
    durations = [sf.info(str(u.wav_path(corpus))).duration for u in utts]
    assert max(durations) - min(durations) > 0.5                  # lengths vary


def test_voiced_unvoiced_and_pauses(corpus):
    totals = {"voiced": 0, "unvoiced": 0, "silent": 0}
    for u in read_metadata(corpus):
        wav, _ = sf.read(str(u.wav_path(corpus)), dtype="float32")
        counts = _analyse(wav)
        assert counts["voiced"] >= 10 and counts["silent"] >= 3, (u.id, counts)
        totals = {k: totals[k] + counts[k] for k in totals}
    assert totals["unvoiced"] >= 10 and totals["voiced"] > 3 * totals["unvoiced"], totals


def test_pitch_varies_within_voice_range():
    wav, _ = synthesize_clip(seed=3, index=1)
    frames = _frames(wav.astype(np.float64), int(0.04 * SR), int(0.01 * SR))
    lo, hi = SR // 400, SR // 50
    f0s = []
    for f in frames:
        f = f - f.mean()
        if np.sqrt((f ** 2).mean()) < 0.05 * np.abs(wav).max():
            continue
        ac = np.correlate(f, f, mode="full")[len(f) - 1:]
        ac = ac / max(ac[0], 1e-12) * len(f) / (len(f) - np.arange(len(f)))
        lag = lo + int(np.argmax(ac[lo:hi + 1]))
        if ac[lag] > 0.7:
            f0s.append(SR / lag)
    assert len(f0s) > 20
    assert 50 <= min(f0s) and max(f0s) <= 400
    assert max(f0s) / min(f0s) > 1.15                              # intonation, not a monotone


def test_deterministic_by_seed_and_prefix_stable(tmp_path, corpus):
    again = make_speech_like_corpus(tmp_path / "again", n_clips=3, seed=3)
    for u in read_metadata(again):
        assert u.wav_path(again).read_bytes() == u.wav_path(corpus).read_bytes()   # a prefix of 6 clips
    lines = (corpus / "metadata.csv").read_text().splitlines()
    assert (again / "metadata.csv").read_text().splitlines() == lines[:3]
    a, _ = synthesize_clip(seed=3, index=0)
    b, _ = synthesize_clip(seed=4, index=0)
    assert a.shape != b.shape or not np.array_equal(a, b)


def test_stamp_skips_and_protects(tmp_path):
    out = make_speech_like_corpus(tmp_path / "c", n_clips=2, seed=0)
    wav = out / "wavs" / "SYN001-0001.wav"
    mtime = wav.stat().st_mtime_ns
    make_speech_like_corpus(out, n_clips=2, seed=0)
    assert wav.stat().st_mtime_ns == mtime                         # same settings: not regenerated
    with pytest.raises(UserInputError, match="overwrite"):
        make_speech_like_corpus(out, n_clips=1, seed=0)
    make_speech_like_corpus(out, n_clips=1, seed=0, overwrite=True)
    assert sorted(p.name for p in (out / "wavs").iterdir()) == ["SYN001-0001.wav"]   # stale clip removed
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(UserInputError, match="not empty"):
        make_speech_like_corpus(foreign, n_clips=1)
    with pytest.raises(UserInputError, match="n_clips"):
        make_speech_like_corpus(tmp_path / "x", n_clips=0)


def test_cli_help_shows_defaults(capsys):
    spec = importlib.util.spec_from_file_location("make_corpus_cli", ROOT / "data_prep" / "make_corpus.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--n-clips" in out and "default: auto" in out and "default: 0" in out
