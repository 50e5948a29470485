"""ONE training loop for every model family (vocoders and image UNets), on accelerate.

A *task* knows its data and how to turn a batch into a loss; this loop knows optimisation,
mixed precision, EMA, logging, validation cadence, checkpoints, resume and signals:

    task.model                      the nn.Module to train (initialised by the task from the run's seed)
    task.train_set                  a Dataset indexed by (index, item_seed) (see sampler.py)
    task.schedule                   the training NoiseSchedule
    task.loss(model, batch, noise)  scalar loss; noise(x0) -> (noise_level [B], z [B, ...]), see objective.py;
                                    noise.step: the micro-step's number
    task.objective (optional)       an ObjectiveConfig: where the training levels are drawn from
    task.validate(model, step, writer, out_dir) -> {name: float}   (EMA weights, main process)
    task.checkpoint_meta()          dict stored in every checkpoint (family, model/mel configs…)
    task.identity()                 the entries of checkpoint_meta() a checkpoint must share to be resumed

Reproducibility: given the same flags, seed and CPU, two fresh runs write bitwise the same checkpoints
(the task seeds the initial weights, the trainer the global RNG, the data order and every noise draw).
Parallelism: under ``torchrun --nproc_per_node N`` the ranks form one job (gloo on CPUs, NCCL on GPUs);
rank 0 alone writes checkpoints, logs and samples.
"""
from __future__ import annotations

import copy
import contextlib
import dataclasses
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..checkpoint import (check_resumable, checkpoint_name, list_checkpoints, load_checkpoint, prune_checkpoints,
                          save_checkpoint)
from ..config import from_dict, param, to_dict
from ..diffusion import EMA, training_noise
from ..errors import UserInputError
from ..utils import atomic_path
from .sampler import StepBatchSampler, item_seed


MIXED_PRECISIONS = ("no", "fp16", "bf16")
LR_SCHEDULES = ("constant", "cosine")
LOSSES = ("l1", "l2")


@dataclass
class TrainConfig:
    """Optimisation, precision, logging and checkpoints: everything the shared loop needs."""

    run_dir: str = param("runs/wavegrad", "folder for config.json, checkpoints/, tb/ and samples/")
    max_steps: int = param(1_000_000, "optimiser steps to train for", paper="1M (WaveGrad Base, §5.1)")
    max_minutes: float = param(0.0, "wall-clock budget in minutes; stops cleanly with a checkpoint (0 = none)")
    batch_size: int = param(256, "global batch over all processes and accumulation steps",
                            paper="256 (WaveGrad), 128 (DDPM CIFAR-10)")
    grad_accum: int = param(1, "micro-batches accumulated per optimiser step")
    lr: float = param(2e-4, "Adam learning rate", paper="2e-4 (WaveGrad, DDPM)")
    adam_betas: tuple[float, float] = param((0.9, 0.999), "Adam (beta1, beta2)", paper="0.9,0.999")
    weight_decay: float = param(0.0, "Adam weight decay")
    grad_clip: float = param(1.0, "max global gradient norm (0 = off)", paper="1 (DDPM's TF code)")
    lr_warmup_steps: int = param(0, "linear learning-rate warm-up steps", paper="5000 (DDPM)")
    lr_schedule: str = param("constant", "after warm-up: constant, or cosine decay to 10% at max_steps",
                             choices=LR_SCHEDULES)
    loss: str = param("l1", "loss on the predicted noise", choices=LOSSES,
                      paper="l1 (WaveGrad §3.1: better stability), l2 (DDPM eq. 14)")
    ema_decay: float = param(0.9999, "decay of the exponential moving average of the weights",
                             paper="0.9999 (DDPM)")
    ema_warmup: bool = param(True, "ramp the EMA decay as min(decay, (1+n)/(10+n))")
    mixed_precision: str = param("no", "autocast precision of the forward pass", choices=MIXED_PRECISIONS)
    cpu: bool = param(False, "train on the CPU even if a GPU is visible")
    compile: bool = param(False, "run the training forward and backward under torch.compile (compiles for a minute "
                                 "or more first; measure it with python -m wavegrad.benchmarks.speed --train "
                                 "--compile before a long run)")
    seed: int = param(1234, "seed of everything random: initial weights, data order, crops, noise, dropout")
    num_workers: int = param(2, "data-loader worker processes per rank")
    log_every: int = param(50, "steps between logged loss means (0 = never)")
    val_every: int = param(5000, "steps between validations with the EMA weights (0 = never)")
    ckpt_every: int = param(5000, "steps between checkpoints (0 = only at the end)")
    keep_last: int = param(3, "checkpoints kept (0 = all)")

    def validate(self) -> None:
        def need(ok: bool, msg: str):
            if not ok:
                raise UserInputError(f"bad training config: {msg}")
        need(self.max_steps >= 1, f"max_steps must be >= 1, got {self.max_steps}")
        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.grad_accum >= 1, f"grad_accum must be >= 1, got {self.grad_accum}")
        need(math.isfinite(self.lr) and self.lr > 0, f"lr must be a positive number, got {self.lr}")
        need(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas),
             f"adam_betas must be two numbers in [0, 1), got {self.adam_betas}")
        need(self.grad_clip >= 0, f"grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        need(0 <= self.ema_decay < 1, f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        need(self.mixed_precision in MIXED_PRECISIONS,
             f"mixed_precision must be no, fp16 or bf16, got {self.mixed_precision!r}")
        need(self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        need(self.loss in LOSSES, f"loss must be l1 or l2, got {self.loss!r}")
        for name in ("log_every", "val_every", "ckpt_every", "keep_last", "num_workers", "lr_warmup_steps"):
            need(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        need(self.max_minutes >= 0, f"max_minutes must be >= 0, got {self.max_minutes}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        return from_dict(cls, d)


def lr_lambda(cfg: TrainConfig) -> Callable[[int], float]:
    """Linear warm-up, then constant or cosine decay to 10% at max_steps."""
    def f(step: int) -> float:
        warm = min(1.0, (step + 1) / cfg.lr_warmup_steps) if cfg.lr_warmup_steps else 1.0
        if cfg.lr_schedule == "cosine":
            p = min(step / max(cfg.max_steps, 1), 1.0)
            return warm * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * p)))
        return warm
    return f


class _StopSignal:
    """SIGINT/SIGTERM set a flag; the loop saves a checkpoint at the end of the current step."""

    def __init__(self):
        self.received: int | None = None
        self._old = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # second Ctrl-C: give up immediately
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, task, cfg: TrainConfig, *, accelerator=None, run_config: dict[str, Any] | None = None):
        from accelerate import Accelerator
        cfg.validate()
        self.task, self.cfg = task, cfg
        self.run_config = run_config or {"train": cfg.to_dict()}  # the whole resolved run, for config.json
        if accelerator is None:
            # accelerate keeps mixed precision in a process-wide singleton and refuses a second Trainer
            # (notebook, sweep, tests) with another setting; the process group (PartialState) is kept
            from accelerate.state import AcceleratorState
            AcceleratorState._reset_state(reset_partial_state=False)
        self.acc = accelerator or Accelerator(cpu=_use_cpu(cfg.cpu), mixed_precision=cfg.mixed_precision)
        _check_launch(self.acc)
        torch.manual_seed(cfg.seed)  # the global RNG (dropout); a resume restores its saved state instead
        if cfg.batch_size % (self.acc.num_processes * cfg.grad_accum):
            raise UserInputError(f"bad training config: batch_size {cfg.batch_size} must be divisible by "
                                 f"processes x grad_accum = {self.acc.num_processes} x {cfg.grad_accum}")
        self.run_dir = Path(cfg.run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        model = task.model
        self.ema = EMA(model, cfg.ema_decay, cfg.ema_warmup)
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=cfg.adam_betas,
                               weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
        self.model, self.opt, self.lr_sched = self.acc.prepare(model, opt, sched)
        # what the loss calls: the prepared model, or it under torch.compile (checkpoints and EMA use the model)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        self.ema.to(self.acc.device)
        self.step = 0
        self.history: list[dict[str, float]] = []

    # -- state ------------------------------------------------------------------------------------
    def _payload(self) -> dict[str, Any]:
        unwrapped = self.acc.unwrap_model(self.model)
        return {**self.task.checkpoint_meta(), "train_config": self.cfg.to_dict(), "run": self.run_config,
                "schedule": self.task.schedule.to_dict(), "step": self.step,
                "model": {k: v.detach().cpu() for k, v in unwrapped.state_dict().items()},
                "ema": self.ema.state_dict(), "optimizer": self.opt.state_dict(),
                "lr_scheduler": self.lr_sched.state_dict(), "torch_rng": torch.get_rng_state(),
                "history": self.history}

    def save(self) -> Path | None:
        if not self._stopping:  # a signal may reach one rank only: no collective then
            self.acc.wait_for_everyone()
        if not self.acc.is_main_process:
            return None
        path = save_checkpoint(self.ckpt_dir / checkpoint_name(self.step), self._payload())
        prune_checkpoints(self.ckpt_dir, self.cfg.keep_last)
        return path

    def resume(self, path: str | Path) -> None:
        if str(path) == "auto":
            found = list_checkpoints(self.ckpt_dir)
            if not found:
                return
            path = found[-1]
        ckpt = load_checkpoint(path)
        check_resumable(ckpt, path, self.task.identity(), getattr(self.task, "legacy_identity", {}),
                        getattr(self.task, "identity_configs", lambda: {})())
        self.acc.unwrap_model(self.model).load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.ema.to(self.acc.device)
        self.opt.load_state_dict(ckpt["optimizer"])
        self.lr_sched.load_state_dict(ckpt["lr_scheduler"])
        torch.set_rng_state(ckpt["torch_rng"])
        self.step, self.history = int(ckpt["step"]), list(ckpt.get("history", []))
        self.acc.print(f"resumed from {path} at step {self.step}")

    def _write_config(self) -> None:
        if self.acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            meta = {"run": self.run_config, **self.task.checkpoint_meta(), "train_config": self.cfg.to_dict(),
                    "schedule": {"n": len(self.task.schedule)}, "processes": self.acc.num_processes,
                    "device": str(self.acc.device), "torch": torch.__version__}
            meta.pop("schedules", None)
            with atomic_path(self.run_dir / "config.json") as tmp:
                tmp.write_text(json.dumps(meta, indent=2, default=str))

    # -- one step ---------------------------------------------------------------------------------
    def _noise_fn(self, micro_step: int, local_batch: int):
        """noise(x0) -> (level [B], z [B, ...]) drawn for the GLOBAL batch, sliced to this rank.

        Drawing the global batch on every rank makes W processes reproduce one process exactly.
        """
        W, r = self.acc.num_processes, self.acc.process_index

        def noise(x0: torch.Tensor):
            g = torch.Generator().manual_seed(item_seed(self.cfg.seed + 1, micro_step, 0))
            level, z = training_noise(self.task.schedule, (local_batch * W, *x0.shape[1:]), generator=g,
                                      device=x0.device, dtype=x0.dtype, objective=getattr(self.task, "objective", None))
            sl = slice(r * local_batch, (r + 1) * local_batch)
            return level[sl], z[sl]
        noise.step = micro_step          # a task's losses may run on every k-th step (InferGrad's rollout)
        return noise

    def _train_step(self, batches) -> tuple[float, float]:
        accum = self.cfg.grad_accum
        self.model.train()
        total = 0.0
        for j in range(accum):
            batch = _to_device(next(batches), self.acc.device)
            micro = self.step * accum + j
            local_b = self.cfg.batch_size // (self.acc.num_processes * accum)
            sync = self.acc.no_sync(self.model) if j < accum - 1 else contextlib.nullcontext()
            with sync, self.acc.autocast():
                loss = self.task.loss(self.forward, batch, self._noise_fn(micro, local_b)) / accum
            self.acc.backward(loss)
            total += loss.detach().float()
        total = self.acc.reduce(total, reduction="mean").item()
        if not math.isfinite(total):
            raise FloatingPointError(total)
        gnorm = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip or float("inf"))
        self.opt.step()
        self.lr_sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.ema.update(self.acc.unwrap_model(self.model))
        return total, float(gnorm)

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> Path | None:
        cfg, acc = self.cfg, self.acc
        self._write_config()
        writer = _writer(self.run_dir / "tb") if acc.is_main_process else None
        sampler = StepBatchSampler(len(self.task.train_set), cfg.batch_size // cfg.grad_accum, seed=cfg.seed,
                                   start=self.step * cfg.grad_accum, rank=acc.process_index,
                                   world=acc.num_processes)
        # the loader's own generator: drawing its base seed from the global RNG would shift every later
        # global draw (dropout) after a resume, which restores that RNG before this point
        loader = DataLoader(self.task.train_set, batch_sampler=sampler, num_workers=cfg.num_workers,
                            generator=torch.Generator().manual_seed(cfg.seed),
                            pin_memory=acc.device.type == "cuda", persistent_workers=cfg.num_workers > 0)
        batches = iter(loader)
        self._stopping = False
        t0, t_last, s_last = time.time(), time.time(), self.step
        last_path, window = None, []
        # with a time budget the step limit is rarely reached: an ETA to max_steps would mislead
        quiet = not acc.is_local_main_process or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
        bar = tqdm(total=None if cfg.max_minutes else cfg.max_steps, initial=self.step, disable=quiet,
                   desc="training", dynamic_ncols=True)
        with _StopSignal() as stop:
            while self.step < cfg.max_steps:
                try:
                    loss, gnorm = self._train_step(batches)
                except FloatingPointError:
                    found = list_checkpoints(self.ckpt_dir)
                    raise UserInputError(
                        f"loss became non-finite at step {self.step + 1}; stopped without saving. Last good "
                        f"checkpoint: {found[-1] if found else 'none'}. Lower lr or use bf16/fp32") from None
                self.step += 1
                window.append(loss)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4f}")
                if cfg.log_every and self.step % cfg.log_every == 0:
                    now = time.time()
                    sps = (self.step - s_last) / max(now - t_last, 1e-9)
                    t_last, s_last = now, self.step
                    # the mean over the logging window: single-step diffusion losses are very noisy
                    mean_loss, window = sum(window) / len(window), []
                    self._log(writer, {"train/loss": mean_loss, "train/grad_norm": gnorm,
                                       "train/lr": self.lr_sched.get_last_lr()[0]})
                    # speeds go to TensorBoard only: checkpoints hold nothing that depends on the clock
                    self._log(writer, {"train/steps_per_s": sps, "train/samples_per_s": sps * cfg.batch_size},
                              history=False)
                out_of_time = cfg.max_minutes and (time.time() - t0) > 60 * cfg.max_minutes
                if cfg.val_every and (self.step % cfg.val_every == 0 or self.step == cfg.max_steps or out_of_time):
                    self.run_validation(writer)
                if stop.received is not None or out_of_time:
                    self._stopping = self.interrupted = stop.received is not None
                    last_path = self.save()
                    why = "interrupted" if stop.received is not None else f"time budget of {cfg.max_minutes} min"
                    acc.print(f"\n{why}: saved {last_path} at step {self.step}")
                    break
                if cfg.ckpt_every and self.step % cfg.ckpt_every == 0 and self.step < cfg.max_steps:
                    last_path = self.save()
            else:
                last_path = self.save()
        bar.close()
        if writer:
            writer.close()
        return last_path

    def run_validation(self, writer) -> dict[str, float]:
        if not self.acc.is_main_process:
            return {}
        net = copy.deepcopy(self.acc.unwrap_model(self.model))
        self.ema.copy_to(net)
        net.eval()
        metrics = self.task.validate(net, self.step, writer, self.run_dir / "samples" / f"step-{self.step:08d}")
        self._log(writer, {f"val/{k}": v for k, v in metrics.items()})
        return metrics

    def _log(self, writer, scalars: dict[str, float], history: bool = True) -> None:
        if not self.acc.is_main_process:
            return
        if history:
            self.history.append({"step": self.step, **scalars})
        if writer is not None:
            for k, v in scalars.items():
                writer.add_scalar(k, v, self.step)
            writer.flush()

    _stopping = False
    interrupted = False  # True when a signal ended fit() early


def _use_cpu(forced: bool) -> bool:
    """CPU when asked, or when a multi-process launch finds no GPU: accelerate only forms a gloo
    process group on CPUs when told ``cpu=True`` (``Accelerator()`` under torchrun on a CPU machine
    starts N independent single-process trainings that race for the same files)."""
    return forced or (_launched_world_size() > 1 and not torch.cuda.is_available())


def _launched_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def _check_launch(acc) -> None:
    """Refuse a launch whose ranks disagree with the environment rather than race on the run folder."""
    world = _launched_world_size()
    if world > 1 and acc.num_processes != world:
        raise UserInputError(f"launched as {world} processes (WORLD_SIZE) but accelerate formed a job of "
                             f"{acc.num_processes}; the ranks would train independently and overwrite each "
                             f"other's checkpoints. Launch with torchrun (or `accelerate launch`) on a torch "
                             f"build with distributed support")


def _writer(folder: Path):
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(folder))


def _to_device(batch, device):
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch.to(device, non_blocking=True) if torch.is_tensor(batch) else batch

