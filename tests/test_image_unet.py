"""The DDPM image UNet: the paper's parameter count, shapes of both presets, conditioning and guidance."""
import pytest
import torch

from wavegrad.diffusion import NoiseSchedule, sample
from wavegrad.errors import UserInputError
from wavegrad.models import ImageUNet, ImageUNetConfig, count_parameters
from wavegrad.models.image_unet import guided_denoiser

PAPER_CIFAR10_PARAMS = 35.7e6  # Ho et al. 2020, App. B


def _tiny(**kw):
    base = dict(image_size=8, in_channels=3, base_channels=16, channel_mults=(1, 2), num_res_blocks=1,
                attn_resolutions=(4,), dropout=0.0, norm_groups=8)
    base.update(kw)
    return ImageUNetConfig(**base)


def _randomise(model):
    """Re-draw every weight (the paper's near-zero init makes every output ~1e-5, hiding differences)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def test_cifar10_parameter_count_matches_the_paper():
    n = count_parameters(ImageUNet(ImageUNetConfig.cifar10()))
    assert abs(n - PAPER_CIFAR10_PARAMS) / PAPER_CIFAR10_PARAMS < 0.03, n
    assert n == 35_746_307  # the TF original's count, as reported by its PyTorch ports
    # conditioning adds only the (K + 1) x 4C label table
    assert count_parameters(ImageUNet(ImageUNetConfig.cifar10(num_classes=10))) == n + 11 * 512


@pytest.mark.parametrize("preset, shape", [(ImageUNetConfig.cifar10, (2, 3, 32, 32)),
                                           (ImageUNetConfig.mnist, (2, 1, 28, 28))])
def test_presets_map_images_to_eps_of_the_same_shape(preset, shape):
    torch.manual_seed(0)
    net = ImageUNet(preset()).eval()
    with torch.no_grad():
        out = net(torch.randn(shape), torch.tensor([0.3, 0.9]))
    assert out.shape == shape and torch.isfinite(out).all()
    assert out.abs().max() < 1e-2  # residual and output convs start near zero (DDPM's init_scale 1e-10)


def test_mnist_preset_is_smaller_and_native_size():
    cfg = ImageUNetConfig.mnist()
    assert cfg.resolutions() == [28, 14, 7]
    assert 1e6 < count_parameters(ImageUNet(cfg)) < 10e6


def test_noise_level_and_labels_change_the_output():
    net = _randomise(ImageUNet(_tiny(num_classes=10))).eval()
    x = torch.randn(3, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    lv = torch.full((3,), 0.5)
    with torch.no_grad():
        a = net(x, lv, torch.tensor([0, 1, 2]))
        b = net(x, lv, torch.tensor([3, 4, 5]))
        c = net(x, lv * 0.5, torch.tensor([0, 1, 2]))
        null = net(x, lv, torch.full((3,), 10))
        none = net(x, lv)
    assert (a - b).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    assert (a - c).abs().max() > 1e-3
    torch.testing.assert_close(none, null)  # no labels = the null label


def test_guided_denoiser_is_the_cfg_combination():
    net = _randomise(ImageUNet(_tiny(num_classes=4))).eval()
    x, lv, y = torch.randn(2, 3, 8, 8), torch.tensor([0.2, 0.7]), torch.tensor([1, 3])
    with torch.no_grad():
        cond, uncond = net(x, lv, y), net(x, lv)
        torch.testing.assert_close(guided_denoiser(net, y, 0.0)(x, lv), cond)
        torch.testing.assert_close(guided_denoiser(net, y, 2.0)(x, lv), 3 * cond - 2 * uncond, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(guided_denoiser(net)(x, lv), uncond)
        # through the shared sampler
        out = sample(guided_denoiser(net, y, 1.5), (2, 3, 8, 8), NoiseSchedule.linear(1000).respace(3),
                     generator=torch.Generator().manual_seed(0), clip_x0=1.0)
    assert out.shape == (2, 3, 8, 8) and out.abs().max() <= 1.0 + 1e-6
    with pytest.raises(UserInputError, match="guidance"):
        guided_denoiser(net, None, 1.0)
    with pytest.raises(UserInputError, match=">= 0"):
        guided_denoiser(net, y, -1.0)
    with pytest.raises(UserInputError, match="unconditional"):
        guided_denoiser(ImageUNet(_tiny()), y, 1.0)


def test_bad_inputs_are_user_errors():
    net = ImageUNet(_tiny(num_classes=10))
    lv = torch.full((2,), 0.5)
    with pytest.raises(UserInputError, match=r"\[B, 3, 8, 8\]"):
        net(torch.randn(2, 1, 8, 8), lv)
    with pytest.raises(UserInputError, match="noise_level"):
        net(torch.randn(2, 3, 8, 8), torch.full((3,), 0.5))
    with pytest.raises(UserInputError, match="labels must lie"):
        net(torch.randn(2, 3, 8, 8), lv, torch.tensor([0, 11]))
    with pytest.raises(UserInputError, match="unconditional"):
        ImageUNet(_tiny())(torch.randn(2, 3, 8, 8), lv, torch.tensor([0, 1]))


@pytest.mark.parametrize("kw, msg", [({"image_size": 28, "channel_mults": (1, 2, 2, 2)}, "divisible by 2"),
                                     ({"attn_resolutions": (5,)}, "attn_resolutions"),
                                     ({"base_channels": 12}, "norm_groups"),
                                     ({"dropout": 1.0}, "dropout")])
def test_bad_configs_are_user_errors(kw, msg):
    with pytest.raises(UserInputError, match=msg):
        _tiny(**kw)


def test_config_round_trips_through_a_dict():
    cfg = ImageUNetConfig.mnist(num_classes=10)
    assert ImageUNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(UserInputError, match="unknown"):
        ImageUNetConfig.from_dict({**cfg.to_dict(), "heads": 4})
