"""Audio infilling and trajectory pictures: samples outside the spans come back bit for bit (API and CLI, windowed
or not), bad spans are one line + exit 2 with nothing written, and the sampler's callback sees every step once,
in order, so the pictures have the right number of panels/frames."""
import numpy as np
import pytest
import soundfile as sf
import torch

from wavegrad import Vocoder
from wavegrad.audio import MelConfig
from wavegrad.diffusion import NoiseSchedule, sample
from wavegrad.errors import UserInputError
from wavegrad.models import WaveGrad, WaveGradConfig
from wavegrad.trajectory import Trajectory
from wavegrad.vocoder import save_vocoder_checkpoint

SR, HOP = 22050, 256


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_vocoder_checkpoint(path, WaveGrad(WaveGradConfig.tiny()), MelConfig(), NoiseSchedule.linear(1000))


def _recording(seconds=0.6, extra=37):
    """A 16-bit-exact tone: every value is k / 32768, so a PCM_16 round trip is lossless."""
    t = np.arange(int(seconds * SR) // HOP * HOP + extra) / SR                 # a ragged tail past the last frame
    wav = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return torch.from_numpy(np.round(wav * 32768) / 32768).float()


@pytest.mark.parametrize("chunk_frames", [None, 16])              # one window, and many windows with overlaps
def test_infill_keeps_every_sample_outside_the_spans(ckpt, chunk_frames):
    voc = Vocoder.from_checkpoint(ckpt)
    wav = _recording()
    spans = [(0.1, 0.15), (0.3, 0.42)]
    out = voc.infill(wav, spans, steps=3, seed=1, chunk_frames=chunk_frames)
    keep = voc.span_mask(spans, wav.shape[-1])
    assert out.shape == wav.shape and out.dtype == wav.dtype
    assert torch.equal(out[keep], wav[keep])                      # bit for bit, the ragged tail included
    assert (out[~keep] - wav[~keep]).abs().max() > 1e-3           # the spans are regenerated, not copied
    assert torch.equal(out, voc.infill(wav, spans, steps=3, seed=1, chunk_frames=chunk_frames))    # seeded


@pytest.mark.parametrize("spans, msg", [
    ([(0.5, 0.9)], "outside the recording"),
    ([(-0.1, 0.1)], "outside the recording"),
    ([(0.2, 0.2)], "is empty"),
    ([(0.1, 0.3), (0.2, 0.4)], "overlap"),
    ([], "at least one span"),
])
def test_bad_spans_are_user_errors(ckpt, spans, msg):
    with pytest.raises(UserInputError, match=msg):
        Vocoder.from_checkpoint(ckpt).infill(_recording(), spans, steps=2)


def _cli(argv, capsys):
    from wavegrad.cli import main
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_vocode_infill_cli_writes_the_recording_with_new_spans_and_a_figure(ckpt, tmp_path, capsys):
    from PIL import Image
    wav = _recording()
    src = tmp_path / "take.wav"
    sf.write(src, wav.numpy(), SR, subtype="PCM_16")
    out, fig = tmp_path / "out", tmp_path / "out" / "traj.png"
    code, err = _cli(["vocode", ckpt, src, "--infill", "0.1:0.2", "--steps", 3, "--out-dir", out, "--trajectory", fig],
                     capsys)
    assert code == 0, err
    before, _ = sf.read(src, dtype="int16")
    after, sr = sf.read(out / "take.wav", dtype="int16")
    assert sr == SR and after.shape == before.shape
    keep = np.ones(len(before), bool)
    keep[round(0.1 * SR):round(0.2 * SR)] = False
    assert np.array_equal(after[keep], before[keep]) and not np.array_equal(after[~keep], before[~keep])
    with Image.open(fig) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200


def test_vocode_infill_on_a_checkpoint_that_polishes_by_default(tmp_path, capsys):
    """New checkpoints store gla@0.9+gl16: --infill leaves their shallow start and polish out (both are for whole
    clips) and keeps every other sample; naming a polish with --infill is one line, exit 2, nothing written."""
    from wavegrad.audio.consistency import RECOMMENDED
    torch.manual_seed(0)
    ckpt = save_vocoder_checkpoint(tmp_path / "new.pt", WaveGrad(WaveGradConfig.tiny()), MelConfig(),
                                   NoiseSchedule.linear(1000), consistency=RECOMMENDED)
    src = tmp_path / "take.wav"
    sf.write(src, _recording().numpy(), SR, subtype="PCM_16")
    code, err = _cli(["vocode", ckpt, src, "--infill", "0.1:0.2", "--steps", 3, "--out-dir", tmp_path / "out"], capsys)
    assert code == 0, err
    before, after = sf.read(src, dtype="int16")[0], sf.read(tmp_path / "out" / "take.wav", dtype="int16")[0]
    keep = np.ones(len(before), bool)
    keep[round(0.1 * SR):round(0.2 * SR)] = False
    assert np.array_equal(after[keep], before[keep]) and not np.array_equal(after[~keep], before[~keep])
    code, err = _cli(["vocode", ckpt, src, "--infill", "0.1:0.2", "--steps", 3, "--consistency", "gla+gl4",
                      "--out-dir", tmp_path / "named"], capsys)
    assert code == 2 and "does not apply to infilling" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "named").exists()


@pytest.mark.parametrize("spans, msg", [
    ("0.5:0.9", "outside the recording"),
    ("0.1:0.3,0.2:0.4", "overlap"),
    ("0.2:0.2", "is empty"),
    ("0.1-0.2", "START:END"),
])
def test_vocode_infill_bad_span_is_one_line_exit_2_and_writes_nothing(ckpt, tmp_path, capsys, spans, msg):
    src = tmp_path / "in" / "take.wav"
    src.parent.mkdir()
    sf.write(src, _recording().numpy(), SR, subtype="PCM_16")
    out = tmp_path / "out"
    code, err = _cli(["vocode", ckpt, src, "--infill", spans, "--steps", 2, "--out-dir", out,
                      "--trajectory", out / "t.png"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and msg in err and "Traceback" not in err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("sampler, steps", [("ddpm", 5), ("ddim", 4), ("heun", 3), ("dpmpp-2m", 4), ("pc", 3)])
def test_callback_sees_every_step_once_in_order(sampler, steps):
    schedule = NoiseSchedule.linear(1000).respace(steps)
    record = Trajectory()
    x = sample(lambda x, level: 0.1 * x, (2, 16), schedule, sampler=sampler,
               generator=torch.Generator().manual_seed(0), callback=record)
    assert [i for i, *_ in record.steps] == list(range(steps))
    levels = [level for _, level, *_ in record.steps]
    assert levels == sorted(levels) and levels[0] == pytest.approx(float(schedule.noise_levels[-1]))
    assert all(s.shape == x.shape and d.shape == x.shape for _, _, s, d in record.steps)


def test_trajectory_keeps_the_chosen_steps():
    assert Trajectory.evenly(50, 6) == [0, 10, 20, 29, 39, 49]
    assert Trajectory.evenly(4, 6) == [0, 1, 2, 3]
    record = Trajectory(Trajectory.evenly(10, 3))
    sample(lambda x, level: 0 * x, (1, 8), NoiseSchedule.linear(1000).respace(10), eta=1.0,
           generator=torch.Generator().manual_seed(0), callback=record)
    assert [i for i, *_ in record.steps] == Trajectory.evenly(10, 3) == [0, 4, 9]      # round(4.5) == 4


@pytest.mark.parametrize("preset", ["hifigan", "coqui", "espnet", "wavegrad-paper-24k"])
def test_padding_is_the_conventions_own_silence(preset, tmp_path):
    from wavegrad.audio import MelFeaturizer
    cfg = MelConfig.preset(preset)
    hop = cfg.hop_length
    model = WaveGrad(WaveGradConfig.tiny(n_mels=cfg.n_mels, hop_length=hop))
    voc = Vocoder.from_checkpoint(save_vocoder_checkpoint(tmp_path / "c.pt", model, cfg, NoiseSchedule.linear(1000)))
    silent = MelFeaturizer(cfg)(torch.zeros(8 * hop))                   # what the convention calls silence
    assert voc.silence_level == pytest.approx(float(silent.mean()), abs=1e-5)
    if preset != "espnet":                        # a magnitude floor makes ESPnet's silence band-dependent
        assert voc.silence_level == pytest.approx(cfg.log_floor_value, abs=1e-5)
