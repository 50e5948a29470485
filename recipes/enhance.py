#!/usr/bin/env python
"""Train a CDiffuSE speech enhancer (noisy -> clean speech on the diffusion core), then benchmark it on held-out noise.

    python recipes/enhance.py --preset quick --clean-dir data/quickstart --noise-dir data/noise/train --max-minutes 6
    python recipes/enhance.py --preset paper --voicebank /data/VoiceBank-DEMAND          # the paper's setting (a GPU job)

Data: clean speech from an LJSpeech-layout folder mixed on the fly with the recordings of --noise-dir at SNRs drawn
from [--snr-low, --snr-high], or VoiceBank-DEMAND's pairs (--voicebank). After training, the recipe scores the
checkpoint (`--bench-*`): the real recording of data/real (if present) and the first test clips of --clean-dir,
mixed at --bench-snr dB with the noise of --bench-noise-dir (noise kinds the model never heard; default: none, the
benchmark is skipped), against the noisy input and spectral gating; the table and a listening page land in
RUN_DIR/benchmark. Every flag of the run (`--help`) defaults to the chosen preset.

CDiffuSE (Lu et al., ICASSP 2022): DiffWave BASE conditioned on the noisy spectrogram, 50 training betas linear in
1e-4 ... 0.035, 6 inference betas [1e-4, 1e-3, 0.01, 0.05, 0.2, 0.35], Adam 2e-4, batch 16, crops of 62 frames,
L1 on the combined noise, the final output 0.8 x0 + 0.2 y. Departures: 22.05 kHz and HiFi-GAN's 80-band log-mel as
the conditioner (theirs: 16 kHz, a 513-bin log1p magnitude), a continuous noise level instead of the step index.
The quick preset: DiffWave tiny (12 layers, 32 channels), batch 8 of 7168 samples, lr 1e-3, a few CPU minutes.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from wavegrad.config import param, parse_with_presets, replace
from wavegrad.errors import run_main
from wavegrad.training.runs import EnhanceRun, add_resume, train_enhancer

REAL_SPEECH = Path("data/real")


@dataclass
class BenchConfig:
    """The benchmark after training: which speech, which held-out noise, at what SNR."""

    noise_dir: str = param("", "noise recordings of kinds absent from training (empty: no benchmark)")
    snr: float = param(5.0, "SNR (dB) of the benchmark mixtures")
    clips: int = param(2, "test clips of --clean-dir (besides the real recording of data/real, if present)")
    seconds: float = param(4.0, "each clip is cut to at most this long")
    steps: tuple[int, ...] = param((), "extra step counts to score besides the checkpoint's 6 inference steps "
                                       "(the training schedule respaced)")


@dataclass
class EnhanceRecipe:
    run: EnhanceRun = param(factory=EnhanceRun, prefix="", help="the training run")
    bench: BenchConfig = param(factory=BenchConfig, help="the benchmark after training")


PRESETS = {
    "paper": EnhanceRecipe(replace(EnhanceRun(), model="diffwave-base", noisy_waveform=False, **{
        "train.run_dir": "runs/enhance-base", "train.batch_size": 16, "train.lr": 2e-4, "train.max_steps": 300_000,
        "train.ema_decay": 0.9999, "train.val_every": 5000, "train.ckpt_every": 5000, "train.num_workers": 4,
        "data.segment_length": 15872})),
    "quick": EnhanceRecipe(replace(EnhanceRun(), model="diffwave-tiny", **{
        "train.run_dir": "runs/enhance-quick", "train.batch_size": 8, "train.lr": 1e-3, "train.max_steps": 100_000,
        "train.max_minutes": 6.0, "train.ema_decay": 0.999, "train.val_every": 400, "train.ckpt_every": 400,
        "train.log_every": 25, "train.num_workers": 0, "data.segment_length": 7168, "data.val_clips": 2})),
}


def bench_speech(clean_dir: str, clips: int, seconds: float, sample_rate: int) -> list[tuple[str, "np.ndarray"]]:
    """The real recording (data/real) if present, then the first test clips of the clean folder, cut to length."""
    from wavegrad.audio import read_audio
    from wavegrad.data import load_split
    out = []
    n = int(seconds * sample_rate)
    if (REAL_SPEECH / "test.txt").exists():
        out += [(i, read_audio(REAL_SPEECH / "wavs" / f"{i}.wav", sample_rate)[:n]) for i in load_split(REAL_SPEECH, "test")]
    if clean_dir:
        out += [(i, read_audio(Path(clean_dir) / "wavs" / f"{i}.wav", sample_rate)[:n])
                for i in load_split(clean_dir, "test")[:clips]]
    return out


def main(argv=None) -> int:
    _, recipe, args = parse_with_presets(EnhanceRecipe, PRESETS, argv, default="quick", extra=add_resume,
                                         description=__doc__.split("\n\n")[0])

    def body() -> int:
        t0 = time.time()
        trainer, ckpt = train_enhancer(recipe.run, resume=args.resume)
        if not trainer.acc.is_main_process:
            return 0
        print(f"trained to step {trainer.step} in {time.time() - t0:.0f} s; checkpoint {ckpt}")
        if ckpt is None or trainer.interrupted or not recipe.bench.noise_dir:
            return 0
        from wavegrad.audio import read_audio
        from wavegrad.commands.enhance_benchmark import benchmark_enhancer, make_mixtures, markdown_table
        from wavegrad.data.noise import noise_files
        sr = trainer.task.mel_cfg.sample_rate
        speech = bench_speech(recipe.run.data.clean_dir, recipe.bench.clips, recipe.bench.seconds, sr)
        kinds: dict[str, Path] = {}
        for p in noise_files(recipe.bench.noise_dir):                  # one recording of each kind (<kind>-<i>.wav)
            kinds.setdefault(p.stem.rsplit("-", 1)[0], p)
        noises = [(kind, read_audio(p, sr)) for kind, p in kinds.items()]
        mixtures = make_mixtures(speech, noises, recipe.bench.snr)
        out = Path(recipe.run.train.run_dir) / "benchmark"
        rows = benchmark_enhancer(ckpt, mixtures, out, runs=[("cdiffuse", None), ("ddim", None)]
                                  + [("cdiffuse", s) for s in recipe.bench.steps])
        import json
        meta = json.loads((out / "benchmark.json").read_text())["meta"]
        print(f"\nheld-out noise ({recipe.bench.noise_dir}) at {recipe.bench.snr:g} dB:\n" + markdown_table(rows, meta))
        print(f"\nlisten: {out}/benchmark.html")
        return 0

    return run_main("enhance recipe", body)


if __name__ == "__main__":
    sys.exit(main())
