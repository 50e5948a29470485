"""`wavegrad train`: every field of the run's dataclass configs is a flag, with its default shown.

Recipes (recipes/*.py) reuse :func:`build_parser` with their own defaults, so there is one way to
spell an option whether it comes from a recipe or from `wavegrad train`.
"""
from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Sequence

from ..audio import MelConfig
from ..errors import UserInputError
from ..models import WaveGradConfig
from .configargs import add_dataclass_args
from .trainer import TrainConfig
from .vocoder_task import ScheduleConfig, VocoderDataConfig

MODEL_PRESETS = {"base": WaveGradConfig.base, "large": WaveGradConfig.large, "tiny": WaveGradConfig.tiny}
# (dataclass, flag prefix, argparse dest prefix)
GROUPS = [(TrainConfig, "", "train."), (VocoderDataConfig, "", "data."), (ScheduleConfig, "schedule-", "sched.")]


def add_config_args(parser: argparse.ArgumentParser, overrides: dict[str, Any] | None = None) -> None:
    """Flags for every field of GROUPS; ``overrides`` are keyed by dest, e.g. {"train.lr": 1e-3}."""
    overrides = overrides or {}
    for cls, flag_prefix, dest_prefix in GROUPS:
        defaults = {k[len(dest_prefix):]: v for k, v in overrides.items() if k.startswith(dest_prefix)}
        add_dataclass_args(parser, cls, dest_prefix, flag_prefix, defaults)


def add_run_args(parser: argparse.ArgumentParser, model_default: str = "base") -> None:
    parser.add_argument("--model", choices=sorted(MODEL_PRESETS), default=model_default,
                        help="WaveGrad preset (base: the paper's ~15M; large: ~23M; tiny: <1M, CPU quick start)")
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="resume from a checkpoint ('auto' = the newest one in RUN_DIR/checkpoints)")


def add_train_parser(sub, name: str, formatter) -> None:
    p = sub.add_parser(name, help="train a WaveGrad vocoder on an LJSpeech-layout folder", formatter_class=formatter,
                       description="Train a WaveGrad vocoder. DATA_DIR needs metadata.csv, wavs/ and split lists "
                                   "(make them with `python data_prep/ljspeech.py split DATA_DIR`).")
    add_run_args(p)
    add_config_args(p)
    p.set_defaults(func=run_train)


def configs_from_args(args: argparse.Namespace):
    """Namespace -> (TrainConfig, VocoderDataConfig, ScheduleConfig, WaveGradConfig, MelConfig)."""
    def collect(cls, prefix):
        return cls(**{f.name: getattr(args, prefix + f.name) for f in dataclasses.fields(cls)})
    train = collect(TrainConfig, "train.")
    train.validate()
    data, sched = collect(VocoderDataConfig, "data."), collect(ScheduleConfig, "sched.")
    if not data.data_dir:
        raise UserInputError("--data-dir is required (an LJSpeech-layout folder)")
    mel = MelConfig()
    try:
        model = MODEL_PRESETS[args.model](n_mels=mel.n_mels, hop_length=mel.hop_length)
    except ValueError as e:
        raise UserInputError(str(e)) from None
    if data.segment_length <= 0 or data.segment_length % mel.hop_length:
        raise UserInputError(f"--segment-length must be a positive multiple of the hop {mel.hop_length}, "
                             f"got {data.segment_length}")
    return train, data, sched, model, mel


def train_from_args(args: argparse.Namespace):
    """Build the task and the trainer, resume if asked, train. Returns (trainer, final checkpoint path)."""
    from .trainer import Trainer
    from .vocoder_task import VocoderTask
    train, data, sched, model, mel = configs_from_args(args)
    trainer = Trainer(VocoderTask(model, mel, data, sched, loss_kind=train.loss), train)
    if args.resume:
        trainer.resume(args.resume)
    return trainer, trainer.fit()


def run_train(args: argparse.Namespace) -> int:
    trainer, path = train_from_args(args)
    trainer.acc.print(f"final checkpoint: {path}")
    return 0


def parse(argv: Sequence[str] | None, overrides: dict[str, Any], model_default: str,
          description: str) -> argparse.Namespace:
    from ..cli import _Formatter
    p = argparse.ArgumentParser(description=description, formatter_class=_Formatter)
    add_run_args(p, model_default)
    add_config_args(p, overrides)
    return p.parse_args(argv)
