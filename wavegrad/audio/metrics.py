"""Objective quality metrics for vocoded speech, each comparing an estimate with its reference.

All functions take 1-D float waveforms (numpy arrays or torch tensors, any float dtype, values in
[-1, 1]) and return plain Python floats (or a dict of floats). Lower is better for the distances
(:func:`log_mel_l1`, :func:`lsd`, :func:`mrstft`, :func:`mcd`), higher for the scores
(:func:`pesq_wb`, :func:`stoi`, :func:`dnsmos`).

Length rule (all reference-based metrics). A vocoder renders ``frames * hop`` samples, so its output
may differ from the reference by less than one hop. When ``|len(ref) - len(est)| < hop`` both are
trimmed to the shorter length (samples are dropped at the end; nothing is shifted); a larger
difference means the pair is not the same utterance or a frame count is wrong, and raises
:class:`~wavegrad.errors.UserInputError`. ``hop`` is the metric's own analysis hop (named in each
docstring); PESQ and STOI, which have none, use 256 samples (one HiFi-GAN hop).

No metric here time-aligns its inputs (no DTW, no cross-correlation): a vocoder is conditioned on
the reference's own mel, so its output is sample-aligned with the reference by construction, and a
delay is a defect the metrics should see.

Optional metrics need the ``eval`` extra (``pip install wavegrad[eval]``): MCD (pysptk), PESQ-WB
(pesq), STOI (pystoi), DNSMOS (speechmos + onnxruntime, which ships its ONNX models and runs
offline). They are imported lazily, inside the functions; :func:`available_optional_metrics` says
which of them can run here.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import UserInputError
from .mel import MelConfig, MelFeaturizer

__all__ = [
    "log_mel_l1", "lsd", "mrstft", "mcd", "pesq_wb", "stoi", "dnsmos", "rtf",
    "available_optional_metrics", "mcep_alpha", "MCEP_ALPHAS", "MRSTFT_RESOLUTIONS",
    "LSD_POWER_FLOOR", "MRSTFT_POWER_FLOOR",
]

EVAL_HINT = "pip install wavegrad[eval]"

# |X|^2 below this (unnormalised STFT power, i.e. -100 dB) counts as this in LSD, so digital
# silence gives a finite log. Both signals are floored the same way; two silent bins contribute 0.
LSD_POWER_FLOOR = 1e-10

# Parallel WaveGAN's clamp on |X|^2 before the square root (its stft(): clamp(re^2 + im^2, min=1e-7)).
MRSTFT_POWER_FLOOR = 1e-7

# (n_fft, hop, win) of the multi-resolution STFT distance. The Parallel WaveGAN paper trains with
# (1024,120,600), (2048,240,1200), (512,50,240); for evaluation we use the power-of-two set below
# (window = FFT size, 75 % overlap), which is also what the hop-based length rule expects.
MRSTFT_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 128, 512), (1024, 256, 1024),
                                                        (2048, 512, 2048))

# Frequency-warping constant of the all-pass filter in mel-cepstral analysis, per sample rate: the
# alpha whose warped frequency axis best fits the mel scale (SPTK/pysptk's `mcepalpha`, to 3
# decimals; equal to pysptk.util.mcepalpha at these rates, checked in the tests). 0.455 at 22.05 kHz
# is the value used by most vocoder papers; note that SPTK's examples often round 16 kHz to 0.42.
# Other rates fall back to pysptk.util.mcepalpha.
MCEP_ALPHAS: dict[int, float] = {
    8000: 0.312,
    11025: 0.357,
    16000: 0.41,
    22050: 0.455,
    24000: 0.466,
    32000: 0.504,
    44100: 0.544,
    48000: 0.554,
}

# Tolerance of the length rule for metrics without an analysis hop (PESQ, STOI): one HiFi-GAN hop.
_DEFAULT_LENGTH_TOLERANCE = 256


# ---- input handling ------------------------------------------------------------------------------
def _as_signal(x: Any, name: str) -> np.ndarray:
    """1-D float numpy/torch -> float64 numpy, with clear errors for anything else."""
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise UserInputError(f"{name} must be a float waveform in [-1, 1], got dtype {x.dtype}; "
                                 "convert integer PCM with x.float() / 32768")
        x = x.detach().to("cpu", torch.float64).numpy()
    elif isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise UserInputError(f"{name} must be a float waveform in [-1, 1], got dtype {x.dtype}; "
                                 "convert integer PCM with x.astype(np.float32) / 32768")
        x = x.astype(np.float64, copy=False)
    else:
        raise UserInputError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")
    if x.ndim != 1:
        raise UserInputError(f"{name} must be a 1-D mono waveform [T], got shape {tuple(x.shape)}; "
                             "compute metrics clip by clip and mix or select channels first")
    if x.size == 0:
        raise UserInputError(f"{name} is empty (0 samples)")
    if not np.isfinite(x).all():
        raise UserInputError(f"{name} contains NaN or inf; the vocoder (or the decoder) diverged")
    return x


def _pair(ref: Any, est: Any, hop: int, min_length: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Validate both signals and apply the length rule of the module docstring."""
    ref = _as_signal(ref, "reference")
    est = _as_signal(est, "estimate")
    diff = abs(ref.size - est.size)
    if diff >= hop:
        raise UserInputError(
            f"vocoded and reference lengths must match: reference has {ref.size} samples, estimate "
            f"{est.size} (difference {diff} >= one hop of {hop}); trim both to the same length first")
    n = min(ref.size, est.size)
    if n < min_length:
        raise UserInputError(f"signals of {n} samples are too short for this metric: need at least "
                             f"{min_length}")
    return ref[:n], est[:n]


def _stft_mag2(x: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    """|STFT|^2 in float64, [n_fft // 2 + 1, frames], equal to torch.stft's defaults as used by
    Parallel WaveGAN: periodic Hann window of ``win`` centred in ``n_fft``, centred frames (reflect
    padding of n_fft // 2 each side), no normalisation. numpy, not torch.stft: single-threaded FFTs
    of short frames are 10-100x faster than torch's thread pool on a busy CPU."""
    pad = n_fft // 2
    padded = np.pad(x, pad, mode="reflect" if x.size > 1 else "constant")
    window = np.zeros(n_fft)
    left = (n_fft - win) // 2
    window[left:left + win] = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win)   # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]           # [frames, n_fft]
    spec = np.fft.rfft(frames * window, axis=-1)                                     # [frames, F]
    return (spec.real ** 2 + spec.imag ** 2).T


# ---- always-available distances ---------------------------------------------------------------------
@functools.lru_cache(maxsize=8)
def _featurizer(cfg: MelConfig) -> MelFeaturizer:
    return MelFeaturizer(cfg).eval()


def log_mel_l1(ref: Any, est: Any, mel_config: MelConfig | None = None) -> float:
    """Mean absolute difference of the two log-mel spectrograms: mean |ln M(ref) - ln M(est)|.

    ``M`` is the package's mel front end (:class:`MelFeaturizer`, HiFi-GAN convention: natural log of
    max(mel, 1e-5)), the same features the vocoder is conditioned on, averaged over all bands and
    frames. A pure gain ``g`` gives exactly ``|ln g|`` where both mels are above the floor.
    ``ref`` and ``est`` are one clip each (``[T]``) or a batch of clips (``[B, T]``, each pair under the
    length rule); a batch gives the mean of the per-clip values. Length rule hop: ``mel_config.hop_length``.
    """
    cfg = mel_config if mel_config is not None else MelConfig()
    refs, ests = _clips(ref, "reference"), _clips(est, "estimate")
    if len(refs) != len(ests):
        raise UserInputError(f"log_mel_l1: {len(refs)} reference clip(s) but {len(ests)} estimate(s); pair them up")
    feat, values = _featurizer(cfg), []
    for r, e in zip(refs, ests):
        r, e = _pair(r, e, cfg.hop_length, cfg.min_length)
        with torch.no_grad():
            mels = feat(torch.from_numpy(np.stack([r, e])).float())                 # [2, n_mels, frames]
        values.append(float((mels[0] - mels[1]).abs().mean()))
    return float(np.mean(values))


def _clips(x: Any, name: str) -> list[Any]:
    """``[T]`` -> one clip; ``[B, T]`` or a list -> B clips (other ranks are left to _as_signal's error)."""
    if isinstance(x, (list, tuple)):
        return list(x)
    ndim = getattr(x, "ndim", None)
    return list(x) if ndim == 2 else [x]


def lsd(ref: Any, est: Any, n_fft: int = 2048, hop: int = 512) -> float:
    """Log-spectral distance in dB, averaged over frames:

        LSD = mean_t sqrt( mean_k ( 10 log10( P_ref[k,t] / P_est[k,t] ) )^2 ),
        P = max(|STFT|^2, 1e-10)

    (Hann window of ``n_fft``, hop ``hop``, centred frames; all ``n_fft // 2 + 1`` bins.) The power
    floor of 1e-10 (-100 dB, see ``LSD_POWER_FLOOR``) only keeps digital silence finite. A pure gain
    ``g`` gives exactly ``|20 log10 g|`` where both spectra are above the floor. Length rule hop: ``hop``.
    """
    ref, est = _pair(ref, est, hop)
    p_ref = np.maximum(_stft_mag2(ref, n_fft, hop, n_fft), LSD_POWER_FLOOR)
    p_est = np.maximum(_stft_mag2(est, n_fft, hop, n_fft), LSD_POWER_FLOOR)
    diff_db = 10.0 * np.log10(p_ref / p_est)                                           # [F, frames]
    return float(np.sqrt(np.mean(diff_db ** 2, axis=0)).mean())


def mrstft(ref: Any, est: Any,
           resolutions: Sequence[tuple[int, int, int]] = MRSTFT_RESOLUTIONS,
           return_parts: bool = False) -> float | tuple[float, float, float]:
    """Multi-resolution STFT distance (Yamamoto et al. 2020, Parallel WaveGAN, eqs. 2-4).

    Per resolution (n_fft, hop, win), with magnitudes S = sqrt(max(|STFT|^2, 1e-7)) (Hann window,
    centred frames, reflect padding, as in the Parallel WaveGAN code):

        SC  = ||S_ref - S_est||_F / ||S_ref||_F                (spectral convergence)
        MAG = mean |ln S_ref - ln S_est|                       (log STFT magnitude, natural log, L1)

    each averaged over ``resolutions`` (default ``MRSTFT_RESOLUTIONS``). Returns SC + MAG, or
    ``(SC + MAG, SC, MAG)`` with ``return_parts=True``. A pure gain ``g`` gives SC = |1 - g| and
    MAG = |ln g| (above the floor). Length rule hop: the largest hop among the resolutions.
    """
    if not resolutions:
        raise UserInputError("mrstft needs at least one (n_fft, hop, win) resolution")
    for res in resolutions:
        if len(res) != 3 or not all(int(v) == v and v > 0 for v in res) or res[2] > res[0]:
            raise UserInputError(f"bad mrstft resolution {res!r}: need positive integers "
                                 "(n_fft, hop, win) with win <= n_fft")
    ref, est = _pair(ref, est, max(int(r[1]) for r in resolutions))
    sc_sum = mag_sum = 0.0
    for n_fft, hop, win in resolutions:
        s_ref = np.sqrt(np.maximum(_stft_mag2(ref, int(n_fft), int(hop), int(win)), MRSTFT_POWER_FLOOR))
        s_est = np.sqrt(np.maximum(_stft_mag2(est, int(n_fft), int(hop), int(win)), MRSTFT_POWER_FLOOR))
        sc_sum += float(np.linalg.norm(s_ref - s_est) / np.linalg.norm(s_ref))
        mag_sum += float(np.mean(np.abs(np.log(s_ref) - np.log(s_est))))
    sc, mag = sc_sum / len(resolutions), mag_sum / len(resolutions)
    return (sc + mag, sc, mag) if return_parts else sc + mag


def si_sdr(ref: Any, est: Any) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al., ICASSP 2019, eq. 2): both signals made
    zero-mean, ``alpha = <est, ref> / ||ref||²``, ``10·log10(||alpha·ref||² / ||alpha·ref - est||²)``. Higher is
    better; a pure gain leaves it unchanged. Signals of different lengths are cut to the shorter (at most a hop
    apart, the module's length rule with a 256-sample hop)."""
    ref, est = _pair(ref, est, _DEFAULT_LENGTH_TOLERANCE)
    ref, est = ref - ref.mean(), est - est.mean()
    energy = float(np.dot(ref, ref))
    if energy <= 0:
        raise UserInputError("si_sdr: the reference is silent (all samples equal)")
    target = (float(np.dot(est, ref)) / energy) * ref
    return float(10.0 * np.log10(max(float(np.dot(target, target)), 1e-30)
                                 / max(float(np.sum((target - est) ** 2)), 1e-30)))


def rtf(seconds_taken: float, audio_seconds: float) -> float:
    """Real-time factor: wall-clock seconds spent per second of audio produced (< 1: faster than real time)."""
    if not (math.isfinite(seconds_taken) and seconds_taken >= 0):
        raise UserInputError(f"rtf: seconds_taken must be a finite number >= 0, got {seconds_taken!r}")
    if not (math.isfinite(audio_seconds) and audio_seconds > 0):
        raise UserInputError(f"rtf: audio_seconds must be a finite number > 0, got {audio_seconds!r}")
    return float(seconds_taken) / float(audio_seconds)


# ---- optional metrics (the eval extra) ----------------------------------------------------------------
def _import_optional(module: str, metric: str):
    """Import an optional dependency or raise an ImportError that names the extra to install."""
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            # pysptk 1.0 imports pkg_resources, which warns that it is deprecated on every import.
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
            return importlib.import_module(module)
    except ImportError as e:
        extra = ""
        if module == "pysptk" and "pkg_resources" in str(e):
            extra = " (pysptk imports pkg_resources: also pip install 'setuptools<81')"
        raise ImportError(f"{metric} needs the optional package '{module}' ({e}); install it with "
                          f"`{EVAL_HINT}`{extra}") from e


def mcep_alpha(sample_rate: int) -> float:
    """All-pass constant for mel-cepstral analysis at ``sample_rate`` (see ``MCEP_ALPHAS``)."""
    sample_rate = int(sample_rate)
    if sample_rate in MCEP_ALPHAS:
        return MCEP_ALPHAS[sample_rate]
    pysptk = _import_optional("pysptk", "mcep_alpha")
    return float(pysptk.util.mcepalpha(sample_rate))


def _mcep_frames(x: np.ndarray, frame_length: int, hop_length: int, order: int, alpha: float,
                 floor: float, pysptk) -> np.ndarray:
    n_frames = 1 + (x.size - frame_length) // hop_length
    idx = np.arange(frame_length)[None, :] + hop_length * np.arange(n_frames)[:, None]
    frames = x[idx] * np.blackman(frame_length)[None, :]                              # [frames, L]
    return np.stack([pysptk.mcep(np.ascontiguousarray(f), order=order, alpha=alpha, etype=1, eps=floor)
                     for f in frames])                                                # [frames, order+1]


def mcd(ref: Any, est: Any, sample_rate: int, order: int = 24, alpha: float | None = None,
        frame_length: int = 1024, hop_length: int = 256) -> float:
    """Mel-cepstral distortion in dB (Kubichek 1993), the convention stated in full:

    * Both signals are cut into the same frames (no padding; ``frame_length`` samples, hop
      ``hop_length``; Blackman window; defaults 46 ms / 11.6 ms at 22.05 kHz) and analysed with
      ``pysptk.mcep`` (order ``order`` = 24, all-pass constant ``alpha``, default from
      ``MCEP_ALPHAS``: 0.455 at 22.05 kHz; 1e-10 added to the periodogram, ``etype=1``, so digital
      silence gives a flat spectrum and c1.. = 0 instead of an error).
    * Per frame, over coefficients 1..order (c0, the frame energy, is excluded, so a pure gain
      gives 0): ``MCD_t = (10 / ln 10) * sqrt(2 * sum_d (c_ref[d] - c_est[d])^2)``.
    * The result is the mean over all frames. No DTW: a vocoder's output is time-aligned with the
      reference it was conditioned on, so frames are compared one to one (DTW would hide timing
      errors and is the convention for TTS, not vocoders). No silence removal.

    Needs pysptk (``pip install wavegrad[eval]``). Length rule hop: ``hop_length``.
    """
    pysptk = _import_optional("pysptk", "MCD")
    if not (isinstance(order, (int, np.integer)) and 1 <= order < frame_length):
        raise UserInputError(f"mcd: order must be an integer in [1, frame_length), got {order!r}")
    a = mcep_alpha(sample_rate) if alpha is None else float(alpha)
    if not -1.0 < a < 1.0:
        raise UserInputError(f"mcd: alpha must be in (-1, 1), got {a!r}")
    ref, est = _pair(ref, est, hop_length, frame_length)
    c_ref = _mcep_frames(ref, frame_length, hop_length, int(order), a, 1e-10, pysptk)
    c_est = _mcep_frames(est, frame_length, hop_length, int(order), a, 1e-10, pysptk)
    diff = c_ref[:, 1:] - c_est[:, 1:]
    per_frame = (10.0 / math.log(10.0)) * np.sqrt(2.0 * np.sum(diff ** 2, axis=1))
    return float(per_frame.mean())


def _to_16k(x: np.ndarray, sample_rate: int) -> np.ndarray:
    if int(sample_rate) <= 0:
        raise UserInputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if int(sample_rate) == 16000:
        return x
    import librosa

    return librosa.resample(x, orig_sr=int(sample_rate), target_sr=16000, res_type="soxr_hq")


def _require_sound(x: np.ndarray, name: str, metric: str) -> None:
    if not np.any(x):
        raise UserInputError(f"{metric}: the {name} is all silent (every sample is 0); "
                             f"{metric} is undefined on silence")


def pesq_wb(ref: Any, est: Any, sample_rate: int) -> float:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO, about 1.04 .. 4.64; higher is better) via ``pesq``.

    Both signals are resampled to 16 kHz (librosa, soxr_hq) first: P.862.2 is defined at 16 kHz only.
    All-silent input raises :class:`UserInputError`. Needs ``pesq`` (``pip install wavegrad[eval]``).
    """
    pesq_mod = _import_optional("pesq", "PESQ-WB")
    ref, est = _pair(ref, est, _DEFAULT_LENGTH_TOLERANCE)
    _require_sound(ref, "reference", "PESQ")
    _require_sound(est, "estimate", "PESQ")
    r16, e16 = _to_16k(ref, sample_rate), _to_16k(est, sample_rate)
    try:
        return float(pesq_mod.pesq(16000, r16, e16, "wb"))
    except Exception as e:  # pesq's own errors (e.g. NoUtterancesError) carry C-library wording
        raise UserInputError(f"PESQ failed on this pair ({type(e).__name__}: {e}); PESQ needs "
                             "speech-like audio of at least ~0.25 s in both signals") from e


def stoi(ref: Any, est: Any, sample_rate: int, extended: bool = False) -> float:
    """Short-time objective intelligibility (Taal et al. 2011; ~0..1, higher is better) via ``pystoi``.

    Both signals are resampled to 16 kHz (librosa, soxr_hq) first; pystoi then works at its native
    10 kHz as the method prescribes. ``extended=True`` gives ESTOI. All-silent input raises
    :class:`UserInputError`. Needs ``pystoi`` (``pip install wavegrad[eval]``).
    """
    pystoi = _import_optional("pystoi", "STOI")
    ref, est = _pair(ref, est, _DEFAULT_LENGTH_TOLERANCE)
    _require_sound(ref, "reference", "STOI")
    _require_sound(est, "estimate", "STOI")
    r16, e16 = _to_16k(ref, sample_rate), _to_16k(est, sample_rate)
    return float(pystoi.stoi(r16, e16, 16000, extended=extended))


def dnsmos(est: Any, sample_rate: int) -> dict[str, float]:
    """Non-intrusive DNSMOS P.835 (Reddy et al. 2022) via ``speechmos`` (its ONNX models ship with the
    wheel; runs offline). The signal is resampled to 16 kHz; returns ``{"ovrl", "sig", "bak"}``
    (and ``"p808"`` when speechmos reports it), each a MOS on 1..5. Peaks above 1 are scaled into
    [-1, 1] (speechmos rejects them). Needs ``speechmos`` and ``onnxruntime``.
    """
    _import_optional("onnxruntime", "DNSMOS")
    dns = _import_optional("speechmos.dnsmos", "DNSMOS")
    x = _as_signal(est, "estimate")
    _require_sound(x, "estimate", "DNSMOS")
    x16 = _to_16k(x, sample_rate)
    peak = float(np.max(np.abs(x16)))
    if peak > 1.0:
        x16 = x16 / peak
    out = dns.run(x16.astype(np.float32), sr=16000)
    result = {"ovrl": float(out["ovrl_mos"]), "sig": float(out["sig_mos"]), "bak": float(out["bak_mos"])}
    if "p808_mos" in out:
        result["p808"] = float(out["p808_mos"])
    return result


def available_optional_metrics() -> dict[str, bool | str]:
    """``{metric: True}`` for each optional metric that can run here, else ``{metric: reason}``."""
    needs = {"mcd": ["pysptk"], "pesq_wb": ["pesq"], "stoi": ["pystoi"],
             "dnsmos": ["onnxruntime", "speechmos.dnsmos"], "wer": ["pocketsphinx"]}
    result: dict[str, bool | str] = {}
    for metric, modules in needs.items():
        status: bool | str = True
        for module in modules:
            try:
                _import_optional(module, metric)
            except Exception as e:  # noqa: BLE001 - any import failure means "not available"
                status = str(e)
                break
        result[metric] = status
    return result
