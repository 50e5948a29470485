"""The diffusion core: schedules, objective, priors, samplers, schedule search, EMA.

It knows nothing of audio or images and imports nothing else of the package but the two leaf modules
``errors`` (its argument errors reach the command line as one line) and ``config`` (documented fields).
"""
from .ema import EMA
from .objective import diffusion_loss, draw_noise_level, eps_loss, q_sample, training_noise
from .priors import WHITE, DiagonalPrior, Prior
from .samplers import (DETERMINISTIC, SAMPLERS, SCHEDULE_KINDS, SamplerOptions, Step, check_eta, ddim_sigma, ddim_step,
                       nfe, plan_sampling, sample, sampler_options, steps_for_nfe)
from .schedule import NoiseSchedule, ScheduleConfig, level_to_sigma, respaced_indices, sigma_to_level

__all__ = ["DETERMINISTIC", "EMA", "SAMPLERS", "SCHEDULE_KINDS", "SamplerOptions", "WHITE", "plan_sampling", "DiagonalPrior", "NoiseSchedule", "Prior", "ScheduleConfig",
           "Step", "check_eta", "ddim_sigma", "ddim_step", "diffusion_loss", "draw_noise_level", "eps_loss",
           "level_to_sigma", "nfe", "q_sample", "respaced_indices", "sample", "sampler_options", "sigma_to_level",
           "steps_for_nfe", "training_noise"]
