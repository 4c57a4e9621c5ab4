"""Convert and extract on a local Ray cluster started here (2 CPUs), as on a real one: the model,
the inputs and the sources go through Ray's object store, the videos and faces come back as bytes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from deepswap.convert import ConvertOptions, convert, convert_batch
from deepswap.extract import ExtractOptions, extract
from deepswap.convert.chunks import chunk_folder
from deepswap.verify import verify_file
from deepswap.video import probe_video

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "deepswap[cluster]")')
pytestmark = pytest.mark.slow  # starting a local cluster and its workers: about 20 s


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def frame_times(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_chunks_on_ray_join_into_the_whole_video(trained_workspace, s1_clips, tmp_path):
    events = []
    out = tmp_path / "out.mp4"
    report = convert(trained_workspace, s1_clips[5], out, ConvertOptions(chunk_seconds=1.0, ray="auto"), events.append)
    assert report.frames == 75 and probe_video(out).frames == 75 and frame_times(out) == [k / 25 for k in range(75)]
    assert verify_file(out).synthetic and not chunk_folder(out).exists()
    progress = [event.done for event in events if event.kind == "progress"]
    assert progress == sorted(progress) and progress[-1] == 75


def ray_task_processes(task: bytes = b"_convert_remote_chunk") -> list[int]:
    """Ray worker processes running a task (Ray names them after the task they run)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if task in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_ray_worker_killed_mid_chunk_is_retried(trained_workspace, s1_clips, tmp_path):
    killed = []

    def kill_one_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in ray_task_processes():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    out = tmp_path / "out.mp4"
    report = convert(trained_workspace, s1_clips[5], out, ConvertOptions(chunk_seconds=0.5, ray="auto"))
    killer.join()
    assert killed, "a worker was killed while it converted a chunk"
    assert report.frames == 75 and probe_video(out).frames == 75 and verify_file(out).synthetic


class Watcher(threading.Thread):
    """Notes the Ray worker processes that run a task while it watches."""

    def __init__(self, task: bytes) -> None:
        super().__init__()
        self.task = task
        self.seen: set[int] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.seen.update(ray_task_processes(self.task))
            time.sleep(0.02)

    def __enter__(self) -> "Watcher":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.join()


def test_a_batchs_videos_are_ray_tasks_and_a_rerun_skips_them(trained_workspace, s1_clips, photos, tmp_path):
    inputs = [s1_clips[0], s1_clips[1], photos[0]]
    events = []
    with Watcher(b"_convert_remote_chunk") as watcher:
        report = convert_batch(trained_workspace, inputs, tmp_path / "out", ConvertOptions(duration=0.4, ray="auto"),
                               events.append)
    assert [item.state for item in report.items] == ["done", "done", "done"] and report.frames == 21
    assert watcher.seen, "the videos were converted by Ray tasks"
    assert all(verify_file(item.output).synthetic for item in report.items[:2]) and report.items[2].output.is_file()
    assert [probe_video(item.output).frames for item in report.items[:2]] == [10, 10]
    for clip in s1_clips[:2]:  # each video's progress, frame by frame
        counts = [event.done for event in events if event.task == f"convert {clip.name}" and event.kind == "progress"]
        assert counts == list(range(1, 11)), clip.name
    again = convert_batch(trained_workspace, inputs, tmp_path / "out", ConvertOptions(duration=0.4, ray="auto"))
    assert [item.state for item in again.items] == ["skipped"] * 3


def test_sources_extracted_on_ray_are_those_one_process_extracts(s1_clips, photos, tmp_path):
    from test_extract_workers import assert_same_faces, workspace_of

    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in photos:
        (folder / photo.name).write_bytes(photo.read_bytes())
    sources = [*s1_clips[:2], folder]
    one, there = workspace_of(tmp_path / "one", sources), workspace_of(tmp_path / "there", sources)
    extract(one, ExtractOptions(fps=5, workers=1))
    events = []
    with Watcher(b"_extract_remote_source") as watcher:
        extract(there, ExtractOptions(fps=5, ray="auto"), events.append)
    assert watcher.seen, "the sources were extracted by Ray tasks"
    assert_same_faces(one, there)
    counts = [event.done for event in events if event.task == f"a: {s1_clips[0].name}" and event.kind == "progress"]
    assert counts == list(range(1, 16))
