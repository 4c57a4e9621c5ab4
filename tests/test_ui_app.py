"""The web UI's pages and forms through Starlette's TestClient (no browser): what they create on disk,
and the one-line answers to bad input."""

from __future__ import annotations

import re
import socket
import sys
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from deepswap.cli import main
from deepswap.demo import sample_footage
from deepswap.ui import create_app
from deepswap.workspace import Workspace, init_workspace


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    test_client = TestClient(create_app(tmp_path), base_url="http://127.0.0.1:7860")
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', test_client.get("/").text).group(1)
    test_client.headers["X-CSRF-Token"] = token
    return test_client


def test_a_workspace_from_the_sample_footage(client: TestClient, tmp_path: Path) -> None:
    response = client.post("/new", data={"folder": "demo", "a": "", "b": "", "samples": "on", "face_size": "128"})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/w/demo/sources"
    workspace = Workspace.open(tmp_path / "demo")
    footage = sample_footage()
    assert (workspace.persons["a"].name, workspace.persons["b"].name) == footage.names
    assert [Path(s.uri) for s in workspace.persons["a"].sources] == footage.a
    assert [Path(s.uri) for s in workspace.persons["b"].sources] == footage.b
    assert workspace.face_size == 128
    convert_page = client.get("/w/demo/convert").text
    assert f"uploaded: {footage.held_back.name}" in convert_page  # the demo's held-back clip, ready to convert
    assert "demo" in client.get("/").text


def test_every_page_of_a_new_workspace_renders(client: TestClient, tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", "alice", "bob")
    for page in ("sources", "faces", "train", "convert", "verify", "evaluate"):
        response = client.get(f"/w/ws/{page}")
        assert response.status_code == 200, page
        assert "alice" in response.text
    assert client.get("/w/ws/").url.path == "/w/ws/sources"


def test_bad_form_values_get_one_line_answers(client: TestClient, tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", "alice", "bob")
    answers = {
        ("/new", ("folder", "../up")): "folder name",
        ("/new", ("folder", "ws")): "already exists",
        ("/w/ws/run/train", ("amount", "ten")): "“Train for” must be a number, not 'ten'",
        ("/w/ws/run/train", ("architecture", "width")): "not name=value",
        ("/w/ws/run/convert", ("input", "a:7")): "choose a video to convert",
        ("/w/ws/run/extract", ("fps", "-1")): "“Frames per second” must be &gt; 0, not -1.0",
        ("/w/ws/run/train", ("batch_size", "2.5")): "“Batch size” must be a whole number, not '2.5'",
        ("/w/ws/sources/urls", ("urls", "")): "paste one or more URLs",
        ("/w/ws/faces/remove", ("faces", "")): "mark faces first",
    }
    for (path, (field, value)), expected in answers.items():
        form = {"a": "x", "b": "y", "budget": "minutes", "amount": "1", "person": "a", field: value}
        response = client.post(path, data=form)
        assert response.status_code == 422, (path, field)
        assert response.headers["HX-Retarget"] == "#message"
        assert expected in response.text and response.text.count("<p") == 1, response.text


def test_the_command_names_a_missing_folder_and_a_taken_port(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["deepswap", "ui", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        return exited.value.code, capsys.readouterr().err

    code, err = run(str(tmp_path / "nothere"))
    assert code == 1 and "nothere: no such folder" in err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, err = run(str(tmp_path), "--port", str(taken.getsockname()[1]))
    assert code == 1 and "cannot listen there" in err


def test_the_demo_folder_shows_the_demo_video(client: TestClient, tmp_path: Path, s1_clips: list[Path]) -> None:
    """`deepswap ui deepswap-demo`: the demo's workspace is listed and its video plays on the Convert page."""
    workspace = init_workspace(tmp_path / "workspace", "s1", "lrwp9a")
    video = tmp_path / "demo_swap.mp4"  # beside the workspace, inside ROOT, as the demo writes it
    video.write_bytes(s1_clips[0].read_bytes())
    workspace.record_output(video, {"input": str(s1_clips[-1]), "direction": "a2b", "frames": 75, "swapped": 75,
                                    "output_id": "0"})
    assert 'href="/w/workspace/sources"' in client.get("/").text
    page = client.get("/w/workspace/convert").text
    assert '<video id="result-video" src="/files/demo_swap.mp4"' in page
    assert client.get("/files/demo_swap.mp4").content == video.read_bytes()
    assert client.get("/files/demo_swap.mp4", headers={"Range": "bytes=0-99"}).status_code == 206  # seekable


def test_a_root_that_is_one_workspace(tmp_path: Path) -> None:
    init_workspace(tmp_path / "my swap", "alice", "bob")
    client = TestClient(create_app(tmp_path / "my swap"), base_url="http://127.0.0.1:7860")
    home = client.get("/", follow_redirects=False)
    assert home.status_code == 303 and home.headers["location"] == "/w/my_swap/sources"
    assert "alice" in client.get("/w/my_swap/sources").text
    assert client.get("/files/deepswap.toml").status_code == 404  # settings are not for the pages
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/w/my_swap/faces").text).group(1)
    refused = client.post("/new", data={"folder": "other", "a": "x", "b": "y"}, headers={"X-CSRF-Token": token})
    assert refused.status_code == 403 and "one workspace" in refused.text
    assert not (tmp_path / "my swap" / "other").exists()


def test_the_evaluate_page_shows_a_s_faces_b_does_not_cover_beside_the_nearest_of_b(
        client: TestClient, tmp_path: Path, extracted_workspace: Path) -> None:
    import shutil

    from deepswap.coverage import faceset_landmarks
    from deepswap.faces import load_faceset
    from deepswap.faces.expression import mouth_open

    shutil.copytree(extracted_workspace, tmp_path / "ws")
    assert 'id="coverage"' not in client.get("/w/ws/evaluate").text  # lrwp9a's faces cover s1's
    faceset = load_faceset(tmp_path / "ws" / "b" / "faces")
    landmarks, ids = faceset_landmarks(faceset)
    faceset.remove([face for face, value in zip(ids, mouth_open(landmarks)) if value >= 0.03])
    faceset.save()
    page = client.get("/w/ws/evaluate").text
    assert 'id="coverage"' in page and "mouth wide open" in page and "Add footage of lrwp9a with the mouth wide open" in page
    pairs = re.findall(r'<img src="(/files/ws/a/faces/[^"]+\.png)"[^>]*><img src="(/files/ws/b/faces/[^"]+\.png)"', page)
    assert pairs
    for a_url, b_url in pairs[:1]:
        assert client.get(a_url).status_code == 200 and client.get(b_url).status_code == 200
