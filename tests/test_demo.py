"""`deepswap demo` end to end in a reduced mode (tiny model, a few seconds of training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepswap.demo import DemoOptions, run_demo
from deepswap.verify import verify_file
from deepswap.video import probe_video

TINY = ("lite", {"resolution": 32, "width": 8, "latent": 32}, 4, 1e-3)


@pytest.mark.slow
def test_demo_runs_end_to_end_and_resumes(tmp_path: Path):
    result = run_demo(DemoOptions(tmp_path, minutes=0.05), model=TINY, fps=4)
    info = probe_video(result.video)
    assert info.has_audio and info.width == 720 and info.frames >= 74
    report = verify_file(result.video)
    assert report.label is not None and report.watermark.found, "side by side, the swapped panel carries the mark"
    assert result.preview.is_file() and result.loss_plot.is_file() and result.iterations > 0
    again = run_demo(DemoOptions(tmp_path, minutes=0.05), model=TINY, fps=4)
    assert again.iterations > result.iterations, "a second run resumes training"
    status = subprocess.run([str(Path(sys.executable).parent / "deepswap"), "status", str(result.workspace), "--json"],
                            capture_output=True, text=True, check=True)
    assert json.loads(status.stdout)["model"]["iterations"] == again.iterations
