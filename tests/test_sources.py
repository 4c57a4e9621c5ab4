"""Footage in: fetching URL sources from a real loopback HTTP server, and reading frames and photos."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deepswap import DeepswapError, add_sources, fetch_sources, init_workspace, probe_video, read_frames, read_photos
from deepswap.sources import source_frames
from deepswap.status import workspace_status
from deepswap.workspace import Workspace

GRID_FPS = 25
GRID_FRAMES = 75


@dataclass
class Route:
    body: bytes
    content_type: str
    status: int = 200
    cut_at: int | None = None  # drop the connection once this many bytes of the body were sent


@dataclass
class Server:
    """A loopback HTTP server (127.0.0.1 only) with byte-range support and a log of requests."""

    base: str
    routes: dict[str, Route]
    requests: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            server.requests.append((self.path, self.headers.get("Range")))
            route = server.routes.get(self.path)
            if route is None or route.status != 200:
                self.send_error(route.status if route else 404)
                return
            match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            offset = int(match.group(1)) if match else 0
            self.send_response(206 if match else 200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(route.body) - offset))
            self.send_header("Accept-Ranges", "bytes")
            if match:
                self.send_header("Content-Range", f"bytes {offset}-{len(route.body) - 1}/{len(route.body)}")
            self.end_headers()
            end = len(route.body) if route.cut_at is None else max(offset, route.cut_at)
            try:
                self.wfile.write(route.body[offset:end])
            except (BrokenPipeError, ConnectionResetError):  # clients may read the headers only
                pass
            if route.cut_at is not None:
                self.close_connection = True

    return Handler


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, s1_clips: list[Path], raw_mpg: Path) -> Server:
    """Serves a GRID mp4, the raw GRID .mpg, a DASH stream, an HTML page and bytes that are no video."""
    state = Server(base="", routes={})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base = f"http://127.0.0.1:{httpd.server_port}/"
    state.routes.update({
        "/clip.mp4": Route(s1_clips[0].read_bytes(), "video/mp4"),
        "/raw.mpg": Route(raw_mpg.read_bytes(), "video/mpeg"),
        "/page.html": Route(b"<html><body><p>No video here.</p></body></html>", "text/html"),
        "/noise.mp4": Route(np.random.default_rng(0).bytes(20_000), "video/mp4"),
        "/gone.mp4": Route(b"", "video/mp4", status=404),
    })
    for path in _dash_stream(s1_clips[0], tmp_path_factory.mktemp("dash")).iterdir():
        mime = "application/dash+xml" if path.suffix == ".mpd" else "video/mp4"
        state.routes[f"/dash/{path.name}"] = Route(path.read_bytes(), mime)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def _dash_stream(clip: Path, folder: Path) -> Path:
    """A DASH stream of ``clip`` with 288p, 720p and 1440p video and separate audio (as sites serve)."""
    ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
    scale = "[0:v]split=3[v288][a][b];[a]scale=900:720[v720];[b]scale=1920:1440[v1440]"
    subprocess.run([ffmpeg, "-loglevel", "error", "-i", str(clip), "-filter_complex", scale,
                    "-map", "[v288]", "-map", "[v720]", "-map", "[v1440]", "-map", "0:a",
                    "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "copy", "-f", "dash",
                    str(folder / "clip.mpd")], check=True)
    return folder


def _workspace(root: Path, a: list[str], b: list[str] = ()) -> Path:
    init_workspace(root, "alice", "bob")
    add_sources(root, "a", a)
    if b:
        add_sources(root, "b", list(b))
    return root


def _files(folder: Path) -> list[str]:
    """Every file (and staging folder) under ``folder``."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or "partial" in p.name)


# fetching


def test_fetch_downloads_urls_and_a_second_run_requests_nothing(tmp_path: Path, server: Server,
                                                                s1_clips: list[Path]) -> None:
    root = _workspace(tmp_path / "ws", [server.url("clip.mp4")], [server.url("raw.mpg")])
    server.requests.clear()
    results = fetch_sources(root)
    assert {path for path, _ in server.requests} == {"/clip.mp4", "/raw.mpg"}  # nothing but the URLs
    workspace = Workspace.open(root)
    assert [(r.person, r.downloaded) for r in results] == [("a", True), ("b", True)]
    clip_a, clip_b = (workspace.download_path(r.person, r.source) for r in results)
    assert [r.path for r in results] == [clip_a, clip_b]
    assert clip_a.read_bytes() == s1_clips[0].read_bytes()
    info = probe_video(clip_b)  # the MPEG-PS download was remuxed into the mp4 its name promises
    assert (info.width, info.height, info.has_audio) == (360, 288, True)
    with av.open(str(clip_b)) as container:
        assert container.format.name == "mov,mp4,m4a,3gp,3g2,mj2"
    assert sum(1 for _ in read_frames(clip_b)) == GRID_FRAMES
    assert _files(workspace.downloads_dir("a")) == [clip_a.name]  # no staging folder or .part left

    server.requests.clear()
    again = fetch_sources(root)
    assert [(r.path, r.downloaded) for r in again] == [(clip_a, False), (clip_b, False)]
    assert server.requests == []
    assert all(s["available"] for p in workspace_status(root)["persons"].values() for s in p["sources"])


def test_fetch_picks_best_video_up_to_1080p_and_merges_audio(tmp_path: Path, server: Server) -> None:
    root = _workspace(tmp_path / "ws", [server.url("dash/clip.mpd")])
    (result,) = fetch_sources(root)
    info = probe_video(result.path)
    assert (info.height, info.has_audio, info.frames) == (720, True, GRID_FRAMES)


@pytest.mark.parametrize("path, problem", [
    ("gone.mp4", "HTTP Error 404"),
    ("page.html", "no video found"),
    ("noise.mp4", "not a readable video"),
])
def test_bad_url_gives_one_line_error_naming_it_and_leaves_workspace_valid(
        tmp_path: Path, server: Server, path: str, problem: str) -> None:
    root = _workspace(tmp_path / "ws", [server.url(path)])
    before = _files(root)
    with pytest.raises(DeepswapError) as caught:
        fetch_sources(root)
    message = str(caught.value)
    assert message.startswith(f"{server.url(path)}: ") and problem in message
    assert "\n" not in message and "ERROR" not in message
    assert _files(root) == before
    assert workspace_status(root)["persons"]["a"]["sources"][0]["available"] is False


def test_fetch_gets_the_good_urls_then_reports_every_failure(tmp_path: Path, server: Server) -> None:
    bad = [server.url("gone.mp4"), server.url("page.html")]
    root = _workspace(tmp_path / "ws", [bad[0], server.url("clip.mp4")], [bad[1]])
    with pytest.raises(DeepswapError, match=r"^2 of 3 downloads failed: ") as caught:
        fetch_sources(root)
    assert all(url in str(caught.value) for url in bad) and "\n" not in str(caught.value)
    available = {s["uri"]: s["available"] for p in workspace_status(root)["persons"].values() for s in p["sources"]}
    assert available == {bad[0]: False, server.url("clip.mp4"): True, bad[1]: False}


def test_interrupted_download_resumes_and_never_leaves_a_half_file(tmp_path: Path, server: Server) -> None:
    body = server.routes["/clip.mp4"].body
    server.routes["/cut.mp4"] = route = Route(body, "video/mp4", cut_at=len(body) // 2)
    root = _workspace(tmp_path / "ws", [server.url("cut.mp4")])
    workspace = Workspace.open(root)
    final = workspace.download_path("a", workspace.persons["a"].sources[0])

    with pytest.raises(DeepswapError, match=r"cut\.mp4: download failed"):
        fetch_sources(root)
    assert not final.exists()
    (part,) = final.parent.rglob("*.part")  # kept in the staging folder, to resume from
    kept = part.stat().st_size  # what yt-dlp had flushed when the connection broke
    assert 0 < kept <= len(body) // 2

    route.cut_at = None
    server.requests.clear()
    (result,) = fetch_sources(root)
    assert result.downloaded and final.read_bytes() == body
    assert ("/cut.mp4", f"bytes={kept}-") in server.requests  # resumed, not restarted
    assert _files(final.parent) == [final.name]


def test_fetch_refuses_a_page_of_several_videos(tmp_path: Path, server: Server) -> None:
    server.routes["/two.html"] = Route(b'<html><video src="clip.mp4"></video><video src="raw.mpg"></video></html>',
                                       "text/html")
    root = _workspace(tmp_path / "ws", [server.url("two.html")])
    with pytest.raises(DeepswapError, match="two.html: is a playlist"):
        fetch_sources(root)
    assert not list(Workspace.open(root).downloads_dir("a").glob("*"))


def test_fetch_without_url_sources_does_nothing(tmp_path: Path, s1_clips: list[Path]) -> None:
    root = _workspace(tmp_path / "ws", [str(s1_clips[0])])
    assert fetch_sources(root) == []


# reading videos


@pytest.fixture(scope="module")
def clips(s1_clips: list[Path], raw_mpg: Path) -> dict[str, Path]:
    return {"mp4": s1_clips[0], "mpg": raw_mpg}


@pytest.fixture(scope="module")
def all_frames(clips: dict[str, Path]) -> dict[str, list]:
    """Every frame of each clip, decoded once from the start, to check ranged and sampled reads."""
    return {kind: list(read_frames(path)) for kind, path in clips.items()}


@pytest.mark.parametrize("kind", ["mp4", "mpg"])
def test_read_frames_yields_every_frame_with_timestamps(kind: str, clips: dict[str, Path], all_frames: dict) -> None:
    frames = all_frames[kind]
    assert inspect.isgenerator(read_frames(clips[kind]))
    assert [f.index for f in frames] == list(range(GRID_FRAMES))
    assert [f.time for f in frames] == pytest.approx([i / GRID_FPS for i in range(GRID_FRAMES)])
    assert all(f.image.shape == (288, 360, 3) and f.image.dtype == np.uint8 for f in frames)
    assert frames[0].image.mean() > 20  # a real picture, not a blank frame


@pytest.mark.parametrize("kind", ["mp4", "mpg"])
def test_probe_video(kind: str, clips: dict[str, Path]) -> None:
    info = probe_video(clips[kind])
    assert (info.width, info.height, info.fps, info.has_audio) == (360, 288, GRID_FPS, True)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert abs(info.frames - GRID_FRAMES) <= 1  # MPEG-PS has no index: estimated from its length


@settings(max_examples=12, deadline=None)
@given(kind=st.sampled_from(["mp4", "mpg"]),
       start=st.none() | st.floats(0, 2.9),
       duration=st.none() | st.floats(0.01, 4))
def test_start_and_duration_select_the_frames_shown_in_that_range(
        kind: str, start: float | None, duration: float | None, clips: dict[str, Path], all_frames: dict) -> None:
    frames = list(read_frames(clips[kind], start=start, duration=duration))
    begin = start or 0.0
    end = begin + duration if duration is not None else np.inf
    first = min(GRID_FRAMES - 1, round(begin * GRID_FPS))  # the frame shown at `start`
    last = max(first, int(min(GRID_FRAMES, np.ceil(end * GRID_FPS - 0.5 - 1e-6))) - 1)
    assert abs(frames[0].index - first) <= 1 and abs(frames[-1].index - last) <= 1  # ±1 at exact half-frame ties
    expected = all_frames[kind][frames[0].index:frames[-1].index + 1]
    assert [f.index for f in frames] == [f.index for f in expected]
    assert [f.time for f in frames] == [f.time for f in expected]
    assert all(np.array_equal(f.image, e.image) for f, e in zip(frames, expected))  # seeking decodes correctly


@settings(max_examples=8, deadline=None)
@given(kind=st.sampled_from(["mp4", "mpg"]), fps=st.floats(0.5, 40), start=st.floats(0, 2))
def test_fps_samples_frames_evenly(kind: str, fps: float, start: float, clips: dict[str, Path]) -> None:
    frames = list(read_frames(clips[kind], fps=fps, start=start))
    span = GRID_FRAMES / GRID_FPS - start
    if fps >= GRID_FPS:
        assert abs(len(frames) - (GRID_FRAMES - start * GRID_FPS)) <= 1
    else:
        assert abs(len(frames) - span * fps) <= 1.5
        gaps = np.diff([f.time for f in frames])
        assert np.all(np.abs(gaps - 1 / fps) <= 1 / GRID_FPS + 1e-6)
    assert [f.index for f in frames] == sorted({f.index for f in frames})


def test_read_frames_rejects_a_start_past_the_end_and_a_bad_fps(clips: dict[str, Path]) -> None:
    with pytest.raises(DeepswapError, match=r"lrwp9a\.mpg: no frames at or after 5 s .*check --start"):
        list(read_frames(clips["mpg"], start=5))
    with pytest.raises(DeepswapError, match="fps must be > 0"):
        list(read_frames(clips["mp4"], fps=0))


def test_source_frames_honour_the_recorded_range_and_need_fetched_urls(tmp_path: Path, clips: dict[str, Path],
                                                                       photos: list[Path]) -> None:
    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    add_sources(root, "a", [str(clips["mp4"])], start=1, duration=0.4)
    add_sources(root, "a", ["http://127.0.0.1:9/never-fetched.mp4"])
    add_sources(root, "b", [str(photos[0].parent)])
    workspace = Workspace.open(root)
    video, url = workspace.persons["a"].sources
    assert [f.index for f in source_frames(workspace, "a", video)] == list(range(25, 35))
    assert [f.index for f in source_frames(workspace, "a", video, fps=5)] == [25, 30]
    with pytest.raises(DeepswapError, match=r"never-fetched\.mp4: footage not available \(run `deepswap fetch`"):
        source_frames(workspace, "a", url)
    assert [f.name for f in source_frames(workspace, "b", workspace.persons["b"].sources[0])] == [
        p.name for p in photos]


# damaged files


@pytest.fixture(scope="module")
def faststart_clip(s1_clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRID clip with its index before the frames, as web videos are: it stays openable when cut."""
    out = tmp_path_factory.mktemp("faststart") / "clip.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(s1_clips[0]), "-c", "copy",
                    "-movflags", "+faststart", str(out)], check=True)
    return out


def _cut(source: Path, folder: Path, fraction: float) -> Path:
    data = source.read_bytes()
    out = folder / f"cut-{fraction}{source.suffix}"
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@pytest.mark.parametrize("make, problem", [
    (lambda clip, fast, tmp: _cut(clip, tmp, 0.5), "not a readable video"),
    (lambda clip, fast, tmp: _cut(fast, tmp, 0.5), "video is truncated: frames stop at"),
    (lambda clip, fast, tmp: _cut(fast, tmp, 0.05), "video is corrupt or truncated"),
    (lambda clip, fast, tmp: _write(tmp / "empty.mp4", b""), "file is empty"),
    (lambda clip, fast, tmp: _write(tmp / "notes.mp4", b"just some text\n" * 100), "not a readable video"),
    (lambda clip, fast, tmp: tmp / "missing.mp4", "no such video file"),
], ids=["cut-mp4", "cut-faststart-mp4", "cut-early-faststart-mp4", "empty", "text", "missing"])
def test_damaged_video_gives_a_clear_error(make, problem: str, s1_clips: list[Path], faststart_clip: Path,
                                          tmp_path: Path) -> None:
    path = make(s1_clips[0], faststart_clip, tmp_path)
    with pytest.raises(DeepswapError) as caught:
        list(read_frames(path))
    assert str(caught.value).startswith(f"{path}: ") and problem in str(caught.value)
    assert "\n" not in str(caught.value)


def test_slightly_cut_faststart_video_still_reads(faststart_clip: Path, tmp_path: Path) -> None:
    frames = list(read_frames(_cut(faststart_clip, tmp_path, 0.95)))
    assert GRID_FRAMES - 8 <= len(frames) < GRID_FRAMES


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# photo folders


def test_read_photos_yields_a_folders_photos_in_name_order(tmp_path: Path, photos: list[Path]) -> None:
    for photo in photos:
        shutil.copy(photo, tmp_path / photo.name)
    (tmp_path / "notes.txt").write_text("not a photo")
    frames = read_photos(tmp_path)
    assert inspect.isgenerator(frames)
    frames = list(frames)
    assert [(f.index, f.name, f.image.shape) for f in frames] == [
        (0, "astronaut.png", (512, 512, 3)), (1, "grace_hopper.jpg", (600, 512, 3))]
    assert all(f.image.dtype == np.uint8 for f in frames)
    assert [f.name for f in read_photos(photos[1])] == ["grace_hopper.jpg"]  # a single photo works too


def test_unreadable_photo_is_named_in_the_error(tmp_path: Path, photos: list[Path]) -> None:
    shutil.copy(photos[0], tmp_path / photos[0].name)
    broken = _write(tmp_path / "broken.jpg", photos[1].read_bytes()[:200])
    with pytest.raises(DeepswapError, match=re.escape(f"{broken}: not a readable image")):
        list(read_photos(tmp_path))


def test_fetch_command_reports_each_source_and_fails_in_one_line(tmp_path: Path, server: Server) -> None:
    root = _workspace(tmp_path / "ws", [server.url("clip.mp4"), server.url("gone.mp4")])
    deepswap = Path(sys.executable).with_name("deepswap")
    run = subprocess.run([deepswap, "fetch", root], capture_output=True, text=True, timeout=60)
    lines = run.stderr.splitlines()
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert lines[0].startswith(f"a: downloaded {server.url('clip.mp4')} → ") and lines[1].startswith("a: failed")
    assert lines[2:] == [f"error: {server.url('gone.mp4')}: download failed: Unable to download webpage: "
                         "HTTP Error 404: Not Found"]
