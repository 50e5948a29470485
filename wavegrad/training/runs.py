"""One typed run config per family, and the functions that train from it.

``wavegrad train``, ``recipes/ljspeech.py``, ``recipes/mnist.py`` and ``recipes/cifar10.py`` all build a
:class:`VocoderRun` or :class:`ImageRun` -- from flags (:mod:`wavegrad.config`), from a recipe preset, or
in Python -- and call :func:`train_vocoder` / :func:`train_images`. The resolved run is saved as
``RUN_DIR/config.json`` and its parts in every checkpoint.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from ..audio import MelConfig
from ..audio.mel import MEL_PRESETS
from ..audio.priors import PriorConfig
from ..config import param, to_dict
from ..diffusion import ScheduleConfig
from ..diffusion.preconditioning import ObjectiveConfig
from ..errors import UserInputError
from ..models import DiffWaveConfig, FreGradConfig, WaveGradConfig
from ..models.image_unet import ImageUNetConfig
from .enhancement_task import EnhanceDataConfig, EnhancementTask
from .image_task import DATASETS, ImageDataConfig, ImageTask
from .trainer import TrainConfig, Trainer
from .vocoder_losses import VocoderLossConfig
from .vocoder_task import VocoderDataConfig, VocoderTask

# --model NAME -> the config builder of (architecture, preset): n_mels and hop come from the mel convention
MODEL_PRESETS = {"tiny": WaveGradConfig.tiny, "base": WaveGradConfig.base, "large": WaveGradConfig.large,
                 "diffwave-tiny": DiffWaveConfig.tiny, "diffwave-base": DiffWaveConfig.base,
                 "diffwave-large": DiffWaveConfig.large, "fregrad": FreGradConfig.base,
                 "fregrad-tiny": FreGradConfig.tiny}
ENHANCER_PRESETS = {k: v for k, v in MODEL_PRESETS.items() if k.startswith("diffwave")}


@dataclass
class VocoderRun:
    """A vocoder training run: network preset, mel convention, optimisation, data and training schedule."""

    model: str = param("base", "network: WaveGrad base (the paper's ~15M), large (~23M) or tiny (<1M, a CPU quick "
                               "start); DiffWave base (64 channels, 2.6M), large (128 channels, 6.9M) or tiny; FreGrad "
                               "(Haar sub-bands, 32 channels, 1.78M as the paper) or fregrad-tiny",
                       choices=tuple(MODEL_PRESETS), paper="base")
    learn_sigma: bool = param(False, "the network also predicts the reverse variance (Improved DDPM) and trains with "
                                     "the hybrid loss L_simple + 0.001 L_vlb; ancestral sampling then uses it",
                              paper="off (WaveGrad, DiffWave)")
    mel_preset: str = param("hifigan", "mel convention of the conditioning features (the TTS model's output)",
                            choices=tuple(MEL_PRESETS))
    prior: PriorConfig = param(factory=PriorConfig, help="noise prior")
    objective: ObjectiveConfig = param(factory=ObjectiveConfig, prefix="", help="training objective: "
                                       "parametrisation, training noise levels and their weights (EDM)")
    losses: VocoderLossConfig = param(factory=VocoderLossConfig, prefix="", help="losses beside the diffusion "
                                      "objective: spectral loss on x0, InferGrad's rollout")
    train: TrainConfig = param(factory=TrainConfig, prefix="", help="optimisation and bookkeeping")
    data: VocoderDataConfig = param(factory=VocoderDataConfig, prefix="", help="data")
    schedule: ScheduleConfig = param(factory=ScheduleConfig, help="training noise schedule")

    def mel_config(self) -> MelConfig:
        return MelConfig.preset(self.mel_preset)

    def model_config(self) -> WaveGradConfig | DiffWaveConfig | FreGradConfig:
        if self.model not in MODEL_PRESETS:
            raise UserInputError(f"unknown model {self.model!r}; choose from {', '.join(MODEL_PRESETS)}")
        mel = self.mel_config()
        try:
            cfg = MODEL_PRESETS[self.model](n_mels=mel.n_mels, hop_length=mel.hop_length)
        except ValueError as e:
            raise UserInputError(str(e)) from None
        return dataclasses.replace(cfg, learn_sigma=self.learn_sigma)

    def validate(self) -> None:
        self.train.validate()
        self.prior.validate()
        self.objective.validate()
        self.losses.validate()
        if self.learn_sigma and (self.objective.parametrization != "eps" or self.losses.spectral_weight
                                 or self.losses.rollout_every):
            raise UserInputError("--learn-sigma trains with the hybrid loss of an eps network: drop --parametrization "
                                 "edm, --spectral-weight and --rollout-every, or --learn-sigma")
        if not self.data.data_dir:
            raise UserInputError("--data-dir is required (an LJSpeech-layout folder)")
        hop = self.mel_config().hop_length
        if self.data.segment_length <= 0 or self.data.segment_length % hop:
            raise UserInputError(f"--segment-length must be a positive multiple of the hop {hop}, "
                                 f"got {self.data.segment_length}")


@dataclass
class ImageRun:
    """An image training run: data set, UNet, optimisation, data options and training schedule."""

    dataset: str = param("cifar10", "image data set", choices=tuple(DATASETS), cli=False)
    model: ImageUNetConfig = param(factory=ImageUNetConfig, prefix="model-", help="the UNet")
    train: TrainConfig = param(factory=lambda: TrainConfig(loss="l2"), prefix="", help="optimisation and bookkeeping")
    data: ImageDataConfig = param(factory=ImageDataConfig, prefix="", help="data")
    schedule: ScheduleConfig = param(factory=ScheduleConfig, help="training noise schedule")

    def resolved(self) -> "ImageRun":
        """The run with the model fitted to its data set: image size, channels, classes."""
        channels = DATASETS[self.dataset][2][0]
        classes = len(DATASETS[self.dataset][1]) if self.data.class_cond else 0
        model = dataclasses.replace(self.model, in_channels=channels, num_classes=classes)
        return dataclasses.replace(self, model=model, data=dataclasses.replace(self.data, dataset=self.dataset))


@dataclass
class EnhanceRun:
    """A speech-enhancement training run (CDiffuSE): DiffWave conditioned on the noisy mel, its data and schedule."""

    model: str = param("diffwave-base", "network: DiffWave base (CDiffuSE base: 30 layers, 64 channels), large, or "
                                        "tiny (12 layers, 32 channels: a CPU quick start)",
                       choices=tuple(ENHANCER_PRESETS), paper="diffwave-base")
    mel_preset: str = param("hifigan", "mel convention of the noisy recording's conditioning features",
                            choices=tuple(MEL_PRESETS))
    noisy_waveform: bool = param(True, "condition every layer on the noisy waveform too, beside its mel (one more "
                                       "conditioner channel); off: the noisy recording reaches the network only "
                                       "through the diffusion state, as in CDiffuSE", paper="off (CDiffuSE)")
    train: TrainConfig = param(factory=TrainConfig, prefix="", help="optimisation and bookkeeping")
    data: EnhanceDataConfig = param(factory=EnhanceDataConfig, prefix="", help="data")
    schedule: ScheduleConfig = param(factory=lambda: ScheduleConfig(n=50, beta_start=1e-4, beta_end=0.035),
                                     help="training noise schedule (CDiffuSE: 50 linear betas 1e-4 ... 0.035)")

    def model_config(self) -> DiffWaveConfig:
        mel = MelConfig.preset(self.mel_preset)
        cfg = ENHANCER_PRESETS[self.model](n_mels=mel.n_mels, hop_length=mel.hop_length)
        return dataclasses.replace(cfg, signal_condition=self.noisy_waveform)

    def validate(self) -> None:
        self.train.validate()
        d = self.data
        if not d.voicebank and not (d.clean_dir and d.noise_dir):
            raise UserInputError("give --clean-dir and --noise-dir (clean speech and noise recordings), or --voicebank")
        hop = MelConfig.preset(self.mel_preset).hop_length
        if d.segment_length <= 0 or d.segment_length % hop:
            raise UserInputError(f"--segment-length must be a positive multiple of the hop {hop}, got {d.segment_length}")
        if not d.snr_low <= d.snr_high:
            raise UserInputError(f"--snr-low ({d.snr_low}) must not exceed --snr-high ({d.snr_high})")


def train_enhancer(run: EnhanceRun, resume: str | None = None) -> tuple[Trainer, Path | None]:
    """The enhancement counterpart of :func:`train_vocoder`."""
    run.validate()
    task = EnhancementTask(run.model_config(), MelConfig.preset(run.mel_preset), run.data, run.schedule,
                           loss_kind=run.train.loss, seed=run.train.seed)
    return _fit(task, run, resume)


def add_resume(parser) -> None:
    """The ``--resume auto|PATH`` flag of `wavegrad train` and every recipe."""
    parser.add_argument("--resume", default=None, metavar="auto|PATH",
                        help="resume from a checkpoint ('auto' = the newest one in RUN_DIR/checkpoints)")


def train_vocoder(run: VocoderRun, resume: str | None = None) -> tuple[Trainer, Path | None]:
    """Build the task and the trainer, resume if asked (``"auto"`` or a path), train.
    Returns (trainer, final checkpoint path; None on ranks other than 0)."""
    run.validate()
    task = VocoderTask(run.model_config(), run.mel_config(), run.data, run.schedule, loss_kind=run.train.loss,
                       seed=run.train.seed, prior=run.prior, objective=run.objective, losses=run.losses)
    return _fit(task, run, resume)


def train_images(run: ImageRun, resume: str | None = None, verbose: bool = False) -> tuple[Trainer, Path | None]:
    """The image counterpart of :func:`train_vocoder`."""
    run = run.resolved()
    run.train.validate()
    run.data.validate()
    task = ImageTask(run.model, run.data, run.schedule, loss_kind=run.train.loss, verbose=verbose,
                     seed=run.train.seed)
    return _fit(task, run, resume)


def _fit(task, run, resume: str | None) -> tuple[Trainer, Path | None]:
    trainer = Trainer(task, run.train, run_config=to_dict(run))
    if resume:
        trainer.resume(resume)
    return trainer, trainer.fit()


def image_presets(dataset: str, paper_model, quick_model, *, paper_steps: int, flip: bool) -> dict[str, ImageRun]:
    """The two presets of every image recipe: Ho et al. 2020's optimisation ("paper": Adam 2e-4 with 5000 warm-up
    steps, batch 128, clip 1, EMA 0.9999, L2 on eps) and a CPU quick start ("quick": batch 16, lr 1e-3, EMA 0.999,
    1.5 minutes); ``flip``: random horizontal flips (CIFAR-10 yes, digits no)."""
    from ..config import replace
    common = {"train.grad_clip": 1.0, "train.loss": "l2", "data.random_flip": flip}
    return {
        "paper": replace(ImageRun(dataset=dataset, model=paper_model), **common, **{
            "train.run_dir": f"runs/{dataset}", "train.batch_size": 128, "train.lr": 2e-4,
            "train.lr_warmup_steps": 5000, "train.ema_decay": 0.9999, "train.max_steps": paper_steps,
            "train.log_every": 100, "train.val_every": 5000, "train.ckpt_every": 5000, "train.num_workers": 4,
            "data.val_n": 64, "data.val_steps": 100}),
        "quick": replace(ImageRun(dataset=dataset, model=quick_model), **common, **{
            "train.run_dir": f"runs/{dataset}-quick", "train.batch_size": 16, "train.lr": 1e-3,
            "train.lr_warmup_steps": 50, "train.ema_decay": 0.999, "train.max_steps": 100_000,
            "train.max_minutes": 1.5, "train.log_every": 25, "train.val_every": 500, "train.ckpt_every": 500,
            "train.num_workers": 0, "data.val_n": 16, "data.val_steps": 25}),
    }


def image_recipe(dataset: str, presets: dict[str, ImageRun], description: str, argv=None) -> int:
    """The body of ``recipes/mnist.py`` and ``recipes/cifar10.py``: ``--preset`` (or ``--quick``) picks the
    defaults of every flag of :class:`ImageRun`; train; say where the checkpoint and the last grid are."""
    import sys
    import time

    from ..config import parse_with_presets
    from ..errors import run_main
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--quick" in argv:
        argv = [a for a in argv if a != "--quick"] + ["--preset", "quick"]

    def extra(parser):
        parser.add_argument("--quick", action="store_true", help="same as --preset quick")
        add_resume(parser)

    _, run, args = parse_with_presets(ImageRun, presets, argv, default="paper", extra=extra,
                                      description=description)
    run = dataclasses.replace(run, dataset=dataset)

    def body() -> int:
        t0 = time.time()
        trainer, ckpt = train_images(run, resume=args.resume, verbose=True)
        if not trainer.acc.is_main_process:
            return 0
        print(f"{dataset}: {len(trainer.task.train_set)} training images; ImageUNet "
              f"{sum(q.numel() for q in trainer.task.model.parameters()) / 1e6:.2f}M parameters; "
              f"trained to step {trainer.step} in {time.time() - t0:.0f} s; checkpoint {ckpt}")
        grids = sorted((Path(run.train.run_dir) / "samples").glob("step-*/grid.png"))
        if grids:
            print(f"latest sample grid: {grids[-1]}")
        if ckpt is not None:
            print(f"sample more: wavegrad sample {ckpt} --n 64 --steps 50 --out grid.png")
        return 0

    return run_main(f"{dataset} recipe", body)
