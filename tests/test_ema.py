import pytest
import torch
from torch import nn

from wavegrad.diffusion import EMA


def test_constant_target_closed_form():
    """With the parameter held at p, the shadow after n updates is p + prod(d_k)·(p0 - p)."""
    m = nn.Linear(3, 2)
    p0 = m.weight.detach().clone()
    ema = EMA(m, decay=0.9, warmup=False)
    with torch.no_grad():
        m.weight.fill_(1.0)
    for _ in range(7):
        ema.update(m)
    torch.testing.assert_close(ema.shadow["weight"], 1.0 + 0.9 ** 7 * (p0 - 1.0))


def test_warmup_decay_and_state_round_trip():
    m = nn.Linear(2, 2)
    ema = EMA(m, decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(1 / 10)
    for _ in range(5):
        ema.update(m)
    assert ema.current_decay() == pytest.approx(6 / 15)
    other = EMA(nn.Linear(2, 2), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.num_updates == 5 and other.decay == 0.999
    target = nn.Linear(2, 2)
    other.copy_to(target)
    torch.testing.assert_close(target.weight, ema.shadow["weight"])


def test_bad_decay_and_mismatched_state():
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(2, 2), decay=1.0)
    with pytest.raises(ValueError, match="does not match"):
        EMA(nn.Linear(2, 2)).load_state_dict(EMA(nn.Conv1d(2, 2, 1, bias=False)).state_dict())
