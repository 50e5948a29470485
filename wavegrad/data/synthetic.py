"""A small speech-like corpus made from scratch, in the LJSpeech layout (the quick-start dataset).

Real speech cannot be downloaded here, and white noise or pure tones teach a vocoder nothing about
the structure it must reproduce. So each clip is built like a (very plain) formant synthesiser:

* **Prosody**: pseudo-words of 1-3 syllables ((C)(C)V(C)), grouped into phrases separated by
  pauses; stressed vowels are longer and carry a pitch accent, phrase-final syllables lengthen.
* **Voiced source**: a Rosenberg glottal pulse train (open phase 40 %, closing 16 % of the period),
  differentiated (lip radiation), following an F0 contour = speaker F0 x phrase declination x
  Gaussian accents x slow drift, with per-cycle jitter (~1 %) and shimmer (~5 %) and a little
  breath noise.
* **Unvoiced source**: white noise gated on fricatives (s, sh, f, h), stop bursts and aspiration.
* **Filters**: time-varying. The voiced source goes through a cascade of four formant resonances
  whose frequencies glide between phone targets (coarticulation by smoothing the tracks); the noise
  goes through a band-pass shaped per fricative. Both are applied frame by frame in the STFT domain
  (512-point frames, hop 128 = 5.8 ms) and overlap-added: fast in numpy and smooth in time.
* Leading/trailing silence with a faint noise floor (-70 dBFS, as in real recordings) and a random
  peak level in [0.5, 0.95].

Each clip depends only on ``(seed, clip index)``: asking for fewer clips gives a prefix of the same
corpus. The transcription column spells the generated pseudo-words (it is never used for training).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..utils import atomic_path

# Bump when the audio a given (seed, index) produces changes: the stamp then no longer matches.
GENERATOR_VERSION = 1
STAMP_NAME = ".make_corpus.json"
MIN_SECONDS, MAX_SECONDS = 1.0, 6.0

# STFT used for the time-varying filters (not the mel front end).
_N_FFT, _HOP = 512, 128

# Formant targets (F1, F2, F3 in Hz) of American English vowels, after Peterson & Barney (1952),
# adult female averages; F4 and bandwidths are added below. Key: phone -> (spelling, formants).
_VOWELS = {
    "i": ("ee", (310, 2790, 3310)), "I": ("i", (430, 2480, 3070)), "e": ("ay", (480, 2300, 2900)),
    "E": ("e", (610, 2330, 2990)), "ae": ("a", (860, 2050, 2850)), "A": ("ah", (850, 1220, 2810)),
    "O": ("aw", (590, 920, 2710)), "u": ("oo", (370, 950, 2670)), "U": ("u", (470, 1160, 2680)),
    "V": ("uh", (760, 1400, 2780)), "@": ("a", (500, 1500, 2500)),
}
# Voiced consonants: (spelling, formants, voiced gain relative to a vowel).
_SONORANTS = {
    "m": ("m", (280, 1100, 2500), 0.35), "n": ("n", (280, 1700, 2600), 0.35),
    "l": ("l", (360, 1300, 2800), 0.6), "r": ("r", (420, 1300, 1650), 0.6),
    "w": ("w", (300, 700, 2300), 0.6), "y": ("y", (280, 2300, 3000), 0.6),
}
# Fricatives: (spelling, noise centre Hz, noise bandwidth Hz, noise gain, voiced gain).
_FRICATIVES = {
    "s": ("s", 6000, 2500, 0.35, 0.0), "sh": ("sh", 3500, 2000, 0.35, 0.0),
    "f": ("f", 5000, 5000, 0.12, 0.0), "h": ("h", 1500, 2500, 0.10, 0.0),
    "z": ("z", 6000, 2500, 0.18, 0.3), "v": ("v", 5000, 5000, 0.08, 0.3),
}
# Stops: (spelling, burst centre Hz, voiced).
_STOPS = {"p": ("p", 1000, False), "t": ("t", 4500, False), "k": ("k", 2200, False),
          "b": ("b", 1000, True), "d": ("d", 4500, True), "g": ("g", 2200, True)}
_ONSETS = list(_SONORANTS) + list(_FRICATIVES) + list(_STOPS)
_CODAS = ["m", "n", "l", "r", "s", "z", "t", "k", "d", "f"]
_CLUSTERS = [("s", "t"), ("s", "p"), ("p", "l"), ("k", "r"), ("t", "r"), ("b", "l"), ("f", "r")]
_NEUTRAL = (500, 1500, 2500)  # formants held through silences and obstruents (schwa)


@dataclass
class _Segment:
    """One phone: duration in samples and the control values held during it."""

    n: int
    voiced: float = 0.0                      # voiced source gain
    noise: float = 0.0                       # noise source gain
    formants: tuple = _NEUTRAL               # F1..F3 targets (Hz)
    noise_center: float = 3000.0             # noise band centre (Hz)
    noise_bw: float = 3000.0                 # noise band width (Hz)
    accent: float = 0.0                      # pitch accent height (fraction of F0) peaking here
    phrase: int = 0                          # phrase index (declination restarts per phrase)
    letters: str = ""                        # spelling, for the transcription


@dataclass(frozen=True)
class _Speaker:
    f0: float                                # mean F0 (Hz)
    formant_scale: float                     # vocal-tract length factor applied to all formants
    rate: float                              # speaking-rate factor on durations


def _speaker(seed: int) -> _Speaker:
    rng = np.random.default_rng([seed, 0x5EED])
    f0 = float(rng.uniform(110.0, 220.0))
    # Higher voices come with shorter vocal tracts: scale formants from 0.9 (F0 110) to 1.0 (F0 220).
    return _Speaker(f0=f0, formant_scale=0.9 + 0.1 * (f0 - 110.0) / 110.0, rate=float(rng.uniform(0.9, 1.1)))


# ---- phone sequence --------------------------------------------------------------------------------

def _ms(rng, lo, hi, sr, rate=1.0) -> int:
    return int(rng.uniform(lo, hi) * 1e-3 * sr * rate)


def _consonant(rng, ph: str, sr: int, rate: float, phrase: int) -> list[_Segment]:
    if ph in _SONORANTS:
        letters, fm, gain = _SONORANTS[ph]
        return [_Segment(_ms(rng, 50, 90, sr, rate), voiced=gain, formants=fm, phrase=phrase, letters=letters)]
    if ph in _FRICATIVES:
        letters, fc, bw, ng, vg = _FRICATIVES[ph]
        return [_Segment(_ms(rng, 80, 150, sr, rate), voiced=vg, noise=ng, noise_center=fc, noise_bw=bw,
                         formants=(300, 1500, 2500), phrase=phrase, letters=letters)]
    letters, fc, voiced = _STOPS[ph]
    closure = _Segment(_ms(rng, 40, 80, sr, rate), voiced=0.08 if voiced else 0.0,
                       formants=(250, 1200, 2500), phrase=phrase, letters=letters)
    burst = _Segment(_ms(rng, 8, 18, sr), noise=0.5, noise_center=fc, noise_bw=3000, phrase=phrase)
    out = [closure, burst]
    if not voiced:                          # aspiration before the next vowel's voicing starts
        out.append(_Segment(_ms(rng, 20, 50, sr, rate), noise=0.12, noise_center=1800, noise_bw=3000,
                            phrase=phrase))
    return out


def _syllable(rng, sr: int, rate: float, phrase: int, stressed: bool, final: bool) -> list[_Segment]:
    segs: list[_Segment] = []
    r = rng.random()
    if r < 0.12:
        for ph in _CLUSTERS[rng.integers(len(_CLUSTERS))]:
            segs += _consonant(rng, ph, sr, rate, phrase)
    elif r < 0.85:
        segs += _consonant(rng, _ONSETS[rng.integers(len(_ONSETS))], sr, rate, phrase)
    vowel = list(_VOWELS)[rng.integers(len(_VOWELS))]
    letters, fm = _VOWELS[vowel]
    stretch = (1.35 if stressed else 1.0) * (1.4 if final else 1.0)
    accent = float(rng.uniform(0.12, 0.3)) if stressed and rng.random() < 0.7 else 0.0
    segs.append(_Segment(_ms(rng, 70, 150, sr, rate * stretch), voiced=1.2 if stressed else 1.0,
                         formants=fm, accent=accent, phrase=phrase, letters=letters))
    if rng.random() < 0.35:
        segs += _consonant(rng, _CODAS[rng.integers(len(_CODAS))], sr, rate, phrase)
    return segs


def _word(rng, sr: int, rate: float, phrase: int, max_syllables: int, final: bool) -> list[_Segment]:
    n_syl = int(rng.integers(1, max_syllables + 1))
    stress = int(rng.integers(n_syl))
    segs: list[_Segment] = []
    for k in range(n_syl):
        segs += _syllable(rng, sr, rate, phrase, stressed=(k == stress), final=final and k == n_syl - 1)
    return segs


def _plan(rng, n_total: int, sr: int, spk: _Speaker) -> tuple[list[_Segment], str]:
    """Fill ``n_total`` samples with silence, words and pauses; return the segments and the text."""
    lead = _Segment(_ms(rng, 30, 200, sr))
    budget = n_total - lead.n - int(0.05 * sr)          # keep >= 50 ms of trailing silence
    segs, words, phrase = [lead], [], 0
    used = 0
    while True:
        # Draw a word (lengthened before a phrase break); if it does not fit, retry with one
        # syllable (always short), then stop.
        brk = rng.random() < 0.15
        word = _word(rng, sr, spk.rate, phrase, max_syllables=3, final=brk)
        if used + sum(s.n for s in word) > budget:
            word = _word(rng, sr, spk.rate, phrase, max_syllables=1, final=True)
            if words and used + sum(s.n for s in word) > budget:
                break
        words.append("".join(s.letters for s in word))
        segs += word
        used += sum(s.n for s in word)
        # Between words: mostly connected speech (no or short gap), sometimes a phrase break.
        if brk:
            gap, phrase = _Segment(_ms(rng, 150, 400, sr)), phrase + 1
            words[-1] += ","
        else:
            gap = _Segment(_ms(rng, 0, 60, sr))
        if used + gap.n > budget:
            break
        gap.phrase = phrase
        segs.append(gap)
        used += gap.n
    segs.append(_Segment(n_total - lead.n - used, phrase=phrase))   # trailing silence up to the target
    text = " ".join(words).rstrip(",")
    return segs, text[:1].upper() + text[1:] + "."


# ---- signal ----------------------------------------------------------------------------------------

def _step_track(segs: list[_Segment], values: np.ndarray) -> np.ndarray:
    """Hold ``values[k]`` (shape [K] or [K, D]) for segment k's duration -> [T] or [T, D]."""
    return np.repeat(values, [s.n for s in segs], axis=0)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Hann-window moving average along axis 0 (same length): ramps instead of clicks."""
    if width < 3:
        return x
    w = np.hanning(width)
    w /= w.sum()
    if x.ndim == 1:
        return np.convolve(np.pad(x, width // 2, mode="edge"), w, mode="same")[width // 2: width // 2 + len(x)]
    return np.stack([_smooth(x[:, d], width) for d in range(x.shape[1])], axis=1)


def _f0_contour(rng, segs: list[_Segment], sr: int, spk: _Speaker) -> np.ndarray:
    """F0 in Hz per sample [T]: speaker F0 x per-phrase declination x accents x slow drift."""
    n = sum(s.n for s in segs)
    t = np.arange(n) / sr
    base = spk.f0 * np.exp(rng.normal(0.0, 0.06))
    phrase = _step_track(segs, np.array([s.phrase for s in segs]))
    log_f0 = np.zeros(n)
    for p in np.unique(phrase):              # declination: ~ -25 % over each phrase, reset after
        idx = np.flatnonzero(phrase == p)
        frac = (idx - idx[0]) / max(len(idx) - 1, 1)
        log_f0[idx] = np.log(1.12) - np.log(1.12 / 0.85) * frac
    if rng.random() < 0.15:                  # a final rise now and then (question intonation)
        tail = t > t[-1] - 0.6
        log_f0[tail] += np.linspace(0, 0.25, tail.sum())
    starts = np.cumsum([0] + [s.n for s in segs[:-1]])
    for s, start in zip(segs, starts):       # Gaussian accents centred on stressed vowels
        if s.accent > 0:
            centre, width = (start + s.n / 2) / sr, max(s.n / sr, 0.08)
            log_f0 += np.log1p(s.accent) * np.exp(-0.5 * ((t - centre) / (0.6 * width)) ** 2)
    drift = sum(a * np.sin(2 * np.pi * f * t + ph) for a, f, ph in
                zip(rng.uniform(0.005, 0.015, 3), rng.uniform(2, 7, 3), rng.uniform(0, 2 * np.pi, 3)))
    return base * np.exp(log_f0 + drift)


def _glottal_source(rng, f0: np.ndarray, sr: int) -> np.ndarray:
    """Differentiated Rosenberg pulse train [T] following ``f0``, with per-cycle jitter and shimmer."""
    phase0 = np.cumsum(f0 / sr)
    cycle = np.floor(phase0).astype(np.int64)
    n_cycles = int(cycle[-1]) + 1
    jitter = rng.normal(0.0, 0.01, n_cycles)[cycle]
    phase = np.cumsum(f0 * (1.0 + jitter) / sr)
    cycle = np.floor(phase).astype(np.int64)
    shimmer = 1.0 + rng.normal(0.0, 0.05, int(cycle[-1]) + 1)[cycle]
    p = phase - cycle                                            # position within the period, [0, 1)
    tp, tn = 0.40, 0.16                                          # opening / closing fractions
    flow = np.where(p < tp, 0.5 * (1 - np.cos(np.pi * p / tp)),
                    np.where(p < tp + tn, np.cos(0.5 * np.pi * (p - tp) / tn), 0.0))
    # Lip radiation ~ d/dt. Per sample, diff = dflow/dp * f0 / sr with |dflow/dp| <= pi / (2 tn):
    # rescale so the closing spike is ~1 whatever the F0 (the clip is peak-normalised later anyway).
    return np.diff(flow * shimmer, prepend=0.0) * (sr / f0) * (2 * tn / np.pi)


def _formant_gain(freqs: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    """|H(f)| of a cascade of 2nd-order resonators, unity at DC: [frames, bins]."""
    f = freqs[None, None, :]
    fk, bk = formants[:, :, None], bandwidths[None, :, None]
    return np.prod(fk ** 2 / np.sqrt((f ** 2 - fk ** 2) ** 2 + (f * bk) ** 2), axis=1)


def _band_gain(freqs: np.ndarray, centre: np.ndarray, bw: np.ndarray) -> np.ndarray:
    """Gaussian band-pass magnitude per frame: [frames, bins]."""
    return np.exp(-0.5 * ((freqs[None, :] - centre[:, None]) / (0.5 * bw[:, None])) ** 2)


def _stft_filter(x: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Filter ``x`` [T] with a per-frame magnitude response ``gains`` [frames, bins] (zero phase,
    weighted overlap-add). Frame j is centred at sample j * hop."""
    win = np.hanning(_N_FFT + 1)[:-1]                            # periodic Hann
    pad = _N_FFT // 2
    xp = np.pad(x, (pad, pad + _N_FFT))
    n_frames = gains.shape[0]
    frames = np.lib.stride_tricks.sliding_window_view(xp, _N_FFT)[::_HOP][:n_frames] * win
    y_frames = np.fft.irfft(np.fft.rfft(frames, axis=1) * gains, n=_N_FFT, axis=1) * win
    out = np.zeros(len(xp))
    norm = np.zeros(len(xp))
    for j in range(n_frames):
        out[j * _HOP: j * _HOP + _N_FFT] += y_frames[j]
        norm[j * _HOP: j * _HOP + _N_FFT] += win ** 2
    return (out / np.maximum(norm, 1e-3))[pad: pad + len(x)]


def _render(rng, segs: list[_Segment], sr: int, spk: _Speaker) -> np.ndarray:
    n = sum(s.n for s in segs)
    ramp = max(int(0.012 * sr), 3)
    voiced = _smooth(_step_track(segs, np.array([s.voiced for s in segs])), ramp)
    noise_g = _smooth(_step_track(segs, np.array([s.noise for s in segs])), max(int(0.006 * sr), 3))

    f0 = _f0_contour(rng, segs, sr, spk)
    glottal = _glottal_source(rng, f0, sr) + 0.02 * rng.standard_normal(n)      # + breath noise
    v_src = glottal * voiced
    n_src = rng.standard_normal(n) * noise_g

    # Control tracks sampled at the filter frames (centre j * hop), formants smoothed over ~40 ms
    # so vowels glide into each other (coarticulation) instead of jumping.
    n_frames = n // _HOP + 1
    at = np.minimum(np.arange(n_frames) * _HOP, n - 1)
    fm = _step_track(segs, np.array([s.formants for s in segs], dtype=float))[at] * spk.formant_scale
    fm = _smooth(fm, max(int(0.04 * sr / _HOP), 3))
    f4 = np.full((n_frames, 1), 3900.0 * spk.formant_scale)
    formants = np.concatenate([fm, f4], axis=1)                                   # [frames, 4]
    bandwidths = np.array([80.0, 110.0, 160.0, 250.0])
    centre = _step_track(segs, np.array([s.noise_center for s in segs], dtype=float))[at]
    bw = _step_track(segs, np.array([s.noise_bw for s in segs], dtype=float))[at]

    freqs = np.fft.rfftfreq(_N_FFT, 1.0 / sr)
    wav = _stft_filter(v_src, _formant_gain(freqs, formants, bandwidths))
    wav += _stft_filter(n_src, _band_gain(freqs, centre, bw))
    wav *= rng.uniform(0.5, 0.95) / max(np.abs(wav).max(), 1e-9)
    wav += 10 ** (-70 / 20) * rng.standard_normal(n)                             # recording noise floor
    return np.clip(wav, -1.0, 1.0).astype(np.float32)


def synthesize_clip(seed: int, index: int, sample_rate: int = 22050) -> tuple[np.ndarray, str]:
    """Clip ``index`` of the corpus with ``seed``: (float32 waveform [T] in [-1, 1], transcription).

    Its length is uniform in [1, 6] s and depends only on (seed, index), like everything else.
    """
    spk = _speaker(seed)
    rng = np.random.default_rng([seed, index])
    n_total = int(round(rng.uniform(MIN_SECONDS, MAX_SECONDS) * sample_rate))
    segs, text = _plan(rng, n_total, sample_rate, spk)
    return _render(rng, segs, sample_rate, spk), text


# ---- corpus on disk --------------------------------------------------------------------------------

def clip_id(index: int) -> str:
    """LJSpeech-style ids: ``SYN001-0001`` ... (chapters of 50 clips)."""
    return f"SYN{index // 50 + 1:03d}-{index % 50 + 1:04d}"


def _stamp(n_clips: int, seed: int, sample_rate: int) -> dict:
    return {"generator": "wavegrad.data.synthetic", "version": GENERATOR_VERSION,
            "n_clips": n_clips, "seed": seed, "sample_rate": sample_rate}


def _read_stamp(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def _remove_previous(out_dir: Path) -> None:
    """Delete what an earlier run wrote (wavs it listed, metadata, split lists made on it)."""
    meta = out_dir / "metadata.csv"
    if meta.exists():
        for line in meta.read_text(encoding="utf-8").splitlines():
            name = line.split("|", 1)[0].strip()
            if name.startswith("SYN") and "/" not in name:
                (out_dir / "wavs" / f"{name}.wav").unlink(missing_ok=True)
    for name in ("metadata.csv", "train.txt", "val.txt", "test.txt", STAMP_NAME):
        (out_dir / name).unlink(missing_ok=True)


def make_speech_like_corpus(out_dir: str | os.PathLike, n_clips: int = 100, seed: int = 0,
                            sample_rate: int = 22050, *, overwrite: bool = False,
                            progress: bool = False) -> Path:
    """Write an LJSpeech-layout corpus (``metadata.csv``, ``wavs/ID.wav`` 16-bit mono) to ``out_dir``.

    Returns ``out_dir``. If it already holds a complete corpus with the same settings (the
    ``.make_corpus.json`` stamp), nothing is regenerated. A corpus made with other settings is
    replaced only with ``overwrite=True`` (which also removes split lists made on it); a non-empty
    folder that this function did not create is never touched.
    The default (100 clips, seed 0) is about 6 minutes of audio.
    """
    from ..audio import write_audio

    for name, value, low in (("n_clips", n_clips, 1), ("sample_rate", sample_rate, 16000)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise UserInputError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise UserInputError(f"seed must be a non-negative integer, got {seed!r}")
    out_dir = Path(out_dir)
    want = _stamp(int(n_clips), int(seed), int(sample_rate))
    have = _read_stamp(out_dir)
    if have is not None and have.get("complete") and {k: have.get(k) for k in want} == want:
        return out_dir
    if have is None and out_dir.exists() and any(out_dir.iterdir()):
        raise UserInputError(f"{out_dir} is not empty and was not made by make_corpus; "
                             "choose a new or empty output folder")
    if have is not None and have.get("complete") and not overwrite:
        old = {k: have.get(k) for k in ("n_clips", "seed", "sample_rate")}
        raise UserInputError(f"{out_dir} holds a generated corpus with other settings {old}; "
                             "pass --overwrite to replace it or choose another folder")
    _remove_previous(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    _write_stamp(out_dir, {**want, "complete": False})

    rows = []
    indices = range(n_clips)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc="generating clips", unit="clip")
    for i in indices:
        wav, text = synthesize_clip(seed, i, sample_rate)
        write_audio(out_dir / "wavs" / f"{clip_id(i)}.wav", wav, sample_rate)
        rows.append(f"{clip_id(i)}|{text}|{text}\n")
    with atomic_path(out_dir / "metadata.csv") as tmp:
        tmp.write_text("".join(rows), encoding="utf-8")
    _write_stamp(out_dir, {**want, "complete": True})                # last: marks the corpus usable
    return out_dir


def _write_stamp(out_dir: Path, stamp: dict) -> None:
    with atomic_path(out_dir / STAMP_NAME) as tmp:
        tmp.write_text(json.dumps(stamp, indent=2) + "\n")
