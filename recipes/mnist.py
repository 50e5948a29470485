#!/usr/bin/env python
"""Train a DDPM UNet on MNIST (the IDX files) with the shared training loop.

    python recipes/mnist.py --data-dir data/mnist                 # the full preset (a GPU job, ~6.5M params)
    python recipes/mnist.py --data-dir data/mnist --quick         # a tiny net, ~2 min on CPU
    python recipes/mnist.py --data-dir data/mnist --class-cond --val-guidance 2
    torchrun --nproc_per_node 2 recipes/mnist.py --data-dir data/mnist   # one job of 2 ranks

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
from wavegrad.training.runs import image_presets, image_recipe

PRESETS = image_presets("mnist", ImageUNetConfig.mnist(), ImageUNetConfig.tiny(28, 1), paper_steps=100_000, flip=False)

if __name__ == "__main__":
    sys.exit(image_recipe("mnist", PRESETS, __doc__.split("\n\n")[0]))
