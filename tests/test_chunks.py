"""A video converted in chunks: the joined file matches one pass, and a stopped run redoes only unfinished chunks."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from deepswap.convert import ConvertOptions, convert
from deepswap.convert.chunks import chunk_folder, plan_chunks
from deepswap.progress import ProgressEvent
from deepswap.verify import verify_file
from deepswap.video import probe_video, read_frames

CHUNKED = ConvertOptions(chunk_seconds=1.0, workers=1)  # a 3 s GRID clip: three chunks, cut at keyframes (every 0.48 s)


def frame_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        return float(stream.duration * stream.time_base)


def audio_packets(path: Path) -> list[tuple[int, bytes]]:
    """The audio packets' times and contents: equal lists mean the same sound at the same moments."""
    with av.open(str(path)) as container:
        return [(packet.pts, bytes(packet)) for packet in container.demux(audio=0) if packet.size]


def mean_differences(a: Path, b: Path) -> np.ndarray:
    """Per frame, the mean absolute difference of two videos' pixels (0..255)."""
    return np.array([np.abs(x.image.astype(np.int16) - y.image.astype(np.int16)).mean()
                     for x, y in zip(read_frames(a), read_frames(b), strict=True)])


@pytest.fixture(scope="module")
def outputs(trained_workspace: Path, s1_clips: list[Path], tmp_path_factory) -> dict[str, Path]:
    """One clip converted in one pass (at crf 18 and losslessly) and in chunks."""
    folder = tmp_path_factory.mktemp("chunks")
    done = {}
    for name, options in {"single": ConvertOptions(chunk_seconds=0), "lossless": ConvertOptions(chunk_seconds=0, crf=0),
                          "chunked": CHUNKED}.items():
        done[name] = convert(trained_workspace, s1_clips[5], folder / f"{name}.mp4", options).output
    return done


def test_chunks_are_cut_at_keyframes(s1_clips):
    chunks = plan_chunks(s1_clips[5], probe_video(s1_clips[5]), CHUNKED)
    assert [round(chunk.start, 2) for chunk in chunks] == [0.0, 0.96, 1.92]
    assert [chunk.end for chunk in chunks[:-1]] == [chunk.start for chunk in chunks[1:]]
    assert all(chunk.start - chunk.lead == pytest.approx(8 / 25) for chunk in chunks[1:])
    assert plan_chunks(s1_clips[5], probe_video(s1_clips[5]), ConvertOptions()) is None, "3 s is one 60 s chunk"


@pytest.mark.slow
def test_joined_chunks_match_a_single_pass(outputs):
    single, chunked = outputs["single"], outputs["chunked"]
    assert probe_video(chunked).frames == probe_video(single).frames == 75
    assert frame_times(chunked) == frame_times(single)
    assert audio_seconds(chunked) == pytest.approx(audio_seconds(single), abs=1e-3)
    assert audio_packets(chunked) == audio_packets(single), "the same audio at the same times: in sync as one pass"
    # Each output carries its own watermark id, so even two single passes differ by the watermark
    # and the encoding; the chunked one differs from a single pass no more than encoding alone does.
    encoding = mean_differences(single, outputs["lossless"])
    joined = mean_differences(single, chunked)
    assert joined.max() <= 1.25 * encoding.max(), (joined.max(), encoding.max())
    report = verify_file(chunked)
    assert report.synthetic and "watermark confirmed" in report.summary() and "binding intact" in report.summary()
    assert not chunk_folder(chunked).exists()


@pytest.mark.slow
def test_a_stopped_run_redoes_only_unfinished_chunks(trained_workspace, s1_clips, tmp_path):
    out = tmp_path / "out.mp4"

    def stop_in_the_second_chunk(event: ProgressEvent) -> None:
        if event.kind == "progress" and event.done >= 30:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        convert(trained_workspace, s1_clips[5], out, CHUNKED, stop_in_the_second_chunk)
    kept = sorted(path.name for path in chunk_folder(out).glob("part_*.mp4"))
    assert kept == ["part_00000.mp4"] and not out.exists()
    events: list[ProgressEvent] = []
    report = convert(trained_workspace, s1_clips[5], out, CHUNKED, events.append)
    started = next(event for event in events if event.kind == "task")
    assert started.done == 24, "the first chunk's frames were done before"
    assert sum(event.kind == "progress" for event in events) == 75 - 24
    assert report.frames == 75 and probe_video(out).frames == 75 and verify_file(out).synthetic


def worker_processes(parent: int) -> list[int]:
    """The pool's worker processes of a process (spawned children running multiprocessing's spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_a_worker_killed_mid_chunk_is_redone(trained_workspace, s1_clips, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out.mp4"
    command = [str(Path(sys.executable).parent / "deepswap"), "convert", str(trained_workspace), str(s1_clips[5]),
               "-o", str(out), "--chunk-seconds", "0.5", "--workers", "2"]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(chunk_folder(out).glob(".part_*")) and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until a worker is writing a part
    victims = worker_processes(running.pid)
    assert victims, "the workers run in processes of their own"
    os.kill(victims[0], signal.SIGKILL)
    _, stderr = running.communicate(timeout=180)
    assert running.returncode == 0, stderr
    assert probe_video(out).frames == 75 and frame_times(out) == [k / 25 for k in range(75)]
    assert verify_file(out).synthetic and not chunk_folder(out).exists()


def test_a_folder_in_the_way_of_the_chunks_is_never_deleted(trained_workspace, s1_clips, tmp_path):
    from deepswap.errors import DeepswapError

    out = tmp_path / "out.mp4"
    chunk_folder(out).mkdir()
    (chunk_folder(out) / "notes.txt").write_text("mine")
    with pytest.raises(DeepswapError, match=r"\.out\.mp4\.chunks: holds files that are not chunks of a convert \(notes.txt\)"):
        convert(trained_workspace, s1_clips[5], out, CHUNKED)
    assert (chunk_folder(out) / "notes.txt").read_text() == "mine" and not out.exists()
