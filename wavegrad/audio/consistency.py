"""Mel-consistent sampling: the x0 estimates of a denoiser projected onto the waveforms whose STFT magnitude the mel
describes (GLA-Grad, Liu et al., ICASSP 2024, arXiv 2402.15516; GLA-Grad++, Baoueb et al., arXiv 2511.22293).

The mel fixes the magnitude of every frame; what an under-trained network gets wrong, the signal processing knows.
:class:`MelConsistentDenoiser` wraps any denoiser ``denoise(x [B, T], level [B]) -> eps`` (the vocoder's windowed
network, with any prior): at every call it forms the network's estimate of the clean signal

    x0 = (x - sqrt(1 - a²)·eps) / a                                 (the VP forward process solved for x0)

replaces it by ``x0' = (1 - w)·x0 + w·P^k(x0)``, ``P`` one Griffin-Lim iteration (below) and ``k`` iterations,
and returns the eps that ``x0'`` implies, ``(x - a·x0') / sqrt(1 - a²)``. Every sampler sees a denoiser whose
clean-signal estimates are consistent with the mel, so nothing in the diffusion core knows of it.

The projection ``P`` (Griffin & Lim 1984, the two projections of GLA) works in the convention's own STFT -- its
framing (HiFi-GAN's half-hop-shifted frames or centred ones), padding (reflect or zeros), window (periodic or
symmetric Hann, zero-padded to n_fft) -- so that a signal ``P`` leaves unchanged has exactly the magnitude the
featurizer would measure:

    S   = G x                               the STFT of the padded signal: pad, frame, window, rfft    [B, K, F]
    S'  = |S|_target · S / |S|              on the bins the filterbank covers; other bins keep S
    x'  = G⁺ S'                             the least-squares inverse: irfft, window, overlap-add, the padding's
                                            adjoint (reflected samples folded back), divided by the folded sum of w²

``G⁺ G = I`` exactly, so a signal whose magnitude already equals the target is a fixed point (the projection is
the identity on consistent signals), and each iteration never increases ``||G x - S'||`` (Griffin & Lim's
theorem). The target magnitude is the mel's: its log, floor, base, affine map and clip undone
(``MelConfig.decode_log``), then the pseudo-inverse of the filterbank the featurizer uses (normalisation
included), clamped at zero, with the magnitude epsilon removed. ``momentum`` is the fast Griffin-Lim of
Perraudin et al. 2013 across the iterations of one call.

The polish (``polish_iterations``, written ``+glK``) runs K fast Griffin-Lim iterations on the finished sample: the
mel's magnitude with the phase the diffusion found as the starting point. Griffin-Lim only finds a local optimum
near its start, so a start better than a random phase ends better than Griffin-Lim from scratch (README measures
it against Griffin-Lim at the same iteration count and against an untrained network).

GLA-Grad++ uses a Griffin-Lim reconstruction of the mel as the x0 estimate in the first steps; the shallow start
(SDEdit, Meng et al. 2022; DiffSinger's shallow diffusion, Liu et al. 2022) starts sampling at a level a0 from
``a0·GL(mel) + sqrt(1 - a0²)·noise``: both use :meth:`MelProjector.griffin_lim`. Each clip is projected on its
own whole length (never per window, so the windowed network changes nothing here) and independently of the other
clips of a batch.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..config import param
from ..diffusion.prediction import Prediction, prediction_of
from ..errors import UserInputError
from .mel import MelConfig, mel_basis

MODES = ("none", "gla", "gla++")


@dataclass(frozen=True)
class Consistency:
    """Mel-consistent sampling: which mode, how many Griffin-Lim iterations, where, how strongly, and where to start.

    The defaults of the options are what measured best at 6 NFE on held-out real speech (README); ``mode`` is
    "none" by default so that ``Consistency()`` changes nothing.
    """

    mode: str = param("none", "none: the network alone; gla: every x0 estimate projected onto the mel's magnitude "
                              "(GLA-Grad, Liu et al. 2024); gla++: a Griffin-Lim reconstruction of the mel is the x0 "
                              "estimate of the first --gl-steps steps, then gla (GLA-Grad++, Baoueb et al. 2025)",
                      choices=MODES, cli=False)
    gla_iterations: int = param(4, "Griffin-Lim iterations per network evaluation (0: gla++ without the projection)",
                                paper="32 in the first 3 of 6 steps (GLA-Grad's code)")
    gla_level_min: float = param(0.0, "the projection acts at noise levels sqrt(alpha_bar) >= this ...")
    gla_level_max: float = param(1.0, "... and <= this (GLA-Grad: the noisiest steps only)")
    gla_weight: float = param(1.0, "blend of the projected x0 estimate with the network's (1: the projected one)")
    gla_momentum: float = param(0.99, "fast Griffin-Lim's momentum (Perraudin et al. 2013; 0: plain GLA)",
                                paper="0.99 (librosa's default)")
    band_limit: bool = param(True, "zero the STFT bins no mel band covers (above f_max, below f_min): the mel says "
                                   "nothing there and an under-trained network puts hiss there (off: keep the "
                                   "network's)")
    gl_steps: int = param(1, "gla++: the noisiest steps whose x0 estimate is the Griffin-Lim reconstruction")
    gl_iterations: int = param(32, "Griffin-Lim iterations of the reconstruction that gla++ and --start-level use")
    start_level: float | None = param(None, "shallow start: begin at noise level a0 = sqrt(alpha_bar) from "
                                            "a0·GL(mel) + sqrt(1-a0²)·noise and run only the steps below it (SDEdit; "
                                            "DiffSinger's shallow diffusion); none: from noise")
    polish_iterations: int = param(0, "fast Griffin-Lim iterations on the finished sample: the mel's magnitude, the "
                                      "phase the diffusion found as the start, --gla-momentum and the band limit as "
                                      "the projection's (written MODE+glK, e.g. gla@0.9+gl16; 0: off)")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UserInputError(f"consistency must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name in ("gla_iterations", "gl_steps", "gl_iterations", "polish_iterations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise UserInputError(f"--{name.replace('_', '-')} must be an integer >= 0, got {value!r}")
        if not 0.0 <= self.gla_level_min <= self.gla_level_max <= 1.0:
            raise UserInputError(f"the projection's level range needs 0 <= --gla-level-min <= --gla-level-max <= 1, "
                                 f"got {self.gla_level_min}, {self.gla_level_max}")
        if not 0.0 <= self.gla_weight <= 1.0:
            raise UserInputError(f"--gla-weight must lie in [0, 1], got {self.gla_weight}")
        if self.start_level is not None and not 0.0 < self.start_level <= 1.0:
            raise UserInputError(f"--start-level a0 must lie in (0, 1], got {self.start_level}")
        if not 0.0 <= self.gla_momentum < 1.0:
            raise UserInputError(f"--gla-momentum must lie in [0, 1), got {self.gla_momentum}")

    @classmethod
    def of(cls, value: "str | Consistency | None") -> "Consistency":
        """A Consistency from a mode name (``"gla"``, ``"gla@0.9"`` for a shallow start at 0.9), an instance, or
        None (off)."""
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls.parse(value)
        if not isinstance(value, cls):
            raise UserInputError(f"consistency must be one of {', '.join(MODES)} or a Consistency, got {value!r}")
        return value

    @classmethod
    def parse(cls, text: str, base: "Consistency | None" = None) -> "Consistency":
        """``MODE``, ``MODE@A0`` (a shallow start at a0) and either with ``+glK`` (K polishing iterations), the other
        options ``base``'s: ``gla``, ``gla++@0.9``, ``gla@0.9+gl16``, ``none+gl32``."""
        match = _LABEL.fullmatch(text.strip())
        if match is None:
            raise UserInputError(f"consistency {text!r}: expected MODE, MODE@A0 or either with +glK ({', '.join(MODES)}; "
                                 "A0 a number, K an integer), e.g. gla@0.9 or gla@0.9+gl16")
        mode, start, polish = match.group("mode", "start", "polish")
        try:
            level = float(start) if start else None
        except ValueError:
            raise UserInputError(f"consistency {text!r}: expected MODE, MODE@A0 or either with +glK, A0 a number, e.g. "
                                 "gla@0.9") from None
        base = base or cls()
        return dataclasses.replace(base, mode=mode, start_level=level,
                                   polish_iterations=int(polish) if polish else base.polish_iterations)

    @property
    def active(self) -> bool:
        """Whether it changes anything: a mode other than none, a shallow start, or a polish."""
        return self.mode != "none" or self.start_level is not None or self.polish_iterations > 0

    def without_whole_clip(self, keep: Sequence[str] = ()) -> "Consistency":
        """For infilling: the options that act on whole clips (:data:`WHOLE_CLIP`) back at their defaults, except
        those in ``keep`` (named by the caller: infilling then refuses them instead of dropping them)."""
        return dataclasses.replace(self, **{f.name: f.default for f in dataclasses.fields(self)
                                            if f.name in WHOLE_CLIP and f.name not in keep})

    def label(self) -> str:
        """``MODE``, ``MODE@A0`` (A0 to 3 digits), ``+glK`` when polishing: the form :meth:`parse` reads (benchmark
        rows are named so)."""
        return (self.mode + ("" if self.start_level is None else f"@{self.start_level:.3g}")
                + (f"+gl{self.polish_iterations}" if self.polish_iterations else ""))


# Options that act on a whole clip: a shallow start (the Griffin-Lim start) and the polish (Griffin-Lim on the end);
# infilling, which must keep the recording outside its spans, leaves a checkpoint's stored ones out
WHOLE_CLIP = ("start_level", "polish_iterations")

# MODE[@A0][+glK]: the modes are matched whole first, so gla++'s own pluses never read as the polish
_LABEL = re.compile(r"(?P<mode>gla\+\+|gla|none|[^@+]*)(?:@(?P<start>[^+\s]+))?(?:\+gl(?P<polish>[0-9]+))?")


# What new checkpoints vocode with when a call names no consistency: measured best at 6 NFE on held-out real speech
# with the quick recipe's model (README, "Mel-consistent sampling"); the 16-iteration polish added PESQ-WB 0.24 and
# STOI 0.013 at DDIM 6 over 3 seeds, for 13% more time.
RECOMMENDED = Consistency(mode="gla", start_level=0.9, polish_iterations=16)


# ---- the convention's STFT and its least-squares inverse -----------------------------------------------------------
class MelProjector:
    """The STFT of a mel convention, its least-squares inverse, the mel's target magnitude and Griffin-Lim."""

    def __init__(self, cfg: MelConfig, device: torch.device | str = "cpu", band_limit: bool = True):
        why = why_no_pseudo_inverse(cfg)
        if why is not None:
            raise UserInputError(f"mel-consistent sampling needs the pseudo-inverse of the convention's filterbank: {why}")
        self.cfg = cfg
        self.device = torch.device(device)
        window = torch.hann_window(cfg.win_length, periodic=cfg.window_periodic, dtype=torch.float64)
        left = (cfg.n_fft - cfg.win_length) // 2                      # centred in n_fft, as torch.stft pads it
        self.window = torch.nn.functional.pad(window, (left, cfg.n_fft - cfg.win_length - left)).to(self.device)
        basis, pinv, covered = _basis(cfg)
        self.basis, self.pinv = basis.to(self.device), pinv.to(self.device)
        # the bins whose magnitude is set: all (band-limited: the pseudo-inverse gives 0 outside the bands), or
        # only those a band covers (the others keep the signal's own spectrum)
        self.covered = torch.ones_like(covered) if band_limit else covered.to(self.device)

    # -- the linear maps --------------------------------------------------------------------------------------------
    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        left, right = self.cfg.padding
        if self.cfg.pad_mode == "constant":
            return torch.nn.functional.pad(x, (left, right))
        return torch.cat([x[..., 1:left + 1].flip(-1), x, x[..., x.shape[-1] - 1 - right:-1].flip(-1)], dim=-1)

    def _unpad_adjoint(self, y: torch.Tensor, n: int) -> torch.Tensor:
        """The adjoint of :meth:`_pad`: the middle, plus each reflected sample added back onto its source."""
        left, right = self.cfg.padding
        x = y[..., left:left + n].clone()
        if self.cfg.pad_mode == "reflect":
            x[..., 1:left + 1] += y[..., :left].flip(-1)
            x[..., n - 1 - right:n - 1] += y[..., left + n:].flip(-1)
        return x

    def stft(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, T]`` -> complex ``[B, K, F]`` in the convention's framing (float64)."""
        frames = self._pad(x.double()).unfold(-1, self.cfg.n_fft, self.cfg.hop_length)   # [B, F, n_fft]
        return torch.fft.rfft(frames * self.window, dim=-1).transpose(1, 2)             # [B, K, F]

    def istft(self, spec: torch.Tensor, n: int) -> torch.Tensor:
        """The least-squares inverse of :meth:`stft` for ``n``-sample signals: ``[B, K, F] -> [B, n]`` (float64)."""
        cfg = self.cfg
        frames = torch.fft.irfft(spec.transpose(1, 2), n=cfg.n_fft, dim=-1) * self.window   # [B, F, n_fft]
        padded = n + sum(cfg.padding)
        num = self._overlap_add(frames, padded)
        den = self._unpad_adjoint(self._wss(frames.shape[1], padded)[None], n)              # [1, n]
        return self._unpad_adjoint(num, n) / den.clamp_min(1e-12)

    def _overlap_add(self, frames: torch.Tensor, length: int) -> torch.Tensor:
        """``[B, F, n_fft]`` frames every hop -> ``[B, length]``."""
        b, f, n_fft = frames.shape
        out = torch.nn.functional.fold(frames.transpose(1, 2), (1, (f - 1) * self.cfg.hop_length + n_fft),
                                       (1, n_fft), stride=(1, self.cfg.hop_length))[:, 0, 0]   # [B, L]
        return torch.nn.functional.pad(out, (0, length - out.shape[-1]))

    @functools.lru_cache(maxsize=16)  # noqa: B019 - a handful of clip lengths per projector
    def _wss(self, frames: int, length: int) -> torch.Tensor:
        """The window-square sum of ``frames`` frames over the padded signal ``[length]``."""
        w2 = (self.window ** 2).expand(1, frames, -1)
        return self._overlap_add(w2, length)[0]

    # -- the mel's magnitude -------------------------------------------------------------------------------------------
    def target(self, mel: torch.Tensor) -> torch.Tensor:
        """The STFT magnitude a log-mel ``[n_mels, F]`` (or ``[B, n_mels, F]``) describes: ``[.., K, F]`` float64."""
        linear = self.cfg.decode_log(mel.double().to(self.device)).clamp(min=0)           # [.., n_mels, F]
        mag = (self.pinv @ linear).clamp(min=0)                                            # [.., K, F]
        if self.cfg.power_eps:
            mag = (mag.square() - self.cfg.power_eps).clamp(min=0).sqrt()
        return mag

    def frames_of(self, n: int) -> int:
        """STFT frames of an ``n``-sample signal in this framing (a centred convention has one more than n / hop)."""
        return (n + sum(self.cfg.padding) - self.cfg.n_fft) // self.cfg.hop_length + 1

    def fit_target(self, mag: torch.Tensor, n: int) -> torch.Tensor:
        """``mag [K, F_mel]`` cut or edge-extended to the frames of an ``n``-sample signal (the vocoder pairs
        T // hop frames with T samples; a centred STFT of them has one more)."""
        frames = self.frames_of(n)
        if mag.shape[-1] >= frames:
            return mag[..., :frames]
        return torch.cat([mag, mag[..., -1:].expand(*mag.shape[:-1], frames - mag.shape[-1])], dim=-1)

    # -- Griffin-Lim -------------------------------------------------------------------------------------------------
    def project(self, x: torch.Tensor, mag: torch.Tensor, iterations: int, momentum: float = 0.0) -> torch.Tensor:
        """``iterations`` (fast) Griffin-Lim iterations from ``x [B, n]`` toward magnitude ``mag [B, K, F]``."""
        if iterations == 0:
            return x
        n = x.shape[-1]
        spec, prev = self.stft(x), None
        for _ in range(iterations - 1):
            consistent = self.stft(self.istft(self._magnitude(spec, mag), n))               # P_C1 P_C2
            spec = consistent if prev is None or momentum == 0 else consistent + momentum * (consistent - prev)
            prev = consistent
        return self.istft(self._magnitude(spec, mag), n)

    def _magnitude(self, spec: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        """P_C2: ``spec``'s phase with magnitude ``mag`` on the covered bins (phase 0 where ``spec`` is 0)."""
        phase = torch.where(spec == 0, torch.ones_like(spec), torch.sgn(spec))
        return torch.where(self.covered[:, None], mag * phase, spec)

    def griffin_lim(self, mag: torch.Tensor, n: int, iterations: int, momentum: float = 0.99,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """A waveform ``[B, n]`` with STFT magnitude close to ``mag [B, K, F]``: fast Griffin-Lim from a random
        phase drawn from ``generator`` (a fixed seed when None: the reconstruction is deterministic)."""
        g = generator or torch.Generator().manual_seed(0)
        phase = torch.rand(mag.shape, generator=g, dtype=torch.float64) * (2 * math.pi)
        x = self.istft(mag * torch.polar(torch.ones_like(phase), phase).to(self.device), n)
        return self.project(x, mag, max(iterations - 1, 0), momentum) if iterations > 0 else x

    def inconsistency(self, x: torch.Tensor, mag: torch.Tensor) -> torch.Tensor:
        """Per clip, ``|| |G x| - mag ||`` over the covered bins, relative to ``||mag||`` (0: consistent)."""
        diff = (self.stft(x).abs() - mag)[:, self.covered]
        return diff.flatten(1).norm(dim=1) / mag[:, self.covered].flatten(1).norm(dim=1).clamp_min(1e-12)


@functools.lru_cache(maxsize=8)
def _basis(cfg: MelConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the featurizer's filterbank [n_mels, K], its pseudo-inverse [K, n_mels], the covered bins [K] bool)."""
    basis = torch.from_numpy(mel_basis(cfg)).double()
    if cfg.normalized:   # the featurizer divides |STFT| by sqrt(sum w²), folded into its filterbank
        w = torch.hann_window(cfg.win_length, periodic=cfg.window_periodic, dtype=torch.float64)
        basis = basis / w.square().sum().sqrt()
    return basis, torch.linalg.pinv(basis), basis.sum(0) > 0


def why_no_pseudo_inverse(cfg: MelConfig) -> str | None:
    """None when the filterbank of ``cfg`` inverts band by band (every band has a filter), else why not."""
    empty = int((torch.from_numpy(mel_basis(cfg)).sum(1) <= 0).sum())
    if empty:
        return (f"{empty} of its {cfg.n_mels} mel bands have empty filters ({cfg.n_fft}-point FFT too coarse for "
                f"{cfg.n_mels} bands up to {cfg.f_max or cfg.sample_rate / 2:g} Hz), so the mel does not determine "
                "their magnitude; use --consistency none")
    return None


# ---- the denoiser wrapper -------------------------------------------------------------------------------------------
class MelConsistentDenoiser:
    """``denoise(x [B, T], level [B]) -> eps`` whose x0 estimates are projected onto the mels' magnitudes.

    ``mels``: one log-mel ``[n_mels, F_i]`` per clip, ``lengths[i]`` its samples (``x[i, lengths[i]:]`` is padding,
    left at eps = whatever ``denoise`` returns there). ``gl_below``: gla++ replaces x0 by the Griffin-Lim
    reconstruction at levels <= this (the first steps of the schedule; None: never). Learned-variance networks
    (``(eps, v)`` outputs) keep their ``v``.
    """

    def __init__(self, denoise: Callable, mels: Sequence[torch.Tensor], lengths: Sequence[int], cfg: MelConfig,
                 consistency: Consistency, gl_below: float | None = None, device: torch.device | str = "cpu",
                 reconstructions: Sequence[torch.Tensor] | None = None):
        self.denoise, self.opts, self.lengths = denoise, consistency, list(lengths)
        self.projector = MelProjector(cfg, device, consistency.band_limit)
        self.targets = [self.projector.fit_target(self.projector.target(m), n) for m, n in zip(mels, self.lengths)]
        self.gl_below = gl_below if consistency.mode == "gla++" and consistency.gl_steps > 0 else None
        self.reconstructions = list(reconstructions) if reconstructions is not None else (
            reconstruct(self.projector, self.targets, self.lengths, consistency) if self.gl_below is not None else None)

    def __call__(self, x: torch.Tensor, level: torch.Tensor):
        out = prediction_of(self.denoise(x, level))
        eps = out.eps
        new = eps.clone()
        for i, n in enumerate(self.lengths):
            a = float(level[i])
            if a >= 1.0 or not self._acts(a):
                continue                                     # no noise (x is x0), or nothing replaces x0 here
            s = math.sqrt(1.0 - a * a)
            x0 = (x[i, :n].double() - s * eps[i, :n].double()) / a                            # [n]
            x0 = self._x0(i, x0, a)
            new[i, :n] = ((x[i, :n].double() - a * x0) / s).to(eps.dtype)
        return new if out.v is None else Prediction(new, out.v)

    def polish(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Clip ``i``'s finished sample ``x [n]`` after ``polish_iterations`` fast Griffin-Lim iterations toward its
        mel's magnitude, started from the sample's own phase (the dtype of ``x``)."""
        o = self.opts
        return self.projector.project(x.double()[None], self.targets[i][None], o.polish_iterations,
                                      o.gla_momentum)[0].to(x.dtype)

    def _below_gl(self, a: float) -> bool:
        return self.gl_below is not None and a <= self.gl_below * (1 + 1e-6)

    def _acts(self, a: float) -> bool:
        """Whether level ``a`` replaces x0 at all (``none+glK`` never does: only its polish acts)."""
        o = self.opts
        return self._below_gl(a) or (o.mode != "none" and o.gla_iterations > 0 and o.gla_weight != 0.0
                                     and o.gla_level_min <= a <= o.gla_level_max)

    def _x0(self, i: int, x0: torch.Tensor, a: float) -> torch.Tensor:
        """Clip ``i``'s replacement of the estimate ``x0 [n]`` at a level ``a`` where :meth:`_acts`."""
        o = self.opts
        if self._below_gl(a):
            return self.reconstructions[i]
        projected = self.projector.project(x0[None], self.targets[i][None], o.gla_iterations, o.gla_momentum)[0]
        return projected if o.gla_weight == 1.0 else (1.0 - o.gla_weight) * x0 + o.gla_weight * projected


def reconstruct(projector: MelProjector, targets: Sequence[torch.Tensor], lengths: Sequence[int],
                consistency: Consistency) -> list[torch.Tensor]:
    """Each clip's Griffin-Lim reconstruction ``[n_i]`` (float64), every clip from its own fixed-seed phase."""
    return [projector.griffin_lim(t[None], n, consistency.gl_iterations, consistency.gla_momentum,
                                  torch.Generator().manual_seed(0))[0] for t, n in zip(targets, lengths)]


def mel_griffin_lim(mels: Sequence[torch.Tensor], cfg: MelConfig, iterations: int = 32, momentum: float = 0.99,
                    hop_length: int | None = None) -> list[torch.Tensor]:
    """Griffin-Lim waveforms ``[F_i * hop]`` (float32) of log-mels ``[n_mels, F_i]`` in convention ``cfg``."""
    projector = MelProjector(cfg, mels[0].device)
    hop = hop_length or cfg.hop_length
    lengths = [m.shape[-1] * hop for m in mels]
    targets = [projector.fit_target(projector.target(m), n) for m, n in zip(mels, lengths)]
    return [w.float() for w in reconstruct(projector, targets, lengths,
                                           Consistency(gl_iterations=iterations, gla_momentum=momentum))]
