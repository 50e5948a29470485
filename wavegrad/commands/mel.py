"""`wavegrad mel info|convert|compute`: what convention a log-mel is in, and moving between conventions."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..config import HelpFormatter

DESCRIPTION = """\
TTS toolkits emit log-mels in their own conventions (framing, window, band edges, filterbank, log base and floor,
dB scaling, normalisation). `info` reports a .npy mel's shape and range and the presets it is consistent with;
`convert` maps one convention onto another where a closed form exists (the same linear mel, another log base,
floor, affine scaling or ESPnet mean-variance normalisation) and says why when it does not; `compute` writes the
mel of an audio file in any convention. Presets: see `wavegrad mel info --help` or README's table.
"""


def register(sub, name: str) -> None:
    from ..audio.mel import MEL_PRESETS
    p = sub.add_parser(name, help="inspect, convert or compute log-mels of the TTS toolkits' conventions",
                       description=DESCRIPTION, formatter_class=HelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    i = actions.add_parser("info", help="shape, range, and the conventions a .npy log-mel is consistent with",
                           formatter_class=HelpFormatter,
                           description="Presets: " + "; ".join(f"{k}: {v[1]}" for k, v in MEL_PRESETS.items()))
    i.add_argument("input", type=Path, metavar="IN.npy")
    c = actions.add_parser("convert", help="map a log-mel onto another convention (closed forms only)",
                           formatter_class=HelpFormatter)
    c.add_argument("input", type=Path, metavar="IN.npy")
    presets = ", ".join(MEL_PRESETS)
    c.add_argument("--from", dest="src", required=True, metavar="PRESET|CONFIG.json",
                   help=f"the input's convention: a preset ({presets}) or a JSON file of MelConfig fields")
    c.add_argument("--to", dest="dst", required=True, metavar="PRESET|CONFIG.json",
                   help="the output's convention (a vocoder's: the config.json of its export, `wavegrad export`)")
    c.add_argument("--stats", type=Path, default=None, metavar="feats_stats.npz",
                   help="ESPnet GlobalMVN statistics when the input is mean-variance normalised (a TTS model's output)")
    c.add_argument("--out", type=Path, required=True, metavar="OUT.npy")
    m = actions.add_parser("compute", help="the log-mel of an audio file in a convention", formatter_class=HelpFormatter)
    m.add_argument("input", type=Path, metavar="AUDIO")
    m.add_argument("--preset", default="hifigan", metavar="PRESET|CONFIG.json",
                   help=f"the convention: a preset ({', '.join(MEL_PRESETS)}) or a JSON file of MelConfig fields")
    m.add_argument("--out", type=Path, required=True, metavar="OUT.npy")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..audio import conventions as conv
    from ..errors import UserInputError
    from ..utils import atomic_path
    if args.action == "compute":
        import torch

        from ..audio import MelFeaturizer, read_audio
        cfg = conv.convention_of(args.preset)
        mel = MelFeaturizer(cfg)(torch.from_numpy(read_audio(args.input, cfg.sample_rate)))[0].numpy()
        _save(args.out, mel, atomic_path)
        print(f"wrote {args.out}: {list(mel.shape)} ({args.preset}, {cfg.sample_rate} Hz, hop {cfg.hop_length})")
        return 0
    from .vocode import load_mel_npy
    mel = load_mel_npy(args.input, None).numpy()
    if args.action == "info":
        print(f"{args.input}: " + conv.describe(mel))
        return 0
    src, dst = conv.convention_of(args.src), conv.convention_of(args.dst)
    if mel.shape[0] != src.n_mels:
        raise UserInputError(f"{args.input} has {mel.shape[0]} bands, {args.src} has {src.n_mels}")
    stats = conv.load_stats(args.stats, src.n_mels) if args.stats is not None else None
    out = conv.convert(mel, src, dst, stats)
    _save(args.out, out, atomic_path)
    print(f"wrote {args.out}: {args.src} -> {args.dst}, values now in [{out.min():.4g}, {out.max():.4g}]")
    return 0


def _save(path: Path, array: np.ndarray, atomic_path) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
