"""`wavegrad vocode`: good inputs give <stem>.wav files; every bad input gives one stderr line, exit 2,
and nothing written (driven through ``wavegrad.cli.main``)."""
import pickle
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from wavegrad.audio import MelConfig, write_audio
from wavegrad.diffusion import NoiseSchedule
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.vocoder import save_vocoder_checkpoint

HOP, SR = 256, 22050


def cli(argv):
    from wavegrad.cli import main
    return main(argv)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_vocoder_checkpoint(path, WaveGrad(WaveGradConfig.tiny()), MelConfig(), NoiseSchedule.linear(1000))


def _npy(path, arr):
    np.save(path, np.asarray(arr))
    return path


def _good_mel(frames=6, seed=0):
    return (np.random.default_rng(seed).standard_normal((80, frames)) - 5).astype(np.float32)


def _run(argv, capsys):
    code = cli([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, err


FAST = ["--steps", "2"]


def test_vocodes_npy_batched_npy_and_audio(ckpt, tmp_path, capsys):
    a = _npy(tmp_path / "a.npy", _good_mel(6))
    b = _npy(tmp_path / "b.npy", _good_mel(9)[None])                       # [1, n_mels, frames] accepted
    t = np.arange(SR // 4) / SR
    c = write_audio(tmp_path / "c.wav", 0.3 * np.sin(2 * np.pi * 220 * t), SR)
    out = tmp_path / "out"
    code, err = _run(["vocode", ckpt, a, b, c, "--out-dir", out, *FAST, "--batch-size", "2"], capsys)
    assert code == 0, err
    lengths = {p.stem: sf.info(str(p)).frames for p in out.glob("*.wav")}
    assert lengths == {"a": 6 * HOP, "b": 9 * HOP, "c": (SR // 4) // HOP * HOP}
    assert sf.info(str(out / "a.wav")).samplerate == SR


def test_seed_i_reproduces_the_ith_output(ckpt, tmp_path, capsys):
    a, b = _npy(tmp_path / "a.npy", _good_mel(5, 1)), _npy(tmp_path / "b.npy", _good_mel(5, 2))
    assert _run(["vocode", ckpt, a, b, "--out-dir", tmp_path / "both", *FAST, "--seed", "3"], capsys)[0] == 0
    assert _run(["vocode", ckpt, b, "--out-dir", tmp_path / "one", *FAST, "--seed", "4"], capsys)[0] == 0
    both, _ = sf.read(str(tmp_path / "both" / "b.wav"))
    one, _ = sf.read(str(tmp_path / "one" / "b.wav"))
    np.testing.assert_allclose(both, one, atol=2 / 32768)                 # 16-bit PCM, float rounding


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "euler", "heun", "dpmpp-2m", "pc", "langevin"])
def test_every_sampler_vocodes_through_the_cli_at_a_given_nfe(sampler, ckpt, tmp_path, capsys):
    a = _npy(tmp_path / "a.npy", _good_mel(5))
    code, err = _run(["vocode", ckpt, a, "--out-dir", tmp_path / "out", "--sampler", sampler, "--nfe", "4",
                      "--schedule", "karras"], capsys)
    assert code == 0, err
    wav, sr = sf.read(str(tmp_path / "out" / "a.wav"))
    assert sr == SR and wav.shape == (5 * HOP,) and np.isfinite(wav).all()


class Evil:
    """Unpickling this would create the marker file: it must never happen."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _bad_ckpt(kind, tmp_path, good):
    path = tmp_path / f"{kind}.pt"
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(3)}}, path)
    elif kind == "not-torch":
        path.write_text("hello")
    elif kind == "missing":
        pass
    return path


@pytest.mark.parametrize("kind", ["truncated", "foreign", "not-torch", "missing"])
def test_bad_checkpoint(kind, ckpt, tmp_path, capsys):
    a = _npy(tmp_path / "a.npy", _good_mel())
    bad = _bad_ckpt(kind, tmp_path, ckpt)
    code, err = _run(["vocode", bad, a, "--out-dir", tmp_path / "out", *FAST], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and bad.name in err and "checkpoint" in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_malicious_checkpoint_never_executes(how, tmp_path, capsys):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"format": "wavegrad-checkpoint", "version": 1, "family": "vocoder", "x": Evil(marker)}
    if how == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    # the file is a real threat: an unsafe load would create the marker (checked on a copy elsewhere)
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(Evil(probe))).close()
    assert probe.exists()
    a = _npy(tmp_path / "a.npy", _good_mel())
    code, err = _run(["vocode", path, a, "--out-dir", tmp_path / "out", *FAST], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def _bad_input(kind, tmp_path):
    p = tmp_path / f"{kind}.npy"
    if kind == "missing":
        return p
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "garbage":
        p.write_bytes(b"\x93NUMPY this is not really an array" * 3)
    elif kind == "pickled-object":
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "nan":
        m = _good_mel()
        m[3, 2] = np.nan
        np.save(p, m)
    elif kind == "inf":
        m = _good_mel()
        m[0, 0] = -np.inf
        np.save(p, m)
    elif kind == "bands":
        np.save(p, _good_mel()[:40])
    elif kind == "transposed":
        np.save(p, _good_mel(12).T)
    elif kind == "rank1":
        np.save(p, np.zeros(80, np.float32))
    elif kind == "rank4":
        np.save(p, _good_mel()[None, None])
    elif kind == "batch":
        np.save(p, np.stack([_good_mel(), _good_mel()]))
    elif kind == "zero-frames":
        np.save(p, np.zeros((80, 0), np.float32))
    elif kind == "strings":
        np.save(p, np.array([["a"] * 4] * 80))
    elif kind in ("empty-wav", "silent-wav", "garbage-wav"):
        p = tmp_path / f"{kind}.wav"
        if kind == "empty-wav":
            p.write_bytes(b"")
        elif kind == "garbage-wav":
            p.write_bytes(b"RIFF1234WAVEnot audio")
        else:
            sf.write(str(p), np.zeros(SR // 4, np.float32), SR)
    elif kind == "directory":
        p = tmp_path / "dir.npy"
        p.mkdir()
    return p


BAD = {"missing": "not found", "empty": "empty", "garbage": "cannot read", "pickled-object": "cannot read",
       "nan": "NaN", "inf": "inf", "bands": "bands", "transposed": "mel.T", "rank1": "shape",
       "rank4": "shape", "batch": "one mel per file", "zero-frames": "0 frames", "strings": "dtype",
       "empty-wav": "empty", "silent-wav": "silent", "garbage-wav": "cannot read", "directory": "directory"}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_bad_input_among_good_ones_writes_nothing(kind, ckpt, tmp_path, capsys):
    good = _npy(tmp_path / "good.npy", _good_mel())
    bad = _bad_input(kind, tmp_path)
    out = tmp_path / "out"
    code, err = _run(["vocode", ckpt, good, bad, "--out-dir", out, *FAST], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert BAD[kind] in lines[0] and bad.name in lines[0], lines[0]
    assert not out.exists() or not any(out.iterdir())


def test_same_stem_twice_is_refused_before_writing(ckpt, tmp_path, capsys):
    (tmp_path / "x").mkdir()
    a = _npy(tmp_path / "a.npy", _good_mel())
    b = write_audio(tmp_path / "x" / "a.wav", 0.3 * np.sin(np.arange(SR // 4) / 10), SR)
    code, err = _run(["vocode", ckpt, a, b, "--out-dir", tmp_path / "out", *FAST], capsys)
    assert code == 2 and "same stem" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_output_may_not_overwrite_an_input(ckpt, tmp_path, capsys):
    src = write_audio(tmp_path / "a.wav", 0.3 * np.sin(np.arange(SR // 4) / 10), SR)
    before = src.read_bytes()
    code, err = _run(["vocode", ckpt, src, "--out-dir", tmp_path, *FAST], capsys)
    assert code == 2 and "overwrite" in err
    assert src.read_bytes() == before


@pytest.mark.parametrize("flags,match", [
    (["--steps", "0"], "--steps"), (["--eta", "2"], "--eta"), (["--batch-size", "0"], "--batch-size"),
    (["--chunk-seconds", "-1"], "--chunk-seconds"), (["--schedule", "nope"], "no schedule named"),
    (["--device", "banana"], "--device"), (["--sampler", "rk4"], "invalid choice: 'rk4'"),
    (["--sampler", "pc", "--nfe", "1"], "needs at least 2 network evaluation"),
    (["--sampler", "ddpm", "--churn", "5"], "--churn does not apply to sampler 'ddpm'"),
    (["--steps", "3", "--nfe", "3"], "not both"), (["--nfe", "0"], "--nfe must be >= 1"),
    (["--sampler", "heun", "--eta", "0"], "--eta is DDIM's parameter"),
    (["--consistency", "grad"], "consistency must be one of"), (["--gla-iterations", "-1"], "--gla-iterations"),
    (["--consistency", "gla", "--start-level", "0"], "a0 must lie in (0, 1]"),
    (["--consistency", "gla@2"], "a0 must lie in (0, 1]"), (["--gla-weight", "1.5"], "--gla-weight"),
    (["--consistency", "gla+16"], "e.g. gla@0.9 or gla@0.9+gl16"), (["--polish-iterations", "-2"], "--polish-iterations"),
])
def test_bad_flags(flags, match, ckpt, tmp_path, capsys):
    a = _npy(tmp_path / "a.npy", _good_mel())
    code, err = _run(["vocode", ckpt, a, "--out-dir", tmp_path / "out", *flags], capsys)
    assert code == 2 and match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_help_states_the_validation_policy(capsys):
    assert cli(["vocode", "--help"]) == 0
    assert "validated before any is vocoded" in " ".join(capsys.readouterr().out.split())


def test_console_entry_point(ckpt, tmp_path):
    import subprocess
    a = _npy(tmp_path / "a.npy", _good_mel())
    bad = _npy(tmp_path / "b.npy", _good_mel(5).T)
    r = subprocess.run([sys.executable, "-m", "wavegrad.cli", "vocode", str(ckpt), str(a), str(bad),
                        "--out-dir", str(tmp_path / "out"), "--steps", "2"], capture_output=True, text=True)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "wavegrad.cli", "vocode", str(ckpt), str(a),
                        "--out-dir", str(tmp_path / "out"), "--steps", "2"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "a.wav").is_file()


def test_consistency_through_the_cli(ckpt, tmp_path, capsys):
    """--consistency gla (and a shallow start) brings a random network's output onto the mel: its log-mel error
    falls far below the network alone; the checkpoint's default (none, for this one) is what runs without flags."""
    from wavegrad.audio.metrics import log_mel_l1
    t = np.arange(SR) / SR
    src = write_audio(tmp_path / "tone.wav", 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)), SR)
    errors = {}
    for name, flags in (("default", []), ("none", ["--consistency", "none"]), ("gla", ["--consistency", "gla"]),
                        ("start", ["--consistency", "gla@0.9", "--gla-iterations", "2"]),
                        ("polish", ["--consistency", "none+gl8"])):
        code, err = _run(["vocode", ckpt, src, "--out-dir", tmp_path / name, *FAST, *flags], capsys)
        assert code == 0, err
        ref = sf.read(str(src), dtype="float32")[0]
        out = sf.read(str(tmp_path / name / "tone.wav"), dtype="float32")[0]
        errors[name] = log_mel_l1(ref[:len(out)], out, MelConfig())
    assert errors["default"] == errors["none"]
    assert errors["gla"] < 0.3 * errors["none"] and errors["start"] < 0.3 * errors["none"], errors
    assert errors["polish"] < 0.5 * errors["none"], errors


def test_consistency_needs_a_filterbank_without_empty_bands(tmp_path, capsys):
    """A convention whose filterbank has empty bands has no pseudo-inverse: one line, exit 2, nothing written."""
    import warnings
    cfg = MelConfig(n_fft=256, win_length=256, hop_length=64, n_mels=128)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                         # librosa warns of the empty filters itself
        path = save_vocoder_checkpoint(tmp_path / "coarse.pt", WaveGrad(WaveGradConfig.tiny(n_mels=128, hop_length=64)), cfg,
                                       NoiseSchedule.linear(1000))
        a = _npy(tmp_path / "a.npy", _good_mel(6)[:1].repeat(128, 0))
        code, err = _run(["vocode", path, a, "--out-dir", tmp_path / "out", *FAST, "--consistency", "gla"], capsys)
    assert code == 2 and "empty filters" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
