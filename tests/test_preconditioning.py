"""EDM's parametrisation, level distributions and weights; the spectral x0 loss; InferGrad's rollout: closed forms."""
import argparse
import math
from pathlib import Path

import pytest
import torch

from wavegrad import Vocoder
from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.losses import mel_l1, stft_loss
from wavegrad.bundle import VocoderBundle, load_vocoder
from wavegrad.config import add_arguments, from_args
from wavegrad.data import write_splits
from wavegrad.data.synthetic import make_speech_like_corpus
from wavegrad.diffusion import NoiseSchedule, diffusion_loss, q_sample, sample
from wavegrad.diffusion.preconditioning import (ObjectiveConfig, Parametrization, Preconditioned, coefficients,
                                                 draw_levels, level_sigma, loss_weights)
from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.training.runs import VocoderRun, add_resume, train_vocoder
from wavegrad.training.vocoder_losses import (VocoderLossConfig, rollout_loss, rollout_schedule, spectral_x0_loss,
                                              x0_estimate)

LEVELS = torch.tensor([0.9999, 0.99, 0.9, 0.5, 0.05], dtype=torch.float64)      # [B]


def _state(seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = 0.1 * torch.randn(5, 64, generator=g, dtype=torch.float64)
    eps = torch.randn(5, 64, generator=g, dtype=torch.float64)
    return x0, eps, q_sample(x0, LEVELS, eps)


def test_eps_parametrization_is_the_plain_eps_network():
    """c_skip = 1, c_out = -sigma and c_in = 1/sqrt(1 + sigma²) (= a: the VP state itself) give back F = eps_hat."""
    _, _, x_t = _state()
    seen = {}

    def raw(x, level):
        seen["x"] = x
        return torch.sin(3 * x) + level[:, None]

    out = Preconditioned(raw, "eps")(x_t, LEVELS)
    torch.testing.assert_close(seen["x"], x_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, raw(x_t, LEVELS), rtol=1e-10, atol=1e-10)
    assert Parametrization().wrap(raw) is raw


def test_edm_with_its_ideal_output_recovers_the_noise_exactly():
    """F* = (x0 - c_skip·x_ve)/c_out (EDM eq. 8's target) makes D = x0, hence eps = (x_ve - x0)/sigma exactly."""
    x0, eps, x_t = _state()
    sd = 0.1
    a = LEVELS[:, None]
    sigma = level_sigma(a)
    c_skip, c_out, c_in = coefficients(sigma, "edm", sd)
    ideal = (x0 - c_skip * x_t / a) / c_out

    def raw(x_in, level):
        torch.testing.assert_close(x_in, c_in * x_t / a)           # the network sees c_in·x_ve
        return ideal

    torch.testing.assert_close(Preconditioned(raw, "edm", sd)(x_t, LEVELS), eps, rtol=1e-9, atol=1e-9)


def test_the_eps_view_is_table_1_multiplied_out_and_finite_where_sigma_rounds_to_0():
    sd, g = 0.1, torch.Generator().manual_seed(0)
    a = torch.tensor([0.05, 0.3, 0.9, 0.999, 0.99999], dtype=torch.float64)
    x, f = torch.randn(5, 16, generator=g, dtype=torch.float64), torch.randn(5, 16, generator=g, dtype=torch.float64)
    seen = {}
    eps = Preconditioned(lambda x_in, level: seen.setdefault("x_in", x_in) * 0 + f, "edm", sd)(x, a)
    sigma = level_sigma(a)[:, None]
    c_skip, c_out, c_in = coefficients(sigma, "edm", sd)
    x_ve = x / a[:, None]
    torch.testing.assert_close(seen["x_in"], c_in * x_ve)
    torch.testing.assert_close(eps, (x_ve - c_skip * x_ve - c_out * f) / sigma)
    one = torch.ones(2)                       # sigma = 0: the Table 1 form is 0/0, the limit is eps = -F
    out = Preconditioned(lambda x_in, level: f[:2].float(), "edm", sd)(x[:2].float(), one)
    torch.testing.assert_close(out, -f[:2].float())


@pytest.mark.parametrize("sigma", [1e-3, 0.05, 0.1, 1.0, 80.0])
def test_edm_coefficients_give_unit_variance_inputs_and_targets(sigma):
    """Karras et al. 2022, App. B.6: Var(c_in·x_ve) = 1 and Var((x0 - c_skip·x_ve)/c_out) = 1 for x0 of std sd."""
    sd = 0.1
    c_skip, c_out, c_in = (float(c) for c in coefficients(torch.tensor(sigma, dtype=torch.float64), "edm", sd))
    assert c_in ** 2 * (sigma ** 2 + sd ** 2) == pytest.approx(1.0, rel=1e-12)
    assert ((1 - c_skip) ** 2 * sd ** 2 + c_skip ** 2 * sigma ** 2) / c_out ** 2 == pytest.approx(1.0, rel=1e-12)


def test_lognormal_levels_follow_their_distribution():
    cfg = ObjectiveConfig(levels="lognormal", p_mean=-2.0, p_std=0.5, sigma_min=1e-6)
    sched = NoiseSchedule.linear(1000)
    level = draw_levels(sched, 200_000, cfg, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    log_sigma = level_sigma(level).log()
    assert float(log_sigma.mean()) == pytest.approx(-2.0, abs=0.01)
    assert float(log_sigma.std()) == pytest.approx(0.5, abs=0.01)
    # the fraction below the mean - 1 std of a normal: Phi(-1) = 0.1587
    assert float((log_sigma < -2.5).double().mean()) == pytest.approx(0.1587, abs=0.005)


def test_log_uniform_levels_are_uniform_in_log_sigma_over_their_range():
    cfg = ObjectiveConfig(levels="log-uniform", sigma_min=1e-3)
    sched = NoiseSchedule.linear(1000)
    hi = float(sched.sigmas[-1])
    log_sigma = level_sigma(draw_levels(sched, 100_000, cfg, generator=torch.Generator().manual_seed(1),
                                        dtype=torch.float64)).log()
    assert float(log_sigma.min()) >= math.log(1e-3) - 1e-9 and float(log_sigma.max()) <= math.log(hi) + 1e-9
    assert float(log_sigma.mean()) == pytest.approx((math.log(1e-3) + math.log(hi)) / 2, abs=0.03)
    assert float(log_sigma.var()) == pytest.approx((math.log(hi) - math.log(1e-3)) ** 2 / 12, rel=0.02)


def test_the_wavegrad_distribution_is_the_default_draw():
    sched = NoiseSchedule.linear(50)
    a = draw_levels(sched, 8, None, generator=torch.Generator().manual_seed(3))
    b = draw_levels(sched, 8, ObjectiveConfig(), generator=torch.Generator().manual_seed(3))
    from wavegrad.diffusion import draw_noise_level
    c = draw_noise_level(sched, 8, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, c) and torch.equal(b, c)


def test_edm_weights_make_the_eps_loss_lambda_times_the_denoiser_error():
    """L2: weights·||eps_hat - eps||² = lambda(sigma)·||D - x0||² with lambda = (sigma² + sd²)/(sigma·sd)²."""
    x0, eps, x_t = _state(2)
    sd = 0.1
    eps_hat = eps + 0.3 * torch.randn(eps.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    cfg = ObjectiveConfig(weighting="edm", sigma_data=sd)
    w = loss_weights(LEVELS, cfg, "l2")
    sigma = level_sigma(LEVELS)
    lam = (sigma ** 2 + sd ** 2) / (sigma * sd) ** 2
    d = x_t / LEVELS[:, None] - sigma[:, None] * eps_hat                                    # D in VE terms
    torch.testing.assert_close(w * (eps_hat - eps).square().mean(1), lam * (d - x0).square().mean(1))
    torch.testing.assert_close(loss_weights(LEVELS, cfg, "l1"), w.sqrt())
    assert loss_weights(LEVELS, ObjectiveConfig(), "l2") is None


def test_weighted_diffusion_loss_is_the_weighted_mean_of_each_example():
    x0, eps, _ = _state(3)
    w = torch.tensor([1.0, 2.0, 0.0, 4.0, 0.5], dtype=torch.float64)
    seen = {}

    def denoise(x, level):
        return 0.5 * eps

    loss = diffusion_loss(denoise, x0, LEVELS, eps, kind="l1", weights=w, outputs=seen)
    assert float(loss) == pytest.approx(float((w * 0.5 * eps.abs().mean(1)).mean()), rel=1e-6)  # in fp32
    torch.testing.assert_close(x0_estimate(seen["x_t"], LEVELS, eps), x0)          # eps_hat = eps gives x0 back


def test_spectral_losses_vanish_on_equal_inputs_and_match_the_gain_closed_form():
    """Parallel WaveGAN: a pure gain g gives spectral convergence |1 - g| and log-magnitude |ln g| at every
    resolution; HiFi-GAN's log-mel L1 of a gain is |ln g| (bins above the log floor)."""
    t = torch.arange(8192, dtype=torch.float32) / 22050
    x = (0.3 * torch.sin(2 * math.pi * 220 * t) + 0.2 * torch.sin(2 * math.pi * 1234 * t)
         + 0.05 * torch.randn(8192, generator=torch.Generator().manual_seed(0)))[None]
    feat = MelFeaturizer(MelConfig())
    assert float(stft_loss(x, x)[0]) == 0.0 and float(mel_l1(x, x, feat)[0]) == 0.0
    g = 0.5
    assert float(stft_loss(g * x, x)[0]) == pytest.approx(abs(1 - g) + abs(math.log(g)), rel=1e-3)
    assert float(mel_l1(g * x, x, feat)[0]) == pytest.approx(abs(math.log(g)), rel=1e-3)
    w = spectral_x0_loss(g * x.expand(2, -1), x.expand(2, -1), torch.tensor([1.0, 0.0]), feat)
    assert float(w) == pytest.approx(0.5 * (abs(1 - g) + 2 * abs(math.log(g))), rel=1e-3)


def test_the_rollout_keeps_the_graph_and_sample_does_not_by_default():
    sched = NoiseSchedule.linear(1000)
    rs = rollout_schedule(sched, 3)
    assert len(rs) == 3
    torch.testing.assert_close(rs.sigmas[[0, -1]], sched.sigmas[[0, -1]])
    w = torch.nn.Parameter(torch.tensor(0.5))

    def denoise(x, level):
        return w * x

    x0 = 0.1 * torch.randn(2, 4096, generator=torch.Generator().manual_seed(0))
    loss = rollout_loss(denoise, x0, sched, VocoderLossConfig(rollout_every=1, rollout_steps=3), 256,
                        generator=torch.Generator().manual_seed(1))
    loss.backward()
    assert torch.isfinite(loss) and w.grad is not None and float(w.grad) != 0.0
    out = sample(denoise, (1, 64), rs, sampler="ddim", eta=0.0, generator=torch.Generator().manual_seed(1))
    assert not out.requires_grad


def test_bad_objective_settings_are_one_line_errors():
    with pytest.raises(UserInputError, match="sigma-data"):
        ObjectiveConfig(sigma_data=0).validate()
    with pytest.raises(UserInputError, match="levels"):
        ObjectiveConfig(levels="uniform").validate()
    with pytest.raises(UserInputError, match="rollout-steps"):
        VocoderLossConfig(rollout_every=2, rollout_steps=0).validate()
    with pytest.raises(UserInputError, match="parametrization"):
        Parametrization.from_dict({"name": "v"})


def test_a_bundle_stores_its_parametrization_and_old_ones_read_as_eps():
    cfg = WaveGradConfig.tiny()
    bundle = VocoderBundle.of(cfg, MelConfig(), NoiseSchedule.linear(10), parametrization=Parametrization("edm", 0.1))
    d = bundle.to_dict()
    assert d["parametrization"] == {"name": "edm", "sigma_data": 0.1}
    assert VocoderBundle.from_dict(d).parametrization == Parametrization("edm", 0.1)
    d.pop("parametrization")
    assert VocoderBundle.from_dict(d).parametrization == Parametrization()


def test_an_edm_network_samples_few_steps_on_karras_spacing_unless_told_otherwise():
    """EDM trains on log-normal sigmas: a few-step plan with no schedule named walks Karras' rho-7 levels (eq. 5),
    an eps network's the training schedule respaced; a named schedule, or no step count, is left as asked."""
    train = NoiseSchedule.linear(1000)
    edm = VocoderBundle.of(WaveGradConfig.tiny(), MelConfig(), train, parametrization=Parametrization("edm", 0.1))
    eps = VocoderBundle.of(WaveGradConfig.tiny(), MelConfig(), train)
    levels = lambda plan: plan.sampling.schedule.noise_levels                            # noqa: E731
    karras = levels(edm.plan(6, "karras"))
    torch.testing.assert_close(levels(edm.plan(6)), karras)
    torch.testing.assert_close(levels(edm.plan(nfe=6, sampler="ddim")), karras)
    torch.testing.assert_close(levels(eps.plan(6)), levels(eps.plan(6, "respaced")))
    assert not torch.allclose(levels(edm.plan(6, "respaced")), karras)
    sigmas = ((1 - karras.double() ** 2) / karras.double() ** 2).sqrt().flip(0)       # noisiest first
    rho = sigmas ** (1 / 7)                                                            # equally spaced in sigma^(1/7)
    torch.testing.assert_close(rho.diff(), rho.diff()[:1].expand(5), rtol=1e-3, atol=1e-6)
    assert len(levels(edm.plan(None))) == len(train)                                  # the full schedule, as before


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    make_speech_like_corpus(d, n_clips=4, seed=2)
    write_splits(d, n_val=1, n_test=1)
    return d


def _train(corpus, run_dir, *extra):
    parser = argparse.ArgumentParser()
    add_resume(parser)
    add_arguments(parser, VocoderRun)
    args = parser.parse_args(["--data-dir", str(corpus), "--run-dir", str(run_dir), "--model", "tiny",
                              "--batch-size", "2", "--segment-length", "2048", "--num-workers", "0", "--val-every",
                              "0", "--log-every", "1", "--cpu", *extra])
    return train_vocoder(from_args(VocoderRun, args), resume=args.resume)


def test_an_edm_run_with_every_option_trains_stores_its_parametrization_and_vocodes(corpus, tmp_path):
    flags = ["--parametrization", "edm", "--sigma-data", "0.1", "--levels", "lognormal", "--weighting", "edm",
             "--spectral-weight", "1", "--rollout-every", "2", "--rollout-steps", "2", "--rollout-seconds", "0.05"]
    trainer, path = _train(corpus, tmp_path / "r", "--max-steps", "3", *flags)
    assert all(math.isfinite(h["loss"]) for h in trainer.history if "loss" in h)
    bundle, weights, _ = load_vocoder(path)
    assert bundle.parametrization == Parametrization("edm", 0.1)
    voc = Vocoder.from_checkpoint(path)
    mel = torch.randn(80, 6) - 5
    wav = voc(mel, steps=3, generator=torch.Generator().manual_seed(0), consistency="none")
    # the vocoder samples through the stored parametrisation: the same weights read as eps give another waveform
    plain = Vocoder(bundle.network(weights), bundle=bundle.replace(parametrization=Parametrization()))
    other = plain(mel, steps=3, generator=torch.Generator().manual_seed(0), consistency="none")
    assert torch.isfinite(wav).all() and not torch.allclose(wav, other)
    with pytest.raises(UserInputError, match="parametrization"):     # an eps run cannot resume an edm checkpoint
        _train(corpus, tmp_path / "r", "--max-steps", "4", "--resume", "auto")


def test_learned_variance_refuses_the_options_it_cannot_combine_with(corpus, tmp_path):
    with pytest.raises(UserInputError, match="learn-sigma"):
        _train(corpus, tmp_path / "r", "--max-steps", "1", "--learn-sigma", "--spectral-weight", "1")


# ---- the quality-per-compute recipe ----------------------------------------------------------------------------
def _learning_curve():
    import importlib.util
    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("recipe_learning_curve", root / "recipes" / "learning_curve.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_learning_curve_configuration_is_a_valid_run_that_differs_from_plain_where_it_says(tmp_path):
    lc = _learning_curve()
    plain = lc.run_for("wavegrad", tmp_path)
    assert (plain.objective.parametrization, plain.objective.levels, plain.prior.kind) == ("eps", "wavegrad", "white")
    assert plain.losses.spectral_weight == 0 and plain.losses.rollout_every == 0
    for name, (changes, _) in lc.CONFIGS.items():
        run = lc.run_for(name, tmp_path)
        run.validate()
        assert run.train.run_dir == str(tmp_path / name)
        for key, value in (changes or {}).items():
            section, _, field = key.rpartition(".")
            got = getattr(getattr(run, section), field) if section else getattr(run, field)
            assert got == value, (name, key)


def test_learning_curve_refuses_unknown_configurations_and_bad_milestones_with_exit_2(tmp_path, capsys):
    lc = _learning_curve()
    assert lc.main(["--configs", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown configuration" in capsys.readouterr().err
    assert lc.main(["--configs", "wavegrad", "--minutes", "0", "--out", str(tmp_path)]) == 2
    assert "positive milestone" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_rescoring_refuses_missing_runs_and_bad_nfes_before_writing_anything(tmp_path, capsys):
    lc = _learning_curve()
    out = tmp_path / "out"
    assert lc.main(["--score", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert lc.main(["--score", str(tmp_path), "--score-nfe", "3,x", "--out", str(out)]) == 2
    assert "--score-nfe" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.slow
def test_the_quick_preset_learns_one_real_utterance(tmp_path, monkeypatch):
    """The overfit check (README's numbers come from the same command at 10 minutes): 3 CPU minutes of the quick
    preset on one real utterance, scored on that utterance (DDIM 12 NFE, no mel-consistent sampling). The preset
    before EDM's objective scored log-mel L1 1.69 and STOI 0.56 after 10 minutes; today's measured 0.99 / 0.74
    after 3 (362 steps) and 0.93 / 0.77 after 10."""
    pytest.importorskip("pysptk")
    pytest.importorskip("pystoi")
    import csv
    lc = _learning_curve()
    monkeypatch.chdir(tmp_path)
    assert lc.main(["--one-utterance", "--configs", "quick", "--minutes", "3", "--out", "runs/overfit"]) == 0
    with open(tmp_path / "runs" / "overfit" / "curve.csv") as f:
        row = list(csv.DictReader(f))[-1]
    assert float(row["log_mel_l1"]) < 1.3
    assert float(row["stoi"]) > 0.65
    assert (tmp_path / "runs" / "overfit" / "mels.png").stat().st_size > 10_000     # truth and the run, side by side
