"""The web UI's guards, through Starlette's TestClient: paths stay inside ROOT, writes need the page's
CSRF token and this origin, uploads are capped and stored under sanitised names inside the
workspace, and off localhost every request needs the access token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deepswap.ui import create_app
from deepswap.ui.security import safe_name
from deepswap.workspace import Workspace, init_workspace

LOCAL = "http://127.0.0.1:7860"


def client_for(root: Path, **options: object) -> TestClient:
    return TestClient(create_app(root, **options), base_url=LOCAL)  # type: ignore[arg-type]


def csrf_token(client: TestClient) -> str:
    page = client.get("/")
    return re.search(r'"X-CSRF-Token": "([^"]+)"', page.text).group(1)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """ROOT holding one workspace, ``ws``, and a secret file beside ROOT."""
    (tmp_path / "secret.txt").write_text("not yours")
    site = tmp_path / "root"
    init_workspace(site / "ws", "alice", "bob")
    return site


def test_files_are_served_only_from_inside_root(root: Path) -> None:
    (root / "ws" / "outputs").mkdir()
    (root / "ws" / "outputs" / "frame.png").write_text("inside")
    (root / "ws" / "outputs" / "link.png").symlink_to(root.parent / "secret.txt")
    client = client_for(root)
    assert client.get("/files/ws/outputs/frame.png").text == "inside"
    for escape in ("/files/../secret.txt", "/files/ws/../../secret.txt", "/files/%2e%2e/secret.txt",
                   "/files/ws/%2e%2e/%2e%2e/secret.txt", "/files/ws/outputs/link.png", "/files//etc/passwd",
                   "/files/ws/..%2f..%2fsecret.txt"):
        response = client.get(escape)
        assert response.status_code == 404, escape
        assert "not yours" not in response.text


def test_pages_name_only_workspaces_inside_root(root: Path) -> None:
    client = client_for(root)
    assert client.get("/w/ws/sources").status_code == 200
    for name in ("..", "%2e%2e", "nothere", ".hidden"):
        assert client.get(f"/w/{name}/sources").status_code == 404, name


def test_writes_need_the_csrf_token_and_this_origin(root: Path) -> None:
    client = client_for(root)
    token = csrf_token(client)
    form = {"folder": "new", "a": "carol", "b": "dave"}
    refused = [
        {},
        {"X-CSRF-Token": "guessed"},
        {"X-CSRF-Token": token, "Origin": "http://evil.example"},
        {"X-CSRF-Token": token, "Sec-Fetch-Site": "cross-site"},
        {"X-CSRF-Token": token, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refused:
        assert client.post("/new", data=form, headers=headers).status_code == 403, headers
        assert not (root / "new").exists()
    accepted = client.post("/new", data=form, headers={"X-CSRF-Token": token, "Origin": LOCAL, "Sec-Fetch-Site": "same-origin"})
    assert accepted.status_code == 204
    assert Workspace.open(root / "new").persons["a"].name == "carol"


def test_only_local_host_names_are_answered_on_localhost(root: Path) -> None:
    client = client_for(root)
    assert client.get("/", headers={"Host": "localhost:7860"}).status_code == 200
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400  # DNS rebinding


def test_uploads_are_capped(root: Path, s1_clips: list[Path]) -> None:
    clip = s1_clips[0]
    limit = clip.stat().st_size // 2
    client = client_for(root, max_upload_bytes=limit)
    headers = {"X-CSRF-Token": csrf_token(client)}
    with clip.open("rb") as video:
        response = client.post("/w/ws/sources/files", data={"person": "a"}, files={"files": (clip.name, video)}, headers=headers)
    assert response.status_code == 413
    assert "upload too large" in response.text

    def chunks():  # no Content-Length: the cap counts the body as it arrives
        body = (b'--x\r\nContent-Disposition: form-data; name="files"; filename="c.mp4"\r\n\r\n'
                + clip.read_bytes() + b"\r\n--x--\r\n")
        for offset in range(0, len(body), 4096):
            yield body[offset:offset + 4096]

    response = client.post("/w/ws/sources/files", content=chunks(),
                           headers={**headers, "Content-Type": "multipart/form-data; boundary=x"})
    assert response.status_code == 413
    assert not (root / "ws" / "uploads").exists() or not any((root / "ws" / "uploads").rglob("*.mp4"))
    assert Workspace.open(root / "ws").persons["a"].sources == []


def test_uploads_are_stored_inside_the_workspace_under_safe_names(root: Path, s1_clips: list[Path], photos: list[Path]) -> None:
    client = client_for(root)
    headers = {"X-CSRF-Token": csrf_token(client)}
    files = [("files", ("../../../outside.mp4", s1_clips[0].read_bytes())),
             ("files", ("/etc/évil name!.jpg", photos[0].read_bytes()))]
    assert client.post("/w/ws/sources/files", data={"person": "a"}, files=files, headers=headers).status_code == 204
    assert not (root.parent / "outside.mp4").exists()
    sources = Workspace.open(root / "ws").persons["a"].sources
    stored = sorted(Path(source.uri) for source in sources)
    assert [path.relative_to((root / "ws" / "uploads" / "a").resolve()).as_posix() for path in stored] == ["outside.mp4", "photos"]
    assert [path.name for path in stored[1].iterdir()] == ["evil_name.jpg"]
    rejected = client.post("/w/ws/sources/files", data={"person": "a"}, files=[("files", ("run.sh", b"#!/bin/sh\n"))], headers=headers)
    assert rejected.status_code == 422 and "not a video or photo" in rejected.text
    assert not list((root / "ws" / "uploads").rglob("run*"))


@pytest.mark.parametrize(("given", "stored"), [
    ("clip.MP4", "clip.mp4"), ("../../etc/passwd", "passwd"), ("..\\..\\win.ini", "win.ini"), (".bashrc", "bashrc"),
    ("…", "upload"), ("a b/c d.png", "c_d.png"), ("x" * 300 + ".jpg", "x" * 76 + ".jpg"),
])
def test_safe_names(given: str, stored: str) -> None:
    assert safe_name(given) == stored


def test_off_localhost_every_request_needs_the_token(root: Path) -> None:
    client = client_for(root, access_token="s3cret")
    for path in ("/", "/w/ws/sources", "/static/style.css", "/files/ws/deepswap.toml"):
        assert client.get(path).status_code == 401, path
    assert client.get("/?token=wrong").status_code == 403
    client.cookies.set("deepswap_token_7860", "wrong")
    assert client.get("/").status_code == 403
    client.cookies.clear()
    entry = client.get("/w/ws/sources?token=s3cret", follow_redirects=False)
    assert entry.status_code == 303 and entry.headers["location"] == "/w/ws/sources"
    cookie = entry.headers["set-cookie"]
    assert "deepswap_token_7860=s3cret" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    client.cookies.set("deepswap_token_7860", "s3cret")
    assert client.get("/w/ws/sources").status_code == 200
