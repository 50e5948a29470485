"""The diffusion core: schedules, objective, samplers, EMA. Imports nothing else of the package."""
from .ema import EMA
from .objective import diffusion_loss, draw_noise_level, eps_loss, q_sample
from .sampling import ddim_sigma, ddim_step, sample
from .schedule import NoiseSchedule, respaced_indices

__all__ = ["EMA", "NoiseSchedule", "ddim_sigma", "ddim_step", "diffusion_loss", "draw_noise_level",
           "eps_loss", "q_sample", "respaced_indices", "sample"]
