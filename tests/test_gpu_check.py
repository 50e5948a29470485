"""The GPU check's dry run: every section of ``python -m wavegrad.benchmarks.gpu`` runs at tiny sizes on the CPU
and writes its JSON, so the command is ready for the first lent device."""
import json
import subprocess
import sys

import pytest
import torch


def test_gpu_check_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, "-m", "wavegrad.benchmarks.gpu", "--dry-run", "--out", str(out)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["dry_run"] and report["device"] == "cpu" and "cpu=" in report["hardware"]
    assert report["tests"]["returncode"] in (0, 5)                   # 5: every CUDA test skipped/deselected here
    assert all(r["losses_finite"] for r in report["train"]) and report["train"][0]["samples_per_s"] > 0
    assert all(r["finite"] and r["rtf"] > 0 for r in report["vocode"])
    assert [r["audio_s"] for r in report["long"]] == [0.5, 1.0] and all(r["finite"] for r in report["long"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible: the check would run")
def test_gpu_check_without_cuda_says_so_in_one_line():
    r = subprocess.run([sys.executable, "-m", "wavegrad.benchmarks.gpu"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no CUDA device" in r.stdout and "Traceback" not in r.stderr
