import math

import pytest
import torch

from wavegrad.diffusion import NoiseSchedule, respaced_indices


def test_linear_matches_closed_form():
    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
    assert s.betas.dtype == s.alphas_cumprod.dtype == s.noise_levels.dtype == torch.float64
    assert len(s) == 1000
    assert s.betas[0].item() == pytest.approx(1e-4, abs=1e-15)
    assert s.betas[-1].item() == pytest.approx(0.02, abs=1e-15)
    # alpha_bar_t = prod (1 - beta_s), computed independently in log space
    expected = torch.exp(torch.cumsum(torch.log1p(-s.betas), 0))
    torch.testing.assert_close(s.alphas_cumprod, expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(s.noise_levels ** 2, s.alphas_cumprod, rtol=1e-12, atol=0)


def test_cosine_matches_nichol_dhariwal_eq17():
    n, sft = 1000, 0.008
    s = NoiseSchedule.cosine(n, s=sft)
    f = lambda t: math.cos((t / n + sft) / (1 + sft) * math.pi / 2) ** 2
    for t in [1, 10, 500, 900, 990]:
        assert s.alphas_cumprod[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-10)
    assert s.betas.max().item() == pytest.approx(0.999)  # clipped (Nichol & Dhariwal, §3.2)
    assert (s.betas <= 0.999).all()


def test_respace_keeps_subsequence_and_last_alpha_bar():
    s = NoiseSchedule.linear(1000, 1e-4, 0.02)
    for n in [1, 6, 50, 333, 1000]:
        r = s.respace(n)
        idx = respaced_indices(1000, n)
        assert len(r) == n and idx[-1] == 999 and (idx.diff() > 0).all()
        # uniform spacing: consecutive gaps differ by at most one step
        if n > 1:
            gaps = torch.cat([idx[:1] + 1, idx.diff()])
            assert gaps.max() - gaps.min() <= 1
        # re-deriving betas and taking the cumprod again costs a few float64 ulps per step: 1e-10
        torch.testing.assert_close(r.alphas_cumprod, s.alphas_cumprod[idx], rtol=1e-10, atol=0)
        assert r.alphas_cumprod[-1].item() == pytest.approx(s.alphas_cumprod[-1].item(), rel=1e-10)
        # betas re-derived: 1 - abar_i / abar_{i-1}
        prev = torch.cat([torch.ones(1, dtype=torch.float64), s.alphas_cumprod[idx][:-1]])
        torch.testing.assert_close(r.betas, 1 - s.alphas_cumprod[idx] / prev, rtol=1e-12, atol=0)
    torch.testing.assert_close(s.respace(1000).betas, s.betas, rtol=1e-10, atol=0)


def test_respace_rejects_more_steps_than_available():
    with pytest.raises(ValueError, match="more than it has"):
        NoiseSchedule.linear(10).respace(11)


def test_dict_round_trip_is_exact():
    s = NoiseSchedule.cosine(37)
    d = s.to_dict()
    assert all(type(b) is float for b in d["betas"])
    r = NoiseSchedule.from_dict(d)
    assert torch.equal(r.betas, s.betas) and r == s


@pytest.mark.parametrize("betas, msg", [
    ([], "empty"),
    ([[0.1, 0.2]], "1-D"),
    ([0.1, float("nan")], "NaN"),
    ([0.1, 1.0], r"\(0, 1\)"),
    ([0.0, 0.5], r"\(0, 1\)"),
    ([-0.1], r"\(0, 1\)"),
    ([0.1, float("inf")], "inf"),
])
def test_invalid_betas_raise(betas, msg):
    with pytest.raises(ValueError, match=msg):
        NoiseSchedule.from_betas(betas)


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_invalid_step_counts_raise(n):
    with pytest.raises(ValueError, match="positive integer"):
        NoiseSchedule.linear(n)
