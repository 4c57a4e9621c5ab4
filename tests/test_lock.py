"""Parallel commands: one lock per workspace; short writers wait, long writers refuse, readers read;
a dead holder's lock is taken over; stale temporaries are swept by the next long writer."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest
from filelock import FileLock

from deepswap import _io
from deepswap.errors import DeepswapError
from deepswap.extract import remove_faces
from deepswap.lock import HOLDER_NAME, LOCK_NAME, workspace_lock
from deepswap.sources import fetch_sources
from deepswap.train import load_model
from deepswap.sources import add_sources
from deepswap.workspace import Workspace, init_workspace

TINY_TRAIN = ("import sys; from deepswap.train import TrainOptions, train; "
              "train(sys.argv[1], TrainOptions(model='lite', iterations=int(sys.argv[2]), batch_size=2, workers=0, "
              "log_every=1, architecture={'resolution': 32, 'width': 8, 'latent': 32}, precision='fp32', "
              "save_every_minutes=float(sys.argv[3])))")


def cli(*args: str | Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from deepswap.cli import main; main()", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def holder(root: Path) -> dict | None:
    path = root / HOLDER_NAME
    return json.loads(path.read_text("utf-8")) if path.is_file() else None


def dead_pid() -> int:
    """The id of a process that has exited."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    return root


@pytest.fixture
def faces_ws(extracted_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "faces_ws"
    shutil.copytree(extracted_workspace, root, ignore=shutil.ignore_patterns("model"))
    return root


@pytest.mark.slow
def test_two_adds_in_parallel_never_lose_a_source(ws: Path, s1_clips: list[Path]) -> None:
    clips = s1_clips[:8]
    for first, second in zip(clips[::2], clips[1::2]):
        processes = [cli("add", ws, "a", first), cli("add", ws, "a", second)]
        for process in processes:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    recorded = [source["uri"] for source in tomllib.loads((ws / "deepswap.toml").read_text())["persons"]["a"]["sources"]]
    assert sorted(recorded) == sorted(str(clip.resolve()) for clip in clips)


def test_holder_is_recorded_while_held_and_cleared_after(ws: Path) -> None:
    with workspace_lock(ws, "extract", wait=False):
        info = holder(ws)
        assert info["pid"] == os.getpid() and info["command"] == "extract"
        with workspace_lock(ws, "fetch", wait=False):  # the same thread may enter again (extract runs fetch)
            pass
        assert holder(ws)["command"] == "extract"
    assert holder(ws) is None


@contextmanager
def held_by_another_thread(lock: Callable[[], AbstractContextManager[object]]) -> Iterator[threading.Event]:
    """Hold ``lock()`` in a second thread until the yielded event is set (or the block ends)."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(30)
    try:
        yield release
    finally:
        release.set()
        thread.join()


def test_another_thread_is_refused_or_waits(ws: Path, s1_clips: list[Path]) -> None:
    with held_by_another_thread(lambda: workspace_lock(ws, "train", wait=False)) as release:
        with pytest.raises(DeepswapError, match=rf"workspace busy: `deepswap train` \(pid {os.getpid()}\) since \d\d:\d\d"):
            fetch_sources(ws)
        threading.Timer(0.5, release.set).start()
        assert add_sources(ws, "a", [str(s1_clips[0])]), "a short writer waits for the lock"
    assert len(Workspace.open(ws).persons["a"].sources) == 1


@pytest.mark.slow
def test_a_second_train_or_extract_refuses_at_once_while_one_runs(faces_ws: Path) -> None:
    trainer = subprocess.Popen([sys.executable, "-c", TINY_TRAIN, str(faces_ws), "1000000", "10"],
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (holder(faces_ws) or {}).get("pid") == trainer.pid, "the trainer to take the lock")
        for args in (("train", faces_ws, "--iterations", "5"), ("extract", faces_ws), ("fetch", faces_ws)):
            process = cli(*args)
            out, err = process.communicate(timeout=120)
            assert process.returncode == 1
            assert f"workspace busy: `deepswap train` (pid {trainer.pid}) since " in err and err.count("\n") == 1
        status = cli("status", faces_ws, "--json")  # readers need no lock
        out, err = status.communicate(timeout=120)
        assert status.returncode == 0 and json.loads(out)["persons"]["a"]["faces"] > 0
    finally:
        trainer.kill()
        trainer.wait()


def test_the_lock_of_a_killed_process_is_taken_over(ws: Path) -> None:
    script = ("import sys, time; from deepswap.lock import workspace_lock\n"
              "with workspace_lock(sys.argv[1], 'train', wait=False):\n    print('held', flush=True); time.sleep(600)")
    process = subprocess.Popen([sys.executable, "-c", script, str(ws)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "held\n"
    with pytest.raises(DeepswapError, match=f"busy: `deepswap train` \\(pid {process.pid}\\)"):
        fetch_sources(ws)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert holder(ws)["pid"] == process.pid, "a killed holder leaves its record behind"
    with workspace_lock(ws, "fetch", wait=False):
        assert holder(ws)["pid"] == os.getpid(), "which the next holder replaces"
    assert fetch_sources(ws) == []


def test_holder_record_of_a_dead_process_is_not_reported(ws: Path) -> None:
    """Busy with a holder whose record is missing or stale: the message names no wrong process."""
    _io.write_json(ws / HOLDER_NAME, {"pid": dead_pid(), "command": "train", "started": "2020-01-01T10:00:00",
                                      "host": os.uname().nodename})
    with held_by_another_thread(lambda: FileLock(ws / LOCK_NAME)):
        with pytest.raises(DeepswapError, match="workspace busy: another deepswap command") as error:
            fetch_sources(ws)
        assert "train" not in str(error.value)


def test_remove_faces_waits_for_a_short_holder(faces_ws: Path) -> None:
    with held_by_another_thread(lambda: workspace_lock(faces_ws, "add", wait=True)) as release:
        threading.Timer(0.5, release.set).start()
        assert remove_faces(faces_ws, "a", "0") != []


def test_long_writers_sweep_temporaries_of_dead_processes_only(ws: Path) -> None:
    gone, alive = dead_pid(), os.getpid()
    faces = ws / "a" / "faces"
    stale = [faces / f".alignments.{gone}.k2j4h5g6.part.json", faces / f".x_000001.{gone}.abcdefgh.part.png",
             ws / "model" / f".model-00000004.{gone}.zzzzzzzz.part.safetensors", ws / f".deepswap.{gone}.a1b2c3d4.part.toml"]
    live = faces / f".alignments.{alive}.qwertyui.part.json"
    downloads = ws / "a" / "downloads"
    resumable = downloads / ".clip-12345678.partial" / "clip-12345678.f137.mp4.part"
    finished = downloads / ".done-87654321.partial" / "done-87654321.f137.mp4.part"
    user_file = ws / ".notes.part.txt"  # not one of ours: no writer's pid in its name
    for path in (*stale, live, resumable, finished, user_file):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    (downloads / "done-87654321.mp4").write_bytes(b"whole")
    fetch_sources(ws)
    assert not any(path.exists() for path in stale)
    assert not finished.parent.exists(), "the staging folder of a finished download goes"
    assert live.exists() and resumable.exists() and user_file.exists(), "a running writer's and resumable files stay"
    assert (downloads / "done-87654321.mp4").read_bytes() == b"whole"


def test_readers_and_short_writers_do_not_sweep(ws: Path, s1_clips: list[Path]) -> None:
    stale = ws / "a" / "faces" / f".alignments.{dead_pid()}.k2j4h5g6.part.json"
    stale.write_bytes(b"partial")
    add_sources(ws, "a", [str(s1_clips[0])])
    cli_status = cli("status", ws)
    cli_status.communicate(timeout=120)
    assert stale.exists()


@pytest.mark.slow
def test_a_reader_loads_the_model_while_training_replaces_it(faces_ws: Path) -> None:
    """Readers take no lock: a checkpoint replaced (and its files deleted) while loading is loaded anew."""
    subprocess.run([sys.executable, "-c", TINY_TRAIN, str(faces_ws), "1", "1e-6"], check=True)
    trainer = subprocess.Popen([sys.executable, "-c", TINY_TRAIN, str(faces_ws), "16", "1e-6"], stderr=subprocess.PIPE,
                               text=True)
    iterations = set()
    try:
        while trainer.poll() is None:
            iterations.add(load_model(faces_ws / "model")[1]["iteration"])
            time.sleep(0.01)
    finally:
        trainer.kill()
        _, err = trainer.communicate()
    assert trainer.returncode == 0, err
    assert len(iterations) > 3, "the loads overlapped many saves"
