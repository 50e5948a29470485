#!/usr/bin/env python
"""Train the DDPM UNet on CIFAR-10 (the python batches) with the shared training loop.

    python recipes/cifar10.py --data-dir data/cifar10                       # Ho et al. 2020 (a GPU job)
    python recipes/cifar10.py --data-dir data/cifar10 --mixed-precision bf16
    python recipes/cifar10.py --data-dir data/cifar10 --quick               # a tiny net, ~2 min on CPU
    python recipes/cifar10.py --data-dir data/cifar10 --class-cond true --val-guidance 1

DATA_DIR holds data_batch_1 ... data_batch_5, test_batch and batches.meta (or cifar-10-batches-py/ with
them); `python data_prep/images.py download cifar10 DATA_DIR` fetches them. Nothing downloads here.
Every flag (`--help`) defaults to the chosen preset. Checkpoints: RUN_DIR/checkpoints; a fixed-seed
sample grid at every validation: RUN_DIR/samples/step-N/grid.png (and TensorBoard, RUN_DIR/tb).
Then: `wavegrad sample RUN_DIR/checkpoints/step-N.pt --n 64 --steps 50 --out grid.png`.

Paper preset (Ho et al. 2020, §4 and App. B): the 35.7M-parameter UNet (128 channels, mults 1,2,2,2,
2 residual blocks per level, attention at 16x16, dropout 0.1), linear betas 1e-4 ... 0.02 over 1000 steps,
L2 loss on eps, Adam lr 2e-4 with 5000 warm-up steps, batch 128, grad-norm clip 1, EMA 0.9999,
random horizontal flips, 800k steps. Departure: the net sees the continuous noise level sqrt(alpha_bar)
(WaveGrad's convention), not the step index, so it samples on any respaced schedule.
Quick preset: ImageUNetConfig.tiny (0.7M), batch 16, lr 1e-3, EMA 0.999, 1.5 minutes of training,
a 16-image grid with 25 DDIM steps: it shows the pipeline end to end, not CIFAR quality.
"""
from __future__ import annotations

import sys

from wavegrad.models.image_unet import ImageUNetConfig
from wavegrad.training.image_task import recipe_main

PRESETS = {
    "paper": {"model": ImageUNetConfig.cifar10(),
              "train": {"run_dir": "runs/cifar10", "batch_size": 128, "lr": 2e-4, "lr_warmup_steps": 5000,
                        "grad_clip": 1.0, "ema_decay": 0.9999, "max_steps": 800_000, "loss": "l2",
                        "log_every": 100, "val_every": 5000, "ckpt_every": 5000, "num_workers": 4},
              "data": {"random_flip": True, "val_n": 64, "val_steps": 100}},
    "quick": {"model": ImageUNetConfig.tiny(32, 3),
              "train": {"run_dir": "runs/cifar10-quick", "batch_size": 16, "lr": 1e-3, "lr_warmup_steps": 50,
                        "grad_clip": 1.0, "ema_decay": 0.999, "max_steps": 100_000, "max_minutes": 1.5,
                        "loss": "l2", "log_every": 25, "val_every": 500, "ckpt_every": 500, "num_workers": 0},
              "data": {"random_flip": True, "val_n": 16, "val_steps": 25}},
}

if __name__ == "__main__":
    sys.exit(recipe_main("cifar10", PRESETS, __doc__.split("\n\n")[0]))
