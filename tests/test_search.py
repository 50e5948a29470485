import math

import pytest
import torch

from wavegrad.diffusion import NoiseSchedule
from wavegrad.diffusion.search import geometric_betas, search_schedule


def test_geometric_betas_closed_form():
    b = geometric_betas(4, 1e-4, 1e-1)
    torch.testing.assert_close(b, torch.tensor([1e-4, 1e-3, 1e-2, 1e-1], dtype=torch.float64), rtol=1e-12, atol=0)


def test_search_finds_a_planted_optimum():
    """Score = squared log-distance to a planted 6-step sequence that is NOT geometric: the grid
    finds the right family member, the coordinate stage moves the off-family betas toward it."""
    target = geometric_betas(6, 3e-5, 0.995).clone()  # sqrt(alpha_bar_N) = 0.064: feasible
    target[2] *= 2.0  # off the family: only the coordinate stage can reach it
    score = lambda s: float(((s.betas.log() - target.log()) ** 2).sum())
    res = search_schedule(score, 6, grid=8, refine_rounds=2, coord_rounds=2)
    geo_only = search_schedule(score, 6, grid=8, refine_rounds=2, coord_rounds=0)
    assert res.best_score < geo_only.best_score
    # the planted deviation alone costs (ln 2)^2 = 0.48 to any member of the family
    assert geo_only.best_score > 0.3 and res.best_score < 0.25 * math.log(2) ** 2
    assert res.evaluations == sum(c.score is not None for c in res.candidates) <= 150
    assert len(res.candidates) >= res.evaluations


def test_search_skips_candidates_whose_start_is_not_pure_noise():
    seen = []

    def score(s: NoiseSchedule):
        seen.append(float(s.noise_levels[-1]))
        return float(s.betas.sum())  # would prefer tiny betas, i.e. a start far from noise

    res = search_schedule(score, 6, max_last_level=0.1)
    assert max(seen) <= 0.1 and float(res.best.noise_levels[-1]) <= 0.1
    skipped = [c for c in res.candidates if c.score is None]
    assert skipped and all(c.last_level > 0.1 for c in skipped)


def test_search_picks_the_best_of_a_planted_set():
    """Among the grid's candidates, the one closest to the planted pair wins when the score is exact."""
    plant = (1e-4, 0.995)
    score = lambda s: abs(math.log(float(s.betas[0]) / plant[0])) + abs(math.log((1 - float(s.betas[-1])) / (1 - plant[1])))
    res = search_schedule(score, 3, grid=9, refine_rounds=3, coord_rounds=0)
    assert float(res.best.betas[0]) == pytest.approx(plant[0], rel=0.2)
    assert 1 - float(res.best.betas[-1]) == pytest.approx(1 - plant[1], rel=0.2)


def test_no_feasible_candidate_is_a_clear_error():
    with pytest.raises(ValueError, match="max_last_level"):
        search_schedule(lambda s: 0.0, 2, beta_last_range=(1e-3, 1e-2), beta_first_range=(1e-6, 1e-5))


def test_a_coarse_grid_whose_zoom_leaves_the_valid_region_still_searches():
    """grid=2 spaces the coarse points so far apart that the zoom steps past beta_N = 0; candidates are clamped
    into the valid region instead of becoming NaN schedules."""
    res = search_schedule(lambda s: float(s.noise_levels[-1]), 3, grid=2, max_last_level=1.0, coord_rounds=0)
    assert all(math.isfinite(c.last_level) for c in res.candidates)
    assert all(0 < b < 1 for c in res.candidates for b in c.betas)
