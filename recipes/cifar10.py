#!/usr/bin/env python
"""Train the DDPM UNet on CIFAR-10 (the python batches) with the shared training loop.

    python recipes/cifar10.py --data-dir data/cifar10                       # Ho et al. 2020 (a GPU job)
    python recipes/cifar10.py --data-dir data/cifar10 --mixed-precision bf16
    python recipes/cifar10.py --data-dir data/cifar10 --quick               # a tiny net, ~2 min on CPU
    python recipes/cifar10.py --data-dir data/cifar10 --class-cond --val-guidance 1
    torchrun --nproc_per_node 8 recipes/cifar10.py --data-dir data/cifar10  # one job of 8 ranks

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
from wavegrad.training.runs import image_presets, image_recipe

PRESETS = image_presets("cifar10", ImageUNetConfig.cifar10(), ImageUNetConfig.tiny(32, 3), paper_steps=800_000, flip=True)

if __name__ == "__main__":
    sys.exit(image_recipe("cifar10", PRESETS, __doc__.split("\n\n")[0]))
