import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from toy_task import ToyTask
from wavegrad.errors import UserInputError
from wavegrad import checkpoint as ckpt_mod
from wavegrad.checkpoint import list_checkpoints, load_checkpoint, save_checkpoint
from wavegrad.training.trainer import TrainConfig, Trainer

HERE = Path(__file__).parent


def cfg(tmp_path, **kw):
    base = dict(run_dir=str(tmp_path / "run"), max_steps=10, batch_size=8, lr=3e-3, num_workers=0,
                log_every=5, val_every=0, ckpt_every=0, ema_decay=0.9, cpu=True)
    base.update(kw)
    return TrainConfig(**base)


def params(trainer):
    return {k: v.clone() for k, v in trainer.acc.unwrap_model(trainer.model).state_dict().items()}


def test_loss_falls(tmp_path):
    t = Trainer(ToyTask(), cfg(tmp_path, max_steps=300, log_every=50))
    t.fit()
    losses = [h["train/loss"] for h in t.history if "train/loss" in h]  # means over 50 steps
    assert len(losses) == 6 and losses[-1] < 0.6 * losses[0], losses


def test_resume_equals_straight_run(tmp_path):
    straight = Trainer(ToyTask(), cfg(tmp_path / "a", max_steps=12, grad_accum=2))
    straight.fit()
    first = Trainer(ToyTask(), cfg(tmp_path / "b", max_steps=6, grad_accum=2))
    path = first.fit()
    second = Trainer(ToyTask(seed=99), cfg(tmp_path / "b", max_steps=12, grad_accum=2))  # other init: resume must overwrite
    second.resume(path)
    assert second.step == 6
    second.fit()
    for k, v in params(straight).items():
        torch.testing.assert_close(params(second)[k], v, rtol=0, atol=0)
    for k, v in straight.ema.shadow.items():
        torch.testing.assert_close(second.ema.shadow[k], v, rtol=0, atol=0)


def test_checkpoints_keep_last_k_and_are_self_describing(tmp_path):
    t = Trainer(ToyTask(), cfg(tmp_path, max_steps=10, ckpt_every=2, keep_last=2, val_every=5))
    t.fit()
    names = [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")]
    assert names == ["step-00000008.pt", "step-00000010.pt"]
    c = load_checkpoint(tmp_path / "run" / "checkpoints" / "step-00000010.pt")
    assert c["step"] == 10 and c["train_config"]["max_steps"] == 10 and c["family"] == "toy"
    assert len(c["schedule"]["betas"]) == 100
    assert (tmp_path / "run" / "config.json").is_file()
    assert t.task.validations == [5, 10]


def test_crash_mid_write_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1, "w": torch.ones(3)})

    def torn_save(obj, f, *a, **k):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt_mod.torch, "save", torn_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2, "w": torch.zeros(3)})
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temp file left behind


def test_non_finite_loss_stops_with_clear_message(tmp_path):
    task = ToyTask()
    task.loss = lambda model, batch, noise: model(batch["x"], torch.ones(len(batch["x"]))).sum() * float("nan")
    t = Trainer(task, cfg(tmp_path, max_steps=5))
    with pytest.raises(UserInputError, match="non-finite at step 1"):
        t.fit()
    assert list_checkpoints(tmp_path / "run" / "checkpoints") == []


def test_time_budget_stops_and_saves(tmp_path):
    t = Trainer(ToyTask(), cfg(tmp_path, max_steps=10**6, max_minutes=0.02))
    path = t.fit()
    assert path is not None and load_checkpoint(path)["step"] == t.step < 10**6


@pytest.mark.parametrize("bad, msg", [({"batch_size": 0}, "batch_size"), ({"lr": -1.0}, "lr"),
                                      ({"mixed_precision": "fp8"}, "mixed_precision"),
                                      ({"batch_size": 6, "grad_accum": 4}, "divisible")])
def test_bad_configs_rejected(tmp_path, bad, msg):
    with pytest.raises(UserInputError, match=msg):
        Trainer(ToyTask(), cfg(tmp_path, **bad))


def test_resume_rejects_foreign_checkpoint(tmp_path):
    p = tmp_path / "x.pt"
    torch.save({"weights": torch.ones(2)}, p)
    t = Trainer(ToyTask(), cfg(tmp_path))
    with pytest.raises(UserInputError, match="not a wavegrad checkpoint"):
        t.resume(p)


def test_two_process_ddp_equals_one_process(tmp_path):
    """2 CPU processes (gloo, torchrun) with half the batch each == 1 process on the whole batch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]), "OMP_NUM_THREADS": "1"}
    worker = str(HERE / "ddp_worker.py")
    subprocess.run([sys.executable, worker, str(tmp_path / "one")], check=True, env=env, timeout=300)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                    "--master_port", "29517", worker, str(tmp_path / "two")], check=True, env=env, timeout=300,
                   capture_output=True)
    one = load_checkpoint(list_checkpoints(tmp_path / "one" / "checkpoints")[-1])
    two = load_checkpoint(list_checkpoints(tmp_path / "two" / "checkpoints")[-1])
    assert two["train_config"]["batch_size"] == one["train_config"]["batch_size"] == 8
    for k, v in one["model"].items():
        # gradient all-reduce sums in another order: float32 rounding only
        torch.testing.assert_close(two["model"][k], v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_exits_cleanly(tmp_path, sig):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)])}
    proc = subprocess.Popen([sys.executable, str(HERE / "ddp_worker.py"), str(tmp_path), "100000000"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "config.json").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    time.sleep(1.0)  # a few steps in
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    saved = list_checkpoints(tmp_path / "checkpoints")
    assert len(saved) == 1 and 0 < load_checkpoint(saved[0])["step"] < 100000000
    assert "interrupted" in out


def test_bf16_autocast_trains_on_cpu(tmp_path):
    """accelerate's bf16 path (autocast) runs the same loop; the loss stays finite and falls."""
    t = Trainer(ToyTask(), cfg(tmp_path, max_steps=150, log_every=50, mixed_precision="bf16"))
    t.fit()
    losses = [h["train/loss"] for h in t.history if "train/loss" in h]
    assert all(map(math.isfinite, losses)) and losses[-1] < losses[0], losses
