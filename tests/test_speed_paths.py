"""Fast paths must agree with the reference paths: the optimised WaveGrad blocks against the paper's
formulas written out plainly, and the bf16 inference path against fp32 on the same noise.

Speed itself is never asserted here (see ``python -m wavegrad.benchmarks.speed``).
"""
import dataclasses
import warnings

import pytest
import torch
from torch.nn import functional as F

from wavegrad.audio import MelConfig, MelFeaturizer
from wavegrad.diffusion import NoiseSchedule
from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.models.wavegrad import LEAKY_SLOPE
from wavegrad.vocoder import Vocoder, save_vocoder_checkpoint, vocode

HOP = 256
# The optimised blocks reorder linear work (1x1 convs before nearest upsampling / after box averaging,
# fused addcmul): float rounding only. 1e-5 of the output's scale is ~100x the fp32 rounding we measure.
REL_TOL = 1e-5


# ---- the reference: Figs. 4-6 written out on [B, C, L] tensors, reading the same modules' weights ------------
def _lrelu(x):
    return F.leaky_relu(x, LEAKY_SLOPE)


def _conv(conv, x):
    """The module's weights applied by plain F.conv1d: independent of the model's layout handling."""
    return F.conv1d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation)


def _ref_film(film, x, emb):
    h = _lrelu(_conv(film.input_conv, x)) + emb[:, :, None].to(x.dtype)
    return _conv(film.output_conv, h).chunk(2, dim=1)


def _ref_ublock(ub, x, shift, scale):
    up = (lambda t: t) if ub.factor == 1 else (lambda t: F.interpolate(t, scale_factor=ub.factor, mode="nearest"))
    c1, c2, c3, c4 = ub.convs
    res = _conv(ub.residual, up(x))
    h = _conv(c1, up(_lrelu(x)))
    h = _conv(c2, _lrelu(shift + scale * h))
    x = res + h
    h = _conv(c3, _lrelu(shift + scale * x))
    h = _conv(c4, _lrelu(shift + scale * h))
    return x + h


def _ref_dblock(db, x):
    down = (lambda t: t) if db.factor == 1 else (lambda t: F.avg_pool1d(t, db.factor, db.factor))
    res = down(_conv(db.residual, x))
    h = down(x)
    for conv in db.convs:
        h = _conv(conv, _lrelu(h))
    return h + res


def reference_forward(net: WaveGrad, x, level, mel):
    embs = net.noise_embeddings(level)
    h = _conv(net.input_conv, x.unsqueeze(1))
    skips = [h]
    for db in net.dblocks:
        h = _ref_dblock(db, h)
        skips.append(h)
    y = _conv(net.mel_conv, mel)
    for i, (film, stage) in enumerate(zip(net.films, net.ublocks)):
        shift, scale = _ref_film(film, skips[-1 - i], embs[i])
        for ub in stage:
            y = _ref_ublock(ub, y, shift, scale)
    return _conv(net.output_conv, y).squeeze(1)


def _inputs(frames=12, batch=2, seed=0, hop=HOP):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, frames * hop, generator=g), torch.rand(batch, generator=g) * 0.9 + 0.05,
            torch.randn(batch, 80, frames, generator=g) - 5.0)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


# hop 300 (factors 5,5,3,2,2) exercises odd upsampling / pooling factors in both layouts
TINY_300 = WaveGradConfig.tiny(hop_length=300)


@pytest.mark.parametrize("channels_last", [None, True, False], ids=["auto", "channels-last", "channels-first"])
@pytest.mark.parametrize("cfg", [WaveGradConfig.tiny(), dataclasses.replace(WaveGradConfig.tiny(), ublocks_per_scale=2),
                                 TINY_300], ids=["tiny", "tiny-large-layout", "tiny-hop300"])
def test_optimised_forward_matches_reference(cfg, channels_last):
    torch.manual_seed(0)
    net = WaveGrad(cfg).eval()
    net.channels_last = channels_last
    with torch.no_grad():                 # scale the output conv up so eps_hat is O(1), not ~0.01
        net.output_conv.weight.mul_(100.0)
    x, level, mel = _inputs(hop=cfg.hop_length)
    with torch.inference_mode():
        fast, ref = net(x, level, mel), reference_forward(net, x, level, mel)
    assert fast.shape == ref.shape == x.shape and fast.is_contiguous()
    assert _rel(fast, ref) < REL_TOL


def test_automatic_layout_is_channels_last_exactly_for_cpu_inference():
    net = WaveGrad(WaveGradConfig.tiny())
    x = torch.zeros(1, HOP)
    with torch.no_grad():
        assert net._channels_last(x)
    assert not net._channels_last(x)                                  # training: channels-first
    net.channels_last = False
    with torch.no_grad():
        assert not net._channels_last(x)


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels-first", "channels-last"])
def test_optimised_backward_matches_reference(channels_last):
    """The in-place LReLU / add_ of the fast path must not break autograd, and the gradients must agree."""
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny()).train()
    net.channels_last = channels_last
    x, level, mel = _inputs(frames=8)
    grads = []
    for fwd in (lambda: net(x, level, mel), lambda: reference_forward(net, x, level, mel)):
        net.zero_grad(set_to_none=True)
        fwd().square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    assert _rel(grads[0], grads[1]) < REL_TOL


@pytest.mark.parametrize("channels_last", [False, True], ids=["channels-first", "channels-last"])
def test_optimised_forward_under_bf16_autocast_is_close_to_fp32(channels_last):
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny()).eval()
    net.channels_last = channels_last
    x, level, mel = _inputs()
    with torch.inference_mode():
        ref = net(x, level, mel)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = net(x, level, mel).float()
    assert torch.isfinite(fast).all()
    assert _rel(fast, ref) < 0.05         # bf16 keeps 8 mantissa bits: ~0.4% per op, a few % through ~40 convs


# ---- the bf16 inference path -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return WaveGrad(WaveGradConfig.tiny())


def _log_mel_l1(a, b):
    feat = MelFeaturizer(MelConfig())
    return float((feat(a) - feat(b)).abs().mean())


# Measured for this random tiny net, eta=0, 4 steps, 0.5 s: log-mel L1 ≈ BF16_MEASURED (0.0063) between the
# bf16 and fp32 outputs (the output itself is noise-like: its log-mel spans ~ -11 .. 0); a real trained tiny
# checkpoint measured 0.023 at 6 steps (benchmark note). The bound is 5x the measurement here:
# bf16 rounds each op's output to 8 mantissa bits (rel. 2^-9), so the network's eps changes by ~1% and the
# DDIM update passes that change on scaled by at most sqrt(1 - abar) / sqrt(abar) per step; a regression
# (e.g. x_t or the schedule arithmetic in bf16) gives changes of order 1. Short and few steps: on CPUs
# without AVX-512 BF16 (this CI machine) bf16 convolutions take torch's slow reference kernels (~25x fp32).
BF16_MEASURED = 0.0063
BF16_BOUND = 5 * BF16_MEASURED


def test_bf16_vocoder_close_to_fp32_on_same_noise(nets):
    mel = torch.randn(80, 43, generator=torch.Generator().manual_seed(1)) - 5.0
    outs = {}
    for precision in ("fp32", "bf16"):
        voc = Vocoder(nets, MelConfig(), NoiseSchedule.linear(1000), precision=precision)
        outs[precision] = voc(mel, steps=4, eta=0.0, generator=torch.Generator().manual_seed(0), chunk_frames=None)
    assert outs["bf16"].dtype == torch.float32 and torch.isfinite(outs["bf16"]).all()
    assert not torch.equal(outs["bf16"], outs["fp32"])          # the bf16 path really ran
    assert _log_mel_l1(outs["fp32"], outs["bf16"]) < BF16_BOUND


def test_bf16_windowed_and_vocode_function_agree(nets):
    """The chunked sampler and vocode() apply the same autocast: one window == vocode() bitwise."""
    mel = torch.randn(1, 80, 16, generator=torch.Generator().manual_seed(2)) - 5.0
    sched = NoiseSchedule.linear(1000).respace(3)
    voc = Vocoder(nets, MelConfig(), NoiseSchedule.linear(1000), precision="bf16")
    a = voc(mel, schedule=sched, eta=1.0, generator=torch.Generator().manual_seed(0))
    b = vocode(nets, mel, sched, eta=1.0, generator=torch.Generator().manual_seed(0), precision="bf16")
    assert torch.equal(a, b)
    assert torch.isfinite(a).all()


def test_precision_is_validated(nets, tmp_path):
    with pytest.raises(UserInputError, match="precision"):
        Vocoder(nets, MelConfig(), NoiseSchedule.linear(1000), precision="fp16")
    path = save_vocoder_checkpoint(tmp_path / "v.pt", nets, MelConfig(), NoiseSchedule.linear(1000))
    with pytest.raises(UserInputError, match="precision"):
        Vocoder.from_checkpoint(path, precision="half")
    assert Vocoder.from_checkpoint(path, precision="bf16").precision == "bf16"
    assert Vocoder.from_checkpoint(path).precision == "fp32"


def test_speed_benchmark_smoke(capsys):
    from wavegrad.benchmarks import speed
    speed.main(["--presets", "tiny", "--seconds", "0.05", "--iters", "1", "--vocode-clips", "1", "--no-isolate",
                "--precision", "fp32"])
    out = capsys.readouterr().out
    assert "[fp32]" in out and "torch=" in out and "threads=" in out and "tiny" in out


# ---- compiled inference ------------------------------------------------------------------------------------------
def _mels(*frames):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(80, f, generator=g) - 5.0 for f in frames]


def test_compiled_vocoding_feeds_the_network_one_fixed_shape():
    """With compile, every window batch is padded to batch_size windows of chunk + overlap frames (a compiled
    network sees one shape); clips of at least that length give what the eager path gives."""
    from wavegrad.models.precision import Compiled
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny())
    shapes = []
    voc = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000))
    eager = voc.vocode_batch(_mels(300, 40, 9), steps=2, seed=0, chunk_frames=64, overlap_frames=32, batch_size=2)
    fixed = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000))
    fixed.network = Compiled.__new__(Compiled)
    fixed.network.fn = lambda *a: (shapes.append(tuple(a[0].shape)), net.denoise(*a))[1]
    fixed.network.compiled = None
    out = fixed.vocode_batch(_mels(300, 40, 9), steps=2, seed=0, chunk_frames=64, overlap_frames=32, batch_size=2)
    assert set(shapes) == {(2, 96 * 256)}
    torch.testing.assert_close(out[0], eager[0], rtol=0, atol=1e-3)              # windowed throughout: the same
    assert all(torch.isfinite(w).all() for w in out)


def test_compile_falls_back_to_eager_with_one_warning(monkeypatch):
    """Where torch.compile cannot compile (no C++ compiler...), the network runs eagerly after one warning."""
    def broken(fn, **kw):
        def call(*a):
            raise RuntimeError("no C++ compiler found")
        return call
    monkeypatch.setattr(torch, "compile", broken)
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny())
    mel = _mels(20)[0]
    eager = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000)).vocode_batch([mel], steps=2, seed=0)[0]
    voc = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000), compile=True)
    with pytest.warns(UserWarning, match="could not compile"):
        out = voc.vocode_batch([mel], steps=2, seed=0)[0]
    assert voc.network.compiled is None and torch.isfinite(out).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")                                                   # only once
        voc.vocode_batch([mel], steps=2, seed=0)
    assert out.shape == eager.shape


@pytest.mark.slow
def test_compiled_network_equals_eager_within_float_tolerance():
    """torch.compile (inductor) of WaveGrad tiny: the same vocoding as eager within float rounding (compiles once,
    30-60 s on two CPU cores). The clip spans whole windows, so the fixed shape pads nothing (a clip shorter than
    a window is padded to it, and its last frames then differ as next to a longer clip in a batch)."""
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny())
    mels = _mels(400)
    eager = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000)).vocode_batch(mels, steps=3, seed=0)[0]
    voc = Vocoder(net, MelConfig(), NoiseSchedule.linear(1000), compile=True)
    assert voc.warm_up() > 0
    torch.testing.assert_close(voc.vocode_batch(mels, steps=3, seed=0)[0], eager, rtol=0, atol=2e-3)


def test_auto_precision_is_bf16_only_on_cpus_with_hardware_bf16(monkeypatch):
    import wavegrad.models.precision as P
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny())
    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: False)
    assert Vocoder(net, MelConfig(), NoiseSchedule.linear(1000)).precision == "fp32"
    monkeypatch.setattr(P, "cpu_has_fast_bf16", lambda: True)
    assert Vocoder(net, MelConfig(), NoiseSchedule.linear(1000)).precision == "bf16"
    assert Vocoder(net, MelConfig(), NoiseSchedule.linear(1000), precision="fp32").precision == "fp32"
    with pytest.raises(UserInputError, match="precision must be one of auto, fp32, bf16"):
        Vocoder(net, MelConfig(), NoiseSchedule.linear(1000), precision="fp16")
