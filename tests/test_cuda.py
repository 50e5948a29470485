"""What must hold on a GPU (skipped without one; ``python -m wavegrad.benchmarks.gpu`` runs them on a lent machine):
vocoding on CUDA equals the CPU's within float rounding for the same seeds, and autocast training steps stay finite."""
import math

import pytest
import torch

from wavegrad.audio import MelConfig
from wavegrad.diffusion import NoiseSchedule, sample
from wavegrad.long_form import WindowedDenoiser
from wavegrad.models import DiffWave, DiffWaveConfig, WaveGrad, WaveGradConfig

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("net", [WaveGrad(WaveGradConfig.tiny()), DiffWave(DiffWaveConfig(residual_layers=6))],
                         ids=["wavegrad", "diffwave"])
def test_windowed_sampling_on_cuda_equals_the_cpu(net):
    """The noise comes from CPU generators whatever the device, so only the network's rounding differs."""
    torch.manual_seed(0)
    mels = [torch.randn(80, f) - 5 for f in (300, 40)]
    out = {}
    for device in ("cpu", "cuda"):
        model = net.to(device).eval()
        with torch.inference_mode():
            denoise = WindowedDenoiser(model, [m.to(device) for m in mels], chunk_frames=64, overlap_frames=32,
                                       batch_size=2)
            out[device] = sample(denoise, (2, 300 * 256), NoiseSchedule.linear(1000).respace(4),
                                 generator=torch.Generator().manual_seed(1), device=device, clip_x0=1.0).cpu()
    torch.testing.assert_close(out["cuda"], out["cpu"], rtol=0, atol=1e-2)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_training_steps_are_finite(dtype):
    from wavegrad.diffusion.objective import draw_noise_level, eps_loss, q_sample
    torch.manual_seed(0)
    net = WaveGrad(WaveGradConfig.tiny()).cuda().train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
    audio = (0.3 * torch.randn(4, 7168)).clamp(-1, 1).cuda()
    mel = (torch.randn(4, 80, 28) - 5).cuda()
    for _ in range(3):
        level = draw_noise_level(NoiseSchedule.linear(1000), 4).cuda().float()
        eps = torch.randn_like(audio)
        with torch.autocast("cuda", dtype=dtype):
            loss = eps_loss(net(q_sample(audio, level, eps), level, mel).float(), eps)
        opt.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        assert math.isfinite(float(loss))


def test_the_default_mel_featurizer_runs_on_cuda():
    from wavegrad.audio import MelFeaturizer
    wav = 0.3 * torch.randn(2, 22050)
    cpu = MelFeaturizer(MelConfig())(wav)
    gpu = MelFeaturizer(MelConfig()).cuda()(wav.cuda()).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-3)
