"""Crashes: `extract`, `train` and `convert` killed (SIGKILL) at random moments, then run again to the end.

The re-run must finish with valid results — the same faces as an uninterrupted extraction, a
loadable checkpoint at the asked iteration, a labelled and watermarked video — and leave no
temporary file behind.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepswap import _io
from deepswap.faces import FaceSet
from deepswap.verify import verify_file
from deepswap.train import load_model, read_state
from deepswap.workspace import Workspace, add_sources, init_workspace

KILLS = 3
TINY_TRAIN = ("import sys; from deepswap.train import TrainOptions, train; "
              "train(sys.argv[1], TrainOptions(model='lite', iterations=int(sys.argv[2]), batch_size=2, workers=0, "
              "log_every=1, architecture={'resolution': 32, 'width': 8, 'latent': 32}, precision='fp32', "
              "save_every_minutes=1e-6))")


def start(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)


def start_cli(*args: str | Path) -> subprocess.Popen:
    return start("-c", "from deepswap.cli import main; main()", *args)


def kill_soon_after(process: subprocess.Popen, working, rng: random.Random, most: float) -> bool:
    """SIGKILL ``process`` a random moment (up to ``most`` s) after ``working()`` shows that it is at
    work (not still starting up); False if it ended first."""
    deadline = time.monotonic() + 180
    while not working() and process.poll() is None:
        assert time.monotonic() < deadline, "the command never got going"
        time.sleep(0.002)
    time.sleep(rng.uniform(0, most))
    ended = process.poll() is not None
    process.send_signal(signal.SIGKILL)
    process.wait()
    return not ended


def run_to_the_end(process: subprocess.Popen) -> None:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err


def temporaries(folder: Path, pid: int | None = None) -> list[Path]:
    """Files a write in progress leaves (of process ``pid``): atomic writes' ``.NAME.PID.RANDOM.partSUFFIX``."""
    return [path for path in folder.rglob(".*") if ".part" in path.name and (pid is None or f".{pid}." in path.name)]


def crops(root: Path) -> int:
    return sum(1 for key in ("a", "b") for _ in (root / key / "faces").glob("*.png"))


@pytest.mark.slow
def test_extract_killed_at_random_moments_resumes_to_the_same_faces(extracted_workspace: Path, s1_clips: list[Path],
                                                                    speaker_clips: list[Path], tmp_path: Path) -> None:
    root = tmp_path / "ws"
    init_workspace(root, "s1", "lrwp9a")
    workspace = Workspace.open(root)
    workspace.settings["face_size"] = 128
    workspace.save()
    add_sources(root, "a", [str(clip) for clip in s1_clips[:2]])
    add_sources(root, "b", [str(next(c for c in speaker_clips if c.stem == "lrwp9a"))])
    rng = random.Random(11)
    killed = 0
    for attempt in range(KILLS):
        before = crops(root)
        process = start_cli("extract", root, "--fps", "10")
        if attempt % 2:  # the moment a file of this run is being written
            killed += kill_soon_after(process, lambda: bool(temporaries(root / "a", process.pid)
                                                            + temporaries(root / "b", process.pid)), rng, 0.0)
        else:
            killed += kill_soon_after(process, lambda: crops(root) > before, rng, 2.0)
    assert killed, "at least one run was killed mid-way"
    run_to_the_end(start_cli("extract", root, "--fps", "10"))
    for key in ("a", "b"):
        faces, reference = FaceSet.load(root / key / "faces"), FaceSet.load(extracted_workspace / key / "faces")
        assert all(state["complete"] for state in faces.sources.values())
        assert {k: s["frames"] for k, s in faces.sources.items()} == {k: s["frames"] for k, s in reference.sources.items()}
        assert abs(len(faces) - len(reference)) <= 0.05 * len(reference)
        assert all(_io.read_image(faces.crop_path(face)) is not None and faces.mask_path(face).is_file()
                   for face in faces.ids())
        assert {path.stem for path in faces.folder.glob("*.png")} == set(faces.ids()), "no unlisted crops"
    assert temporaries(root) == []


@pytest.mark.slow
def test_train_killed_at_random_moments_resumes_to_a_loadable_checkpoint(extracted_workspace: Path,
                                                                         tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(extracted_workspace, root, ignore=shutil.ignore_patterns("model"))
    model = root / "model"
    rng = random.Random(7)
    killed = 0
    for attempt in range(KILLS):
        before = (read_state(model) or {}).get("iteration", 0)
        process = start("-c", TINY_TRAIN, root, "20")
        if attempt % 2:  # while it writes a checkpoint, a preview or the loss log
            killed += kill_soon_after(process, lambda: bool(temporaries(model, process.pid)), rng, 0.0)
        else:
            killed += kill_soon_after(process, lambda: (read_state(model) or {}).get("iteration", 0) > before, rng, 1.5)
    assert killed, "at least one run was killed mid-way"
    run_to_the_end(start("-c", TINY_TRAIN, root, "20"))
    net, state = load_model(model)
    assert state["iteration"] == 20
    assert sorted(path.name for path in model.glob("*.safetensors")) == sorted(r["name"] for r in state["files"].values())
    best, best_state = load_model(model / "best")
    assert 0 < best_state["iteration"] <= 20
    assert read_state(model)["training"]["batch_size"] == 2
    assert temporaries(root) == []


@pytest.mark.slow
def test_convert_killed_at_random_moments_then_finishes_a_marked_video(trained_workspace: Path, s1_clips: list[Path],
                                                                       tmp_path: Path) -> None:
    root = tmp_path / "ws"
    shutil.copytree(trained_workspace, root)
    out = tmp_path / "out" / "swap.mp4"
    out.parent.mkdir()
    rng = random.Random(3)
    for _ in range(KILLS):
        process = start_cli("convert", root, s1_clips[3], "-o", out, "--duration", "2")
        kill_soon_after(process, lambda: bool(temporaries(out.parent, process.pid)), rng, 1.0)
        assert not out.exists() or verify_file(out).synthetic, "never half a video under the final name"
    if out.exists():
        out.unlink()
    run_to_the_end(start_cli("convert", root, s1_clips[3], "-o", out, "--duration", "2"))
    report = verify_file(out)
    assert report.synthetic and report.watermark.found
    assert sorted(out.parent.iterdir()) == [out], "no temporary left beside the output"
    outputs = json.loads((root / "outputs.json").read_text("utf-8"))
    assert [o["path"] for o in outputs].count(str(out.resolve())) == 1
