"""The WER column: word alignment against closed forms, and the recogniser on speech and on noise.

The recogniser (PocketSphinx, the eval extra) is checked on what it must get right: clear synthetic sentences that
flite speaks (Debian's flite; CI installs it), the real CMU ARCTIC recording pysptk ships, and white noise, whose WER
must be high. Skipped cleanly where the package or the synthesiser is missing.
"""
import shutil

import numpy as np
import pytest

from wavegrad.audio.intelligibility import error_rate, word_errors, words
from wavegrad.errors import UserInputError


def test_words_normalise_case_and_punctuation():
    assert words("It's easy, to tell -- the DEPTH of a well.") == ["it's", "easy", "to", "tell", "the", "depth", "of",
                                                                    "a", "well"]


@pytest.mark.parametrize("ref,hyp,errors", [
    ("a b c", "a b c", 0), ("a b c", "a x c", 1), ("a b c", "a c", 1), ("a b c", "a b c d", 1),
    ("a b c", "", 3), ("a b c d", "b c d e", 2), ("the cat sat", "cat the sat", 2)])
def test_word_errors_is_the_levenshtein_distance(ref, hyp, errors):
    assert word_errors(ref.split(), hyp.split()) == errors


def test_error_rate_and_its_bad_input():
    assert error_rate("The boy was there.", "the boy was where") == pytest.approx(0.25)
    assert error_rate("one two", "one two three four") == pytest.approx(1.0)          # insertions count: can exceed
    with pytest.raises(UserInputError, match="no words"):
        error_rate("...", "anything")


def _recogniser():
    pytest.importorskip("pocketsphinx", reason="WER needs the eval extra (pocketsphinx)")
    from wavegrad.audio.intelligibility import transcribe, wer
    return transcribe, wer


@pytest.mark.skipif(shutil.which("flite") is None, reason="flite speaks the test sentences (apt install flite)")
def test_clear_speech_scores_low_and_noise_scores_high():
    transcribe, wer = _recogniser()
    from wavegrad.data.spoken import speak
    sentences = ["The boy was there when the sun rose.", "Help the woman get back to her feet."]
    rates = [wer(text, *speak("flite", "rms", text, 1.0, 40)) for text in sentences]
    assert max(rates) <= 0.25, rates
    noise = np.random.default_rng(0).standard_normal(16000 * 3).astype(np.float32) * 0.1
    assert wer(sentences[0], noise, 16000) >= 0.8


def test_the_real_recording_is_recognised():
    transcribe, wer = _recogniser()
    from wavegrad.audio import read_audio
    from wavegrad.data.spoken import ARCTIC_TEXT, arctic_clip
    path = arctic_clip()
    if path is None:
        pytest.skip("the CMU ARCTIC recording comes with pysptk (the eval extra)")
    assert wer(ARCTIC_TEXT["arctic_a0007"], read_audio(path, 16000), 16000) <= 0.2
