"""The chunks of a video converted on a local Ray cluster started here (2 CPUs), as on a real one:
the model and the input go through Ray's object store, the parts come back as bytes."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from deepswap.convert import ConvertOptions, convert
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


def ray_task_processes() -> list[int]:
    """Ray worker processes running a chunk (Ray names them after the task they run)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if b"_convert_remote_chunk" in (entry / "cmdline").read_bytes():
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
