"""Batch convert on real GRID clips with the tiny trained model: resume, partial failure, a kill, the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deepswap.convert import ConvertOptions, convert_batch, expand_inputs
from deepswap.convert.batch import batch_outputs
from deepswap.verify import verify_file
from deepswap.video import probe_video

SHORT = ConvertOptions(duration=0.4, workers=1)  # in this process: worker processes have a test of their own
COMMAND = Path(sys.executable).parent / "deepswap"


def recorded_outputs(workspace: Path, folder: Path) -> list[dict]:
    """The outputs in ``folder`` that outputs.json lists as finished (not those only begun)."""
    entries = json.loads((workspace / "outputs.json").read_text()) if (workspace / "outputs.json").is_file() else []
    return [entry for entry in entries if Path(entry["path"]).parent == folder.resolve() and not entry.get("pending")]


def test_a_batch_goes_on_past_a_bad_input_and_a_rerun_skips_what_is_done(trained_workspace, s1_clips, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    out = tmp_path / "out"
    first = convert_batch(trained_workspace, [s1_clips[0], broken, s1_clips[1]], out, SHORT)
    assert [item.state for item in first.items] == ["done", "failed", "done"]
    assert "broken.mp4" in first.failed[0].reason and len(first.failed[0].reason.splitlines()) == 1
    assert first.frames == 20 and first.fps > 0
    for item in first.items[::2]:
        assert probe_video(item.output).frames == 10 and verify_file(item.output).synthetic
    second = convert_batch(trained_workspace, [s1_clips[0], broken, s1_clips[1]], out, SHORT)
    assert [item.state for item in second.items] == ["skipped", "failed", "skipped"]
    assert second.summary().startswith("0 done, 2 skipped, 1 failed")
    damaged = first.items[2].output
    damaged.write_bytes(damaged.read_bytes()[:5000])  # a recorded output that is no longer whole is redone
    third = convert_batch(trained_workspace, [s1_clips[0], s1_clips[1]], out, SHORT)
    assert [item.state for item in third.items] == ["skipped", "done"] and probe_video(damaged).frames == 10


def test_inputs_are_files_folders_and_globs_and_outputs_never_collide(s1_clips, photos, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for folder in ("x", "y"):
        (tmp_path / folder / "shot.mp4").write_bytes(b"")
    (tmp_path / "faces").mkdir()
    (tmp_path / "faces" / "p.png").write_bytes(b"")
    grid = s1_clips[0].parent
    found = expand_inputs([str(grid / "bbaf*.mp4"), tmp_path / "x", tmp_path / "y" / "shot.mp4", tmp_path / "faces",
                           s1_clips[0]])
    assert found[:4] == sorted(grid.glob("bbaf*.mp4")) and found[4:] == [tmp_path / "x" / "shot.mp4",
                                                                         tmp_path / "y" / "shot.mp4", tmp_path / "faces"]
    names = [path.name for path in batch_outputs(found, tmp_path / "out", ConvertOptions()).values()]
    assert names[4:] == ["x_shot_swapped.mp4", "y_shot_swapped.mp4", "faces_swapped"]
    assert len(set(names)) == len(names)


@pytest.mark.slow
def test_cli_batch_summary_exit_code_and_resume_after_a_kill(trained_workspace, s1_clips, tmp_path):
    out = tmp_path / "out"
    clips = [str(clip) for clip in s1_clips[:3]]
    args = [str(COMMAND), "convert", str(trained_workspace), *clips, "-o", str(out), "--duration", "1.2", "--workers", "1"]
    running = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not recorded_outputs(trained_workspace, out) and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(running.pid, signal.SIGKILL)
    running.wait()
    finished = len(recorded_outputs(trained_workspace, out))
    assert 1 <= finished < 3, "killed after the first output and before the last"
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    resumed = subprocess.run([*args, str(broken)], capture_output=True, text=True)
    assert resumed.returncode == 1, resumed.stderr
    assert f"{3 - finished} done, {finished} skipped, 1 failed" in resumed.stderr
    assert "Traceback" not in resumed.stderr and "broken.mp4" in resumed.stderr
    assert sorted(path.name for path in out.iterdir()) == [f"{Path(clip).stem}_swapped.mp4" for clip in clips]
    again = subprocess.run(args, capture_output=True, text=True)
    assert again.returncode == 0 and "0 done, 3 skipped, 0 failed" in again.stderr


def test_single_input_to_a_file_is_the_plain_convert(trained_workspace, s1_clips, tmp_path):
    out = tmp_path / "one.mp4"
    result = subprocess.run([str(COMMAND), "convert", str(trained_workspace), str(s1_clips[4]), "-o", str(out),
                             "--duration", "0.2"], capture_output=True, text=True)
    assert result.returncode == 0 and "5 frames" in result.stderr and probe_video(out).frames == 5
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one.mp4"]


@pytest.mark.parametrize("kind", ["photo", "photo folder"])
def test_photos_in_a_batch(trained_workspace, photos, tmp_path, kind):
    folder = tmp_path / "portraits"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).write_bytes(photo.read_bytes())
    inputs = sorted(folder.iterdir()) if kind == "photo" else [folder]
    first = convert_batch(trained_workspace, inputs, tmp_path / "out", ConvertOptions(workers=1))
    assert {item.state for item in first.items} == {"done"}
    second = convert_batch(trained_workspace, inputs, tmp_path / "out", ConvertOptions(workers=1))
    assert {item.state for item in second.items} == {"skipped"}


def test_extract_goes_on_past_a_bad_source_and_exits_1(s1_clips, tmp_path):
    from deepswap.sources import add_sources
    from deepswap.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root, "s1", "other")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(s1_clips[0].read_bytes())
    add_sources(root, "a", [str(broken), str(s1_clips[1])])
    broken.write_bytes(b"not a video" * 100)  # damaged after it was added
    result = subprocess.run([str(COMMAND), "extract", str(root), "--person", "a", "--fps", "5"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ") and "broken.mp4: not a readable video" in result.stderr
    assert len(list((root / "a" / "faces").glob("*.png"))) == 15, "the good source's faces are kept"


@pytest.mark.slow
def test_the_convert_page_takes_several_files_and_converts_them_as_a_batch(trained_workspace, s1_clips, tmp_path):
    import re
    import shutil

    from starlette.testclient import TestClient

    from deepswap.ui import create_app

    shutil.copytree(trained_workspace, tmp_path / "ws")
    client = TestClient(create_app(tmp_path), base_url="http://127.0.0.1:7860")
    client.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/").text).group(1)
    sent = client.post("/w/ws/convert/upload", files=[("file", ("one.mp4", s1_clips[0].read_bytes(), "video/mp4")),
                                                      ("file", ("two.mp4", s1_clips[1].read_bytes(), "video/mp4"))])
    assert sent.status_code == 204 and sent.headers["HX-Redirect"].endswith("input=uploads:all")
    assert "all 2 uploaded files" in client.get("/w/ws/convert").text
    started = client.post("/w/ws/run/convert", data={"input": "uploads:all", "duration": "0.2", "mode": "full"})
    assert started.status_code == 204
    job = client.app.state.ui.jobs.latest(tmp_path / "ws", "convert")
    deadline = time.monotonic() + 120
    while job.active and time.monotonic() < deadline:
        time.sleep(0.2)
    assert job.error is None and job.result["summary"].startswith("2 done, 0 skipped, 0 failed")
    assert sorted(path.name for path in (tmp_path / "ws" / "outputs").iterdir()) == ["one_swapped.mp4", "two_swapped.mp4"]


@pytest.mark.slow
def test_a_batch_in_two_worker_processes(trained_workspace, s1_clips, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 100)
    events = []
    report = convert_batch(trained_workspace, [s1_clips[0], broken, s1_clips[1]], tmp_path / "out",
                           ConvertOptions(duration=0.4, workers=2), events.append)
    assert [item.state for item in report.items] == ["done", "failed", "done"] and "broken.mp4" in report.failed[0].reason
    assert report.frames == 20 and all(verify_file(item.output).synthetic for item in report.items[::2])
    assert {event.task for event in events if event.kind == "task"} >= {f"convert {s1_clips[0].name}",
                                                                       f"convert {s1_clips[1].name}"}


@pytest.mark.slow
def test_an_output_a_kill_left_unrecorded_is_converted_again_without_force(trained_workspace, s1_clips, tmp_path):
    from deepswap.convert import convert
    from deepswap.errors import DeepswapError
    from deepswap.workspace import Workspace

    out = tmp_path / "out"
    convert_batch(trained_workspace, [s1_clips[0]], out, SHORT)
    single = tmp_path / "single.mp4"
    convert(trained_workspace, s1_clips[1], single, SHORT)
    listing = trained_workspace / "outputs.json"
    entries = json.loads(listing.read_text())
    mine = {str((out / f"{s1_clips[0].stem}_swapped.mp4").resolve()), str(single.resolve())}
    # What a kill between an output's rename and its record leaves: the file whole, and the entry
    # the convert made before it began, which says only what it began
    listing.write_text(json.dumps([{key: entry[key] for key in ("path", "input", "direction")} | {"pending": True}
                                   if entry["path"] in mine else entry for entry in entries]))
    assert not mine & {entry["path"] for entry in Workspace.open(trained_workspace).outputs()}, "begun is not finished"
    again = convert_batch(trained_workspace, [s1_clips[0]], out, SHORT)
    assert [item.state for item in again.items] == ["done"]
    convert(trained_workspace, s1_clips[1], single, SHORT)  # no "exists; use --force"
    finished = {entry["path"]: entry for entry in json.loads(listing.read_text()) if entry["path"] in mine}
    assert len(finished) == 2 and all("sha256" in entry and not entry.get("pending") for entry in finished.values())
    assert verify_file(single).synthetic
    with pytest.raises(DeepswapError, match="force"):  # a file this convert did not begin is still never replaced
        convert(trained_workspace, s1_clips[2], single, SHORT)
