"""Workspaces: init, add, status — through the library API and the `deepswap` command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from deepswap import DeepswapError, Workspace, add_sources, init_workspace, workspace_status
from deepswap.cli import main


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `deepswap ARGS` in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["deepswap", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    return exited.value.code or 0, out, err


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    return root


def config_of(root: Path) -> dict:
    return tomllib.loads((root / "deepswap.toml").read_text("utf-8"))


# init


def test_init_creates_a_readable_workspace(ws: Path) -> None:
    assert config_of(ws)["persons"] == {"a": {"name": "alice", "sources": []}, "b": {"name": "bob", "sources": []}}
    assert all((ws / sub).is_dir() for sub in ("a/faces", "b/faces", "model"))
    workspace = Workspace.open(ws)
    assert (workspace.persons["a"].name, workspace.persons["b"].name, workspace.face_size) == ("alice", "bob", 256)


def test_init_refuses_to_overwrite(ws: Path) -> None:
    add_sources(ws, "a", ["https://example.org/alice.mp4"])
    before = (ws / "deepswap.toml").read_bytes()
    with pytest.raises(DeepswapError, match="a workspace already exists here"):
        init_workspace(ws, "carol", "dave")
    assert (ws / "deepswap.toml").read_bytes() == before


@pytest.mark.parametrize("a, b, problem", [("", "bob", "must not be empty"), ("alice", "  ", "must not be empty")])
def test_init_refuses_empty_names_and_writes_nothing(tmp_path: Path, a: str, b: str, problem: str) -> None:
    with pytest.raises(DeepswapError, match=problem):
        init_workspace(tmp_path / "ws", a, b)
    assert not (tmp_path / "ws").exists()


def test_init_refuses_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(DeepswapError, match="is not a folder"):
        init_workspace(tmp_path / "file", "alice", "bob")


def test_open_reports_a_missing_or_damaged_workspace(tmp_path: Path, ws: Path) -> None:
    with pytest.raises(DeepswapError, match="not a deepswap workspace"):
        Workspace.open(tmp_path)
    (ws / "deepswap.toml").write_text("persons = [broken")
    with pytest.raises(DeepswapError, match=r"deepswap\.toml: damaged workspace file"):
        Workspace.open(ws)


# add


def test_add_records_urls_videos_photo_folders_and_single_photos(ws: Path, s1_clips: list[Path],
                                                                 photos: list[Path]) -> None:
    url = "https://www.youtube.com/watch?v=abc123"
    added = add_sources(ws, "a", [url, str(s1_clips[0])], start=0.5, duration=2)
    added += add_sources(ws, "b", [str(photos[0].parent), str(photos[1])])
    assert [(s.kind, s.start, s.duration) for s in added] == [
        ("url", 0.5, 2), ("video", 0.5, 2), ("photos", None, None), ("photos", None, None)]
    assert [s["uri"] for s in config_of(ws)["persons"]["a"]["sources"]] == [url, str(s1_clips[0].resolve())]
    assert len({s.id for s in added}) == 4


def test_add_skips_sources_already_recorded_but_keeps_other_ranges(ws: Path, s1_clips: list[Path]) -> None:
    assert len(add_sources(ws, "a", [str(s1_clips[0])])) == 1
    assert add_sources(ws, "a", [str(s1_clips[0])]) == []
    assert len(add_sources(ws, "a", [str(s1_clips[0])], start=1)) == 1
    assert len(Workspace.open(ws).persons["a"].sources) == 2


def test_add_stores_a_reference_photo_inside_the_workspace(ws: Path, photos: list[Path]) -> None:
    add_sources(ws, "b", [], reference=photos[1])
    workspace = Workspace.open(ws)
    assert workspace.persons["b"].reference == "b/reference.jpg"
    assert workspace.reference_path("b").read_bytes() == photos[1].read_bytes()


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file or folder"),
    ("text", "not a video"),
    ("empty-folder", "folder holds no photos"),
    ("bad-video", "not a readable video"),
    ("person-c", "person must be 'a' or 'b'"),
    ("negative-start", "start must be ≥ 0 (seconds)"),
    ("nan-start", "start must be"),
    ("zero-duration", "duration must be > 0 (seconds)"),
    ("start-past-end", "start 5 s is past the end of the video (3.0 s)"),
    ("range-on-photos", "start and duration apply to videos, not photos"),
    ("bad-reference", "reference must be a readable photo"),
])
def test_add_refuses_bad_input_and_changes_nothing(ws: Path, tmp_path: Path, s1_clips: list[Path],
                                                   photos: list[Path], case: str, problem: str) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_bytes(b"\0" * 1000)
    clip, photo_folder = str(s1_clips[0]), str(photos[0].parent)
    person, sources, options = {
        "missing": ("a", [clip, str(tmp_path / "nope.mp4")], {}),
        "text": ("a", [str(tmp_path / "notes.txt")], {}),
        "empty-folder": ("a", [str(tmp_path / "empty")], {}),
        "bad-video": ("a", [str(tmp_path / "bad.mp4")], {}),
        "person-c": ("c", [clip], {}),
        "negative-start": ("a", [clip], {"start": -1}),
        "nan-start": ("a", [clip], {"start": float("nan")}),
        "zero-duration": ("a", [clip], {"duration": 0}),
        "start-past-end": ("a", [clip], {"start": 5}),
        "range-on-photos": ("b", [clip, photo_folder], {"start": 1}),
        "bad-reference": ("b", [photo_folder], {"reference": tmp_path / "notes.txt"}),
    }[case]
    before = (ws / "deepswap.toml").read_bytes()
    with pytest.raises(DeepswapError, match=problem.replace("(", r"\(").replace(")", r"\)")) as caught:
        add_sources(ws, person, sources, **options)
    assert "\n" not in str(caught.value)
    assert (ws / "deepswap.toml").read_bytes() == before
    assert not list(ws.glob("*/reference.*"))


# status


def test_status_reports_sources_faces_model_and_outputs(ws: Path, s1_clips: list[Path], photos: list[Path]) -> None:
    add_sources(ws, "a", ["https://example.org/a.mp4", str(s1_clips[0])], start=1)
    add_sources(ws, "b", [str(photos[0].parent)])
    for index in range(3):
        shutil.copy(photos[0], ws / "a" / "faces" / f"{index:06d}.png")
    files = {role: {"name": f"{role}-00000120.safetensors", "sha256": "0" * 64, "bytes": 1} for role in ("model", "optimizer")}
    (ws / "model" / "state.json").write_text(json.dumps({"format": 1, "model": "original", "options": {}, "iteration": 120,
                                                         "files": files}))
    Workspace.open(ws).record_output(ws / "out.mp4", {"direction": "a2b"})

    report = workspace_status(ws)
    a, b = report["persons"]["a"], report["persons"]["b"]
    assert [(s["kind"], s["available"], s["start"]) for s in a["sources"]] == [("url", False, 1), ("video", True, 1)]
    assert a["sources"][0]["path"].endswith(".mp4") and "a/downloads" in a["sources"][0]["path"]
    assert (a["faces"], b["faces"], report["model"]["iterations"]) == (3, 0, 120)
    assert report["outputs"] == [{"path": str((ws / "out.mp4").resolve()), "direction": "a2b"}]


def test_status_of_a_fresh_workspace(ws: Path) -> None:
    report = workspace_status(ws)
    assert report["persons"]["a"]["sources"] == [] and report["model"] == {"model": None, "iterations": 0}


@pytest.mark.parametrize("module", ["deepswap.workspace", "deepswap.status"])
def test_reading_a_workspace_loads_neither_opencv_dlib_nor_pyav(module: str) -> None:
    script = f"import sys, {module}; print(sorted({{'cv2', 'dlib', 'av'}} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", f"importing {module} loads {loaded.strip()}"


# command line


def test_cli_init_add_status(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                             s1_clips: list[Path], photos: list[Path]) -> None:
    root = str(tmp_path / "ws")
    assert run_cli(monkeypatch, capsys, "init", root, "--a", "alice", "--b", "bob [the builder]")[0] == 0
    code, out, _ = run_cli(monkeypatch, capsys, "add", root, "a", str(s1_clips[0]), "https://example.org/x.mp4",
                           "--start", "0.5", "--duration", "2")
    assert code == 0 and "added video" in out and "added url https://example.org/x.mp4" in out
    code, out, _ = run_cli(monkeypatch, capsys, "add", root, "a", "https://example.org/x.mp4", "--start", "0.5",
                           "--duration", "2")
    assert code == 0 and "nothing new" in out
    code, out, _ = run_cli(monkeypatch, capsys, "add", root, "b", str(photos[0].parent), "--reference", str(photos[1]))
    assert code == 0 and "added photos" in out and "reference photo" in out
    code, _, err = run_cli(monkeypatch, capsys, "add", root, "b", str(photos[0].parent), "--start", "1")
    assert code == 1 and "--start and --duration apply to videos, not photos" in err  # the CLI's own words

    code, out, _ = run_cli(monkeypatch, capsys, "status", root, "--json")
    report = json.loads(out)
    assert code == 0 and len(report["persons"]["a"]["sources"]) == 2
    persons = report["persons"]
    assert (persons["a"]["faces"], persons["b"]["faces"], report["model"]["iterations"]) == (0, 0, 0)

    code, out, _ = run_cli(monkeypatch, capsys, "status", root)
    assert code == 0
    for text in ("a: alice", "faces b (bob [the builder])", "url", "video", "photos", "0.5s +2s", "no — run fetch",
                 "faces a (alice)", "not trained, 0 iterations"):
        assert text in out


def test_cli_errors_are_one_line_with_exit_code_1(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / ("a-rather-long-folder-name-" * 4) / "ws"
    assert run_cli(monkeypatch, capsys, "init", str(root), "--a", "alice", "--b", "bob")[0] == 0
    missing = tmp_path / "[take 2] nope.mp4"  # brackets must print as they are, not as rich markup
    for args, problem in ((["init", str(root), "--a", "x", "--b", "y"], "a workspace already exists here"),
                          (["add", str(root), "a", str(missing)], f"{missing}: no such file or folder"),
                          (["status", str(tmp_path)], "not a deepswap workspace"),
                          (["fetch", str(tmp_path / "nowhere")], "not a deepswap workspace")):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 1 and out == ""
        assert err.startswith("error: ") and problem in err and err.count("\n") == 1 and "Traceback" not in err


def test_installed_command_reports_errors_without_traceback(tmp_path: Path) -> None:
    deepswap = Path(sys.executable).with_name("deepswap")
    ok = subprocess.run([deepswap, "init", tmp_path / "ws", "--a", "alice", "--b", "bob"], capture_output=True,
                        text=True)
    again = subprocess.run([deepswap, "init", tmp_path / "ws", "--a", "alice", "--b", "bob"], capture_output=True,
                           text=True)
    assert ok.returncode == 0 and again.returncode == 1
    assert again.stderr == f"error: {tmp_path / 'ws'}: a workspace already exists here; choose another folder\n"


def test_files_are_written_with_the_usual_permissions(tmp_path: Path) -> None:
    from deepswap import _io

    _io.write_text(tmp_path / "note.txt", "x")
    (tmp_path / "plain.txt").write_text("x")
    mode = (tmp_path / "note.txt").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.txt").stat().st_mode & 0o777, "as open() would, not mkstemp's 0600"


def test_atomic_writes_of_state_reach_the_disk_and_bulk_ones_may_skip_it(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from deepswap import _io

    synced: list[tuple[int, int]] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        synced.append((info.st_dev, info.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    _io.write_json(tmp_path / "state.json", {"iteration": 1})
    identity = lambda path: (path.stat().st_dev, path.stat().st_ino)  # noqa: E731
    assert identity(tmp_path / "state.json") in synced and identity(tmp_path) in synced, "the file and its folder"
    synced.clear()
    _io.write_bytes(tmp_path / "crop.png", b"png", durable=False)
    assert synced == [] and (tmp_path / "crop.png").read_bytes() == b"png"


@pytest.fixture
def failing_command():
    """A command that fails the way a bug would (not a DeepswapError), added to the CLI for one test."""
    from deepswap.cli import app

    @app.command("explode")
    def explode() -> None:
        raise RuntimeError("a bug\nover two lines")

    yield
    app.registered_commands.pop()


def test_unexpected_failure_is_one_line_and_a_log(failing_command, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    code, out, err = run_cli(monkeypatch, capsys, "explode")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith("error: unexpected failure (RuntimeError: a bug over two lines); details in ")
    log = Path(err.split("details in ")[1].split(" (run with --debug")[0])
    assert log.parent == tmp_path / "state" / "deepswap" and "Traceback" in log.read_text()
    monkeypatch.setattr(sys, "argv", ["deepswap", "--debug", "explode"])
    with pytest.raises(RuntimeError, match="a bug"):
        main()
