#!/usr/bin/env python
"""Train a DDPM UNet on MNIST (the IDX files) with the shared training loop.

    python recipes/mnist.py --data-dir data/mnist                 # the full preset (a GPU job, ~6.5M params)
    python recipes/mnist.py --data-dir data/mnist --quick         # a tiny net, ~2 min on CPU
    python recipes/mnist.py --data-dir data/mnist --class-cond true --val-guidance 2

DATA_DIR holds train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz] (and t10k-... for the held-out
metric), directly or in torchvision's MNIST/raw/; `python data_prep/images.py download mnist DATA_DIR`
fetches them. Nothing downloads here. Every flag (`--help`) defaults to the chosen preset. Checkpoints:
RUN_DIR/checkpoints; a fixed-seed sample grid at every validation: RUN_DIR/samples/step-N/grid.png
(and TensorBoard). Then: `wavegrad sample RUN_DIR/checkpoints/step-N.pt --n 64 --out grid.png`.

MNIST is not in Ho et al. 2020; the preset keeps their optimisation (linear betas 1e-4 ... 0.02 over
1000 steps, L2 on eps, Adam 2e-4 with 5000 warm-up steps, batch 128, clip 1, EMA 0.9999, dropout 0.1)
and shrinks the net to the 28x28x1 images at native size: ImageUNetConfig.mnist() (64 channels, mults
1,2,2 -> 28, 14, 7, 2 blocks per level, attention at 14x14), 100k steps; no flips (digits are not
mirror-symmetric). Quick preset: ImageUNetConfig.tiny(28, 1), batch 16, lr 1e-3, 1.5 minutes.
"""
from __future__ import annotations

import sys

from wavegrad.models.image_unet import ImageUNetConfig
from wavegrad.training.image_task import recipe_main

PRESETS = {
    "paper": {"model": ImageUNetConfig.mnist(),
              "train": {"run_dir": "runs/mnist", "batch_size": 128, "lr": 2e-4, "lr_warmup_steps": 5000,
                        "grad_clip": 1.0, "ema_decay": 0.9999, "max_steps": 100_000, "loss": "l2",
                        "log_every": 100, "val_every": 5000, "ckpt_every": 5000, "num_workers": 4},
              "data": {"random_flip": False, "val_n": 64, "val_steps": 100}},
    "quick": {"model": ImageUNetConfig.tiny(28, 1),
              "train": {"run_dir": "runs/mnist-quick", "batch_size": 16, "lr": 1e-3, "lr_warmup_steps": 50,
                        "grad_clip": 1.0, "ema_decay": 0.999, "max_steps": 100_000, "max_minutes": 1.5,
                        "loss": "l2", "log_every": 25, "val_every": 500, "ckpt_every": 500, "num_workers": 0},
              "data": {"random_flip": False, "val_n": 16, "val_steps": 25}},
}

if __name__ == "__main__":
    sys.exit(recipe_main("mnist", PRESETS, __doc__.split("\n\n")[0]))
