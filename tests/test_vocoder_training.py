"""End to end on a generated LJSpeech-layout corpus: train the tiny WaveGrad, checkpoint, resume, vocode."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from wavegrad import Vocoder
from wavegrad.data.ljspeech import write_splits
from wavegrad.data.synthetic import make_speech_like_corpus
from wavegrad.training.checkpoint import list_checkpoints
from wavegrad.training.cli import parse, train_from_args

ROOT = Path(__file__).parent.parent
FAST = ["--model", "tiny", "--batch-size", "2", "--segment-length", "2048", "--num-workers", "0",
        "--val-clips", "1", "--val-seconds", "0.25", "--val-steps", "3", "--log-every", "1", "--cpu", "true"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    make_speech_like_corpus(d, n_clips=6, seed=1)
    write_splits(d, n_val=1, n_test=1)
    return d


def run(corpus, run_dir, *extra):
    args = parse(["--data-dir", str(corpus), "--run-dir", str(run_dir), *FAST, *extra], {}, "tiny", "test")
    return train_from_args(args)


def test_train_validate_checkpoint_resume_vocode(corpus, tmp_path):
    trainer, path = run(corpus, tmp_path / "r", "--max-steps", "2", "--val-every", "2")
    assert path.name == "step-00000002.pt"
    val = [h for h in trainer.history if "val/log_mel_l1" in h]
    assert len(val) == 1 and 0 < val[0]["val/log_mel_l1"] < 20
    assert len(list((tmp_path / "r" / "samples" / "step-00000002").glob("*.wav"))) == 1
    assert (tmp_path / "r" / "config.json").is_file() and list((tmp_path / "r" / "tb").iterdir())

    trainer2, path2 = run(corpus, tmp_path / "r", "--max-steps", "3", "--val-every", "0", "--resume", "auto")
    assert trainer2.step == 3 and path2.name == "step-00000003.pt"

    voc = Vocoder.from_checkpoint(path2)
    mel = torch.randn(80, 7) - 5
    wav = voc(mel, steps=3, generator=torch.Generator().manual_seed(0))
    assert wav.shape == (7 * 256,) and torch.isfinite(wav).all() and wav.abs().max() <= 1.0 + 1e-5
    assert voc(mel[None].expand(2, 80, 7), steps=2).shape == (2, 7 * 256)
    with pytest.raises(ValueError, match="bands"):
        voc(torch.zeros(7, 80), steps=2)


def test_training_from_a_mel_cache(corpus, tmp_path):
    from wavegrad.audio import MelConfig
    from wavegrad.data.ljspeech import MelCache, load_split
    MelCache(tmp_path / "mels", MelConfig()).build(corpus, load_split(corpus, "train"))
    trainer, path = run(corpus, tmp_path / "r", "--max-steps", "2", "--val-every", "0",
                        "--mel-cache-dir", str(tmp_path / "mels"))
    assert path.name == "step-00000002.pt" and trainer.task.train_set.mel_cache is not None


def test_loss_falls_on_the_speech_like_corpus(corpus, tmp_path):
    """Fixed seed, 60 steps of the tiny model at lr 1e-3: the mean loss of the last 20 steps is
    clearly below that of the first 20 (measured: see the closing note; the bound leaves room)."""
    trainer, _ = run(corpus, tmp_path / "r", "--max-steps", "60", "--val-every", "0", "--log-every", "20",
                     "--lr", "1e-3", "--batch-size", "4")
    losses = [h["train/loss"] for h in trainer.history if "train/loss" in h]
    assert len(losses) == 3 and losses[-1] < 0.8 * losses[0], losses


@pytest.mark.parametrize("flags, msg", [
    (["--batch-size", "0"], "batch_size"),
    (["--segment-length", "1000"], "multiple of the hop"),
    (["--mixed-precision", "fp8"], "mixed_precision"),
    (["--data-dir", "/nonexistent/corpus"], "train.txt"),
])
def test_train_cli_rejects_bad_configs_with_one_line(flags, msg, corpus, tmp_path):
    base = ["--data-dir", str(corpus), "--run-dir", str(tmp_path / "r"), "--max-steps", "1"]
    r = subprocess.run([sys.executable, "-m", "wavegrad.cli", "train", *base, *flags], capture_output=True,
                       text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, r.stderr
    assert not list_checkpoints(tmp_path / "r" / "checkpoints")
