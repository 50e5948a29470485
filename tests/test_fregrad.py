"""FreGrad (Nguyen et al. 2024) on the shared vocoder interface: the Haar transform, the parameter count of the
reference, shapes for any even hop, the initial output, the once-per-utterance conditioner, one layout, configs,
the receptive field the long-form windows rely on, and vocoding through a checkpoint."""
import dataclasses
import json
import math

import pytest
import torch

from wavegrad.audio import MelConfig
from wavegrad.diffusion import NoiseSchedule
from wavegrad.errors import UserInputError
from wavegrad.long_form import window_options
from wavegrad.models import VOCODERS, FreGrad, FreGradConfig, count_parameters, vocoder_architecture
from wavegrad.models.fregrad import haar_dwt, haar_idwt

REFERENCE_COUNT = 1_782_548     # kaistmm/fregrad's model with its params.py (the paper's 1.78M)


def closed_form_count(C, L, M, factors, learn_sigma=False):
    """Per layer: FreConv 2C -> 4C (k=3), noise projection 512 -> C, mel projection M -> 2C, output C -> 2C; once:
    the input conv 2 -> C, the embedding MLP 128 -> 512 -> 512, the transposed convs [3, 2s], skip C -> C, and the
    output conv C -> 2 bands (4 with learn_sigma)."""
    per_layer = (2 * C * 4 * C * 3 + 4 * C) + (512 * C + C) + (M * 2 * C + 2 * C) + (C * 2 * C + 2 * C)
    assert per_layer == 26 * C * C + (2 * M + 521) * C
    out = 4 if learn_sigma else 2
    return (L * per_layer + (2 * C + C) + (128 * 512 + 512 + 512 * 512 + 512) + sum(3 * 2 * s + 1 for s in factors)
            + (C * C + C) + (C * out + out))


def test_haar_transform_is_the_closed_form_orthonormal_and_exactly_invertible():
    x = torch.randn(3, 5, 64, generator=torch.Generator().manual_seed(0))
    low, high = haar_dwt(x)
    torch.testing.assert_close(low, (x[..., 0::2] + x[..., 1::2]) / math.sqrt(2))
    torch.testing.assert_close(high, (x[..., 0::2] - x[..., 1::2]) / math.sqrt(2))
    torch.testing.assert_close(haar_idwt(low, high), x)                                 # float32 rounding
    torch.testing.assert_close(low.square().sum() + high.square().sum(), x.square().sum())   # energy
    # the analysis matrix is orthogonal: W W^T = I (so white noise stays white noise of the same variance)
    eye = torch.eye(16, dtype=torch.float64)
    w = torch.cat(haar_dwt(eye), dim=-1)                                                 # rows: W^T's rows
    torch.testing.assert_close(w @ w.T, eye, rtol=0, atol=1e-15)
    xd = x.double()
    assert (haar_idwt(*haar_dwt(xd)) - xd).abs().max() < 1e-14


@pytest.mark.parametrize("learn_sigma", [False, True])
def test_base_has_the_reference_parameter_count(learn_sigma):
    cfg = FreGradConfig.base()
    assert cfg == FreGradConfig() and cfg.upsample_factors == (16, 8)                  # the reference's x16 · x8
    cfg.learn_sigma = learn_sigma
    n = count_parameters(FreGrad(cfg))
    assert n == closed_form_count(32, 30, 80, (16, 8), learn_sigma)
    assert n == REFERENCE_COUNT + (66 if learn_sigma else 0)                           # v: 2 more bands, C·2 + 2
    assert count_parameters(FreGrad(FreGradConfig.tiny())) == closed_form_count(16, 12, 80, (16, 8)) == 539_828
    print(f"FreGrad base: {n} parameters (reference {REFERENCE_COUNT})")


@pytest.mark.parametrize("hop, factors", [(256, (16, 8)), (300, (15, 10)), (254, (127,))])
@pytest.mark.parametrize("learn_sigma", [False, True])
def test_shapes_for_any_even_hop(hop, factors, learn_sigma):
    """hop 300: odd factors; hop 254: hop/2 = 127 is odd, so 5 frames give an odd band length (FreConv pads)."""
    cfg = FreGradConfig.tiny(hop_length=hop)
    assert cfg.upsample_factors == factors
    assert count_parameters(FreGrad(cfg)) == closed_form_count(16, 12, 80, factors)
    net = FreGrad(FreGradConfig(hop_length=hop, upsample_factors=factors, residual_channels=8, residual_layers=4,
                                dilation_cycle=2, learn_sigma=learn_sigma))
    mel = torch.randn(2, 80, 5)
    assert net.encode_mel(mel).shape == (2, 80, 1, 5 * hop // 2)
    out = net(torch.randn(2, 5 * hop), torch.rand(2), mel)
    if learn_sigma:
        assert isinstance(out, tuple) and out[0].shape == out[1].shape == (2, 5 * hop)
    else:
        assert out.shape == (2, 5 * hop)


@pytest.mark.parametrize("kwargs, match", [
    ({"hop_length": 255, "upsample_factors": (255,)}, "must be even"),
    ({"residual_channels": 0}, "residual_channels"),
    ({"residual_layers": -1}, "residual_layers"),
    ({"n_mels": 0}, "n_mels"),
    ({"upsample_factors": (16, 16)}, "multiply to hop/2 = 128"),
    ({"upsample_factors": (128, 1)}, ">= 2"),
])
def test_bad_configs_are_user_errors(kwargs, match):
    with pytest.raises(UserInputError, match=match):
        FreGradConfig(**kwargs)
    with pytest.raises(UserInputError):
        FreGradConfig.base(hop_length=301)


def test_config_round_trip_and_registry():
    cfg = FreGradConfig.tiny(n_mels=100, hop_length=300)
    cfg.learn_sigma = True
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["upsample_factors"] == [15, 10]
    assert FreGradConfig.from_dict(d) == cfg
    with pytest.raises(UserInputError, match="unknown"):
        FreGradConfig.from_dict({**d, "signal_condition": False})
    assert VOCODERS["fregrad"] == (FreGrad, FreGradConfig)
    assert vocoder_architecture(cfg) == vocoder_architecture(FreGrad(cfg)) == "fregrad"


def test_initial_output_is_constant_per_band_whatever_the_inputs():
    """Zero output weights (the reference's init), default biases: eps_hat = the inverse DWT of the constant bands
    (b_low, b_high), a period-2 waveform independent of x, the level and the mel; v likewise."""
    torch.manual_seed(0)
    net = FreGrad(FreGradConfig(residual_channels=16, residual_layers=12, dilation_cycle=6, learn_sigma=True))
    b = net.output_projection.bias.detach()
    assert b.abs().min() > 0
    r = math.sqrt(0.5)
    with torch.no_grad():
        for seed in (1, 2):
            g = torch.Generator().manual_seed(seed)
            eps, v = net(torch.randn(2, 3 * 256, generator=g), torch.rand(2, generator=g),
                         torch.randn(2, 80, 3, generator=g))
            for out, (lo, hi) in ((eps, b[:2]), (v, b[2:])):
                expected = torch.stack([(lo + hi) * r, (lo - hi) * r]).repeat(3 * 128)
                torch.testing.assert_close(out, expected.expand(2, -1), rtol=1e-6, atol=1e-7)


def _small(learn_sigma=False, hop=256):
    torch.manual_seed(0)
    net = FreGrad(dataclasses.replace(FreGradConfig.base(hop_length=hop), residual_channels=16, residual_layers=6,
                                      dilation_cycle=3, learn_sigma=learn_sigma))
    with torch.no_grad():
        net.output_projection.weight.normal_(0, 0.5)        # the zero init would make the output input-independent
    return net


def test_the_once_per_utterance_conditioner_equals_the_per_step_computation():
    net = _small().eval()
    x, mel = torch.randn(2, 6 * 256), torch.randn(2, 80, 6)
    features = net.encode_mel(mel)
    for level in (0.9, 0.3, 0.01):
        lv = torch.full((2,), level)
        torch.testing.assert_close(net.denoise(x, net.noise_embeddings(lv), features), net(x, lv, mel))


@pytest.mark.parametrize("channels_last", [True, False])
def test_one_layout_in_both_memory_formats_and_learned_variance(channels_last):
    net = _small(learn_sigma=True).eval()
    x, level, mel = torch.randn(2, 4 * 256), torch.rand(2), torch.randn(2, 80, 4)
    net.channels_last = False
    with torch.no_grad():
        ref = net(x, level, mel)
        net.channels_last = channels_last
        out = net(x, level, mel)
    assert isinstance(out, tuple) and out[0].shape == out[1].shape == x.shape
    for a, b in zip(out, ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_receptive_field_is_within_the_context_the_windows_keep():
    """Autograd on base: eps at an output sample (a multiple of 4) depends on x exactly within 4·Σd + 3 samples
    (Σd = 511: FreConv's taps are 4d audio samples apart, and the two Haar pair groupings add 3), i.e. within
    CONTEXT_FRAMES = 9 mel frames at hop 256; so does its dependence on the mel."""
    net = FreGrad(FreGradConfig.base())
    with torch.no_grad():
        net.output_projection.weight.normal_()
    assert net.CONTEXT_FRAMES == 9
    frames = 24
    x = torch.randn(1, frames * 256, requires_grad=True)
    mel = torch.randn(1, 80, frames, requires_grad=True)
    centre = frames * 128
    net(x, torch.tensor([0.5]), mel)[0, centre].backward()
    reach = (x.grad[0].abs() > 0).nonzero().flatten()
    assert (centre - int(reach.min()), int(reach.max()) - centre) == (4 * 511, 4 * 511 + 3)
    mel_reach = (mel.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert max(abs(int(f) - frames // 2) for f in mel_reach) <= net.CONTEXT_FRAMES


@pytest.mark.parametrize("hop", [256, 254])
def test_a_change_at_sample_0_stays_within_context_frames(hop):
    """The network is local: perturbing x[0] leaves every output sample CONTEXT_FRAMES·hop or more away bit-equal
    (also on the odd band length of hop 254 x 9 frames, where FreConv pads)."""
    net = _small(hop=hop).eval()
    frames = 9
    g = torch.Generator().manual_seed(3)
    x, mel = torch.randn(1, frames * hop, generator=g), torch.randn(1, 80, frames, generator=g)
    x2 = x.clone()
    x2[0, 0] += 10.0
    with torch.no_grad():
        a, b = net(x, torch.tensor([0.5]), mel), net(x2, torch.tensor([0.5]), mel)
    far = net.CONTEXT_FRAMES * hop
    assert far < frames * hop and not torch.equal(a[:, :far], b[:, :far])
    assert torch.equal(a[:, far:], b[:, far:])


def test_fregrad_vocodes_through_a_checkpoint_and_windows_equal_one_pass(tmp_path):
    from wavegrad.vocoder import Vocoder, save_vocoder_checkpoint
    path = save_vocoder_checkpoint(tmp_path / "fg.pt", _small(), MelConfig(), NoiseSchedule.linear(1000))
    voc = Vocoder.from_checkpoint(path)
    assert isinstance(voc.model, FreGrad) and voc.bundle.architecture == "fregrad"
    assert window_options(voc.model, 1, None, 1, 32)["overlap_frames"] == max(32, 4 * voc.model.CONTEXT_FRAMES)
    mel = torch.randn(80, 70, generator=torch.Generator().manual_seed(1)) - 5
    whole = voc(mel, steps=3, generator=torch.Generator().manual_seed(2), chunk_frames=None)
    chunked = voc(mel, steps=3, generator=torch.Generator().manual_seed(2), chunk_frames=16)
    assert whole.shape == (70 * 256,) and (chunked - whole).abs().max() < 1e-3
