"""A full disk while writing: one line naming the file, nothing half-written under the final name.

Each writer runs in a subprocess whose file-size limit (RLIMIT_FSIZE) is set below what it writes,
so the write fails with EFBIG exactly as it would on a full disk (ENOSPC is checked too, on a
small tmpfs where this machine lets the tests mount one). Afterwards the previous file is intact,
no temp file is left, and the same command without the limit succeeds.
"""

from __future__ import annotations

import functools
import json
import resource
import shutil
import subprocess
import sys
import textwrap
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from deepswap import Workspace, add_sources, init_workspace
from deepswap.faces.faceset import FaceSet

pytestmark = pytest.mark.slow  # every test runs the real command line against a full disk

DEEPSWAP = Path(sys.executable).with_name("deepswap")
DISK_FULL = "could not write it, the disk is full or the file too large"


def _limit_file_size(limit: int) -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def run_limited(args: list[object], limit: int | None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a command (the `deepswap` CLI, or python) with files limited to ``limit`` bytes."""
    return subprocess.run([str(arg) for arg in args], capture_output=True, text=True, timeout=timeout,
                          preexec_fn=functools.partial(_limit_file_size, limit) if limit else None)


def assert_disk_full(run: subprocess.CompletedProcess[str], path_part: str) -> str:
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and path_part in line and DISK_FULL in line, line
    return line


def temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


@pytest.fixture
def workspace(tmp_path: Path, s1_clips: list[Path]) -> Path:
    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    ws = Workspace.open(root)
    ws.settings["face_size"] = 64
    ws.save()
    add_sources(root, "a", [str(s1_clips[0])])
    return root


def test_init_on_a_full_disk(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    assert_disk_full(run_limited([DEEPSWAP, "init", root, "--a", "alice", "--b", "bob"], 20), str(root))  # its lock or toml
    assert not (root / "deepswap.toml").exists() and temporaries(root) == []
    assert run_limited([DEEPSWAP, "init", root, "--a", "alice", "--b", "bob"], None).returncode == 0


def test_add_on_a_full_disk_keeps_the_workspace_file(workspace: Path, s1_clips: list[Path]) -> None:
    before = (workspace / "deepswap.toml").read_bytes()
    run = run_limited([DEEPSWAP, "add", workspace, "a", s1_clips[1]], len(before) + 10)
    assert_disk_full(run, str(workspace / "deepswap.toml"))
    assert (workspace / "deepswap.toml").read_bytes() == before and temporaries(workspace) == []


def test_extract_on_a_full_disk_leaves_a_valid_face_set(workspace: Path) -> None:
    run = run_limited([DEEPSWAP, "extract", workspace, "--fps", "5"], 4000)  # crops are ~8 KB
    assert_disk_full(run, str(workspace / "a" / "faces"))
    assert temporaries(workspace) == []
    faces = FaceSet.load(workspace / "a" / "faces")  # whatever was saved is whole
    assert faces is None or all(faces.crop_path(face).is_file() for face in faces)
    assert run_limited([DEEPSWAP, "extract", workspace, "--fps", "5"], None).returncode == 0
    assert len(FaceSet.load(workspace / "a" / "faces")) >= 10


@pytest.mark.parametrize("writer", ["workspace", "alignments", "identity", "state", "loss_log", "outputs"])
def test_each_library_writer_on_a_full_disk(workspace: Path, tmp_path: Path, writer: str) -> None:
    """The writers of every format, each on a file limit below what it writes: DeepswapError, the
    earlier file kept, no temp file."""
    target = {"workspace": workspace / "deepswap.toml", "alignments": workspace / "a" / "faces" / "alignments.json",
              "identity": workspace / "a" / "faces" / "identity.npy", "state": workspace / "model" / "state.json",
              "loss_log": workspace / "model" / "loss.csv", "outputs": workspace / "outputs.json"}[writer]
    if writer not in ("outputs", "workspace"):
        target.write_bytes(b"earlier")
    before = target.read_bytes() if target.exists() else None
    code = textwrap.dedent(f"""
        import numpy as np
        from pathlib import Path
        from deepswap import DeepswapError, Workspace
        from deepswap.faces.faceset import FaceSet
        from deepswap.faces.identity import Identity
        from deepswap import _io
        from deepswap.train.report import write_loss_log
        root = Path({str(workspace)!r})
        ws = Workspace.open(root)
        writers = {{
            "workspace": lambda: (ws.settings.update(face_size=128), ws.save()),
            "alignments": lambda: FaceSet.empty(root / "a" / "faces", 64).save(),
            "identity": lambda: Identity(np.ones(128, np.float32) / 128 ** 0.5).save(root / "a" / "faces" / "identity.npy"),
            "state": lambda: _io.write_json(root / "model" / "state.json", {{"format": 1, "padding": "x" * 500}}),
            "loss_log": lambda: write_loss_log(root / "model" / "loss.csv", [dict.fromkeys(
                ("iteration", "loss_a", "loss_b", "learning_rate", "samples_per_second", "elapsed_seconds"), 1.0)] * 50),
            "outputs": lambda: ws.record_output({str(tmp_path / "out.mp4")!r}, {{"padding": "x" * 500}}),
        }}
        try:
            writers[{writer!r}]()
        except DeepswapError as error:
            print(error)
        """)
    run = run_limited([sys.executable, "-c", code], 60)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert run.stdout.startswith(str(target)) and DISK_FULL in run.stdout and run.stdout.count("\n") == 1
    assert (target.read_bytes() if target.exists() else None) == before
    assert temporaries(workspace) == []


@pytest.fixture
def trained(trained_workspace: Path, tmp_path: Path) -> Path:
    root = tmp_path / "trained"
    shutil.copytree(trained_workspace, root)
    return root


def test_train_on_a_full_disk_keeps_the_checkpoint(trained: Path) -> None:
    model = trained / "model"
    before = {path.name: path.read_bytes() for path in model.iterdir() if path.is_file()}
    # The limit lets the data loader's shared-memory batches through (under 200 kB) but not the
    # checkpoint or the preview (over 800 kB each).
    run = run_limited([DEEPSWAP, "train", trained, "--iterations", "6", "--batch-size", "4"], 400_000)
    assert_disk_full(run, str(model))
    assert temporaries(trained) == []
    state = json.loads((model / "state.json").read_text())
    assert state["iteration"] == 4 and before["state.json"] == (model / "state.json").read_bytes()
    assert all((model / record["name"]).read_bytes() == before[record["name"]] for record in state["files"].values())


@pytest.mark.parametrize("kind", ["video", "photo"])
def test_convert_on_a_full_disk_writes_nothing(trained: Path, tmp_path: Path, s1_clips: list[Path], photos: list[Path],
                                               kind: str) -> None:
    source, out = (s1_clips[2], tmp_path / "out.mp4") if kind == "video" else (photos[1], tmp_path / "out.png")
    outputs = Workspace.open(trained).outputs()
    earlier = temporaries(tmp_path)  # the shared trained workspace may carry another test's leftovers
    run = run_limited([DEEPSWAP, "convert", trained, source, "-o", out], 20_000)
    assert_disk_full(run, str(out))
    assert not out.exists() and temporaries(tmp_path) == earlier
    assert Workspace.open(trained).outputs() == outputs  # nothing recorded


def test_fetch_on_a_full_disk_leaves_no_video(workspace: Path, tmp_path: Path, s1_clips: list[Path]) -> None:
    served = tmp_path / "served"
    served.mkdir()
    shutil.copy(s1_clips[1], served / "clip.mp4")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(served)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/clip.mp4"
        add_sources(workspace, "b", [url])
        run = run_limited([DEEPSWAP, "fetch", workspace], 50_000)
        assert run.returncode == 1 and "Traceback" not in run.stderr
        line = run.stderr.strip().splitlines()[-1]
        assert line.startswith(f"error: {url}: download failed: ") and "File too large" in line
        assert list((workspace / "b" / "downloads").glob("*.mp4")) == []
        assert run_limited([DEEPSWAP, "fetch", workspace], None).returncode == 0
        assert len(list((workspace / "b" / "downloads").glob("*.mp4"))) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def small_disk(tmp_path: Path) -> Path:
    """A 256 KB tmpfs: a real full disk (ENOSPC); skipped where mounting is not allowed."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_convert_onto_a_full_disk(trained: Path, small_disk: Path, s1_clips: list[Path]) -> None:
    (small_disk / "filler").write_bytes(b"\0" * 200_000)
    out = small_disk / "out.mp4"
    run = run_limited([DEEPSWAP, "convert", trained, s1_clips[2], "-o", out], None)
    line = assert_disk_full(run, str(out))
    assert "No space left on device" in line
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]
