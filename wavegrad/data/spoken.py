"""Speech with words: an LJSpeech-layout corpus read aloud by the offline speech synthesisers of Debian
(espeak-ng, flite), and the one real recording that ships inside an installed wheel (CMU ARCTIC).

The formant corpus of :mod:`wavegrad.data.synthetic` needs nothing but numpy; its pseudo-words have no
transcript a recogniser could score. This corpus has real English sentences, so a word error rate
(``wavegrad.audio.intelligibility``) means something on it, and it sounds far more like speech: phones,
coarticulation, prosody from two quite different engines (espeak-ng's formant synthesis in six voice
variants, flite's diphone and cluster-unit voices built from CMU ARCTIC speakers, slt excluded). It is still
synthetic: the real recording (CMU ARCTIC's SLT, a speaker no voice here was built from) is the held-out check.

* Sentences: the first lists of the Harvard sentences (IEEE 1969, public domain) and sentences built from a
  small grammar, seeded; clip ``i`` depends only on ``(seed, i)`` and the engines' versions.
* Voices: clip ``i`` rotates through :data:`VOICES`; rate and pitch are drawn per clip.
* Audio: resampled to the corpus rate, peak-normalised to a drawn level in [0.5, 0.95], 16-bit PCM.

Nothing is downloaded: the engines are Debian packages (``apt install espeak-ng flite``), and the ARCTIC
clip is the one pysptk's wheel carries (``pip install wavegrad[eval]``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ..errors import UserInputError
from ..utils import atomic_path

GENERATOR_VERSION = 1
STAMP_NAME = ".make_corpus.json"

# (engine, voice): espeak-ng's American and British voices with its variants, flite's voices
VOICES = [("espeak-ng", "en-us+f2"), ("flite", "awb"), ("espeak-ng", "en-gb+m3"), ("flite", "rms"),
          ("espeak-ng", "en-us+f4"), ("flite", "kal16"), ("espeak-ng", "en-gb+f1"), ("flite", "awb"),
          ("espeak-ng", "en-us+m1"), ("flite", "rms"), ("espeak-ng", "en-us+f5"), ("flite", "kal16")]
# flite's slt voice is left out: it is built from CMU ARCTIC's speaker SLT, whose real recording is the held-out test

# Harvard sentences, lists 1-6 (IEEE Recommended Practice for Speech Quality Measurements, 1969)
HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
    "A king ruled the state in the early days.", "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.", "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.", "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.", "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.", "Mesh wire keeps chicks inside.",
    "The frosty air passed through the coat.", "The crooked maze failed to fool the mouse.",
    "Adding fast leads to wrong sums.", "The show was a flop from the very start.",
    "A saw is a tool used for making boards.", "The wagon moved on well oiled wheels.",
    "March the soldiers past the next hill.", "A cup of sugar makes sweet fudge.",
    "Place a rosebush near the porch steps.", "Both lost their lives in the raging storm.",
]
_SUBJECTS = ["the old man", "a young woman", "the teacher", "my brother", "the small dog", "our neighbour",
             "the farmer", "a tired sailor", "the doctor", "her sister", "the children", "the captain"]
_VERBS = ["carried", "painted", "found", "opened", "cleaned", "watched", "bought", "dropped", "fixed", "moved"]
_OBJECTS = ["the heavy box", "a red chair", "the garden gate", "an old map", "the kitchen window", "a wooden boat",
            "the silver key", "a long letter", "the broken clock", "a basket of apples"]
_PLACES = ["in the morning", "near the river", "after dinner", "before the storm", "at the station",
           "on the hill", "in the dark", "by the old bridge", "during the summer", "at noon"]


def sentence(rng: np.random.Generator, index: int) -> str:
    """The Harvard sentences first, then grammar sentences (subject verb object place)."""
    if index < len(HARVARD):
        return HARVARD[index]
    words = [_SUBJECTS[rng.integers(len(_SUBJECTS))], _VERBS[rng.integers(len(_VERBS))],
             _OBJECTS[rng.integers(len(_OBJECTS))], _PLACES[rng.integers(len(_PLACES))]]
    text = " ".join(words)
    return text[0].upper() + text[1:] + "."


def engines_available() -> list[str]:
    """The speech synthesisers on PATH, of those this corpus uses."""
    return [e for e in ("espeak-ng", "flite") if shutil.which(e)]


def speak(engine: str, voice: str, text: str, rate: float, pitch: float) -> tuple[np.ndarray, int]:
    """``text`` spoken by ``engine`` -> (float waveform [T], its sample rate)."""
    import soundfile as sf
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "say.wav"
        if engine == "espeak-ng":
            cmd = ["espeak-ng", "-v", voice, "-s", str(int(175 * rate)), "-p", str(int(pitch)), "-w", str(out), text]
        else:
            cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={1 / rate:.3f}",
                   "--setf", f"int_f0_target_mean={80 + pitch:.0f}", "-t", text, "-o", str(out)]
        try:
            subprocess.run(cmd, check=True, capture_output=True, timeout=60)
            wav, sr = sf.read(out, dtype="float32", always_2d=True)
        except (OSError, subprocess.SubprocessError, RuntimeError) as e:
            raise UserInputError(f"{engine} -v {voice} failed to speak {text!r} ({type(e).__name__}); "
                                 f"check that `{engine}` runs on its own") from None
    return wav.mean(axis=1), sr


def spoken_clip(seed: int, index: int, sample_rate: int, voices: list[tuple[str, str]]) -> tuple[np.ndarray, str]:
    """Clip ``index``: (float32 waveform [T] in [-1, 1] at ``sample_rate``, its transcript)."""
    import librosa
    rng = np.random.default_rng([seed, index, 0x7775])
    text = sentence(rng, index)
    engine, voice = voices[index % len(voices)]
    wav, sr = speak(engine, voice, text, rate=float(rng.uniform(0.85, 1.1)), pitch=float(rng.uniform(25, 70)))
    if sr != sample_rate:
        wav = librosa.resample(wav, orig_sr=sr, target_sr=sample_rate)
    wav = _trim(wav, sample_rate)
    wav = wav * (rng.uniform(0.5, 0.95) / max(float(np.abs(wav).max()), 1e-9))
    return np.clip(wav, -1.0, 1.0).astype(np.float32), text


def _trim(wav: np.ndarray, sr: int, keep: float = 0.15) -> np.ndarray:
    """Leading and trailing silence cut to ``keep`` seconds (the engines pad generously)."""
    loud = np.flatnonzero(np.abs(wav) > 0.01 * np.abs(wav).max())
    if loud.size == 0:
        return wav
    a, b = max(0, loud[0] - int(keep * sr)), min(len(wav), loud[-1] + int(keep * sr))
    return wav[a:b]


def make_spoken_corpus(out_dir: str | os.PathLike, n_clips: int = 200, seed: int = 0, sample_rate: int = 22050, *,
                       progress: bool = False) -> Path:
    """Write ``n_clips`` spoken sentences in the LJSpeech layout to ``out_dir`` (see the module docstring);
    a complete corpus with the same settings (its stamp) is left as it is. Needs espeak-ng or flite."""
    from ..audio import write_audio
    engines = engines_available()
    voices = [v for v in VOICES if v[0] in engines]
    if not voices:
        raise UserInputError("no speech synthesiser found: install espeak-ng or flite (apt install espeak-ng "
                             "flite), or use the formant corpus (make_corpus.py --kind formant)")
    out_dir = Path(out_dir)
    want = {"generator": "wavegrad.data.spoken", "version": GENERATOR_VERSION, "n_clips": int(n_clips),
            "seed": int(seed), "sample_rate": int(sample_rate), "voices": ["/".join(v) for v in voices]}
    stamp = out_dir / STAMP_NAME
    if stamp.exists():
        have = json.loads(stamp.read_text())
        if have.get("complete") and {k: have.get(k) for k in want} == want:
            return out_dir
        raise UserInputError(f"{out_dir} holds a corpus made with other settings; choose another folder or delete it")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise UserInputError(f"{out_dir} is not empty; choose a new or empty output folder")
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    indices = range(n_clips)
    if progress:
        from tqdm import tqdm
        indices = tqdm(indices, desc=f"speaking ({', '.join(engines)})", unit="clip")
    rows = []
    for i in indices:
        wav, text = spoken_clip(seed, i, sample_rate, voices)
        name = f"TTS{i // 50 + 1:03d}-{i % 50 + 1:04d}"
        write_audio(out_dir / "wavs" / f"{name}.wav", wav, sample_rate)
        rows.append(f"{name}|{text}|{text}\n")
    with atomic_path(out_dir / "metadata.csv") as tmp:
        tmp.write_text("".join(rows), encoding="utf-8")
    with atomic_path(stamp) as tmp:
        tmp.write_text(json.dumps({**want, "complete": True}, indent=2) + "\n")
    return out_dir


KINDS = ("auto", "spoken", "formant")


def make_quickstart(out: str | os.PathLike, kind: str = "auto", n_clips: int | None = None, seed: int = 0,
                    sample_rate: int = 22050, overwrite: bool = False, progress: bool = True) -> str:
    """The quick-start corpus of ``kind`` in ``out`` (auto: spoken where espeak-ng or flite is installed, else the
    formant corpus of :mod:`wavegrad.data.synthetic`); returns the kind written."""
    from .synthetic import make_speech_like_corpus
    if kind not in KINDS:
        raise UserInputError(f"corpus kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "auto":
        kind = "spoken" if engines_available() else "formant"
    if kind == "spoken":
        make_spoken_corpus(out, n_clips=n_clips or 240, seed=seed, sample_rate=sample_rate, progress=progress)
    else:
        make_speech_like_corpus(out, n_clips=n_clips or 100, seed=seed, sample_rate=sample_rate, overwrite=overwrite,
                                progress=progress)
    return kind


# ---- the real recording ---------------------------------------------------------------------------------------
ARCTIC_TEXT = {"arctic_a0007": "And you always want to see it in the superlative degree."}


def arctic_clip() -> Path | None:
    """The CMU ARCTIC recording pysptk's wheel carries (16 kHz, 4 s, speaker SLT), or None without pysptk."""
    try:
        import pysptk.util
        return Path(pysptk.util.example_audio_file())
    except (ImportError, AttributeError, OSError):
        return None


def write_real_speech(out_dir: str | os.PathLike, sample_rate: int = 22050, train: bool = False) -> Path:
    """The real recording(s) as an LJSpeech-layout folder whose test split is all of them (held-out speech for
    ``wavegrad benchmark --data-dir OUT``): 16 kHz resampled to ``sample_rate`` (its band ends at 8 kHz, the
    HiFi-GAN mel's top). ``train=True`` puts them in the train split too: the one-utterance corpus of an overfit
    check (a model trained on it is scored on what it was trained on)."""
    import librosa
    from ..audio import read_audio, write_audio
    src = arctic_clip()
    if src is None:
        raise UserInputError("the real recording comes with pysptk (pip install wavegrad[eval]); it is not installed")
    out_dir = Path(out_dir)
    (out_dir / "wavs").mkdir(parents=True, exist_ok=True)
    wav = read_audio(src, 16000)
    wav = librosa.resample(wav, orig_sr=16000, target_sr=sample_rate).astype(np.float32)
    write_audio(out_dir / "wavs" / "arctic_a0007.wav", np.clip(wav, -1, 1), sample_rate)
    text = ARCTIC_TEXT["arctic_a0007"]
    with atomic_path(out_dir / "metadata.csv") as tmp:
        tmp.write_text(f"arctic_a0007|{text}|{text}\n", encoding="utf-8")
    for split, ids in (("train", ["arctic_a0007"] if train else []), ("val", ["arctic_a0007"]),
                       ("test", ["arctic_a0007"])):
        with atomic_path(out_dir / f"{split}.txt") as tmp:
            tmp.write_text("".join(f"{i}\n" for i in ids))
    return out_dir
