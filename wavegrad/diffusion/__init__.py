"""The diffusion core: schedules, objective, samplers, EMA.

It knows nothing of audio or images and imports nothing else of the package but the two leaf modules
``errors`` (its argument errors reach the command line as one line) and ``config`` (documented fields).
"""
from .ema import EMA
from .objective import diffusion_loss, draw_noise_level, eps_loss, q_sample, training_noise
from .sampling import check_eta, ddim_sigma, ddim_step, sample
from .schedule import NoiseSchedule, ScheduleConfig, respaced_indices

__all__ = ["EMA", "NoiseSchedule", "ScheduleConfig", "check_eta", "ddim_sigma", "ddim_step", "diffusion_loss", "draw_noise_level",
           "eps_loss", "q_sample", "respaced_indices", "sample", "training_noise"]
