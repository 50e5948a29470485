"""The spoken quick-start corpus (espeak-ng / flite) and the real held-out recording, in the LJSpeech layout."""
import numpy as np
import pytest
import soundfile as sf

from wavegrad.data import check_corpus, has_errors, read_metadata
from wavegrad.data.spoken import (HARVARD, VOICES, arctic_clip, engines_available, make_quickstart, make_spoken_corpus,
                                  sentence, write_real_speech)
from wavegrad.errors import UserInputError


def test_sentences_are_harvard_first_then_seeded_grammar():
    rng = np.random.default_rng(0)
    assert sentence(rng, 0) == "The birch canoe slid on the smooth planks."
    a = sentence(np.random.default_rng([0, len(HARVARD)]), len(HARVARD))
    b = sentence(np.random.default_rng([0, len(HARVARD)]), len(HARVARD))
    assert a == b and a.endswith(".") and a[0].isupper()


def test_the_held_out_speaker_is_not_among_the_voices():
    """flite's slt is built from CMU ARCTIC's SLT, the speaker of the real recording we score on."""
    assert ("flite", "slt") not in VOICES


@pytest.mark.skipif(not engines_available(), reason="needs espeak-ng or flite (apt install espeak-ng flite)")
def test_spoken_corpus_is_a_valid_ljspeech_folder_and_deterministic(tmp_path):
    out = make_spoken_corpus(tmp_path / "c", n_clips=3, seed=1, progress=False)
    assert not has_errors(check_corpus(out))
    rows = read_metadata(out)
    assert [r.text for r in rows] == HARVARD[:3]
    first = sf.read(str(out / "wavs" / f"{rows[0].id}.wav"))
    assert first[1] == 22050 and 0.4 < np.abs(first[0]).max() <= 0.96 and len(first[0]) > 22050 * 0.8
    again = make_spoken_corpus(tmp_path / "d", n_clips=3, seed=1, progress=False)
    assert (again / "wavs" / f"{rows[0].id}.wav").read_bytes() == (out / "wavs" / f"{rows[0].id}.wav").read_bytes()
    assert make_spoken_corpus(out, n_clips=3, seed=1, progress=False) == out            # same settings: kept
    with pytest.raises(UserInputError, match="other settings"):
        make_spoken_corpus(out, n_clips=4, seed=1)


def test_quickstart_kind_is_checked(tmp_path):
    with pytest.raises(UserInputError, match="corpus kind"):
        make_quickstart(tmp_path, kind="opera")
    assert make_quickstart(tmp_path / "f", kind="formant", n_clips=2, progress=False) == "formant"


def test_real_speech_folder_holds_the_arctic_clip(tmp_path):
    if arctic_clip() is None:
        pytest.skip("the recording comes with pysptk (the eval extra)")
    out = write_real_speech(tmp_path / "real")
    assert (out / "test.txt").read_text().split() == ["arctic_a0007"]
    wav, sr = sf.read(str(out / "wavs" / "arctic_a0007.wav"))
    assert sr == 22050 and abs(len(wav) / sr - 4.0) < 0.01
    assert "superlative degree" in read_metadata(out)[0].text
