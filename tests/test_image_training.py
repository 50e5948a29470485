"""Image diffusion on the shared Trainer: a tiny UNet overfits 4 images, resume is exact, samples are in
range, the recipes run on real-format files, and `wavegrad sample` answers bad input with one line + exit 2."""
from pathlib import Path

import numpy as np
import pytest
import torch

from wavegrad.data.images import generated_images, write_cifar10, write_mnist
from wavegrad.diffusion import sample
from wavegrad.errors import UserInputError
from wavegrad.models.image_unet import ImageUNetConfig, guided_denoiser
from wavegrad.checkpoint import load_checkpoint, save_checkpoint
from wavegrad.images import load_image_checkpoint, sample_images
from wavegrad.training.image_task import ImageDataConfig, ImageTask
from wavegrad.training.runs import image_recipe
from wavegrad.training.trainer import TrainConfig, Trainer

ROOT = Path(__file__).parent.parent


def _model_cfg(**kw):
    base = dict(image_size=8, in_channels=3, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                attn_resolutions=(4,), dropout=0.0, norm_groups=8)
    base.update(kw)
    return ImageUNetConfig(**base)


def _four_images():
    rng = np.random.default_rng(0)
    imgs = np.zeros((4, 8, 8, 3), np.uint8)
    for i in range(4):  # four flat colours with a bright square: easy to memorise
        imgs[i] = rng.integers(0, 256, 3, dtype=np.uint8)
        imgs[i, 2 * (i % 2) + 1:2 * (i % 2) + 4, 2 * (i // 2) + 1:2 * (i // 2) + 4] = 255
    return imgs, np.arange(4, dtype=np.int64)


def _task(num_classes=0, dropout=0.0, **data_kw):
    torch.manual_seed(0)
    data = ImageDataConfig(dataset="cifar10", random_flip=False, class_cond=bool(num_classes), val_n=4, val_steps=5,
                           **data_kw)
    return ImageTask(_model_cfg(num_classes=num_classes, dropout=dropout), data, train_data=_four_images())


def _cfg(tmp_path, **kw):
    base = dict(run_dir=str(tmp_path / "run"), max_steps=10, batch_size=4, lr=2e-3, num_workers=0, log_every=50,
                val_every=0, ckpt_every=0, ema_decay=0.9, cpu=True, loss="l2")
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_unet_overfits_four_images_and_samples_in_range(tmp_path):
    t = Trainer(_task(), _cfg(tmp_path, max_steps=200, val_every=200))
    path = t.fit()
    losses = [h["train/loss"] for h in t.history if "train/loss" in h]  # means over 50 steps
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0], losses
    val = [h for h in t.history if "val/eps_mse" in h]
    assert val and np.isfinite(val[-1]["val/eps_mse"])
    assert (tmp_path / "run" / "samples" / "step-00000200" / "grid.png").is_file()
    ckpt = load_checkpoint(path)
    assert ckpt["family"] == "image" and ckpt["dataset"]["name"] == "cifar10"
    model, schedule, meta = load_image_checkpoint(path)
    x = sample(guided_denoiser(model), (4, 3, 8, 8), schedule.respace(20), eta=0.0,
               generator=torch.Generator().manual_seed(0), clip_x0=1.0)
    assert torch.isfinite(x).all() and x.abs().max() <= 1.0 + 1e-5
    imgs = sample_images(model, schedule, 4, 20, seed=0)
    assert imgs.dtype == np.uint8 and imgs.shape == (4, 8, 8, 3)
    assert imgs.std() > 5  # not a constant image


def test_resume_equals_straight_run_with_dropout_and_label_dropout(tmp_path):
    def params(tr):
        return {k: v.clone() for k, v in tr.acc.unwrap_model(tr.model).state_dict().items()}
    kw = dict(num_classes=10, dropout=0.3, label_dropout=0.5)
    straight = Trainer(_task(**kw), _cfg(tmp_path / "a", max_steps=6))
    straight.fit()
    first = Trainer(_task(**kw), _cfg(tmp_path / "b", max_steps=3))
    path = first.fit()
    second = Trainer(_task(**kw), _cfg(tmp_path / "b", max_steps=6))
    second.resume(path)
    second.fit()
    for k, v in params(straight).items():
        torch.testing.assert_close(params(second)[k], v, rtol=0, atol=0)


def test_label_dropout_follows_item_seeds():
    task = _task(num_classes=10, label_dropout=0.5)
    batch = {"label": torch.tensor([1, 2, 3, 4]), "label_u": torch.tensor([0.1, 0.9, 0.49, 0.51])}
    assert task._labels(batch, drop=True).tolist() == [10, 2, 10, 4]
    assert task._labels(batch, drop=False).tolist() == [1, 2, 3, 4]


def test_resume_refuses_another_model(tmp_path):
    path = Trainer(_task(), _cfg(tmp_path, max_steps=1)).fit()
    other = Trainer(_task(num_classes=10), _cfg(tmp_path / "x", max_steps=1))
    with pytest.raises(UserInputError, match="cannot resume: its model_config"):
        other.resume(path)


# ---- recipes on generated files in the official formats ------------------------------------------------------
def _recipe(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(f"recipe_{name}", ROOT / "recipes" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


FAST_RECIPE = ["--quick", "--max-steps", "2", "--val-every", "2", "--val-n", "4", "--val-steps", "2",
               "--max-minutes", "0", "--log-every", "1"]


def test_mnist_recipe_runs_on_gzipped_idx_files(tmp_path, capsys):
    imgs, labels = generated_images(16, 28, 1)
    write_mnist(tmp_path / "mnist", imgs, labels, gz=True)
    code = image_recipe("mnist", _recipe("mnist").PRESETS, "t",
                        ["--data-dir", str(tmp_path / "mnist"), "--run-dir", str(tmp_path / "run"), "--class-cond",
                         *FAST_RECIPE])
    out = capsys.readouterr().out
    assert code == 0, out
    assert (tmp_path / "run" / "checkpoints" / "step-00000002.pt").is_file()
    assert (tmp_path / "run" / "samples" / "step-00000002" / "grid.png").is_file()
    assert "wavegrad sample" in out


@pytest.mark.slow
def test_cifar10_recipe_runs_on_pickle_batches(tmp_path, capsys):
    imgs, labels = generated_images(20, 32, 3)
    write_cifar10(tmp_path / "c", imgs, labels)
    mod = _recipe("cifar10")
    code = image_recipe("cifar10", mod.PRESETS, "t", ["--data-dir", str(tmp_path / "c"), "--run-dir",
                                                      str(tmp_path / "run"), *FAST_RECIPE])
    assert code == 0
    assert (tmp_path / "run" / "samples" / "step-00000002" / "grid.png").is_file()


def test_recipe_without_data_gives_one_line(tmp_path, capsys):
    mod = _recipe("cifar10")
    code = image_recipe("cifar10", mod.PRESETS, "t", ["--data-dir", str(tmp_path / "none"), "--quick",
                                                      "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "data_prep/images.py" in err


# ---- `wavegrad sample` ---------------------------------------------------------------------------------------
def cli(argv):
    from wavegrad.cli import main
    return main(["sample", *[str(a) for a in argv]])


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpts")
    cond = Trainer(_task(num_classes=10), _cfg(d / "cond", max_steps=2)).fit()
    uncond = Trainer(_task(), _cfg(d / "uncond", max_steps=1)).fit()
    voc = save_checkpoint(d / "voc.pt", {"family": "vocoder", "model_config": {}})
    trunc = d / "trunc.pt"
    trunc.write_bytes(cond.read_bytes()[:2000])
    return {"cond": cond, "uncond": uncond, "voc": voc, "trunc": trunc, "missing": d / "missing.pt"}


def test_sample_cli_writes_a_png_grid(ckpts, tmp_path, capsys):
    out = tmp_path / "g.png"
    assert cli([ckpts["cond"], "--n", 5, "--steps", 3, "--label", 7, "--guidance", 1.5, "--out", out,
                "--nrow", 5]) == 0
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (w, h) == (5 * 10 + 2, 10 + 2)
    assert cli([ckpts["uncond"], "--n", 2, "--steps", 2, "--eta", 1, "--out", tmp_path / "u.png"]) == 0


@pytest.mark.parametrize("flags", [["--sampler", "heun", "--nfe", "5"], ["--sampler", "dpmpp-2m", "--schedule", "karras"],
                                   ["--sampler", "pc", "--steps", "2", "--snr", "0.1"], ["--eta", "0.5"]])
def test_sample_cli_takes_every_sampler(ckpts, tmp_path, flags):
    out = tmp_path / "g.png"
    assert cli([ckpts["cond"], "--n", 2, "--out", out, *flags]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("which, extra, msg", [
    ("missing", [], "no such checkpoint"),
    ("trunc", [], "truncated"),
    ("voc", [], "not an image one"),
    ("cond", ["--label", 10], "out of range"),
    ("cond", ["--label", -1], "out of range"),
    ("uncond", ["--label", 1], "unconditional"),
    ("cond", ["--n", 0], "--n must be"),
    ("cond", ["--n", -3], "--n must be"),
    ("cond", ["--steps", 0], "--steps must be"),
    ("cond", ["--steps", 5000], "exceeds"),
    ("cond", ["--eta", 2], "--eta must lie in [0, 1]"),
    ("cond", ["--guidance", -1], "--guidance"),
    ("cond", ["--sampler", "heun", "--nfe", "0"], "--nfe must be >= 1"),
    ("cond", ["--sampler", "ddim", "--churn", "1"], "--churn does not apply"),
])
def test_sample_cli_bad_input_one_line_exit_2(ckpts, tmp_path, capsys, which, extra, msg):
    out = tmp_path / "g.png"
    code = cli([ckpts[which], "--out", out, "--n", 2, "--steps", 2, *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and msg in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_sample_cli_refuses_non_png_output(ckpts, tmp_path, capsys):
    assert cli([ckpts["cond"], "--out", tmp_path / "g.jpg"]) == 2
    assert ".png" in capsys.readouterr().err


def test_mnist_recipe_under_torchrun_is_one_job_of_two_ranks(tmp_path):
    """The recipe path users run for data parallelism: rank 0 alone writes and reports."""
    import os
    import subprocess
    import sys
    imgs, labels = generated_images(16, 28, 1)
    write_mnist(tmp_path / "mnist", imgs, labels, gz=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
                        str(ROOT / "recipes" / "mnist.py"), "--data-dir", str(tmp_path / "mnist"), "--run-dir",
                        str(tmp_path / "run"), "--batch-size", "4", *FAST_RECIPE], capture_output=True, text=True,
                       timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("trained to step 2") == 1, r.stdout
    import json
    assert json.loads((tmp_path / "run" / "config.json").read_text())["processes"] == 2
    assert (tmp_path / "run" / "checkpoints" / "step-00000002.pt").is_file()


# ---- `wavegrad sample --inpaint --mask --trajectory` ---------------------------------------------------------
def _png(path, arr):
    from wavegrad.data.images import encode_png
    path.write_bytes(encode_png(np.asarray(arr, np.uint8)))
    return path


@pytest.mark.parametrize("mask_channels", [0, 3])           # a grey mask and a colour one
def test_sample_inpaint_keeps_the_known_pixels_and_writes_a_gif_per_step(ckpts, tmp_path, mask_channels):
    from PIL import Image
    image = _four_images()[0][1]                                            # [8, 8, 3]
    keep = np.zeros((8, 8), np.uint8)
    keep[:4] = 255                                                          # keep the top half
    mask = keep if mask_channels == 0 else np.repeat(keep[..., None], 3, axis=-1)
    out, gif = tmp_path / "g.png", tmp_path / "t.gif"
    assert cli([ckpts["uncond"], "--inpaint", _png(tmp_path / "i.png", image), "--mask", _png(tmp_path / "m.png", mask),
                "--n", 3, "--steps", 4, "--nrow", 3, "--out", out, "--trajectory", gif]) == 0
    grid = np.asarray(Image.open(out).convert("RGB"))                       # 3 tiles of 8x8 with a 2-pixel border
    tiles = [grid[2:10, 2 + 10 * k:10 + 10 * k] for k in range(3)]
    for tile in tiles:
        assert np.array_equal(tile[:4], image[:4])                          # kept pixels: bit for bit
    assert any(not np.array_equal(t[4:], image[4:]) for t in tiles)         # the rest is sampled
    with Image.open(gif) as im:
        assert im.n_frames == 4 + 1                                         # one frame per step, then the result


@pytest.mark.parametrize("mask, msg", [
    (np.full((4, 4), 255), "give a mask of the image's height and width"),
    (np.full((8, 8), 255), "keeps every pixel"),
    (np.zeros((8, 8)), "keeps no pixel"),
])
def test_sample_inpaint_bad_mask_is_one_line_and_writes_nothing(ckpts, tmp_path, capsys, mask, msg):
    d = tmp_path / "in"
    d.mkdir()
    args = ["--inpaint", _png(d / "i.png", _four_images()[0][1]), "--mask", _png(d / "m.png", mask)]
    out = tmp_path / "out" / "g.png"
    assert cli([ckpts["uncond"], *args, "--n", 2, "--steps", 2, "--out", out, "--trajectory", tmp_path / "out" / "t.gif"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and msg in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
