"""Extract over many sources in worker processes, on real GRID clips: the same faces as one
process, a failed source failing alone, a killed run resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from deepswap.errors import DeepswapError
from deepswap.extract import ExtractOptions, check_failed, extract
from deepswap.faces import MASKS
from deepswap.sources import add_sources
from deepswap.workspace import init_workspace

COMMAND = Path(sys.executable).parent / "deepswap"


def workspace_of(root: Path, sources: list[Path]) -> Path:
    init_workspace(root, "s1", "other")
    add_sources(root, "a", [str(source) for source in sources])
    return root


def alignments(root: Path) -> dict:
    return json.loads((root / "a" / "faces" / "alignments.json").read_text())


def pngs(root: Path) -> set[str]:
    folder = root / "a" / "faces"
    return {path.name for path in folder.glob("*.png")} | {f"masks/{path.name}" for path in (folder / MASKS).glob("*.png")}


def assert_same_faces(one: Path, other: Path) -> None:
    """The same face names, sources and files; records equal but for the last digits of floats."""
    first, second = alignments(one), alignments(other)
    assert sorted(first["faces"]) == sorted(second["faces"]) and first["sources"] == second["sources"]
    for name, record in first["faces"].items():
        twin = second["faces"][name]
        assert {k: v for k, v in record.items() if k not in ("landmarks", "matrix", "box")} == \
            {k: v for k, v in twin.items() if k not in ("landmarks", "matrix", "box")}, name
        assert np.abs(np.subtract(record["landmarks"], twin["landmarks"])).max() < 0.5, name
    assert pngs(one) == pngs(other)


@pytest.mark.slow
def test_two_workers_extract_the_faces_one_process_does_and_a_bad_source_fails_alone(s1_clips, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(s1_clips[0].read_bytes())
    sources = [*s1_clips[:2], broken]
    one, two = workspace_of(tmp_path / "one", sources), workspace_of(tmp_path / "two", sources)
    broken.write_bytes(b"not a video" * 100)  # damaged after it was added
    extract(one, ExtractOptions(fps=5, workers=1))
    events = []
    reports = extract(two, ExtractOptions(fps=5, workers=2), events.append)
    assert list(reports["a"].failed) == [str(broken)] and "broken.mp4: not a readable video" in reports["a"].failed[str(broken)]
    with pytest.raises(DeepswapError) as failed:
        check_failed(reports)
    assert str(failed.value) == reports["a"].failed[str(broken)], "the one line of the one failed source"
    assert reports["a"].faces == reports["a"].new_faces == 30 and reports["a"].frames == 30
    assert_same_faces(one, two)
    for clip in s1_clips[:2]:  # each source's own progress, frame by frame, from its worker
        counts = [event.done for event in events if event.task == f"a: {clip.name}" and event.kind == "progress"]
        assert counts == list(range(1, 16)), clip.name


def complete_sources(root: Path) -> dict[str, dict]:
    try:
        return {key: state for key, state in alignments(root)["sources"].items() if state["complete"]}
    except (OSError, ValueError, KeyError):
        return {}


@pytest.mark.slow
def test_a_killed_extract_keeps_each_finished_source_and_redoes_only_the_rest(s1_clips, tmp_path):
    root = workspace_of(tmp_path / "ws", s1_clips[:6])
    command = [str(COMMAND), "extract", str(root), "--person", "a", "--fps", "12.5", "--workers", "2"]
    running = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 180
    while not complete_sources(root) and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(running.pid, signal.SIGKILL)  # the command and its workers, mid-run
    running.wait()
    kept = complete_sources(root)
    assert 0 < len(kept) < 6, "killed after some sources and before the last"
    faces = alignments(root)["faces"]
    # every listed face has its crop; a source being merged at the kill may have crops not listed yet
    assert {f"{name}.png" for name in faces} <= {name for name in pngs(root) if "/" not in name}
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stderr.count("done before") == len(kept)
    again = alignments(root)
    assert all(state["complete"] for state in again["sources"].values()) and len(again["sources"]) == 6
    assert {name: record for name, record in again["faces"].items() if record["source"] in kept} == \
        {name: record for name, record in faces.items() if record["source"] in kept}
    assert {f"{name}.png" for name in again["faces"]} == {name for name in pngs(root) if "/" not in name}
