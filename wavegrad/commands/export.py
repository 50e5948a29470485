"""`wavegrad export CHECKPOINT OUT_DIR`: safetensors weights + a JSON config, no pickle."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..config import HelpFormatter

DESCRIPTION = """\
Export a checkpoint's EMA weights as OUT_DIR/model.safetensors and everything needed to use them as
OUT_DIR/config.json: for a vocoder the architecture, model and mel configs, the training schedule, the stored
(searched) schedules and the prior; for an image model its config, schedule and data set. The folder loads with
Vocoder.from_pretrained(OUT_DIR) (or images.load_image_checkpoint) and `wavegrad vocode OUT_DIR ...`, with no
pickle anywhere; the optimizer state is left behind.
"""


def register(sub, name: str) -> None:
    p = sub.add_parser(name, help="checkpoint -> model.safetensors + config.json", description=DESCRIPTION,
                       formatter_class=HelpFormatter)
    p.add_argument("checkpoint", type=Path, help="a checkpoint file or run folder")
    p.add_argument("out_dir", type=Path, help="folder for model.safetensors and config.json")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..checkpoint import find_checkpoint, load_checkpoint, rebuilding_from
    from ..errors import UserInputError
    path = find_checkpoint(args.checkpoint)
    ckpt = load_checkpoint(path)
    family = ckpt.get("family")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise UserInputError(f"{args.out_dir} exists and is not a folder; choose another OUT_DIR")
    if family == "vocoder":
        from ..bundle import VocoderBundle
        with rebuilding_from(path, "vocoder", "re-export it with this wavegrad"):
            bundle = VocoderBundle.from_dict(ckpt)
            weights = bundle.network(ckpt["ema"]["shadow"]).state_dict()      # the weights must fit the network
        bundle.export(args.out_dir, weights)
    elif family == "image":
        from ..images import export_image_checkpoint
        export_image_checkpoint(ckpt, args.out_dir)
    elif family == "enhancer":
        from ..checkpoint import save_pretrained_folder
        from ..enhance import EnhancerBundle
        with rebuilding_from(path, "enhancer", "re-export it with this wavegrad"):
            config = EnhancerBundle.from_dict(ckpt).to_dict()
        save_pretrained_folder(args.out_dir, ckpt["ema"]["shadow"], config)
    else:
        raise UserInputError(f"{path}: a {family!r} checkpoint; export takes vocoder, enhancer and image checkpoints")
    print(f"exported {path} to {args.out_dir}/model.safetensors and config.json")
    return 0
