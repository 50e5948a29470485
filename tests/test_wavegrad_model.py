"""WaveGrad network: shapes, parameter counts against the paper, conditioning, gradients, errors."""
from __future__ import annotations

import math

import pytest
import torch

from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig, count_parameters, noise_level_embedding


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return WaveGrad(WaveGradConfig.tiny()).eval()


def _inputs(cfg: WaveGradConfig, batch: int = 2, frames: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames * cfg.hop_length, generator=g)          # [B, T]
    level = torch.rand(batch, generator=g) * 0.9 + 0.05                   # [B] sqrt(alpha_bar)
    mel = torch.randn(batch, cfg.n_mels, frames, generator=g) - 5.0       # [B, n_mels, frames]
    return x, level, mel


def _count(cfg: WaveGradConfig) -> int:
    with torch.device("meta"):                    # shapes only: skips the (slow) orthogonal init
        return count_parameters(WaveGrad(cfg))


@pytest.mark.parametrize("kwargs, factors", [
    (dict(), (4, 4, 4, 2, 2)),
    (dict(n_mels=128, hop_length=300), (5, 5, 3, 2, 2)),
])
def test_shapes_for_hop_256_and_300(kwargs, factors):
    cfg = WaveGradConfig.tiny(**kwargs)
    assert cfg.upsample_factors == factors and math.prod(factors) == cfg.hop_length
    net = WaveGrad(cfg)
    x, level, mel = _inputs(cfg)
    with torch.no_grad():
        out = net(x, level, mel)
    assert out.shape == x.shape and out.dtype == torch.float32 and torch.isfinite(out).all()


@pytest.mark.parametrize("preset, n_mels, hop, low, high", [
    # The paper (Table 1) gives whole millions: Base "15M", Large "23M"; we accept [15M, 16M) and
    # [23M, 24M). With the paper's own 128-band, hop-300 features Base is 15.92M, the count of the
    # widely used PyTorch re-implementation (15.9M); with 80 bands the 3x1 mel conv is 48*768*3 smaller.
    ("base", 80, 256, 15.0e6, 16.0e6),
    ("base", 128, 300, 15.0e6, 16.0e6),
    ("large", 80, 256, 23.0e6, 24.0e6),
    ("large", 128, 300, 23.0e6, 24.5e6),
    ("tiny", 80, 256, 0.5e6, 1.0e6),
    ("tiny", 128, 300, 0.5e6, 1.0e6),
])
def test_parameter_counts_match_the_paper(preset, n_mels, hop, low, high):
    assert low <= _count(getattr(WaveGradConfig, preset)(n_mels=n_mels, hop_length=hop)) < high


def test_large_minus_base_is_the_extra_factor1_ublocks():
    # closed form: a UBlock c->c has a 1x1 (c*c + c) and four 3x1 convs (3*c*c + c each)
    ublock = lambda c: (c * c + c) + 4 * (3 * c * c + c)
    expected = sum(ublock(c) for c in WaveGradConfig.base().upsample_channels)
    diff = _count(WaveGradConfig.large()) - _count(WaveGradConfig.base())
    assert diff == expected


def test_noise_level_changes_output(tiny):
    x, level, mel = _inputs(tiny.cfg)
    with torch.no_grad():
        a = tiny(x, level, mel)
        b = tiny(x, level * 0.5, mel)
        c = tiny(x, level, mel + 1.0)
    assert (a - b).abs().mean() > 1e-3 * a.abs().mean()
    assert (a - c).abs().mean() > 1e-3 * a.abs().mean()


def test_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny())
    x, level, mel = _inputs(net.cfg)
    eps = torch.randn_like(x)
    (net(x, level, mel) - eps).abs().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_batch_items_are_independent(tiny):
    x, level, mel = _inputs(tiny.cfg, batch=3)
    with torch.no_grad():
        together = tiny(x, level, mel)
        alone = torch.cat([tiny(x[i:i + 1], level[i:i + 1], mel[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_cached_conditioning_equals_forward(tiny):
    x, level, mel = _inputs(tiny.cfg)
    with torch.no_grad():
        direct = tiny(x, level, mel)
        cached = tiny.denoise(x, tiny.noise_embeddings(level), tiny.encode_mel(mel))
    torch.testing.assert_close(direct, cached, rtol=0, atol=0)


def test_noise_level_embedding_closed_form():
    level = torch.tensor([0.0, 0.3, 0.77, 1.0], dtype=torch.float64)
    k = torch.arange(4, dtype=torch.float64)
    phase = 5000.0 * level[:, None] * 10000.0 ** (-k / 4)                 # Vaswani PE of 5000 * level
    expected = torch.cat([phase.sin(), phase.cos()], 1)
    torch.testing.assert_close(noise_level_embedding(level, 8), expected, rtol=0, atol=1e-12)
    # float32: a phase near 5000 is only known to ~ulp(5000) = 5e-4, so sin/cos agree to that
    torch.testing.assert_close(noise_level_embedding(level.float(), 8).double(), expected, rtol=0, atol=1e-3)
    assert noise_level_embedding(level, 7).shape == (4, 7)
    assert (noise_level_embedding(level, 7)[:, -1] == 0).all()


def test_bad_factor_lists_say_what_to_change():
    with pytest.raises(ValueError, match=r"multiply to 300.*hop_length is 256.*\(4, 4, 4, 2, 2\)"):
        WaveGradConfig(hop_length=256, upsample_factors=(5, 5, 3, 2, 2))
    with pytest.raises(ValueError, match="one entry per UBlock"):
        WaveGradConfig(hop_length=64, upsample_factors=(4, 4, 4))
    with pytest.raises(ValueError, match="4 dilations"):
        WaveGradConfig(upsample_dilations=((1, 2, 4),) * 5)
    # unusual hops get a sensible default split instead of a crash
    assert math.prod(WaveGradConfig.tiny(hop_length=240).upsample_factors) == 240


def test_shape_mismatches_say_what_is_expected(tiny):
    x, level, mel = _inputs(tiny.cfg)
    with pytest.raises(UserInputError, match=r"T=800 .*3 frames x hop 256 = 768"):
        tiny(torch.zeros(2, 800), level, mel)
    with pytest.raises(UserInputError, match="300 samples per frame"):
        tiny(torch.zeros(2, 900), level, mel)
    with pytest.raises(UserInputError, match=r"128 bands.*n_mels=80"):
        tiny(x, level, torch.zeros(2, 128, 3))
    with pytest.raises(UserInputError, match=r"\[B, n_mels, frames\]"):
        tiny(x, level, mel[0])
    with pytest.raises(UserInputError, match=r"noise_level must be \[B\]"):
        tiny(x, level[:1], mel)
    with pytest.raises(UserInputError, match="batch sizes differ"):
        tiny(x[:1], level[:1], mel)


def test_config_round_trip_and_unknown_keys():
    cfg = WaveGradConfig.large(n_mels=128, hop_length=300)
    assert WaveGradConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserInputError, match="hop"):
        WaveGradConfig.from_dict({"hop": 256})
