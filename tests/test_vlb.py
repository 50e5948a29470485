"""Improved DDPM's learned variance and the variational bound, against closed forms and direct integration."""
import math

import pytest
import torch

from wavegrad.diffusion import NoiseSchedule, sample
from wavegrad.diffusion.vlb import (LAMBDA_VLB, approx_standard_normal_cdf, discretized_gaussian_log_likelihood,
                                    hybrid_loss, learned_log_variance, nll_bpd, normal_kl, posterior, prior_bpd,
                                    training_step_pair)

D = torch.distributions


def test_normal_kl_is_the_kl_of_two_gaussians():
    m1, m2 = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64), torch.tensor([0.1, 0.5, 2.0], dtype=torch.float64)
    lv1, lv2 = torch.tensor([-1.0, 0.5, 0.0], dtype=torch.float64), torch.tensor([0.2, -0.3, 0.0], dtype=torch.float64)
    ref = D.kl_divergence(D.Normal(m1, (0.5 * lv1).exp()), D.Normal(m2, (0.5 * lv2).exp()))
    torch.testing.assert_close(normal_kl(m1, lv1, m2, lv2), ref, rtol=1e-12, atol=1e-12)


def test_discretised_gaussian_likelihood_against_direct_integration():
    """log of the Gaussian mass of each 8-bit bin, the edge bins open to ±inf: within the tanh CDF's error."""
    values = torch.tensor([-1.0, -0.5 + 1 / 255, 0.0 - 1 / 255, 0.3 + 1 / 255, 1.0], dtype=torch.float64)
    mean = torch.tensor([-0.9, -0.45, 0.02, 0.3, 0.95], dtype=torch.float64)
    log_scale = torch.tensor([-2.0, -3.0, -4.0, -1.5, -2.5], dtype=torch.float64)
    got = discretized_gaussian_log_likelihood(values, mean, log_scale)
    for v, m, ls, g in zip(values.tolist(), mean.tolist(), log_scale.tolist(), got.tolist()):
        lo = -math.inf if v < -0.99 else v - 1 / 255
        hi = math.inf if v > 0.99 else v + 1 / 255
        lo, hi = max(lo, m - 12 * math.exp(ls)), min(hi, m + 12 * math.exp(ls))   # the mass beyond 12 std is ~0
        t = torch.linspace(lo, hi, 200_001, dtype=torch.float64)
        mass = torch.trapezoid(torch.exp(D.Normal(m, math.exp(ls)).log_prob(t)), t)
        assert g == pytest.approx(math.log(float(mass)), abs=2e-3), (v, m, ls)
    x = torch.linspace(-6, 6, 1001, dtype=torch.float64)
    assert (approx_standard_normal_cdf(x) - D.Normal(0.0, 1.0).cdf(x)).abs().max() < 2e-4


def test_learned_variance_spans_beta_and_beta_tilde():
    abar_t, abar_prev = torch.tensor([0.5]), torch.tensor([0.6])
    beta, beta_tilde, c0, ct = posterior(abar_t, abar_prev)
    assert float(beta) == pytest.approx(1 - 0.5 / 0.6) and float(beta_tilde) == pytest.approx(0.4 / 0.5 * float(beta))
    v = torch.tensor([[1.0, -1.0, 0.0]])
    logvar = learned_log_variance(v, beta, beta_tilde.log())
    torch.testing.assert_close(logvar.exp()[0], torch.stack([beta, beta_tilde,
                                                             (beta * beta_tilde).sqrt()]).flatten())
    # the posterior mean's coefficients (Ho et al. 2020, eq. 7) reconstruct x_t's own mean: c0 + ct·sqrt(abar_t) ...
    assert float(c0 + ct * abar_t.sqrt()) == pytest.approx(float(abar_prev.sqrt()))


def test_training_pairs_step_to_the_next_training_level():
    s = NoiseSchedule.linear(1000)
    lv = s.noise_levels
    level = torch.stack([(lv[9] + lv[10]) / 2, (1 + lv[0]) / 2]).float()
    abar_t, abar_prev, _ = training_step_pair(s, level)
    assert float(abar_prev[0]) == pytest.approx(float(s.alphas_cumprod[9]))
    assert float(abar_prev[1]) == 1.0 and float(abar_t[0]) == pytest.approx(float(level[0]) ** 2)


# ---- bits/dim of Gaussian data with the exact model: the bound is tight -----------------------------------------
MU, S = 0.1, 0.3


def exact_model(schedule_abar):
    """eps_hat = E[eps | x_t] and the v that gives the true reverse variance beta~ + coef_x0²·Var[x0 | x_t] of
    Gaussian data, for the step pair of ``schedule_abar`` at each level (beta~ clipped as vlb_term clips it)."""
    abar = schedule_abar
    fallback = posterior(abar[1:2], abar[0:1])[1]

    def denoise(x, level):
        a = level.double()[:, None, None, None]
        s2 = 1 - a * a
        eps = s2.sqrt() * (x.double() - a * MU) / (a * a * S * S + s2)
        post_var = S * S * s2 / (a * a * S * S + s2)                       # Var[x0 | x_t]
        i = (abar[None, :] - level.double()[:, None] ** 2).abs().argmin(1)  # the step pair being scored / sampled
        abar_t = abar[i]
        abar_prev = torch.where(i > 0, abar[(i - 1).clamp(min=0)], torch.ones_like(abar_t))
        beta, bt, c0, _ = posterior(abar_t, abar_prev)
        bt = torch.where(bt > 0, bt, fallback)
        var = bt[:, None, None, None] * (abar_prev < 1)[:, None, None, None] + c0[:, None, None, None] ** 2 * post_var
        frac = (var.log() - bt.log()[:, None, None, None]) / (beta.log() - bt.log())[:, None, None, None]
        return eps.to(x.dtype), (2 * frac - 1).expand_as(x).to(x.dtype)
    return denoise


def test_bits_per_dim_of_a_known_gaussian_is_its_entropy():
    """8-bit data quantised from N(mu, s²): with the exact reverse process the variational bound equals the data's
    entropy, h(N(mu, s²)) - log2(bin) = 0.5·log2(2πe·s²) + log2(255/2) bits per dimension (7.30 here)."""
    schedule = NoiseSchedule.linear(1000)
    g = torch.Generator().manual_seed(0)
    x0 = ((torch.randn(256, 1, 4, 4, generator=g, dtype=torch.float64) * S + MU).clamp(-1, 1) * 127.5).round() / 127.5
    res = nll_bpd(exact_model(schedule.alphas_cumprod), x0.float(), schedule, generator=g)
    entropy = 0.5 * math.log2(2 * math.pi * math.e * S * S) + math.log2(255 / 2)
    assert res["total"].mean().item() == pytest.approx(entropy, rel=0.01)
    fixed = nll_bpd(lambda x, l: exact_model(schedule.alphas_cumprod)(x, l)[0], x0.float(), schedule, generator=g)
    assert fixed["total"].mean().item() > res["total"].mean().item()     # beta~ alone: a looser bound
    assert float(prior_bpd(x0, float(schedule.alphas_cumprod[-1])).mean()) < 1e-4


@pytest.mark.parametrize("steps", [10, 50])
def test_ddpm_samples_with_the_learned_variance_follow_the_exact_reverse_process(steps):
    """Ancestral sampling with the exact model's v uses the true reverse kernels, so the only departure from the
    data is DDPM's noise-free last step (it returns E[x0 | x_1]): the output std is sqrt(s² - Var[x0 | x_1])
    exactly (0.199 at 10 respaced steps, 0.296 at 50), where beta~ alone falls further short (0.172, 0.253)."""
    schedule = NoiseSchedule.linear(1000).respace(steps)
    den = exact_model(schedule.alphas_cumprod)
    x = sample(den, (8000, 1, 2, 2), schedule, sampler="ddpm", generator=torch.Generator().manual_seed(1),
               dtype=torch.float64)
    a2 = float(schedule.alphas_cumprod[0])
    expect = math.sqrt(S * S - S * S * (1 - a2) / (a2 * S * S + 1 - a2))
    n = x.numel()
    assert x.mean().item() == pytest.approx(MU, abs=5 * S / math.sqrt(n))
    assert x.std().item() == pytest.approx(expect, abs=5 * expect / math.sqrt(2 * n))
    fixed = sample(lambda x, l: den(x, l)[0], (8000, 1, 2, 2), schedule, sampler="ddpm",
                   generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert expect - fixed.std().item() > 10 * expect / math.sqrt(2 * n)


def test_hybrid_loss_is_l_simple_plus_lambda_t_l_vlb_with_a_stop_gradient_on_the_mean():
    """L_hybrid = L_simple + 0.001·T·L_t (the one-sample estimate of 0.001·L_vlb), the mean of L_t computed from a
    detached eps_hat: the eps path's gradient is L_simple's alone, v's comes from the bound."""
    from wavegrad.diffusion.vlb import vlb_term
    schedule = NoiseSchedule.linear(100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 1, 2, 2, generator=g) * 2 - 1
    level, z = torch.rand(4, generator=g) * 0.9 + 0.05, torch.randn(4, 1, 2, 2, generator=g)
    w = torch.tensor([0.3, 0.2], requires_grad=True)
    total = hybrid_loss(lambda x, l: (x * w[0], torch.zeros_like(x) + w[1]), x0, level, z, schedule, kind="l2")
    x_t = level[:, None, None, None] * x0 + (1 - level[:, None, None, None] ** 2).sqrt() * z
    simple = (x_t * w[0] - z).square().mean()
    abar_t, abar_prev, fallback = training_step_pair(schedule, level)
    bound = vlb_term(x0.double(), x_t.double(), abar_t, abar_prev, (x_t * w[0]).detach().double(),
                     (torch.zeros_like(x_t) + w[1]).double(), fallback)
    assert total.item() == pytest.approx((simple + LAMBDA_VLB * 100 * bound.mean()).item(), rel=1e-5)
    grad_total = torch.autograd.grad(total, w)[0]
    grad_simple = torch.autograd.grad(simple, w, allow_unused=True)[0]
    assert grad_total[0].item() == pytest.approx(grad_simple[0].item(), rel=1e-6)   # no L_vlb gradient into eps
    assert grad_total[1].item() != 0                                                 # v is trained by L_vlb
