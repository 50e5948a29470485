"""Quality per unit of compute: train configurations for the same CPU minutes, score held-out clips at milestones.

    python recipes/learning_curve.py                                   # every configuration below, 2/4/8 minutes
    python recipes/learning_curve.py --configs wavegrad,quick --minutes 1,2 --out runs/curve-short
    python recipes/learning_curve.py --one-utterance --configs quick --minutes 10 --out runs/overfit

Every configuration starts from the LJSpeech recipe's quick preset (tiny network, batch 8, lr 1e-3, the
quick-start corpus) with WaveGrad's objective (eps, WaveGrad's level draw, no extra loss, white noise), and changes
what its row of ``CONFIGS`` says; ``quick`` is the quick preset exactly as `make demo` trains it. Each trains to
the first milestone, is scored, resumes to the next, and so on (scoring is not counted in the minutes). Scores, on
held-out clips without mel-consistent sampling (what the network alone gives): log-mel L1, STOI, PESQ-WB and WER
where the eval extra is installed, each averaged over the real recording (data/real: CMU ARCTIC, never trained on)
and the corpus' test clips, and how much of the noise one network call removes at sqrt(alpha_bar) = 0.999, 0.99 and
0.95 (``x0_err``: ||x0_hat - x0|| / ||x_t/a - x0||; 1 removes nothing, 0 everything). Writes OUT/curve.csv,
OUT/curve.png and OUT/mels.png (the first scored clip's log-mel beside each configuration's at its last milestone);
the runs stay in OUT/<config>/. Minutes are wall-clock on this machine: run nothing else meanwhile.
"""
from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ljspeech import PRESETS, QUICKSTART, REAL_SPEECH, prepare_quickstart, prepare_real_speech  # noqa: E402

from wavegrad.config import replace  # noqa: E402
from wavegrad.errors import UserInputError, run_main  # noqa: E402
from wavegrad.training.runs import VocoderRun, train_vocoder  # noqa: E402

PLAIN = {"prior.kind": "white", "objective.parametrization": "eps", "objective.levels": "wavegrad",
         "objective.weighting": "none", "losses.spectral_weight": 0.0, "losses.rollout_every": 0}
# EDM's P_mean -1.2 is ln(0.6 sigma_data) for its sigma_data 0.5; audio's sigma_data is ~0.1, whose counterpart
# is -2.8; -2.5 with a wider 1.5 keeps more draws at the high levels a 6-12 step sampler starts from
EDM = {"objective.parametrization": "edm", "objective.sigma_data": 0.1, "objective.levels": "lognormal",
       "objective.p_mean": -2.5, "objective.p_std": 1.5, "objective.weighting": "edm"}
# name -> (what it changes from PLAIN, what it is)
CONFIGS = {
    "wavegrad": ({}, "WaveGrad's objective (Chen et al. 2020): eps, L1, levels by step index"),
    "edm": (EDM, "EDM (Karras et al. 2022): preconditioned denoiser, log-normal levels, lambda weights"),
    "edm-specgrad": (EDM | {"prior.kind": "specgrad"}, "EDM with SpecGrad's prior"),
    "low-noise": ({"objective.levels": "log-uniform"}, "sigma log-uniform over [1e-3, sigma_max]"),
    "spectral": ({"losses.spectral_weight": 1.0}, "+ MR-STFT + mel L1 on x0_hat, weighted by a²"),
    "infergrad": ({"losses.rollout_every": 4, "losses.rollout_steps": 3},
                  "+ InferGrad's loss through a 3-step DDIM rollout every 4th step"),
    "edm-specgrad-infergrad": (EDM | {"prior.kind": "specgrad", "losses.rollout_every": 4, "losses.rollout_steps": 3},
                               "EDM with SpecGrad's prior and InferGrad's 3-step rollout every 4th step"),
    "fregrad": ({"model": "fregrad"}, "FreGrad (Nguyen et al. 2024): Haar sub-bands, 1.78M parameters"),
    "edm-specgrad-diffwave": (EDM | {"prior.kind": "specgrad", "model": "diffwave-tiny"},
                              "the quick preset's objective and prior on DiffWave tiny (full-rate residual layers)"),
    "specgrad": ({"prior.kind": "specgrad"}, "SpecGrad's prior (Koizumi et al. 2022)"),
    "quick": (None, "the quick preset as `make demo` trains it"),
}
METRICS = ("log_mel_l1", "stoi", "pesq_wb", "wer", "x0_err_0.999", "x0_err_0.99", "x0_err_0.95")


ONE_UTTERANCE = Path("data/one")


def run_for(name: str, out: Path, data_dir: Path | None = None) -> VocoderRun:
    """The run of configuration ``name`` writing to ``out/name``, on ``data_dir`` (default: the quick preset's)."""
    base = PRESETS["quick"].run
    changes = CONFIGS[name][0]
    run = base if changes is None else replace(base, **(PLAIN | changes))
    return replace(run, **{"train.run_dir": str(out / name), "train.val_every": 0, "train.ckpt_every": 10**9,
                           "train.max_steps": 10**9, "data.data_dir": str(data_dir or run.data.data_dir)})


def scoring_sets(one_utterance: bool, test_clips: int) -> tuple[Path | None, list[tuple[Path, int]]]:
    """(the training corpus, [(corpus, clips)] scored). One utterance: trained on and scored on the real recording."""
    from wavegrad.data.spoken import write_real_speech
    if one_utterance:
        if not (ONE_UTTERANCE / "test.txt").exists():
            write_real_speech(ONE_UTTERANCE, train=True)     # a one-line error without the eval extra
        return ONE_UTTERANCE, [(ONE_UTTERANCE, 1)]
    prepare_quickstart(QUICKSTART)
    return None, ([(REAL_SPEECH, 1)] if prepare_real_speech(REAL_SPEECH) else []) + [(QUICKSTART, test_clips)]


def score(ckpt: Path, sets: list[tuple[Path, int]], plan: dict, mels: list | None = None) -> dict[str, float]:
    """Mean of every metric over the clips of ``sets`` ([(data dir, clips)]), and the x0 error ratios; appends
    (truth, estimate) log-mels ``[n_mels, F]`` of the first clip to ``mels`` when given."""
    from wavegrad import Vocoder
    from wavegrad.audio.metrics import available_optional_metrics
    from wavegrad.commands.benchmark import score_clips
    from wavegrad.commands.evaluation import load_eval_clips, vocode_clips, x0_error_ratios
    voc = Vocoder.from_checkpoint(ckpt)
    optional = available_optional_metrics()
    rows, weights = [], []
    for data_dir, n in sets:
        clips = load_eval_clips(voc, data_dir, "test", n, 5.0)
        est, _ = vocode_clips(voc, clips, 0, consistency="none", **plan)
        if mels is not None and not rows:
            length = int(clips.lengths[0])
            mels.append(tuple(voc.featurizer.paired(w[:length])[0].numpy() for w in (clips.wav[0], est[0])))
        row = score_clips(clips, est, voc.mel_config, optional)
        row |= {f"x0_err_{a}": v for a, v in x0_error_ratios(voc, clips).items()}
        rows.append(row)
        weights.append(len(clips.ids))
    return {k: sum(w * r[k] for w, r in zip(weights, rows) if k in r and not math.isnan(r[k]))
            / max(sum(w for w, r in zip(weights, rows) if k in r and not math.isnan(r[k])), 1)
            for k in METRICS if any(k in r for r in rows)}


def plot(path: Path, table: list[dict]) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: curve.png skipped (pip install matplotlib)")
        return
    panels = [k for k in ("log_mel_l1", "stoi", "pesq_wb", "x0_err_0.99") if any(k in r for r in table)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4), squeeze=False)
    for ax, key in zip(axes[0], panels):
        for name in dict.fromkeys(r["config"] for r in table):
            pts = [(r["minutes"], r[key]) for r in table if r["config"] == name and key in r]
            ax.plot(*zip(*pts), marker="o", label=name)
        ax.set_xlabel("training CPU minutes")
        ax.set_title(key + (" (lower is better)" if key in ("log_mel_l1", "x0_err_0.99") else " (higher is better)"))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--configs", default="wavegrad,edm,spectral,fregrad,quick",
                   help="comma-separated names of:\n" + "\n".join(f"  {k}: {v[1]}" for k, v in CONFIGS.items()))
    p.add_argument("--minutes", default="2,4,8", help="milestones: training CPU minutes at which to score")
    p.add_argument("--sampler", default="ddim", help="sampler of the scoring (no mel-consistent sampling)")
    p.add_argument("--nfe", type=int, default=12, help="network evaluations per clip of the scoring")
    p.add_argument("--schedule", default="respaced", choices=("respaced", "karras"),
                   help="schedule of the scoring: the training schedule respaced, or Karras et al.'s (rho 7)")
    p.add_argument("--score", default="",
                   help="score these runs (comma-separated run folders or checkpoints) instead of training, at\n"
                        "every NFE of --score-nfe; writes OUT/scores.csv")
    p.add_argument("--score-nfe", default="", help="comma-separated NFEs for --score (default: --nfe)")
    p.add_argument("--test-clips", type=int, default=3, help="the corpus' test clips scored beside the real one")
    p.add_argument("--one-utterance", action="store_true",
                   help="the overfit check: train on ONE real utterance (CMU ARCTIC a0007, 4 s, from the eval\n"
                        "extra) and score that same utterance; a pipeline that learns must reproduce it")
    p.add_argument("--out", default="runs/curve", help="output folder")
    args = p.parse_args(argv)

    def body() -> int:
        if args.score:
            return rescore([Path(r) for r in args.score.split(",") if r], args)
        names = [c for c in args.configs.split(",") if c]
        unknown = [c for c in names if c not in CONFIGS]
        if unknown or not names:
            raise UserInputError(f"unknown configuration(s) {unknown}; choose from {', '.join(CONFIGS)}")
        try:
            milestones = sorted(float(m) for m in args.minutes.split(",") if m)
        except ValueError:
            raise UserInputError(f"--minutes must be comma-separated numbers, got {args.minutes!r}") from None
        if not milestones or milestones[0] <= 0:
            raise UserInputError("--minutes needs at least one positive milestone")
        data_dir, sets = scoring_sets(args.one_utterance, args.test_clips)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table, plan, panels = [], {"sampler": args.sampler, "nfe": args.nfe, "schedule": args.schedule}, []
        for name in names:
            run, done = run_for(name, out, data_dir), 0.0
            for m in milestones:
                t0 = time.time()
                trainer, ckpt = train_vocoder(replace(run, **{"train.max_minutes": m - done}),
                                              resume="auto" if done else None)
                done, mels = m, []
                row = {"config": name, "minutes": m, "step": trainer.step} | score(ckpt, sets, plan, mels)
                table.append(row)
                print(f"{name} @ {m:g} min (step {trainer.step}, {time.time() - t0:.0f} s with scoring): "
                      + ", ".join(f"{k} {v:.3f}" for k, v in row.items() if k in METRICS), flush=True)
                _write(out / "curve.csv", table)
            if not panels:
                panels.append(("truth", mels[0][0]))
            panels.append((f"{name}, {m:g} min, {args.sampler} {args.nfe} NFE ({args.schedule})", mels[0][1]))
        plot(out / "curve.png", table)
        plot_mels(out / "mels.png", panels)
        written = [out / n for n in ("curve.csv", "curve.png", "mels.png") if (out / n).exists()]
        print(f"wrote {', '.join(map(str, written))} (mels.png: the first scored clip's log-mels)")
        return 0

    return run_main("learning curve", body)


def rescore(runs: list[Path], args) -> int:
    """Score trained runs (the checkpoint each run folder ends with) at several NFEs without training: one row per
    (run, NFE) in OUT/scores.csv. Every run is found and loaded before anything is scored or written."""
    from wavegrad.bundle import load_vocoder
    from wavegrad.checkpoint import find_checkpoint
    try:
        nfes = [int(n) for n in (args.score_nfe or str(args.nfe)).split(",") if n]
    except ValueError:
        raise UserInputError(f"--score-nfe must be comma-separated integers, got {args.score_nfe!r}") from None
    if not nfes or min(nfes) < 1:
        raise UserInputError("--score-nfe (or --nfe) needs positive network-evaluation counts")
    ckpts = [find_checkpoint(r) for r in runs]
    missing = [str(r) for r, c in zip(runs, ckpts) if not c.is_file()]
    if missing or not runs:
        raise UserInputError(f"--score: no checkpoint at {', '.join(missing) or '(none given)'}; give run folders "
                             "this recipe wrote (OUT/<config>) or step-*.pt files")
    for ckpt in ckpts:
        load_vocoder(ckpt)                                   # a foreign or truncated file: its one line, now
    _, sets = scoring_sets(args.one_utterance, args.test_clips)
    table = []
    for run, ckpt in zip(runs, ckpts):
        for nfe in nfes:
            plan = {"sampler": args.sampler, "nfe": nfe, "schedule": args.schedule}
            table.append({"run": str(run), **plan} | score(ckpt, sets, plan))
            print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in table[-1].items()),
                  flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write(out / "scores.csv", table)
    print(f"wrote {out / 'scores.csv'}")
    return 0


def plot_mels(path: Path, panels: list[tuple[str, np.ndarray]]) -> None:
    """The first scored clip's log-mel beside each configuration's at its last milestone, on the truth's scale: where
    a listener hears the difference (an envelope without harmonics reads well on log-mel L1 and sounds whispered)."""
    from wavegrad.commands.listening import plot_mels as draw
    truth = panels[0][1]
    draw(path, panels, (float(np.percentile(truth, 1)), float(truth.max())))


def _write(path: Path, table: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in table for k in r))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        w.writerows(table)


if __name__ == "__main__":
    sys.exit(main())
