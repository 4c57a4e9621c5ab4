"""`deepswap ui` on a machine shared with other accounts, probed as another account would probe it:
the real server in its own process, plain sockets and HTTP. Every account reaches loopback, so the
token is needed there too; /files serves only what deepswap wrote for the pages; the URL field
takes public web URLs only; uploads are checked and capped; slow or half-sent requests, a held
workspace lock and a killed server leave nothing hanging."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from live_ui import LiveUI, running_ui
from starlette.testclient import TestClient

from deepswap import _io
from deepswap.lock import HOLDER_NAME, workspace_lock
from deepswap.ui import create_app
from deepswap.ui.connections import HEADER_TIMEOUT_SECONDS, MAX_CONNECTIONS
from deepswap.ui.options import UISettings
from deepswap.ui.security import BODY_GRACE_SECONDS, SECURITY_HEADERS
from deepswap.workspace import Workspace, init_workspace

TINY_MODEL = "resolution=32 width=8 latent=32"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An owner's home folder as ROOT: a private key, notes, and a workspace with outputs and a model."""
    home = tmp_path / "home"
    key = home / ".config" / "deepswap" / "signing" / "key.pem"
    key.parent.mkdir(parents=True)
    key.write_text("-----BEGIN PRIVATE KEY-----")
    key.chmod(0o600)
    (home / "notes.txt").write_text("private notes")
    init_workspace(home / "ws", "alice", "bob")
    frame = np.full((32, 32, 3), 128, np.uint8)
    for shown in ("ws/outputs/frame.png", "ws/model/preview.png", "ws/a/faces/000001.png"):
        _io.write_image(home / shown, frame)
    _io.write_image(home / "ws" / "outputs" / ".hidden.png", frame)
    (home / "ws" / "model" / "weights.safetensors").write_bytes(b"weights")
    return home


def test_without_the_token_another_account_gets_nothing(home: Path) -> None:
    with running_ui(home) as server:
        assert server.token and server.url.startswith("http://127.0.0.1:")
        for method, path in (("GET", "/"), ("GET", "/w/ws/sources"), ("GET", "/files/ws/outputs/frame.png"),
                             ("GET", "/files/.config/deepswap/signing/key.pem"), ("POST", "/w/ws/job/stop")):
            status, headers, body = server.request(method, path, signed_in=False)
            assert status == 401, path
            assert b"PRIVATE KEY" not in body
        entry, headers, _ = server.request("GET", f"/w/ws/faces?token={server.token}", signed_in=False)
        assert entry == 303 and headers["location"] == "/w/ws/faces"
        assert f"deepswap_token_{server.port}={server.token}" in headers["set-cookie"]


def test_files_serves_only_what_deepswap_wrote_for_the_pages(home: Path) -> None:
    with running_ui(home) as server:
        for shown in ("ws/outputs/frame.png", "ws/model/preview.png", "ws/a/faces/000001.png"):
            status, headers, body = server.request("GET", f"/files/{shown}")
            assert status == 200 and body == (home / shown).read_bytes(), shown
        for hidden in (".config/deepswap/signing/key.pem", "notes.txt", "ws/deepswap.toml", "ws/outputs/.hidden.png",
                       "ws/model/weights.safetensors", "ws/.deepswap.lock"):
            status, _, body = server.request("GET", f"/files/{hidden}")
            assert status == 404 and b"PRIVATE KEY" not in body and b"private notes" not in body, hidden


def test_every_answer_carries_the_hardening_headers(home: Path) -> None:
    with running_ui(home) as server:
        for path, signed_in, expected in (("/w/ws/sources", True, 200), ("/static/app.js", True, 200),
                                          ("/files/notes.txt", True, 404), ("/", False, 401)):
            status, headers, _ = server.request("GET", path, signed_in=signed_in)
            assert status == expected, path
            for name, value in SECURITY_HEADERS.items():
                assert headers.get(name) == value, (path, name)
        assert "frame-ancestors 'none'" in SECURITY_HEADERS["content-security-policy"]


def test_no_token_is_only_for_loopback(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", "from deepswap.cli import main; main()", "ui", str(tmp_path),
                          "--host", "0.0.0.0", "--no-token", "--port", "0"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stderr.strip().count("\n") == 0 and "--no-token" in run.stderr
    with running_ui(tmp_path, "--no-token") as server:
        assert server.token is None and server.request("GET", "/", signed_in=False)[0] == 200


def test_a_bad_setting_is_named_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "config.toml").write_text('[settings]\nui_uploads_quota_gib = "lots"\n')
    run = subprocess.run([sys.executable, "-c", "from deepswap.cli import main; main()", "ui", str(tmp_path), "--port", "0"],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "DEEPSWAP_CONFIG_DIR": str(config)})
    assert run.returncode == 1 and run.stderr.count("\n") == 1
    assert "config.toml: settings ui_uploads_quota_gib must be a number, not 'lots'" in " ".join(run.stderr.split())


def test_the_url_field_takes_only_public_web_urls(home: Path, s1_clips: list[Path]) -> None:
    local_video = home / "clip.mp4"
    shutil.copy(s1_clips[0], local_video)
    with running_ui(home) as server:
        answers = {}
        for url in ("/etc/passwd", "/etc/nonexistent", "file:///etc/passwd", str(local_video),
                    "http://127.0.0.1:9/x.mp4", "http://localhost/x.mp4", "http://[::1]/x.mp4",
                    "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/x.mp4", "http://192.168.0.1/x.mp4",
                    "http://0.0.0.0/x.mp4", "http://[::ffff:127.0.0.1]/x.mp4"):
            status, _, body = server.post_form("/w/ws/sources/urls", {"person": "a", "urls": url})
            assert status == 422, url
            answers[url] = body.decode().replace(url, "URL")
        # a local path gets the same answer whether it exists or not: the field tells nothing of the disk
        assert answers["/etc/passwd"] == answers["/etc/nonexistent"] == answers[str(local_video)]
        assert "http(s)" in answers["/etc/passwd"]
        assert "private" in answers["http://10.1.2.3/x.mp4"] and "ui_allow_private_urls" in answers["http://10.1.2.3/x.mp4"]
    assert Workspace.open(home / "ws").persons["a"].sources == []


def test_the_owner_may_allow_private_urls(home: Path) -> None:
    client = TestClient(create_app(home, settings=UISettings(ui_allow_private_urls=True)), base_url="http://127.0.0.1:7860")
    token = client.get("/w/ws/sources").text.split('"X-CSRF-Token": "')[1].split('"')[0]
    answer = client.post("/w/ws/sources/urls", data={"person": "a", "urls": "http://10.1.2.3/x.mp4"},
                         headers={"X-CSRF-Token": token})
    assert answer.status_code == 204
    assert [source.uri for source in Workspace.open(home / "ws").persons["a"].sources] == ["http://10.1.2.3/x.mp4"]


def test_uploads_are_checked_before_they_are_kept_and_capped(home: Path, s1_clips: list[Path],
                                                             tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    quota_gib = 1.5 * s1_clips[0].stat().st_size / 2 ** 30
    (config / "config.toml").write_text(f"[settings]\nui_uploads_quota_gib = {quota_gib}\n")
    uploads = home / "ws" / "uploads"
    with running_ui(home, config_dir=config) as server:
        for name, data in (("junk.jpg", b"not a photo at all" * 100), ("zeros.mp4", bytes(100_000)),
                           ("page.mp4", b"<html><body>not a video</body></html>" * 50)):
            status, _, body = server.post_form("/w/ws/convert/upload", {}, {"file": (name, data)})
            assert status == 422 and name.encode() in body and b"not a readable" in body, (name, body)
        status, _, body = server.post_form("/w/ws/sources/files", {"person": "a"},
                                           {"files": ("junk.png", b"\x89PNG junk")})
        assert status == 422 and b"junk.png: not a readable photo" in body
        assert not [path for path in uploads.rglob("*") if path.is_file()]  # nothing refused was kept

        assert server.post_form("/w/ws/convert/upload", {}, {"file": ("clip.mp4", s1_clips[0].read_bytes())})[0] == 204
        status, _, body = server.post_form("/w/ws/convert/upload", {}, {"file": ("more.mp4", s1_clips[1].read_bytes())})
        assert status == 422 and b"quota" in body
        assert [path.name for path in uploads.rglob("*") if path.is_file()] == ["clip.mp4"]


@pytest.mark.slow
def test_a_held_workspace_lock_does_not_freeze_the_other_pages(home: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom deepswap.lock import workspace_lock\n"
                               f"with workspace_lock({str(home / 'ws')!r}, 'train', False):\n"
                               "    print('held', flush=True); time.sleep(20)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        with running_ui(home) as server:
            csrf = server.csrf_token()
            posted: dict[str, object] = {}

            def remove() -> None:
                posted["answer"] = server.request("POST", "/w/ws/faces/remove", b"person=a&faces=000001", {
                    "Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": csrf})
                posted["at"] = time.monotonic()

            waiting = threading.Thread(target=remove)
            waiting.start()
            time.sleep(1.0)  # the removal now waits for the lock
            started = time.monotonic()
            assert server.request("GET", "/w/ws/sources")[0] == 200
            answered = time.monotonic()
            waiting.join(60)
            assert answered - started < 3.0 and answered < posted["at"]  # type: ignore[operator]
            status, _, body = posted["answer"]  # type: ignore[misc]
            assert status == 422 and b"busy" in body and b"deepswap train" in body
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_slow_and_half_sent_requests_do_not_hold_the_server(home: Path) -> None:
    with running_ui(home) as server:
        address = ("127.0.0.1", server.port)
        half_sent = []
        for _ in range(MAX_CONNECTIONS + 344):  # more than the cap, as many as a default ulimit allows
            connection = socket.create_connection(address)
            connection.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            half_sent.append(connection)
        trickle = socket.create_connection(address)
        csrf = server.csrf_token()
        trickle.sendall(f"POST /w/ws/faces/remove HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
                        f"Cookie: deepswap_token_{server.port}={server.token}\r\nX-CSRF-Token: {csrf}\r\n"
                        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\nperson=a".encode())
        started = time.monotonic()
        assert server.request("GET", "/", timeout=10)[0] == 200  # answered at once despite them all
        assert time.monotonic() - started < 5

        half_sent[-1].settimeout(HEADER_TIMEOUT_SECONDS + 10)
        assert half_sent[-1].recv(100) == b""  # closed by the server
        assert time.monotonic() - started < HEADER_TIMEOUT_SECONDS + 5

        trickle.settimeout(BODY_GRACE_SECONDS + 15)
        answer = trickle.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and b"connection: close" in answer.lower()
        assert time.monotonic() - started < BODY_GRACE_SECONDS + 10
        for connection in [*half_sent, trickle]:
            connection.close()
        assert server.request("GET", "/")[0] == 200


def _worker_of(server: LiveUI) -> int:
    """The pid of the server's job worker (a child running ``deepswap.ui.worker``)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes()
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent == server.process.pid and b"deepswap.ui.worker" in command:
                return int(entry.name)
        time.sleep(0.2)
    raise AssertionError("no job worker started")


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


@pytest.mark.slow
@pytest.mark.parametrize("ending", [signal.SIGKILL, signal.SIGHUP])
def test_a_job_stops_and_saves_when_its_server_goes(tmp_path: Path, extracted_workspace: Path, ending: int) -> None:
    root = tmp_path / "root"
    folder = root / "ws"
    shutil.copytree(extracted_workspace, folder)
    with running_ui(root) as server:
        status, _, body = server.post_form("/w/ws/run/train", {"model": "lite", "budget": "", "amount": "",
                                                              "batch_size": "4", "architecture": TINY_MODEL})
        assert status == 204, body
        worker = _worker_of(server)
        deadline = time.monotonic() + 120
        while not (folder / HOLDER_NAME).is_file() or "train" not in (folder / HOLDER_NAME).read_text():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(5)  # some iterations
        server.process.send_signal(ending)
        server.process.wait(timeout=120)
        deadline = time.monotonic() + 120
        while not _gone(worker):
            assert time.monotonic() < deadline, "the job worker outlived its server"
            time.sleep(0.2)
    saved = json.loads((folder / "model" / "state.json").read_text())
    assert saved["iteration"] >= 1
    with workspace_lock(folder, "test", wait=False):  # free: the next command is not "workspace busy"
        pass
