"""Samplers driven by closed-form optimal denoisers.

For data x0 ~ N(mu, s²) and x_t = l·x0 + sqrt(1-l²)·eps, x_t is Gaussian and the optimal
eps-predictor is E[eps | x_t] = sqrt(1-l²)·(x_t - l·mu) / (l²s² + 1 - l²). A correct sampler
driven by it must return samples with mean mu and std s, up to (a) Monte-Carlo error and
(b) the sampler's discretisation error. Because every update is linear-Gaussian, (b) is computed
exactly below by propagating (mean, variance) through the same update in float64, independently
of the sampler's code path, so each test bounds both errors separately.
"""
import math

import pytest
import torch

from wavegrad.diffusion import NoiseSchedule, ddim_sigma, ddim_step, sample

MU, S = 0.7, 0.3


def gaussian_eps(mu, s):
    def denoise(x, level):
        l = level.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)
        return (1 - l * l).sqrt() * (x - l * mu) / (l * l * s * s + 1 - l * l)
    return denoise


def propagate_moments(schedule, eta, mu, s):
    """Exact mean/variance of the sampler's output for Gaussian data, by the linear update."""
    abar = [1.0] + schedule.alphas_cumprod.tolist()
    m, v = 0.0, 1.0  # x_T ~ N(0, 1)
    for i in range(len(abar) - 1, 0, -1):
        at, ap = abar[i], abar[i - 1]
        l, sig = math.sqrt(at), ddim_sigma(at, ap, eta)
        k = math.sqrt(1 - at) / (l * l * s * s + 1 - l * l)  # eps = k·(x - l·mu)
        c0 = math.sqrt(ap) / l                                # x0^ = (x - sqrt(1-at)·eps)/l
        ce = math.sqrt(max(1 - ap - sig * sig, 0)) - math.sqrt(ap) * math.sqrt(1 - at) / l
        a = c0 + ce * k                                        # x_prev = a·x + b + sig·z
        b = -ce * k * l * mu
        m, v = a * m + b, a * a * v + sig * sig
    return m, math.sqrt(v)


@pytest.mark.parametrize("eta, shape", [(1.0, (4000, 25)), (0.0, (200, 5, 10, 10))])
def test_gaussian_data_moments_1000_steps(eta, shape):
    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
    x = sample(gaussian_eps(MU, S), shape, s, eta=eta, generator=torch.Generator().manual_seed(0),
               dtype=torch.float64)
    assert x.shape == shape
    n = x.numel()
    m_exact, s_exact = propagate_moments(s, eta, MU, S)
    # (b) discretisation + prior mismatch (x_T ~ N(0,1) while the true marginal has mean l_T·mu,
    # l_T = 0.0064). Ancestral sampling with the posterior variance beta~ drops the per-step term
    # coef²·Var[x0|x_t] of the true reverse variance, an O(1/T) error: 1.25% of s at T = 1000
    # for this low-variance data; DDIM's is smaller. Bound: 2% at 1000 steps, and first-order
    # convergence (4x the steps -> error / 3 at least) checked below.
    assert m_exact == pytest.approx(MU, rel=0.01) and s_exact == pytest.approx(S, rel=0.02)
    # (a) Monte Carlo: 5 standard errors (SE of mean s/sqrt(n), of std ≈ s/sqrt(2n)); n = 1e5
    assert abs(x.mean().item() - m_exact) < 5 * s_exact / math.sqrt(n)
    assert abs(x.std().item() - s_exact) < 5 * s_exact / math.sqrt(2 * n)


@pytest.mark.parametrize("eta", [1.0, 0.0])
def test_discretisation_error_shrinks_first_order(eta):
    err = []
    for T in (1000, 4000):
        sched = NoiseSchedule.linear(T, 0.1 / T, 20.0 / T)  # same continuous-time process
        err.append(abs(propagate_moments(sched, eta, MU, S)[1] - S))
    assert err[1] < err[0] / 3


def test_ddim_short_schedule_matches_its_exact_moments():
    """A 10-step respaced DDIM is far from the data (few steps), but must match its own exact recursion."""
    s = NoiseSchedule.linear(1000).respace(10)
    x = sample(gaussian_eps(MU, S), (100_000,), s, eta=0.0, generator=torch.Generator().manual_seed(1),
               dtype=torch.float64)
    m_exact, s_exact = propagate_moments(s, 0.0, MU, S)
    assert abs(x.mean().item() - m_exact) < 5 * s_exact / math.sqrt(x.numel())
    assert abs(x.std().item() - s_exact) < 5 * s_exact / math.sqrt(2 * x.numel())


def test_eta1_step_is_the_ddpm_posterior():
    """Ho et al. 2020, eq. 7: mu~ = sqrt(abar_prev)·beta/(1-abar)·x0 + sqrt(alpha)(1-abar_prev)/(1-abar)·x_t,
    beta~ = (1-abar_prev)/(1-abar)·beta. One eta=1 step given the true eps must have that mean and std."""
    abar_prev, beta = 0.6, 0.1
    abar_t = abar_prev * (1 - beta)
    x0 = torch.tensor(0.8, dtype=torch.float64)
    eps = torch.tensor(-1.3, dtype=torch.float64)
    x_t = math.sqrt(abar_t) * x0 + math.sqrt(1 - abar_t) * eps
    mean_ho = (math.sqrt(abar_prev) * beta / (1 - abar_t) * x0
               + math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar_t) * x_t)
    var_ho = (1 - abar_prev) / (1 - abar_t) * beta
    assert ddim_sigma(abar_t, abar_prev, 1.0) == pytest.approx(math.sqrt(var_ho), rel=1e-12)
    det = ddim_step(x_t, eps, abar_t, abar_prev, 1.0, torch.tensor(0.0, dtype=torch.float64))
    assert det.item() == pytest.approx(mean_ho.item(), rel=1e-12)
    z = torch.randn(400_000, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = ddim_step(x_t.expand(z.shape), eps.expand(z.shape), abar_t, abar_prev, 1.0, z)
    assert out.std().item() == pytest.approx(math.sqrt(var_ho), rel=0.01)  # SE of std ≈ 0.11%
    # eta = 0: deterministic, and it lands exactly on the DDIM point sqrt(ap)·x0 + sqrt(1-ap)·eps
    ddim = ddim_step(x_t, eps, abar_t, abar_prev, 0.0, None)
    assert ddim.item() == pytest.approx(math.sqrt(abar_prev) * 0.8 + math.sqrt(1 - abar_prev) * -1.3, rel=1e-12)


def test_mixture_of_two_gaussians_lands_in_both_modes():
    """x0 ~ ½N(-m, s²) + ½N(m, s²): E[x0|x_t] is a posterior-weighted mix of the two Gaussian answers."""
    m, s = 2.0, 0.25

    def denoise(x, level):
        l = level[:, None].to(x.dtype)
        var = l * l * s * s + 1 - l * l
        logw = torch.stack([-(x - l * mu) ** 2 / (2 * var) for mu in (-m, m)])  # [2, B, D]
        w = torch.softmax(logw, 0)
        x0 = sum(w[k] * (mu + l * s * s / var * (x - l * mu)) for k, mu in enumerate((-m, m)))
        return (x - l * x0) / (1 - l * l).sqrt()

    x = sample(denoise, (2000, 10), NoiseSchedule.linear(1000), eta=1.0,
               generator=torch.Generator().manual_seed(3), dtype=torch.float64).flatten()
    pos = x > 0
    frac = pos.double().mean().item()
    assert abs(frac - 0.5) < 5 * 0.5 / math.sqrt(x.numel())  # binomial SE
    for mode, sel in ((m, pos), (-m, ~pos)):
        assert x[sel].mean().item() == pytest.approx(mode, abs=0.02)
        assert x[sel].std().item() == pytest.approx(s, rel=0.05)


def test_sampling_is_reproducible_and_x_T_is_used():
    s = NoiseSchedule.linear(100).respace(5)
    den = gaussian_eps(0.0, 1.0)
    a = sample(den, (3, 8), s, generator=torch.Generator().manual_seed(7))
    b = sample(den, (3, 8), s, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    x_T = torch.randn(3, 8)
    c = sample(den, (3, 8), s, eta=0.0, x_T=x_T)
    d = sample(den, (3, 8), s, eta=0.0, x_T=x_T)
    assert torch.equal(c, d) and not torch.equal(a, c)


def test_clip_x0_bounds_the_prediction():
    """With clipping, the final step returns x0^ itself, which must lie in the clip range."""
    s = NoiseSchedule.linear(1000).respace(6)
    wild = lambda x, l: -50 * x  # an untrained net that blows amplitudes up
    x = sample(wild, (4, 16), s, eta=0.0, generator=torch.Generator().manual_seed(0), clip_x0=1.0)
    assert x.abs().max().item() <= 1.0 + 1e-6


def test_bad_eta():
    with pytest.raises(ValueError, match="eta"):
        sample(gaussian_eps(0, 1), (1, 2), NoiseSchedule.linear(10), eta=1.5)
