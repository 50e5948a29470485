"""DiffWave (Kong et al. 2021) on the shared core: parameter counts, shapes for any hop, the once-per-utterance
conditioner, one layout, the receptive field the long-form windows rely on, and vocoding through the Vocoder."""
import math

import pytest
import torch

from wavegrad.audio import MelConfig
from wavegrad.diffusion import NoiseSchedule
from wavegrad.long_form import window_options
from wavegrad.models import DiffWave, DiffWaveConfig, count_parameters


def lmnt_count(C, L, M):
    """The closed form of the layout (lmnt-com/diffwave's): per layer a noise projection 512->C, a dilated conv
    C->2C (k=3), a mel projection M->2C and an output projection C->2C; once: the input conv 1->C, the embedding
    MLP 128->512->512 (328,704), one upsampler of two [3, 32] transposed convs (194), skip C->C, output C->1."""
    return L * (8 * C * C + (2 * M + 519) * C) + C * C + 4 * C + 328_899


@pytest.mark.parametrize("preset, channels, paper", [(DiffWaveConfig.base, 64, 2.64e6), (DiffWaveConfig.large, 128, 6.91e6)])
def test_parameter_counts_against_the_paper(preset, channels, paper):
    """The paper's BASE 2.64M and LARGE 6.91M (Table 1) count one upsampler per layer and weight-norm gains; with
    one shared upsampler and none, the counts are 0.7% / 0.4% lower and exactly the closed form."""
    n = count_parameters(DiffWave(preset()))
    assert n == lmnt_count(channels, 30, 80)
    assert abs(n - paper) / paper < 0.01
    assert {2619971: "base", 6885315: "large"}[n]


@pytest.mark.parametrize("hop, factors", [(256, (16, 16)), (300, (20, 15))])
def test_shapes_for_any_hop(hop, factors):
    cfg = DiffWaveConfig.base(hop_length=hop)
    assert cfg.upsample_factors == factors
    net = DiffWave(DiffWaveConfig(hop_length=hop, upsample_factors=factors, residual_channels=8, residual_layers=4,
                                  dilation_cycle=2))
    mel = torch.randn(2, 80, 5)
    assert net.encode_mel(mel).shape == (2, 80, 1, 5 * hop)
    out = net(torch.randn(2, 5 * hop), torch.rand(2), mel)
    assert out.shape == (2, 5 * hop)
    with pytest.raises(ValueError, match="multiply to the hop"):
        DiffWaveConfig(hop_length=300, upsample_factors=(16, 16))


def _small(learn_sigma=False):
    torch.manual_seed(0)
    net = DiffWave(DiffWaveConfig(residual_channels=16, residual_layers=6, dilation_cycle=3, learn_sigma=learn_sigma))
    with torch.no_grad():
        net.output_projection.weight.normal_(0, 0.5)        # the zero init would make every output equal
    return net


def test_the_once_per_utterance_conditioner_equals_the_per_step_computation():
    net = _small().eval()
    x, mel = torch.randn(2, 6 * 256), torch.randn(2, 80, 6)
    features = net.encode_mel(mel)
    for level in (0.9, 0.3, 0.01):
        lv = torch.full((2,), level)
        torch.testing.assert_close(net.denoise(x, net.noise_embeddings(lv), features), net(x, lv, mel))


def test_sampling_upsamples_the_mel_once_per_utterance():
    from wavegrad.vocoder import Vocoder
    net = _small()
    calls = []
    net.upsampler.register_forward_hook(lambda *a: calls.append(1))
    voc = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000))
    voc(torch.randn(80, 6) - 5, steps=7, chunk_frames=None, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1                                  # 7 steps, one utterance, one window


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


@pytest.mark.parametrize("frames, cycle, signal", [(4, 3, False), (1, 10, True)])
def test_the_cpu_gemm_body_computes_the_layers_function(frames, cycle, signal):
    """CPU inference runs GemmBody (no conv module is called) and equals the conv layers (grad on, the training path)
    for a batch at different levels, non-zero biases, and dilations up to twice the clip (512 > 256 samples: taps
    that read only padding)."""
    torch.manual_seed(0)
    net = DiffWave(DiffWaveConfig(residual_channels=8, residual_layers=2 * cycle, dilation_cycle=cycle,
                                  signal_condition=signal))
    with torch.no_grad():
        net.output_projection.weight.normal_(0, 0.5)
        for layer in net.layers:
            layer.output_projection.bias.normal_(0, 0.5)
    x, level, mel = torch.randn(3, frames * 256), torch.tensor([0.9, 0.3, 0.01]), torch.randn(3, 80, frames)
    sig = torch.randn(3, frames * 256) if signal else None
    ref = net(x, level, mel, sig).detach()
    calls = []
    for layer in net.layers:
        layer.register_forward_hook(lambda *a: calls.append(1))
    net(x, level, mel, sig)
    assert len(calls) == len(net.layers)                    # the hook sees the conv layers run with grad on
    calls.clear()
    with torch.no_grad():
        out = net(x, level, mel, sig)
    assert not calls and (ref - out).abs().max() < 1e-5 * ref.abs().max()
    with torch.no_grad():
        for i in range(3):                                  # one utterance at a time equals the batch
            torch.testing.assert_close(net(x[i:i + 1], level[i:i + 1], mel[i:i + 1],
                                           None if sig is None else sig[i:i + 1])[0], out[i])
        # denoise's batches of one broadcast as in the conv layers
        emb, features = net.noise_embeddings(level[:1]), net.encode_mel(mel[:1], None if sig is None else sig[:1])
        net.channels_last = False
        conv = net.denoise(x, emb, features)
        net.channels_last = None
        torch.testing.assert_close(net.denoise(x, emb, features), conv, rtol=1e-5, atol=1e-5)


def test_receptive_field_is_within_the_context_the_windows_keep():
    """Autograd: eps at one sample depends on x only within the sum of the dilations (6139-sample receptive field
    of §3.3 for 30 layers), i.e. within CONTEXT_FRAMES mel frames, which the long-form overlap keeps."""
    net = DiffWave(DiffWaveConfig.base())
    with torch.no_grad():
        net.output_projection.weight.normal_()
    frames = 40
    x = torch.randn(1, frames * 256, requires_grad=True)
    mel = torch.randn(1, 80, frames, requires_grad=True)
    centre = frames * 128
    net(x, torch.tensor([0.5]), mel)[0, centre].backward()
    reach = (x.grad[0].abs() > 0).nonzero().flatten()
    assert max(centre - int(reach.min()), int(reach.max()) - centre) == 3 * 1023       # sum of dilations, k = 3
    mel_reach = (mel.grad[0].abs().sum(0) > 0).nonzero().flatten()
    assert max(abs(int(f) - frames // 2) for f in mel_reach) <= net.CONTEXT_FRAMES


def test_diffwave_vocodes_through_a_checkpoint_and_windows_equal_one_pass(tmp_path):
    from wavegrad.vocoder import Vocoder, save_vocoder_checkpoint
    torch.manual_seed(0)
    path = save_vocoder_checkpoint(tmp_path / "dw.pt", _small(), MelConfig(), NoiseSchedule.linear(1000))
    voc = Vocoder.from_checkpoint(path)
    assert isinstance(voc.model, DiffWave) and window_options(voc.model, 1, None, 1, 32)["overlap_frames"] == max(32, 4 * voc.model.CONTEXT_FRAMES)
    assert DiffWave(DiffWaveConfig.base()).CONTEXT_FRAMES == 13                  # 52 frames of overlap for base
    mel = torch.randn(80, 70, generator=torch.Generator().manual_seed(1)) - 5
    whole = voc(mel, steps=3, generator=torch.Generator().manual_seed(2), chunk_frames=None)
    chunked = voc(mel, steps=3, generator=torch.Generator().manual_seed(2), chunk_frames=16)
    assert whole.shape == (70 * 256,) and (chunked - whole).abs().max() < 1e-3
