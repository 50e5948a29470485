"""Every Python snippet of README.md runs, and so does the public API's contract, so a documented call cannot break
silently.

The snippets run in order in one namespace, like a notebook a reader follows, from a folder holding what they name:
a tiny checkpoint at ``runs/quick/checkpoints/step-00000600.pt`` (with a stored ``search-6`` schedule), its export
``my-vocoder/``, MNIST- and CIFAR-10-format files, and the stand-ins a reader brings (``net``, ``mel``, ``denoise``...).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# The public API as the project's design fixes it (its contract block), executed against the same folder.
CONTRACT = '''
from wavegrad.diffusion import NoiseSchedule, sample
s = NoiseSchedule.linear(1000, 1e-4, 0.02)      # also .cosine(n), .from_betas(betas), .from_alphas_cumprod(ab)
s.betas, s.alphas_cumprod, s.noise_levels         # float64 tensors of length len(s)
s6 = s.respace(6)                                  # uniform sub-sequence of alpha_bar, betas re-derived
x = sample(denoise, shape, s6, eta=1.0, generator=g)   # eta=1: DDPM posterior noise; eta=0: DDIM
x = sample(denoise, shape, s6, x_T=None, progress=False, generator=g)
for name in ("ddpm", "ddim", "euler", "heun", "dpmpp-2m", "pc"):
    x = sample(denoise, shape, s6, sampler=name, generator=g)
import wavegrad.diffusion
assert wavegrad.diffusion.nfe("heun", len(s6)) == 11
x = wavegrad.diffusion.inpaint(denoise, x_known, mask, s6, sampler="ddpm", jump_length=1, jump_n_sample=1, generator=g)

from wavegrad.audio import MelConfig, MelFeaturizer
mel = MelFeaturizer(MelConfig())(wav)             # wav [T] or [B, T] float -> [B, n_mels, frames]
MelConfig.preset("tacotron2")

from wavegrad.models import WaveGrad, WaveGradConfig, DiffWave, DiffWaveConfig, ImageUNet, ImageUNetConfig
net = WaveGrad(WaveGradConfig.base())
dw = DiffWave(DiffWaveConfig.base())
unet = ImageUNet(ImageUNetConfig.cifar10())

from wavegrad.data.images import read_mnist, read_cifar10
imgs, labels = read_mnist(folder, split="train")
imgs, labels = read_cifar10(folder, split="train")

from wavegrad import Vocoder
voc = Vocoder.from_checkpoint(path, device="cpu")
voc = Vocoder.from_pretrained("my-vocoder")
wav = voc(mel[0], steps=6)
wav = voc(mel[0], schedule="search-6", eta=0.0)
wav = voc(mel[0], steps=6, sampler="heun")
wav = voc(mel[0], steps=6, consistency="gla")
voc = Vocoder.from_checkpoint(path, precision="bf16", compile=True)

from wavegrad import Enhancer
enh = Enhancer.from_checkpoint(enhancer_path); clean = enh(noisy_wav)
assert clean.shape == noisy_wav.shape
'''


def _snippets(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """The files and names the snippets refer to."""
    from wavegrad import Vocoder
    from wavegrad.audio import MelConfig
    from wavegrad.bundle import StoredSchedule
    from wavegrad.data.images import write_cifar10, write_mnist
    from wavegrad.diffusion import NoiseSchedule
    from wavegrad.models import WaveGrad, WaveGradConfig
    from wavegrad.vocoder import save_vocoder_checkpoint
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    tiny = WaveGrad(WaveGradConfig.tiny())
    path = save_vocoder_checkpoint(tmp_path / "runs/quick/checkpoints/step-00000600.pt", tiny, MelConfig(),
                                   NoiseSchedule.linear(1000), schedules={"search-6": NoiseSchedule.linear(1000)
                                                                          .respace(6)})
    voc = Vocoder.from_checkpoint(path)
    voc.bundle.schedules["search-6"] = StoredSchedule(voc.schedules["search-6"], "ddpm")
    voc.save_pretrained(tmp_path / "my-vocoder")
    from wavegrad.enhance import EnhancerBundle
    from wavegrad.models import DiffWave, DiffWaveConfig
    enh = DiffWave(DiffWaveConfig.tiny())
    EnhancerBundle(enh.cfg, MelConfig(), NoiseSchedule.linear(50, 1e-4, 0.035)).save_checkpoint(
        tmp_path / "runs/enhance-quick/checkpoints/step-00000001.pt", enh.state_dict())
    rng = np.random.default_rng(0)
    write_mnist(tmp_path / "images", rng.integers(0, 256, (4, 28, 28), dtype=np.uint8), np.arange(4) % 10)
    write_cifar10(tmp_path / "images", rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8), np.arange(4) % 10)
    return tmp_path


def _namespace(folder: Path) -> dict:
    """What a reader brings: a network and its mel, a denoiser with its shape, clips, a padded batch."""
    from wavegrad.models import WaveGrad, WaveGradConfig
    g = torch.Generator().manual_seed(1)
    t = torch.arange(256 * 12) / 22050
    wav = (0.3 * torch.sin(2 * torch.pi * 150 * t)).float()
    mel_a, mel_b = torch.randn(80, 10, generator=g) - 5, torch.randn(80, 7, generator=g) - 5
    mels = torch.full((2, 80, 10), -11.5)
    mels[0], mels[1, :, :7] = mel_a, mel_b
    return {"torch": torch, "net": WaveGrad(WaveGradConfig.tiny()), "mel": torch.randn(1, 80, 4, generator=g) - 5,
            "denoise": lambda x, level: x * 0.1, "shape": (2, 256), "wav": wav, "mel_a": mel_a, "mel_b": mel_b,
            "mels": mels, "mel_lens": [10, 7], "path": folder / "runs/quick/checkpoints/step-00000600.pt",
            "folder": folder / "images", "g": torch.Generator().manual_seed(0),
            "x_known": torch.zeros(2, 256), "mask": torch.arange(256) < 100,
            "noisy_wav": (wav + 0.05 * torch.randn(wav.shape, generator=g)).float(),
            "enhancer_path": folder / "runs/enhance-quick"}


def test_readme_snippets_run_in_order(folder):
    namespace = _namespace(folder)
    snippets = _snippets((ROOT / "README.md").read_text())
    assert len(snippets) >= 4
    for i, code in enumerate(snippets):
        try:
            exec(compile(code, f"README.md python snippet {i + 1}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - name the snippet that broke
            pytest.fail(f"README.md python snippet {i + 1} failed: {type(e).__name__}: {e}\n{code}")


def test_the_public_contract_runs(folder):
    exec(compile(CONTRACT, "the public API contract", "exec"), _namespace(folder))
