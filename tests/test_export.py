"""Exported weights (model.safetensors + config.json), `wavegrad mel`, and padded batches through the vocoder."""
from __future__ import annotations

import json
import struct
import sys
import types

import numpy as np
import pytest
import torch

from test_mel_conventions import _signal
from wavegrad import Vocoder
from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.priors import PriorConfig
from wavegrad.checkpoint import CONFIG_NAME, WEIGHTS_NAME
from wavegrad.diffusion import NoiseSchedule
from wavegrad.errors import UserInputError
from wavegrad.models import DiffWave, DiffWaveConfig, WaveGrad, WaveGradConfig
from wavegrad.vocoder import save_vocoder_checkpoint


def cli(argv, capsys):
    from wavegrad.cli import main
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _mel(frames=9, seed=0):
    return torch.from_numpy((np.random.default_rng(seed).standard_normal((80, frames)) - 5).astype(np.float32))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_vocoder_checkpoint(path, WaveGrad(WaveGradConfig.tiny()), MelConfig(), NoiseSchedule.linear(1000),
                                   schedules={"six": NoiseSchedule.linear(6, 1e-4, 0.5)})


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "tiny"
    from wavegrad.cli import main
    assert main(["export", str(ckpt), str(out)]) == 0
    return out


def _same_audio(a: Vocoder, b: Vocoder, **kw):
    mels = [_mel(9, 0), _mel(5, 1)]
    wa, wb = a.vocode_batch(mels, seed=7, **kw), b.vocode_batch(mels, seed=7, **kw)
    return all(torch.equal(x, y) for x, y in zip(wa, wb))


def test_export_then_from_pretrained_is_bitwise_the_checkpoint(ckpt, exported):
    assert sorted(p.name for p in exported.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    config = json.loads((exported / CONFIG_NAME).read_text())
    assert config["mel_config"] == MelConfig().to_dict() and "six" in config["schedules"]
    a, b = Vocoder.from_checkpoint(ckpt), Vocoder.from_pretrained(exported)
    assert _same_audio(a, b, steps=3)
    assert _same_audio(a, b, schedule="six")                           # stored schedules travel
    assert _same_audio(a, Vocoder.from_checkpoint(exported), steps=2)  # a folder wherever a checkpoint goes


def test_diffwave_with_a_prior_round_trips_through_save_pretrained(tmp_path):
    torch.manual_seed(1)
    path = save_vocoder_checkpoint(tmp_path / "dw.pt", DiffWave(DiffWaveConfig(residual_channels=8, residual_layers=4, dilation_cycle=2)), MelConfig(),
                                   NoiseSchedule.linear(50, 1e-4, 0.05), prior=PriorConfig(kind="priorgrad"),
                                   prior_stats={"energy_min": 0.05})
    a = Vocoder.from_checkpoint(path)
    b = Vocoder.from_pretrained(a.save_pretrained(tmp_path / "out"))
    assert b.prior_config.kind == "priorgrad" and b.prior_stats == {"energy_min": 0.05}
    assert type(b.model) is DiffWave and _same_audio(a, b, steps=3)


def test_vocode_cli_takes_an_exported_folder(exported, tmp_path, capsys):
    np.save(tmp_path / "a.npy", _mel().numpy())
    code, _, err = cli(["vocode", exported, tmp_path / "a.npy", "--out-dir", tmp_path / "o", "--steps", "2"], capsys)
    assert code == 0, err and (tmp_path / "o" / "a.wav").is_file()


def _copy(folder, tmp_path):
    import shutil
    return shutil.copytree(folder, tmp_path / "copy")


def _tamper(kind, folder):
    weights, config = folder / WEIGHTS_NAME, folder / CONFIG_NAME
    if kind == "header-length":
        data = weights.read_bytes()
        weights.write_bytes(struct.pack("<Q", 10**12) + data[8:])
    elif kind == "header-json":
        data = bytearray(weights.read_bytes())
        data[9:14] = b"#####"
        weights.write_bytes(bytes(data))
    elif kind == "truncated":
        data = weights.read_bytes()
        weights.write_bytes(data[: len(data) // 2])
    elif kind == "config-mismatch":
        c = json.loads(config.read_text())
        c["model_config"]["upsample_channels"] = [c * 2 for c in c["model_config"]["upsample_channels"]]
        config.write_text(json.dumps(c))
    elif kind == "config-json":
        config.write_text("{ not json")
    elif kind == "foreign-config":
        config.write_text(json.dumps({"architectures": ["HifiGan"]}))
    return folder


@pytest.mark.parametrize("kind", ["header-length", "header-json", "truncated", "config-mismatch", "config-json",
                                  "foreign-config"])
def test_a_tampered_export_is_one_line_exit_2(kind, exported, tmp_path, capsys):
    folder = _tamper(kind, _copy(exported, tmp_path))
    np.save(tmp_path / "a.npy", _mel().numpy())
    code, _, err = cli(["vocode", folder, tmp_path / "a.npy", "--out-dir", tmp_path / "o", "--steps", "2"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "copy" in err                                    # names the folder or its file
    assert not (tmp_path / "o").exists()
    with pytest.raises(UserInputError):
        Vocoder.from_pretrained(folder)


def test_hub_ids_go_through_huggingface_hub_only_when_asked(exported, monkeypatch):
    calls = []
    fake = types.ModuleType("huggingface_hub")
    fake.snapshot_download = lambda repo_id, allow_patterns: calls.append((repo_id, allow_patterns)) or str(exported)
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake)
    voc = Vocoder.from_pretrained("someone/wavegrad-tiny")
    assert calls == [("someone/wavegrad-tiny", ["model.safetensors", "config.json"])]
    assert voc.mel_config == MelConfig()
    with pytest.raises(UserInputError, match="not a Hub repository id"):
        Vocoder.from_pretrained("no/such/folder")
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)        # not installed
    with pytest.raises(UserInputError, match=r"wavegrad\[hub\]"):
        Vocoder.from_pretrained("someone/wavegrad-tiny")


def test_image_checkpoints_export_too(tmp_path):
    from wavegrad.checkpoint import save_checkpoint
    from wavegrad.images import export_image_checkpoint, load_image_checkpoint
    from wavegrad.models import ImageUNet, ImageUNetConfig
    torch.manual_seed(0)
    model = ImageUNet(ImageUNetConfig.tiny(image_size=8, in_channels=1))
    weights = model.state_dict()
    path = save_checkpoint(tmp_path / "img.pt", {
        "family": "image", "model_config": model.cfg.to_dict(), "schedule": NoiseSchedule.linear(100).to_dict(),
        "ema": {"shadow": weights}, "model": weights, "dataset": {"name": "mnist"}})
    export_image_checkpoint(path, tmp_path / "out")
    a, sa, _ = load_image_checkpoint(path)
    b, sb, _ = load_image_checkpoint(tmp_path / "out")
    x = torch.randn(2, 1, 8, 8)
    t = torch.tensor([0.3, 0.9])
    assert torch.equal(a(x, t), b(x, t)) and sa.to_dict() == sb.to_dict()


# ---- padded batches ------------------------------------------------------------------------------------------
def test_padded_batch_with_lengths_equals_the_unpadded_list(ckpt):
    voc = Vocoder.from_checkpoint(ckpt)
    mels = [_mel(9, 0), _mel(4, 1), _mel(6, 2)]
    padded = torch.full((3, 80, 12), float("nan"))                    # padding must never be read
    for i, m in enumerate(mels):
        padded[i, :, : m.shape[-1]] = m
    lengths = torch.tensor([9, 4, 6])
    a = voc.vocode_batch(mels, steps=3, seed=5, batch_size=3)
    b = voc.vocode_batch(padded, steps=3, seed=5, lengths=lengths, batch_size=3)
    assert [w.shape[-1] for w in b] == [9 * 256, 4 * 256, 6 * 256]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    for bad, msg in (([9, 4], "3 mels"), ([9, 13, 6], "outside 1..12"), ([0, 4, 6], "outside")):
        with pytest.raises(UserInputError, match=msg):
            voc.vocode_batch(padded, steps=2, lengths=bad)


# ---- `wavegrad mel` --------------------------------------------------------------------------------------------
def test_mel_cli_compute_info_convert(tmp_path, capsys):
    from wavegrad.audio import read_audio, write_audio
    wav = _signal(MelConfig())
    write_audio(tmp_path / "a.wav", wav, 22050)
    code, out, err = cli(["mel", "compute", tmp_path / "a.wav", "--preset", "espnet", "--out", tmp_path / "e.npy"],
                         capsys)
    assert code == 0, err
    e = np.load(tmp_path / "e.npy")
    heard = read_audio(tmp_path / "a.wav", 22050)                    # the file's 16-bit samples
    np.testing.assert_array_equal(e, MelFeaturizer(MelConfig.preset("espnet"))(torch.from_numpy(heard))[0].numpy())
    code, out, _ = cli(["mel", "info", tmp_path / "e.npy"], capsys)
    assert code == 0 and "[80, " in out
    assert [ln.split()[0] for ln in out.splitlines() if " consistent " in ln] == ["hifigan", "tacotron2", "nemo-hifigan",
                                                                               "nemo-fastpitch", "espnet", "coqui"]
    np.save(tmp_path / "t.npy", MelFeaturizer(MelConfig.preset("tacotron2"))(torch.from_numpy(wav))[0].numpy())
    code, _, err = cli(["mel", "convert", tmp_path / "t.npy", "--from", "tacotron2", "--to", "hifigan",
                        "--out", tmp_path / "h.npy"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "framing" in err
    assert not (tmp_path / "h.npy").exists()
    code, _, err = cli(["mel", "convert", tmp_path / "e.npy", "--from", "hifigan", "--to", "tacotron2",
                        "--out", tmp_path / "h.npy"], capsys)
    assert code == 2 and "framing" in err                             # band count matches, framing does not
    code, _, err = cli(["mel", "convert", tmp_path / "t.npy", "--from", "nope", "--to", "hifigan",
                        "--out", tmp_path / "h.npy"], capsys)
    assert code == 2 and "unknown mel convention" in err


def test_vocode_refuses_a_mel_outside_the_checkpoints_range(ckpt, tmp_path, capsys):
    np.save(tmp_path / "db.npy", np.full((80, 6), -30.0, np.float32))    # far below ln(1e-5) = -11.5
    code, _, err = cli(["vocode", ckpt, tmp_path / "db.npy", "--out-dir", tmp_path / "o", "--steps", "2"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "convention" in err, err
