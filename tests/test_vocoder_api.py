"""The Vocoder API: shapes, batching of clips of different lengths, per-clip seeds, long-form windows.

A random-weight tiny WaveGrad is enough here: every property tested is about plumbing (shapes, noise
streams, windows and their joins), not audio quality. Few steps and short clips keep this file fast.
"""
import math

import pytest
import torch

from wavegrad.audio import MelConfig
from wavegrad.diffusion import NoiseSchedule
from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.long_form import crossfade_weights, plan_windows
from wavegrad.vocoder import Vocoder, vocode

HOP = 256
# Float rounding of the network (~1e-6; conv kernels differ with batch size and input length) is
# multiplied by sqrt(1 - abar_T) / sqrt(abar_T) ≈ 160 in the first step of a short respaced linear(1000)
# schedule, so "equal up to rounding" means |difference| of a few 1e-4 here.
ROUNDING = 1e-3


@pytest.fixture(scope="module")
def voc():
    torch.manual_seed(0)
    return Vocoder(WaveGrad(WaveGradConfig.tiny()), MelConfig(), NoiseSchedule.linear(1000))


def _mel(frames, seed=0, batch=None):
    g = torch.Generator().manual_seed(seed)
    shape = (80, frames) if batch is None else (batch, 80, frames)
    return torch.randn(shape, generator=g) - 5.0


def _gen(seed):
    return torch.Generator().manual_seed(seed)


# ---- shapes -------------------------------------------------------------------------------------------
def test_call_shapes_2d_and_3d(voc):
    assert voc(_mel(6), steps=2, generator=_gen(0)).shape == (6 * HOP,)
    assert voc(_mel(6, batch=3), steps=2, generator=_gen(0)).shape == (3, 6 * HOP)


def test_vocode_batch_shapes_of_different_lengths(voc):
    frames = [5, 11, 1, 7]
    wavs = voc.vocode_batch([_mel(f, seed=f) for f in frames], steps=2, seed=0, batch_size=3)
    assert [tuple(w.shape) for w in wavs] == [(f * HOP,) for f in frames]
    assert all(torch.isfinite(w).all() for w in wavs)
    assert voc.vocode_batch([], steps=2, seed=0) == []


def test_short_input_is_bitwise_the_old_vocode(voc):
    """One window per clip: __call__ is exactly vocode() (same noise stream, same network calls)."""
    mel = _mel(9, batch=2)
    new = voc(mel, steps=3, generator=_gen(1))
    old = vocode(voc.model, mel, voc.plan(3).sampling.schedule, generator=_gen(1))
    assert torch.equal(new, old)


# ---- determinism across batch composition --------------------------------------------------------------
def test_per_clip_seeds_make_batch_composition_irrelevant(voc):
    """Clip i's noise comes from seed + i: batch_size and neighbours don't change equal-length clips,
    and clip i alone with generator seed + i gives the same waveform."""
    mels = [_mel(8, seed=s) for s in range(3)]
    one = voc.vocode_batch(mels, steps=3, seed=10, batch_size=1)
    three = voc.vocode_batch(mels, steps=3, seed=10, batch_size=3)
    for a, b in zip(one, three):
        torch.testing.assert_close(a, b, rtol=0, atol=ROUNDING)
    alone = voc(mels[2], steps=3, generator=_gen(12))
    torch.testing.assert_close(alone, one[2], rtol=0, atol=ROUNDING)


def test_padding_next_to_a_longer_clip_only_touches_the_tail(voc):
    """A short clip padded with silence beside a longer one keeps its start; only its last frames,
    within reach of the padding through the receptive field, may change."""
    short, long_ = _mel(16, seed=1), _mel(40, seed=2)
    alone = voc.vocode_batch([short], steps=2, seed=3)[0]
    padded = voc.vocode_batch([short, long_], steps=2, seed=3, batch_size=2)[0]
    assert padded.shape == alone.shape
    torch.testing.assert_close(padded[: 4 * HOP], alone[: 4 * HOP], rtol=0, atol=ROUNDING)


# ---- long-form windows ----------------------------------------------------------------------------------
def test_plan_windows_cover_with_equal_lengths():
    assert plan_windows(50, None, 8) == [(0, 50)]
    assert plan_windows(40, 32, 8) == [(0, 40)]
    wins = plan_windows(100, 24, 16)
    assert wins[0][0] == 0 and wins[-1][1] == 100
    assert all(z - a == 40 for a, z in wins)                              # no padding needed to batch them
    assert all(wins[j][1] - wins[j + 1][0] >= 16 for j in range(len(wins) - 1))


@pytest.mark.parametrize("frames,chunk,overlap", [(100, 24, 16), (41, 32, 8), (130, 20, 32), (90, 30, 0)])
def test_crossfade_weights_partition_unity_and_keep_context(frames, chunk, overlap):
    wins = plan_windows(frames, chunk, overlap)
    total = torch.zeros(frames * HOP)
    for (a, z), w in zip(wins, crossfade_weights(wins, HOP, overlap)):
        w = torch.ones((z - a) * HOP) if w is None else w
        assert (w >= 0).all() and (w <= 1).all()
        total[a * HOP:z * HOP] += w
        if overlap:   # a quarter of the nominal overlap at each inner edge is context only (weight 0)
            ctx = min(HOP * overlap // 4, HOP * (z - a) // 8)
            if a > 0:
                assert w[:ctx].abs().max() == 0
            if z < frames:
                assert w[-ctx:].abs().max() == 0
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-6)


def test_seam_is_continuous_when_windows_disagree():
    """Windows whose signals differ by an offset d are joined by a ramp: the largest sample-to-sample
    step at a seam stays within the signal's own typical step plus d / ramp length, while a hard cut
    (overlap 0) jumps by d."""
    frames, chunk, overlap, d = 100, 24, 16, 0.5
    t = torch.arange(frames * HOP, dtype=torch.float32)
    base = 0.3 * torch.sin(2 * math.pi * 220 * t / 22050)
    typical = base.diff().abs().max()

    def join(ov):
        wins = plan_windows(frames, chunk, ov)
        out = torch.zeros_like(base)
        for j, ((a, z), w) in enumerate(zip(wins, crossfade_weights(wins, HOP, ov))):
            piece = base[a * HOP:z * HOP] + d * j                             # window j is off by d * j
            out[a * HOP:z * HOP] += piece if w is None else w * piece
        return out

    smooth, hard = join(overlap), join(0)
    ramp = 2 * (HOP * overlap // 4)
    assert smooth.diff().abs().max() <= typical + d / ramp + 1e-5
    assert hard.diff().abs().max() >= d - typical


@pytest.mark.parametrize("sampler, schedule", [("ddim", "respaced"), ("ddpm", "respaced"), ("euler", "karras"),
                                               ("heun", "karras"), ("dpmpp-2m", "karras"), ("pc", "respaced"),
                                               ("langevin", "karras")])
def test_chunked_equals_unchunked(voc, sampler, schedule):
    """Same generator -> same starting noise (and per-step noise) for the whole clip, chunked or not, for
    every sampler: the windowing is a denoiser wrapper, so what holds for one network call holds for all.

    Windows of 48 frames every 16 (3 windows, 2 seams, overlaps of 32 frames): each window has 8 frames
    of context beyond its last non-zero crossfade weight, more than WaveGrad's per-step receptive field
    of ±5 frames, so every window's eps equals the whole clip's eps up to float rounding (~1e-6: conv
    kernels differ with the input length). The first step of the 4-step respaced schedule multiplies
    eps errors by sqrt(1 - abar_T) / sqrt(abar_T) ≈ 160 (x0 = (x - sqrt(1 - abar) eps) / sqrt(abar)),
    so the waveforms agree to ~2e-4 (measured 1.5e-4 for DDIM, 5e-5 for DDPM); we allow 1e-3 —
    everywhere, seams included, which is stronger than "away from the seams". The control with 1 frame
    of context (below the receptive field) differs by O(0.1-1), so the tolerance does test the context.
    """
    mel = _mel(80, seed=4)
    plan = {"steps": 4, "sampler": sampler, "schedule": schedule}
    whole = voc(mel, generator=_gen(5), chunk_frames=None, **plan)
    chunked = voc(mel, generator=_gen(5), chunk_frames=16, overlap_frames=32, batch_size=2, **plan)
    assert len(plan_windows(80, 16, 32)) >= 3
    assert (chunked - whole).abs().max() < ROUNDING
    starved = voc(mel, generator=_gen(5), chunk_frames=16, overlap_frames=4, **plan)
    assert (starved - whole).abs().max() > 1e-2


# ---- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mel,match", [
    (torch.randn(7, 80), "transpose"),
    (torch.randn(80, 0), "no frames"),
    (torch.full((80, 4), float("nan")), "NaN"),
    (torch.randn(40, 4), "bands"),
    (torch.randn(1, 1, 80, 4), "shape"),
])
def test_bad_mels_are_user_errors(voc, mel, match):
    with pytest.raises(UserInputError, match=match):
        voc(mel, steps=1)
    with pytest.raises(UserInputError, match="mel #1"):
        voc.vocode_batch([_mel(3), mel], steps=1, seed=0)


@pytest.mark.parametrize("kwargs,match", [
    ({"batch_size": 0}, "batch_size"), ({"chunk_frames": 0}, "chunk_frames"),
    ({"overlap_frames": -1}, "overlap_frames"), ({"eta": 1.5}, "eta"), ({"steps": 0}, "steps"),
    ({"schedule": "nope"}, "no schedule named"),
])
def test_bad_options_are_user_errors(voc, kwargs, match):
    with pytest.raises(UserInputError, match=match):
        voc.vocode_batch([_mel(3)], **{"steps": 1, **kwargs}, seed=0)


@pytest.mark.parametrize("prior", ["priorgrad", "specgrad"])
def test_priors_are_computed_per_clip_so_windows_and_batches_do_not_matter(voc, prior):
    """The prior is computed once per clip from its whole mel and applied to the whole clip's noise: chunked
    equals unchunked for every prior, and a clip's waveform does not depend on the clips batched with it."""
    from wavegrad.audio.priors import PriorConfig
    pv = Vocoder(voc.model, MelConfig(), voc.train_schedule, prior=PriorConfig(kind=prior),
                 prior_stats={"energy_min": 0.03})
    mel = _mel(80, seed=4)
    plan = {"steps": 4, "sampler": "ddpm"}
    whole = pv(mel, generator=_gen(5), chunk_frames=None, **plan)
    chunked = pv(mel, generator=_gen(5), chunk_frames=16, overlap_frames=32, batch_size=2, **plan)
    assert (chunked - whole).abs().max() < ROUNDING
    mels = [_mel(8, seed=s) for s in range(3)]
    one, three = (pv.vocode_batch(mels, steps=3, seed=10, batch_size=b) for b in (1, 3))
    for a, b in zip(one, three):
        torch.testing.assert_close(a, b, rtol=0, atol=ROUNDING)
    white = voc(mel, generator=_gen(5), chunk_frames=None, **plan)
    assert (white - whole).abs().max() > 1e-2                              # the prior does change the sample
