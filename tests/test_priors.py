"""Data-dependent priors on the shared core: closed forms for a Gaussian prior, PriorGrad's std and SpecGrad's filter.

Gaussian data x0 ~ N(mu, C) with prior noise eps = L z (Sigma = L Lᵀ): x_t = a·x0 + s·eps is Gaussian and the
optimal eps-predictor is E[eps | x_t] = s·Sigma·(a² C + s² Sigma)⁻¹ (x_t - a·mu). Every sampler driven by it,
drawing its noise through the prior, must return the data's mean and covariance: in the whitened coordinates
L⁻¹x the whole process is the white-noise diffusion of the data L⁻¹x0.
"""
import math

import numpy as np
import pytest
import torch

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.audio.priors import (PriorConfig, SpecGradFilter, build_prior, frame_energy, priorgrad_std,
                                   prior_statistics, specgrad_response)
from wavegrad.diffusion import DiagonalPrior, NoiseSchedule, Prior, diffusion_loss, sample
from wavegrad.errors import UserInputError

TRAIN = NoiseSchedule.linear(1000)
MU = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)
C = torch.tensor([[0.30, 0.10, 0.00], [0.10, 0.20, 0.05], [0.00, 0.05, 0.10]], dtype=torch.float64)
L = torch.tensor([[0.8, 0.0, 0.0], [0.3, 0.5, 0.0], [-0.2, 0.1, 0.4]], dtype=torch.float64)   # a correlated prior


class MatrixPrior(Prior):
    """A full-covariance prior on the last axis: color(z) = z Lᵀ, whiten(r) = r L⁻ᵀ (exact)."""

    def __init__(self, L):
        self.L, self.L_inv = L, torch.linalg.inv(L)

    def color(self, z):
        return z @ self.L.T.to(z.dtype)

    def whiten(self, r):
        return r @ self.L_inv.T.to(r.dtype)


def gaussian_eps(prior_L):
    sigma = prior_L @ prior_L.T

    def denoise(x, level):                                          # x [B, 3]
        out = torch.empty_like(x)
        for a in level.unique():
            a = float(a)
            s = math.sqrt(1 - a * a)
            gain = s * sigma @ torch.linalg.inv(a * a * C + s * s * sigma)
            rows = level == a
            out[rows] = (x[rows] - a * MU) @ gain.T
        return out
    return denoise


@pytest.mark.parametrize("sampler, schedule, options", [
    ("ddpm", TRAIN, {}),
    ("heun", NoiseSchedule.karras(200, float(TRAIN.sigmas[0]), float(TRAIN.sigmas[-1])), {}),
    ("dpmpp-2m", NoiseSchedule.karras(200, float(TRAIN.sigmas[0]), float(TRAIN.sigmas[-1])), {}),
])
def test_samplers_with_a_correlated_prior_reach_the_data_distribution(sampler, schedule, options):
    n = 40_000
    x = sample(gaussian_eps(L), (n, 3), schedule, sampler=sampler, prior=MatrixPrior(L), dtype=torch.float64,
               generator=torch.Generator().manual_seed(0), **options)
    mean, cov = x.mean(0), torch.cov(x.T)
    se = (torch.diagonal(C) / n).sqrt()
    assert ((mean - MU).abs() < 5 * se).all(), (mean, MU)
    # DDPM's O(1/T) variance error is ~1% at T = 1000 (tests/test_sampling.py); Monte Carlo ~1% at n = 4e4
    torch.testing.assert_close(cov, C, rtol=0, atol=0.03 * float(C.max()) + 5 * float(C.max()) * math.sqrt(2 / n))


def test_the_prior_changes_the_start_and_the_step_noise():
    """With the same generator, a prior scaling by 2 scales the start and every step's noise: a DDPM run with a
    denoiser that predicts nothing returns exactly twice the white run's output."""
    zero = lambda x, l: torch.zeros_like(x)                                       # noqa: E731
    white = sample(zero, (2, 5), TRAIN.respace(4), sampler="ddpm", generator=torch.Generator().manual_seed(1))
    double = sample(zero, (2, 5), TRAIN.respace(4), sampler="ddpm", generator=torch.Generator().manual_seed(1),
                    prior=DiagonalPrior(torch.tensor(2.0)))
    torch.testing.assert_close(double, 2 * white)


def test_loss_is_the_mahalanobis_form_on_known_tensors():
    g = torch.Generator().manual_seed(3)
    x0, z, eps_hat = (torch.randn(4, 3, generator=g, dtype=torch.float64) for _ in range(3))
    level = torch.tensor([0.9, 0.5, 0.2, 0.05], dtype=torch.float64)
    prior = MatrixPrior(L)
    loss = diffusion_loss(lambda x, l: eps_hat, x0, level, z, kind="l2", prior=prior)
    d = eps_hat - z @ L.T                                             # eps_hat - eps, eps = L z
    maha = torch.einsum("bi,ij,bj->b", d, torch.linalg.inv(L @ L.T), d)   # dᵀ Sigma⁻¹ d per example
    assert loss.item() == pytest.approx(float(maha.sum()) / d.numel(), rel=1e-6)     # the loss is float32
    l1 = diffusion_loss(lambda x, l: eps_hat, x0, level, z, kind="l1", prior=prior)
    assert l1.item() == pytest.approx(float((d @ torch.linalg.inv(L).T).abs().mean()), rel=1e-6)
    seen = {}
    diffusion_loss(lambda x, l: seen.setdefault("x", x), x0, level, z, prior=prior)
    torch.testing.assert_close(seen["x"], level[:, None] * x0 + (1 - level[:, None] ** 2).sqrt() * (z @ L.T))


# ---- PriorGrad ------------------------------------------------------------------------------------------------
CFG = MelConfig()


def test_priorgrad_std_follows_frame_energy_and_its_clamps():
    """E = sqrt(sum_b mel_b); std = clamp((min(E, 4) - E_min) / (4 - E_min), 0.1), held for a hop of samples."""
    values = torch.tensor([math.log(CFG.log_floor), -4.0, -2.0, 0.0, 1.0])          # one frame each
    mel = values[None, None, :].expand(1, 80, 5)
    energy = frame_energy(mel, CFG)[0]
    torch.testing.assert_close(energy, (80 * values.exp()).sqrt())
    e_min = float(energy[0])                                      # silence: sqrt(80 · 1e-5) = 0.0283
    assert e_min == pytest.approx(math.sqrt(80 * 1e-5), rel=1e-5)
    std = priorgrad_std(mel, CFG, e_min)                          # [1, 5 * 256]
    assert std.shape == (1, 5 * CFG.hop_length)
    per_frame = std[0, ::CFG.hop_length]
    expect = ((energy.clamp(max=4.0) - e_min) / (4.0 - e_min)).clamp(min=0.1)
    torch.testing.assert_close(per_frame, expect)
    assert per_frame[0] == pytest.approx(0.1) and per_frame[-1] == pytest.approx(1.0)   # floor; clipped at E = 4
    assert (std[0].view(5, -1) == per_frame[:, None]).all()       # a step function, no interpolation
    assert prior_statistics(PriorConfig(kind="priorgrad"), [mel[0]], CFG) == {"energy_min": pytest.approx(e_min)}


# ---- SpecGrad -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def speech():
    from wavegrad.data.synthetic import synthesize_clip
    wav, _ = synthesize_clip(0, 3)
    n = len(wav) // CFG.hop_length * CFG.hop_length
    return torch.from_numpy(wav[:n].astype(np.float32))


def test_specgrad_whiten_inverts_color_within_its_approximation(speech):
    """L⁻¹ ≈ G⁺ M⁻¹ G is exact but for the STFT's redundancy (G G⁺ ≠ I) and M's variation in time: measured
    relative error 0.033 of |z| for this speech-like clip's filter at the defaults (gain 10, floor 0.1), 0.17 at
    floor 0.01 (the floor bounds M's dynamic range), far from the 1.0 of not inverting at all."""
    mel = MelFeaturizer(CFG)(speech)
    z = torch.randn(1, speech.numel(), generator=torch.Generator().manual_seed(0))
    for floor, bound in ((0.1, 0.05), (0.01, 0.25)):
        prior = build_prior(PriorConfig(kind="specgrad", floor=floor), {}, mel, CFG)
        rel = float((prior.whiten(prior.color(z)) - z).norm() / z.norm())
        assert rel < bound, (floor, rel)
    flat = SpecGradFilter(torch.full_like(prior.response, 0.3 + 0j), CFG, [speech.numel()])
    torch.testing.assert_close(flat.color(z), 0.3 * z, rtol=0, atol=1e-5)    # a flat M is a plain gain: G⁺G = I
    torch.testing.assert_close(flat.whiten(flat.color(z)), z, rtol=0, atol=1e-5)


def test_specgrad_noise_has_the_clips_spectral_envelope(speech):
    """Noise coloured by a (speech-like) clip's mel, brought to the clip's RMS, sits far closer to that mel than
    white noise at the clip's RMS where the floor leaves the envelope its depth: measured log-mel L1 2.33 against
    3.64 at gain 1, floor 1e-3. The trainable defaults (gain 10, floor 0.1: M spans ~60x, not ~700x) flatten the
    quiet bins: 3.29 against 3.64."""
    feat = MelFeaturizer(CFG)
    mel = feat(speech)
    z = torch.randn(1, speech.numel(), generator=torch.Generator().manual_seed(0))
    rms = speech.pow(2).mean().sqrt()
    l1_white = float((feat(z[0] * rms) - mel).abs().mean())
    results = {}
    for gain, floor in ((1.0, 1e-3), (10.0, 0.1)):
        colored = build_prior(PriorConfig(kind="specgrad", gain=gain, floor=floor), {}, mel, CFG).color(z)[0]
        colored = colored * rms / colored.pow(2).mean().sqrt()
        results[gain] = float((feat(colored) - mel).abs().mean())
    assert results[1.0] < 0.7 * l1_white, (results, l1_white)
    assert results[10.0] < l1_white, (results, l1_white)


def test_specgrad_response_is_minimum_phase_of_the_liftered_envelope():
    """|M| is the floored envelope, smooth across frequency (quefrencies beyond the lifter order carry ~no
    energy), and its phase is minimum: the impulse response of every frame front-loads its energy -- more in
    its first n_fft/8 samples than the linear-phase filter of the same magnitude, which centres it."""
    mel = torch.randn(1, 80, 6, generator=torch.Generator().manual_seed(2)) - 4
    m = specgrad_response(mel, CFG, lifter=24, floor=1e-3, gain=1.0)
    n = CFG.n_fft
    assert m.shape == (1, n // 2 + 1, 7) and m.is_complex()
    assert (m.abs() >= 1e-3 * 0.999).all()
    h_min = torch.fft.irfft(m, n=n, dim=1)                                     # [1, n, frames]
    h_lin = torch.fft.irfft(m.abs(), n=n, dim=1).roll(n // 2, dims=1)          # same magnitude, linear phase
    head = lambda h: h[:, : n // 8].square().sum(1) / h.square().sum(1)       # noqa: E731
    assert (head(h_min) > 0.9).all() and (head(h_min) > head(h_lin) + 0.5).all()
    torch.testing.assert_close(torch.fft.rfft(h_min, n=n, dim=1).abs(), m.abs(), rtol=1e-4, atol=1e-7)


def test_bad_prior_configs_are_one_line_errors():
    with pytest.raises(UserInputError, match="--prior must be one of"):
        PriorConfig(kind="pink").validate()
    with pytest.raises(UserInputError, match="std_min"):
        PriorConfig(kind="priorgrad", std_min=0).validate()
