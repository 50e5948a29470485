"""Long audio as a denoiser wrapper: the network runs on overlapping windows, the sampler sees whole clips.

:class:`WindowedDenoiser` binds a batch of log-mels (of any lengths) to a vocoder network and is itself a
denoiser ``denoise(x [B, T], level [B]) -> eps [B, T]`` for :func:`wavegrad.diffusion.sample`: every
sampler vocodes clips of any length with memory flat in length, and there is no sampling loop here.

Long inputs: windows and seams
------------------------------
A clip longer than ``chunk_frames + overlap_frames`` frames is covered by windows of exactly
``W = chunk_frames + overlap_frames`` frames that start every ``chunk_frames`` frames (the last one is
right-aligned to the clip's end, so every window of a long clip has the same length and windows of
different clips batch together without padding). Consecutive windows share at least
``overlap_frames`` frames.

The seams are treated *inside* the sampling, at every network evaluation, not on the finished audio: there is one
waveform state ``x_t`` per clip, and at each step the denoiser runs on every window (in mini-batches of
``batch_size`` windows, so activation memory depends on ``W`` and ``batch_size``, not on the clip's
length) and the windows' predicted noises ``eps`` are joined into one ``eps`` for the whole clip by a
**linear crossfade**. Of each overlap, the outer quarter on either side is context only (weight 0 for
the window that ends or starts there) and the crossfade runs over its middle half; with the default
``overlap_frames=32`` each window therefore sees 8 frames (≈ 93 ms at hop 256 / 22.05 kHz) of real
context beyond any sample it contributes to, more than WaveGrad's per-step receptive field of ±5 frames
(measured for the default factors/dilations, whatever the widths). The two windows' ``eps`` then agree
to float rounding across the crossfade, so the chunked trajectory equals the unchunked one up to float
rounding (tests/test_vocoder_api.py); the crossfade only matters when ``overlap_frames`` is made
smaller than about 4 x the receptive field. Linear (not equal-power) because the two estimates are
almost identical, i.e. fully correlated: a linear crossfade keeps their amplitude, an equal-power one
would boost it by up to 3 dB mid-seam. Because all windows share one noise draw per step (DDPM, eta > 0)
the seams carry no change of random realisation either. Joining independently sampled chunk *outputs*
would not have this property (two random realisations crossfaded: a level dip and phase smearing).

Memory: the network's activations are bounded by ``batch_size`` windows of ``W`` frames; per clip
only O(length) vectors are kept (the state ``x_t``, the joined ``eps``, the noise, the output).

Batches of clips of different lengths: windows are sorted by length and shorter ones (clips shorter than
``W``) are padded in a mini-batch: the log-mel with the silence level, the waveform state with zeros. The
sampler's state is ``[B, T_max]``, each clip's tail beyond its own length held at zero (the wrapper returns
eps = 0 there and :func:`clip_noise` draws zeros there).

Many clips: groups and their noise
----------------------------------
:func:`group_clips` groups clips longest first so that a group holds about ``batch_size`` windows;
:func:`clip_noise` gives clip ``i`` its own CPU generator seeded ``seed + i``, so the noise a clip receives does
not depend on the batch, on the other clips or on the device. Hence (``Vocoder.vocode_batch``)

* a clip of at least ``W`` frames (never padded) gives the same waveform whatever the batch composition, up to
  float rounding of the network for a different mini-batch size (~1e-6);
* so does a shorter clip when it is not padded, i.e. batched only with clips of its own length (or
  ``batch_size=1``); padded next to a longer clip, its last few frames (the receptive field, ~5 frames per step,
  compounding over steps) can differ slightly, the rest does not;
* ``vocode_batch(mels, seed=s)[i]`` equals ``voc(mels[i], generator=torch.Generator().manual_seed(s + i))``.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .diffusion._util import randn
from .diffusion.prediction import Prediction, prediction_of
from .models.precision import network_autocast


def plan_windows(frames: int, chunk_frames: int | None, overlap_frames: int) -> list[tuple[int, int]]:
    """Frame ranges ``[(start, stop), ...]`` of the windows covering ``frames`` frames (module docstring).

    One window ``[0, frames)`` when chunking is off (``chunk_frames=None``) or the clip fits in
    ``chunk_frames + overlap_frames``; otherwise windows of exactly that length every ``chunk_frames``,
    the last one right-aligned to the end.
    """
    width = None if chunk_frames is None else chunk_frames + overlap_frames
    if width is None or frames <= width:
        return [(0, frames)]
    starts = list(range(0, frames - width, chunk_frames)) + [frames - width]
    return [(a, a + width) for a in starts]


def crossfade_weights(windows: Sequence[tuple[int, int]], hop: int, overlap_frames: int) -> list[torch.Tensor | None]:
    """Per-window sample weights that join the windows' outputs (None: weight 1 everywhere).

    Around each boundary (the middle of the overlap of windows j and j+1) window j fades out and
    window j+1 fades in linearly over ``2 h`` samples; the weights of the two sum to 1 exactly and
    no sample is covered by more than two non-zero weights. ``h`` is a quarter of the nominal overlap
    (so each window keeps a quarter of the overlap as pure context beyond its last non-zero weight),
    capped by the actual overlap and by half the distance to the neighbouring boundaries. With no
    overlap the windows are cut hard at the boundary.
    """
    n = len(windows)
    if n == 1:
        return [None]
    bounds = [hop * (windows[j + 1][0] + windows[j][1]) // 2 for j in range(n - 1)]       # samples
    halves = []
    for j in range(n - 1):
        h = hop * overlap_frames // 4
        h = min(h, hop * (windows[j][1] - windows[j + 1][0]) // 4)      # keep >= 1/4 of the real overlap as context
        if j > 0:
            h = min(h, (bounds[j] - bounds[j - 1]) // 2)
        if j < n - 2:
            h = min(h, (bounds[j + 1] - bounds[j]) // 2)
        halves.append(max(h, 0))

    def fade_in(t: torch.Tensor, j: int) -> torch.Tensor:        # 0 -> 1 around bounds[j]
        b, h = bounds[j], halves[j]
        if h == 0:
            return (t >= b).to(torch.float32)
        return ((t + 0.5 - (b - h)) / (2 * h)).clamp(0.0, 1.0)

    weights = []
    for j, (a, z) in enumerate(windows):
        t = torch.arange(a * hop, z * hop, dtype=torch.float64)
        w = torch.ones_like(t)
        if j > 0:
            w = w * fade_in(t, j - 1)
        if j < n - 1:
            w = w * (1.0 - fade_in(t, j))
        weights.append(w.to(torch.float32))
    return weights


class WindowedDenoiser:
    """``denoise(x [B, T_max], level [B]) -> eps [B, T_max]`` for B clips of ``mels[b]`` ([n_mels, frames_b])
    and a vocoder network with ``encode_mel`` / ``noise_embeddings`` / ``denoise`` (WaveGrad, DiffWave).

    The mel conditioning is encoded once per window here, not once per step; each call runs the network on
    every window, ``batch_size`` windows at a time, and joins the windows' eps by the crossfade of
    :func:`crossfade_weights`. ``chunk_frames=None`` gives one window per clip (no seams).
    """

    def __init__(self, model, mels: Sequence[torch.Tensor], *, chunk_frames: int | None = None,
                 overlap_frames: int = 32, batch_size: int | None = None, pad_value: float = 0.0,
                 precision: str = "fp32", network=None, fixed: bool = False,
                 signals: Sequence[torch.Tensor] | None = None):
        self.model, self.precision = model, precision
        self.network = network or model.denoise      # the network's call (compiled or not; Vocoder decides)
        # fixed: every window batch padded to batch_size windows of chunk + overlap frames, so a compiled
        # network sees one input shape whatever the clips' lengths (shorter clips' windows padded with silence)
        self.fixed = (batch_size or len(mels), chunk_frames + overlap_frames) if fixed and chunk_frames else None
        self.hop = model.cfg.hop_length
        self.device, dtype = mels[0].device, mels[0].dtype
        self.lengths = [mel.shape[-1] * self.hop for mel in mels]
        windows = []                                               # (clip, start frame, stop frame, weight)
        for c, mel in enumerate(mels):
            plan = plan_windows(mel.shape[-1], chunk_frames, overlap_frames)
            for (a, z), w in zip(plan, crossfade_weights(plan, self.hop, overlap_frames)):
                windows.append((c, a, z, None if w is None else w.to(self.device, dtype)))
        order = sorted(range(len(windows)), key=lambda k: windows[k][1] - windows[k][2])  # longest first (stable)
        size = batch_size or len(mels)
        self.batches = [[windows[k] for k in order[i:i + size]] for i in range(0, len(order), size)]
        # signals: a waveform per clip the network is conditioned on besides the mel (enhancement: the noisy
        # recording), cut into the same windows
        with network_autocast(self.device, precision):
            self.features = [model.encode_mel(self._mel_batch(mels, b, pad_value)) if signals is None else
                             model.encode_mel(self._mel_batch(mels, b, pad_value), self._signal_batch(signals, b))
                             for b in self.batches]

    def _shape(self, batch) -> tuple[int, int]:
        """(windows, frames) of a batch's network input: its own, or the fixed shape."""
        return self.fixed or (len(batch), max(z - a for _, a, z, _ in batch))

    def _mel_batch(self, mels, batch, pad_value: float) -> torch.Tensor:
        """[b, n_mels, L] of a window batch, shorter windows padded with the silence level."""
        rows, longest = self._shape(batch)
        out = torch.full((rows, mels[0].shape[0], longest), pad_value, device=self.device, dtype=mels[0].dtype)
        for r, (c, a, z, _) in enumerate(batch):
            out[r, :, :z - a] = mels[c][:, a:z]
        return out

    def _signal_batch(self, signals, batch) -> torch.Tensor:
        """[b, L·hop] of a window batch's waveforms, zero-padded like the state."""
        rows, longest = self._shape(batch)
        out = torch.zeros((rows, longest * self.hop), device=self.device, dtype=signals[0].dtype)
        for r, (c, a, z, _) in enumerate(batch):
            out[r, :(z - a) * self.hop] = signals[c][a * self.hop:z * self.hop]
        return out

    def __call__(self, x: torch.Tensor, level: torch.Tensor):
        """eps [B, T_max], or a Prediction (eps, v) for a learned-variance network (both joined the same way)."""
        hop, outs = self.hop, None
        for batch, feats in zip(self.batches, self.features):
            rows, longest = self._shape(batch)
            x_in = x.new_zeros((rows, longest * hop))                                # [b, L * hop]
            for r, (c, a, z, _) in enumerate(batch):
                x_in[r, :(z - a) * hop] = x[c, a * hop:z * hop]
            clips = [c for c, _, _, _ in batch] + [batch[0][0]] * (rows - len(batch))  # padding rows: any level
            lv = level[torch.tensor(clips, device=level.device)]                        # [b]
            with network_autocast(self.device, self.precision):
                out = self.network(x_in, self.model.noise_embeddings(lv), feats)
            out = prediction_of(out)
            out = (out.eps,) if out.v is None else (out.eps, out.v)
            outs = outs or tuple(torch.zeros_like(x) for _ in out)                    # [B, T_max] each
            for joined, part in zip(outs, out):
                part = part.to(x.dtype)
                for r, (c, a, z, w) in enumerate(batch):
                    piece = part[r, :(z - a) * hop]
                    if w is None:
                        joined[c, a * hop:z * hop] = piece
                    else:
                        joined[c, a * hop:z * hop] += w * piece
        return Prediction(*outs) if len(outs) > 1 else outs[0]


def window_options(model, chunk_frames: int | None, overlap_frames: int | None, batch_size: int | None,
                   min_overlap: int) -> dict:
    """:class:`WindowedDenoiser`'s window arguments, checked; overlap None: four times the network's per-step context
    (``CONTEXT_FRAMES``, its receptive half-width), at least ``min_overlap``, so each window keeps a quarter of the
    overlap as context beyond the crossfade."""
    from .vocoder_inputs import check_count
    check_count("chunk_frames", chunk_frames, allow_none=True)
    check_count("batch_size", batch_size, allow_none=True)
    if overlap_frames is None:
        overlap_frames = max(min_overlap, 4 * model.CONTEXT_FRAMES)
    check_count("overlap_frames", overlap_frames, minimum=0)
    return {"chunk_frames": chunk_frames, "overlap_frames": overlap_frames, "batch_size": batch_size}


def group_clips(frames: Sequence[int], batch_size: int, chunk_frames: int | None,
                overlap_frames: int) -> list[list[int]]:
    """Clips (by their frame counts) grouped longest first so that a group holds about ``batch_size`` windows."""
    order = sorted(range(len(frames)), key=lambda i: -frames[i])
    groups, current, budget = [], [], 0
    for i in order:
        n = len(plan_windows(frames[i], chunk_frames, overlap_frames))
        if current and budget + n > batch_size:
            groups.append(current)
            current, budget = [], 0
        current.append(i)
        budget += n
    return groups + ([current] if current else [])


def clip_noise(seeds: Sequence[int], lengths: Sequence[int], device):
    """The noise source of a group of clips: clip ``r`` draws from its own CPU generator seeded ``seeds[r]``, and
    zeros past its ``lengths[r]`` samples."""
    gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]

    def noise(size: torch.Size) -> torch.Tensor:
        out = torch.zeros(size, device=device)
        for r, (g, n) in enumerate(zip(gens, lengths)):
            out[r, :n] = randn((n,), g, device, torch.float32)
        return out
    return noise
