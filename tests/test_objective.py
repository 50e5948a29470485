import pytest
import torch
from scipy import stats

from wavegrad.diffusion import NoiseSchedule, diffusion_loss, draw_noise_level, eps_loss, q_sample, training_noise


def test_noise_level_draw_is_uniform_within_its_bracket():
    """Alg. 1 of WaveGrad: t ~ U{1..T}, level ~ U(l_t, l_{t-1}).

    The level's CDF is then F(x) = 1/T · sum_t clip((x - l_t)/(l_{t-1} - l_t), 0, 1); a KS test
    against it (fixed seed, 20k draws) checks brackets and uniformity at once, and a chi-square
    test checks that each bracket gets 1/T of the draws.
    """
    s = NoiseSchedule.from_betas([0.05, 0.2, 0.4, 0.7])
    l = torch.cat([torch.ones(1, dtype=torch.float64), s.noise_levels])  # l_0 = 1 … l_T
    g = torch.Generator().manual_seed(0)
    x = draw_noise_level(s, 20000, generator=g, dtype=torch.float64)
    assert ((x > l[-1]) & (x <= 1)).all()

    def cdf(v):
        v = torch.as_tensor(v, dtype=torch.float64)[:, None]
        return ((v - l[1:]) / (l[:-1] - l[1:])).clamp(0, 1).mean(1).numpy()

    assert stats.kstest(x.numpy(), cdf).pvalue > 1e-3
    bracket = (x[:, None] < l[None, :]).sum(1)  # level in (l_t, l_{t-1}] -> t
    counts = torch.bincount(bracket, minlength=len(s) + 1)[1:]
    assert counts.sum() == 20000
    assert stats.chisquare(counts.numpy()).pvalue > 1e-3


def test_noise_level_draw_is_reproducible_and_typed():
    s = NoiseSchedule.linear(1000)
    a = draw_noise_level(s, 8, generator=torch.Generator().manual_seed(3))
    b = draw_noise_level(s, 8, generator=torch.Generator().manual_seed(3))
    assert a.dtype == torch.float32 and a.shape == (8,) and torch.equal(a, b)


def test_q_sample_moments():
    """x = l·x0 + sqrt(1-l²)·eps: mean l·x0, variance 1 - l² (Ho et al. eq. 4)."""
    g = torch.Generator().manual_seed(1)
    n = 200_000
    level = torch.tensor([0.9, 0.3], dtype=torch.float64)
    x0 = torch.tensor([[0.5], [-2.0]], dtype=torch.float64).expand(2, n)
    x = q_sample(x0, level, torch.randn(2, n, generator=g, dtype=torch.float64))
    for i in range(2):
        l = level[i].item()
        se = (1 - l * l) ** 0.5 / n ** 0.5  # standard error of the mean
        assert abs(x[i].mean().item() - l * x0[i, 0].item()) < 5 * se
        assert x[i].var().item() == pytest.approx(1 - l * l, rel=0.02)  # SE of var ≈ sqrt(2/n) = 0.3%


def test_q_sample_is_rank_agnostic():
    x0 = torch.ones(2, 3, 4, 5)
    lvl = torch.tensor([1.0, 0.0])
    noise = torch.full_like(x0, 7.0)
    out = q_sample(x0, lvl, noise)
    assert torch.equal(out[0], x0[0]) and torch.equal(out[1], noise[1])


def test_eps_losses():
    a, b = torch.tensor([1.0, -1.0]), torch.tensor([0.0, 1.0])
    assert eps_loss(a, b, "l1").item() == pytest.approx(1.5)
    assert eps_loss(a, b, "l2").item() == pytest.approx(2.5)
    with pytest.raises(ValueError, match="l1"):
        eps_loss(a, b, "huber")


def test_diffusion_loss_of_the_optimal_denoiser_is_the_bayes_error():
    """x0 = 0 exactly: the optimal eps-predictor is x/sqrt(1-l²), whose L2 loss is 0."""
    s = NoiseSchedule.linear(1000)
    opt = lambda x, l: x / (1 - l[:, None] ** 2).sqrt()
    level, z = training_noise(s, (64, 32), generator=torch.Generator().manual_seed(0))
    loss = diffusion_loss(opt, torch.zeros(64, 32), level, z, kind="l2")
    assert loss.item() < 1e-10
    zero = lambda x, l: torch.zeros_like(x)
    # predicting 0 costs E|eps| = sqrt(2/pi) under L1
    level, z = training_noise(s, (256, 512), generator=torch.Generator().manual_seed(0))
    loss = diffusion_loss(zero, torch.zeros(256, 512), level, z, kind="l1")
    assert loss.item() == pytest.approx((2 / torch.pi) ** 0.5, rel=0.01)


def test_training_noise_draws_the_level_then_the_noise_from_one_generator():
    s = NoiseSchedule.linear(100, 1e-3, 0.1)
    level, z = training_noise(s, (5, 7), generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    assert torch.equal(level, draw_noise_level(s, 5, generator=g))
    assert torch.equal(z, torch.randn(5, 7, generator=g))
