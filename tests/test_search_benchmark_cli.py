"""`wavegrad search-schedule` and `wavegrad benchmark` on a random-weight tiny checkpoint and a generated corpus."""
import json

import pytest
import torch

from wavegrad import Vocoder
from wavegrad.audio import MelConfig
from wavegrad.cli import main
from wavegrad.data import write_splits
from wavegrad.data.synthetic import make_speech_like_corpus
from wavegrad.diffusion import NoiseSchedule
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.bundle import VocoderBundle
from wavegrad.commands.benchmark import BenchmarkConfig
from wavegrad.diffusion import Parametrization
from wavegrad.vocoder import save_vocoder_checkpoint


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    make_speech_like_corpus(d / "corpus", n_clips=5, seed=2)
    write_splits(d / "corpus", n_val=1, n_test=1)
    torch.manual_seed(0)
    ckpt = save_vocoder_checkpoint(d / "run" / "checkpoints" / "step-00000000.pt", WaveGrad(WaveGradConfig.tiny()),
                                   MelConfig(), NoiseSchedule.linear(1000))
    return d, ckpt


def test_search_stores_a_schedule_and_writes_every_candidate(setup, capsys):
    d, ckpt = setup
    rc = main(["search-schedule", str(ckpt), "--data-dir", str(d / "corpus"), "--steps", "2", "--grid", "3",
               "--clips", "1", "--seconds", "0.1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "network passes" in out
    sched = Vocoder.from_checkpoint(ckpt).schedules["search-2"]
    assert len(sched) == 2 and float(sched.noise_levels[-1]) <= 0.1
    rows = (ckpt.parent / f"{ckpt.stem}.search-2.csv").read_text().strip().splitlines()
    assert rows[0].startswith("stage,log_mel_l1") and len(rows) > 5


def test_benchmark_writes_table_csv_json_png(setup, capsys):
    d, ckpt = setup
    out_dir = d / "bench-out"
    rc = main(["benchmark", str(ckpt), "--data-dir", str(d / "corpus"), "--nfe", "3,2", "--samplers",
               "ddpm,ddim,heun,pc,searched", "--clips", "1", "--seconds", "0.2", "--out-dir", str(out_dir),
               "--no-optional"])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| ground truth |" in table and "Griffin-Lim" in table and "| ddim | respaced | 2 | 2 |" in table
    rows = json.loads((out_dir / "benchmark.json").read_text())["rows"]
    truth = rows[0]
    assert truth["log_mel_l1"] == 0.0 and truth["lsd_db"] == 0.0 and truth["mrstft"] == 0.0
    systems = {(r["system"], r["steps"], r["nfe"]) for r in rows}
    # heun: N steps cost 2N - 1 (budgets 3 and 2 -> 2 steps and 1 step); pc: N(1 + 1) (budget 3 and 2 -> 1 step)
    assert {("ddpm", 3, 3), ("ddpm", 2, 2), ("ddim", 3, 3), ("ddim", 2, 2), ("heun", 2, 3), ("heun", 1, 1),
            ("pc", 1, 2), ("searched ddpm", 2, 2)} <= systems
    assert all((out_dir / f"benchmark.{ext}").stat().st_size > 0 for ext in ("md", "csv", "json", "png"))
    # Heun's 2 Karras steps from sigma 157 to 0.01 amplify an error of the denoised estimate ~7.9e3-fold: said
    # beside the table; its 1 step (an Euler step, no correction) is not
    notes = json.loads((out_dir / "benchmark.json").read_text())["meta"]["notes"]
    heun = [n for n in notes if n.startswith("heun")]
    assert len(heun) == 1 and heun[0].startswith("heun 2 steps (none)") and "by up to 7.87e+03" in heun[0], notes
    _check_listening_page(out_dir, rows, n_clips=1)


def _check_listening_page(out_dir, rows, n_clips):
    """Every row x clip has a player and a picture whose files exist; the ground truth's audio is the clip."""
    import re

    import numpy as np
    import soundfile as sf
    page = (out_dir / "benchmark.html").read_text()
    audio = re.findall(r"<audio [^>]*src='([^']+)'", page)
    images = re.findall(r"<img src='(mels/[^']+)'", page)
    assert len(audio) == len(images) == len(rows) * n_clips
    assert len(set(audio)) == len(audio)                              # one file per row and clip
    assert all((out_dir / a).is_file() for a in audio) and all((out_dir / i).is_file() for i in images)
    assert (out_dir / "benchmark_mels.png").stat().st_size > 0
    truth = sf.read(str(out_dir / audio[0]))[0]
    wav = sf.read(str(out_dir / audio[1 * n_clips]))[0]               # Griffin-Lim: same length, other audio
    assert audio[0].startswith("audio/ground-truth/") and truth.shape == wav.shape and np.abs(truth - wav).max() > 0
    return audio


@pytest.mark.slow
def test_listening_page_loads_in_headless_chromium(setup, tmp_path):
    """The page opens from disk in a real browser and every player finds its file (Debian's chromium)."""
    import shutil
    import subprocess
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    d, ckpt = setup
    out_dir = tmp_path / "bench"
    assert main(["benchmark", str(ckpt), "--data-dir", str(d / "corpus"), "--nfe", "2", "--samplers", "ddim",
                 "--clips", "1", "--seconds", "0.2", "--out-dir", str(out_dir), "--no-optional"]) == 0
    rows = json.loads((out_dir / "benchmark.json").read_text())["rows"]
    audio = _check_listening_page(out_dir, rows, n_clips=1)
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                        "--dump-dom", (out_dir / "benchmark.html").as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert 'data-audio="ok"' in r.stdout and f'data-loaded="{len(audio)}"' in r.stdout, r.stdout[-2000:]
    (out_dir / audio[-1]).unlink()                                   # a missing file is reported, by name
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000",
                        "--dump-dom", (out_dir / "benchmark.html").as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert 'data-audio="missing"' in r.stdout and audio[-1] in r.stdout


@pytest.mark.parametrize("flags, msg", [(["--samplers", "euler,rk4"], "unknown sampler"),
                                        (["--nfe", "0"], "--nfe must be positive"),
                                        (["--nfe", "a,b"], "comma-separated int"),
                                        (["--consistency", "glaa"], "consistency must be one of"),
                                        (["--consistency", "gla@x"], "MODE@A0"),
                                        (["--consistency", "gla@1.5"], "start-level a0 must lie in"),
                                        (["--gla-iterations", "-1"], "--gla-iterations must be an integer >= 0")])
def test_benchmark_bad_flags_exit_2(setup, capsys, flags, msg):
    d, ckpt = setup
    assert main(["benchmark", str(ckpt), "--data-dir", str(d / "corpus"), "--no-optional", *flags]) == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_search_on_a_truncated_checkpoint_exits_2(setup, tmp_path, capsys):
    d, ckpt = setup
    bad = tmp_path / "bad.pt"
    bad.write_bytes(ckpt.read_bytes()[:1000])
    assert main(["search-schedule", str(bad), "--data-dir", str(d / "corpus"), "--steps", "2"]) == 2
    assert "truncated" in capsys.readouterr().err


def test_benchmark_scores_exactly_what_vocode_writes(setup, tmp_path):
    """One path: the benchmark's audio for a sampler and NFE is the `wavegrad vocode` output for the same mel
    and seed (up to the 16-bit PCM of the written file), so its RTF is the command's RTF."""
    import numpy as np
    import soundfile as sf

    from wavegrad.commands.evaluation import load_eval_clips, vocode_clips
    d, ckpt = setup
    voc = Vocoder.from_checkpoint(ckpt)
    clips = load_eval_clips(voc, d / "corpus", "test", 1, 0.2)
    bench, _ = vocode_clips(voc, clips, 7, sampler="heun", nfe=5, schedule="karras")
    np.save(tmp_path / "m.npy", clips.mel[0].numpy())
    assert main(["vocode", str(ckpt), str(tmp_path / "m.npy"), "--out-dir", str(tmp_path / "out"), "--sampler", "heun",
                 "--nfe", "5", "--schedule", "karras", "--seed", "7"]) == 0
    written, _ = sf.read(str(tmp_path / "out" / "m.wav"))
    np.testing.assert_allclose(written, bench[0].clamp(-1, 1).numpy(), atol=1 / 32768)


def test_benchmark_runs_consistency_modes_as_a_grid(setup):
    """--consistency none,gla,gla@0.9: every sampler row once per mode, named in the consistency column; the
    shallow start keeps the steps below a0 (a 0.9 start of linear(1000) has 106 of them)."""
    d, ckpt = setup
    out_dir = d / "bench-consistency"
    assert main(["benchmark", str(ckpt), "--data-dir", str(d / "corpus"), "--nfe", "3", "--samplers", "ddim",
                 "--consistency", "none,gla,gla@0.9", "--gla-iterations", "2", "--clips", "1", "--seconds", "0.3",
                 "--out-dir", str(out_dir), "--no-optional"]) == 0
    rows = json.loads((out_dir / "benchmark.json").read_text())["rows"]
    modes = [(r["system"], r["steps"], r["consistency"]) for r in rows[2:]]
    assert modes == [("ddim", 3, "none"), ("ddim", 3, "gla"), ("ddim", 3, "gla@0.9")]
    header = (out_dir / "benchmark.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["system", "schedule", "steps", "nfe", "consistency"]
    by_mode = {r["consistency"]: r["log_mel_l1"] for r in rows[2:]}
    assert by_mode["gla"] < 0.5 * by_mode["none"]           # a random network, made consistent with the mel
    _check_listening_page(out_dir, rows, n_clips=1)


def test_search_with_a_shallow_start_stores_its_start_and_consistency(setup, tmp_path):
    d, ckpt = setup
    local = tmp_path / "ck.pt"
    local.write_bytes(ckpt.read_bytes())
    assert main(["search-schedule", str(local), "--data-dir", str(d / "corpus"), "--steps", "2", "--grid", "3",
                 "--clips", "1", "--seconds", "0.1", "--consistency", "gla@0.95", "--gla-iterations", "1",
                 "--gl-iterations", "4"]) == 0
    voc = Vocoder.from_checkpoint(local)
    stored = voc.bundle.schedules["search-gla-2"].consistency
    sched = voc.schedules["search-gla-2"]
    assert stored.mode == "gla" and stored.gla_iterations == 1 and stored.gl_iterations == 4
    assert stored.start_level == pytest.approx(float(sched.noise_levels[-1])) and stored.start_level <= 0.95
    # naming the schedule brings its consistency; naming another consistency overrides it
    assert voc.bundle.consistency_for(None, "search-gla-2") == stored
    assert voc.bundle.consistency_for("none", "search-gla-2").mode == "none"


@pytest.mark.parametrize("parametrization, ddim_kind", [("eps", "respaced"), ("edm", "karras")])
def test_benchmark_rows_walk_the_schedule_vocode_walks(parametrization, ddim_kind):
    """--schedule auto: each (sampler, NFE) row runs the plan `vocode --sampler S --nfe N` runs -- Karras' spacing
    for the ODE samplers, and for every sampler of an EDM-trained network (what its vocode defaults to)."""
    model = WaveGrad(WaveGradConfig.tiny())
    bundle = VocoderBundle.of(model.cfg, MelConfig(), NoiseSchedule.linear(1000),
                              parametrization=Parametrization(parametrization, 0.1))
    voc = Vocoder(model, bundle=bundle)
    jobs, _ = BenchmarkConfig(nfe=(6, 3), samplers=("ddpm", "ddim", "heun")).jobs(voc)
    assert ({(j["system"], j["schedule"]) for j in jobs}
            == {("ddpm", ddim_kind), ("ddim", ddim_kind), ("heun", "karras")})
    for j in jobs:
        expected = voc.plan(sampler=j["system"], nfe=j["nfe"]).sampling
        assert j["plan"].sampling.sampler == expected.sampler
        torch.testing.assert_close(j["plan"].sampling.schedule.noise_levels, expected.schedule.noise_levels,
                                   rtol=0, atol=0)
