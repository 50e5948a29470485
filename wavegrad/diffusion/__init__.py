"""The diffusion core: schedules, objective, priors, samplers, sampling plans, inpainting, schedule search, EMA.

It knows nothing of audio or images and imports nothing else of the package but the two leaf modules
``errors`` (its argument errors reach the command line as one line) and ``config`` (documented fields).
"""
from .ema import EMA
from .inpainting import inpaint, repaint_steps, repaint_times
from .objective import diffusion_loss, draw_noise_level, eps_loss, q_sample
from .preconditioning import ObjectiveConfig, Parametrization, Preconditioned, draw_levels, loss_weights, training_noise
from .plan import KARRAS_RHO, SCHEDULE_KINDS, SamplingPlan
from .prediction import Prediction, as_predictor
from .priors import WHITE, DiagonalPrior, Prior
from .samplers import (SAMPLERS, SamplerSpec, Step, check_eta, ddim_sigma, ddim_step, nfe, sampler_options,
                       steps_for_nfe)
from .sampling import run, sample
from .schedule import NoiseSchedule, ScheduleConfig, level_to_sigma, respaced_indices, sigma_to_level

__all__ = ["EMA", "KARRAS_RHO", "SAMPLERS", "SCHEDULE_KINDS", "WHITE", "DiagonalPrior", "NoiseSchedule", "Prediction",
           "Prior", "SamplerSpec", "SamplingPlan", "ScheduleConfig", "Step", "as_predictor", "check_eta", "ddim_sigma",
           "ddim_step", "diffusion_loss", "draw_noise_level", "eps_loss", "inpaint", "level_to_sigma", "nfe", "q_sample",
           "repaint_steps", "repaint_times", "respaced_indices", "run", "sample", "sampler_options", "sigma_to_level", "steps_for_nfe",
           "training_noise", "ObjectiveConfig", "Parametrization", "Preconditioned", "draw_levels", "loss_weights"]
