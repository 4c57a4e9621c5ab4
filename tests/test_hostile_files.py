"""Damaged and hostile workspace files: one line naming the file and the entry, and nothing touched.

Every on-disk format (deepswap.toml, alignments.json, identity.npy, model/state.json, loss.csv,
outputs.json, the provenance label) is checked whole when it is read; names read from them never
lead outside the workspace. Real commands (`deepswap ...` in a subprocess) where the CLI is the
point, and hypothesis fuzzing of every parser: it loads, or raises DeepswapError, nothing else.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import tomli_w
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deepswap import DeepswapError, Workspace
from deepswap.faces.faceset import FaceSet
from deepswap.faces.identity import Identity
from deepswap.provenance.metadata import LABEL, ProvenanceLabel, parse_label
from deepswap.status import workspace_status
from deepswap.train.report import read_loss_log
from deepswap.train.state import read_state

DEEPSWAP = Path(sys.executable).with_name("deepswap")


def deepswap(*args: object, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEEPSWAP, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(run: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The command failed with exit 1 and exactly one line on stderr holding every needle."""
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr and run.stderr.count("\n") == 1, run.stderr
    line = run.stderr.strip()
    assert line.startswith("error: ")
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def files_under(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def ws(tmp_path: Path, extracted_workspace: Path) -> Path:
    """A private copy of the extracted workspace (faces of a and b, no model)."""
    root = tmp_path / "ws"
    shutil.copytree(extracted_workspace, root, ignore=shutil.ignore_patterns("model"))
    return root


class Replace:
    """An edit's result that replaces the whole document (other edits change it in place)."""

    def __init__(self, value: Any) -> None:
        self.value = value


def edited(data: Any, change: Callable[[Any], Any]) -> Any:
    result = change(data)
    return result.value if isinstance(result, Replace) else data


def edit_json(path: Path, change: Callable[[Any], Any]) -> None:
    path.write_text(json.dumps(edited(json.loads(path.read_text("utf-8")), change)), "utf-8")


# 1. names read from workspace files never lead outside the workspace


@pytest.mark.parametrize("command", ["faces", "extract"])
@pytest.mark.parametrize("where", ["relative", "absolute"])
def test_a_face_id_leading_outside_is_refused_and_nothing_is_deleted(ws: Path, tmp_path: Path, command: str,
                                                                     where: str) -> None:
    victims = [tmp_path / "victim.png", ws / "victim.png", tmp_path / "elsewhere" / "victim.png"]
    for victim in victims:
        victim.parent.mkdir(exist_ok=True)
        victim.write_bytes(b"precious")
    entry = "../../../victim" if where == "relative" else str(tmp_path / "elsewhere" / "victim")
    alignments = ws / "a" / "faces" / "alignments.json"
    edit_json(alignments, lambda data: data["faces"].update({entry: next(iter(data["faces"].values()))}))
    before = files_under(ws)
    args = ("faces", ws, "a") if command == "faces" else ("extract", ws, "--person", "a")
    line = assert_one_line_error(deepswap(*args), str(alignments), repr(entry))
    assert "faces" in line
    assert all(victim.read_bytes() == b"precious" for victim in victims)
    assert files_under(ws) == before


@pytest.mark.parametrize("change, entry", [
    (lambda data: data["sources"].update({"../../x": next(iter(data["sources"].values()))}), "sources"),
    (lambda data: next(iter(data["faces"].values())).update(source="../../x"), "source"),
    (lambda data: next(iter(data["faces"].values())).update(name="../x.png"), "name"),
    (lambda data: data["removed"].append("/etc/passwd"), "removed"),
], ids=["source-key", "record-source", "photo-name", "removed-id"])
def test_other_names_in_alignments_are_checked_too(ws: Path, change: Callable[[Any], Any], entry: str) -> None:
    alignments = ws / "a" / "faces" / "alignments.json"
    edit_json(alignments, change)
    before = files_under(ws)
    with pytest.raises(DeepswapError, match=entry) as caught:
        FaceSet.load(alignments.parent)
    assert str(caught.value).startswith(f"{alignments}: ") and "not an allowed name" in str(caught.value)
    assert files_under(ws) == before


def test_the_names_extract_writes_always_load_back(tmp_path: Path, s1_clips: list[Path], photos: list[Path]) -> None:
    """Unusual but real file names (spaces, brackets, '#', non-ASCII letters and numbers) pass the checks."""
    from deepswap import add_sources, init_workspace
    from deepswap.extract import ExtractOptions, extract

    folder = tmp_path / "Fotos de Grâce"
    folder.mkdir()
    shutil.copy(photos[1], folder / "IMG #1 [copy] ½ (2).jpg")
    clip = tmp_path / "clip²½ – Ünïcode.mp4"
    shutil.copy(s1_clips[0], clip)
    root = tmp_path / "ws"
    init_workspace(root, "grace", "s1")
    add_sources(root, "a", [str(folder)])
    add_sources(root, "b", [str(clip)], duration=0.5)
    extract(root, ExtractOptions(fps=4))
    for key in ("a", "b"):
        faces = FaceSet.load(root / key / "faces")
        assert len(faces) >= 1 and all(faces.crop_path(face).is_file() for face in faces)
    assert [record["name"] for record in FaceSet.load(root / "a" / "faces").faces.values()] == ["IMG #1 [copy] ½ (2).jpg"]


@pytest.mark.parametrize("reference", ["../../victim.png", "/etc/passwd", "a/../../victim.png", "b/faces/x.png"])
def test_a_reference_path_leading_elsewhere_is_refused(ws: Path, reference: str) -> None:
    config = ws / "deepswap.toml"
    data = tomllib.loads(config.read_text("utf-8"))
    data["persons"]["a"]["reference"] = reference
    config.write_text(tomli_w.dumps(data), "utf-8")
    assert_one_line_error(deepswap("status", ws), str(config), "persons.a.reference", repr(reference))


def valid_state() -> dict[str, Any]:
    """A state.json as train writes it (the tensor files need not exist to read the state)."""
    files = {role: {"name": f"{role}-00000004.safetensors", "sha256": "0" * 64, "bytes": 1234}
             for role in ("model", "optimizer")}
    return {"format": 1, "model": "lite", "options": {"resolution": 32, "width": 8, "latent": 32}, "iteration": 4,
            "files": files, "optimizer": {"name": "Adam", "param_groups": [
                {"lr": 0.0004, "betas": [0.5, 0.999], "eps": 1e-08, "weight_decay": 0, "amsgrad": False}]},
            "training": {"batch_size": 4, "learning_rate": 0.0004, "seed": 0, "coverage": 0.8, "precision": "fp32",
                         "world_size": 1, "elapsed_seconds": 2.5, "recent_loss": 0.2, "best_loss": None},
            "versions": {"deepswap": "0.1.0", "torch": "2.13.0"}}


@pytest.mark.parametrize("name", ["../../victim.safetensors", "/tmp/model-1.safetensors", "model-1.pt",
                                  "optimizer-00000004.safetensors"])
def test_a_checkpoint_file_name_leading_elsewhere_is_refused(tmp_path: Path, name: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    state = valid_state()
    state["files"]["model"]["name"] = name
    (model / "state.json").write_text(json.dumps(state))
    with pytest.raises(DeepswapError) as caught:
        read_state(model)
    message = str(caught.value)
    assert message.startswith(f"{model / 'state.json'}: damaged checkpoint state (files.model") and "\n" not in message


# 4. damaged files: one line naming the file and the problem


@pytest.mark.parametrize("edit, problem", [
    (lambda d: d["settings"].update(face_size="big"), "settings.face_size: Input should be a valid integer"),
    (lambda d: d["settings"].update(face_size=True), "settings.face_size"),
    (lambda d: d["settings"].update(face_size=0), "settings.face_size: Input should be greater than or equal to 64"),
    (lambda d: d["settings"].update(face_size=100000), "settings.face_size: Input should be less than or equal"),
    (lambda d: d["settings"].update(identity_threshold=-1.0), "settings.identity_threshold"),
    (lambda d: d["settings"].update(max_download_mb=0), "settings.max_download_mb"),
    (lambda d: d["settings"].update(face_sise=128), "settings.face_sise: Extra inputs are not permitted"),
    (lambda d: d["persons"]["a"].update(name=3), "persons.a.name: Input should be a valid string"),
    (lambda d: d["persons"]["a"].update(name=""), "persons.a.name"),
    (lambda d: d["persons"]["a"].update(sources="clip.mp4"), "persons.a.sources"),
    (lambda d: d["persons"]["a"]["sources"][0].update(start="1"), "persons.a.sources.0.start"),
    (lambda d: d["persons"]["a"]["sources"][0].update(start=-1.0), "persons.a.sources.0.start"),
    (lambda d: d["persons"]["a"]["sources"][0].update(kind="zip"), "persons.a.sources.0.kind"),
    (lambda d: d["persons"]["a"]["sources"][0].update(kind="url"), "persons.a.sources.0: uri: a url source cannot be"),
    (lambda d: d["persons"]["a"]["sources"][0].pop("uri"), "persons.a.sources.0.uri: Field required"),
    (lambda d: d["persons"].pop("b"), "persons.b: Field required"),
    (lambda d: d["persons"].update(c={"name": "carol"}), "persons.c"),
    (lambda d: d.update(settings=[1, 2]), "settings: Input should be"),
], ids=["face-size-text", "face-size-bool", "face-size-0", "face-size-huge", "threshold", "download-cap",
        "unknown-setting", "name-number", "name-empty", "sources-text", "start-text", "start-negative", "kind",
        "url-kind-of-a-path", "no-uri", "no-person-b", "person-c", "settings-list"])
def test_a_damaged_workspace_file_is_one_line_naming_the_entry(ws: Path, edit: Callable[[dict], Any],
                                                               problem: str) -> None:
    config = ws / "deepswap.toml"
    data = tomllib.loads(config.read_text("utf-8"))
    edit(data)
    config.write_text(tomli_w.dumps(data), "utf-8")
    with pytest.raises(DeepswapError) as caught:
        Workspace.open(ws)
    message = str(caught.value)
    assert message.startswith(f"{config}: damaged workspace file (") and problem in message and "\n" not in message


@pytest.mark.parametrize("content", [b"persons = [broken", b"\xff\xfe\x00garbage", b""], ids=["syntax", "binary", "empty"])
def test_an_unreadable_workspace_file_is_one_line(ws: Path, content: bytes) -> None:
    (ws / "deepswap.toml").write_bytes(content)
    assert_one_line_error(deepswap("status", ws), f"{ws / 'deepswap.toml'}: damaged workspace file")


def test_a_bad_face_size_is_refused_before_any_crop_is_deleted(ws: Path) -> None:
    config = ws / "deepswap.toml"
    config.write_text(config.read_text("utf-8").replace("face_size = 128", "face_size = 0"), "utf-8")
    before = files_under(ws)
    assert_one_line_error(deepswap("extract", ws, "--force"), str(config), "settings.face_size")
    assert files_under(ws) == before


def first_face(data: dict) -> dict:
    return data["faces"][sorted(data["faces"])[0]]


@pytest.mark.parametrize("edit, problem", [
    (lambda d: Replace([]), "top level: Input should be a valid dictionary"),
    (lambda d: d.pop("faces"), "faces: Field required"),
    (lambda d: d.update(version=2), "version"),
    (lambda d: d.update(face_size="128"), "face_size"),
    (lambda d: first_face(d).pop("landmarks"), "landmarks: Field required"),
    (lambda d: first_face(d).update(landmarks=[[1.0, 2.0]] * 5), "landmarks"),
    (lambda d: first_face(d).update(matrix=[[1, 0, 0], [0, 1, math.nan]]), "matrix"),
    (lambda d: first_face(d).update(frame="7"), "frame"),
    (lambda d: first_face(d).update(blur=None), "blur"),
    (lambda d: d["sources"][sorted(d["sources"])[0]].update(complete="yes"), "complete"),
    (lambda d: d.update(removed={"x": 1}), "removed"),
    (lambda d: d.update(identity={"origin": "guess"}), "identity"),
], ids=["list", "no-faces", "version", "face-size-text", "no-landmarks", "landmarks-shape", "matrix-nan",
        "frame-text", "blur-null", "complete-text", "removed-table", "identity"])
def test_damaged_alignments_are_one_line_naming_the_entry(ws: Path, edit: Callable[[dict], Any], problem: str) -> None:
    alignments = ws / "a" / "faces" / "alignments.json"
    edit_json(alignments, edit)
    before = files_under(ws)
    with pytest.raises(DeepswapError) as caught:
        FaceSet.load(alignments.parent)
    message = str(caught.value)
    assert message.startswith(f"{alignments}: damaged alignments file (") and problem in message
    assert "\n" not in message and "deepswap extract --force" in message
    assert files_under(ws) == before


def test_damaged_alignments_stop_the_commands_in_one_line(ws: Path) -> None:
    alignments = ws / "a" / "faces" / "alignments.json"
    edit_json(alignments, lambda d: first_face(d).pop("matrix"))
    before = files_under(ws)
    for args in (("faces", ws, "a"), ("faces", ws, "a", "--remove", "0"), ("extract", ws, "--person", "a")):
        assert_one_line_error(deepswap(*args), f"{alignments}: damaged alignments file", "matrix: Field required")
    assert files_under(ws) == before


@pytest.mark.parametrize("make, problem", [
    (lambda path: path.write_bytes(b"not numpy at all"), "not a .npy array"),
    (lambda path: path.write_bytes(b""), "not a .npy array"),
    (lambda path: np.save(path, np.array([{"x": 1}], dtype=object)), "not a .npy array"),
    (lambda path: np.save(path, np.ones(3, np.float32)), "shape (3,)"),
    (lambda path: np.save(path, np.ones((2, 128), np.float32)), "shape (2, 128)"),
    (lambda path: np.save(path, np.full(128, np.nan, np.float32)), "not finite"),
    (lambda path: np.save(path, np.zeros(128, np.float32)), "zero"),
    (lambda path: np.save(path, np.array(["x"] * 128)), "dtype"),
], ids=["garbage", "empty", "pickle", "short", "2d", "nan", "zero", "strings"])
def test_a_damaged_identity_is_one_line(tmp_path: Path, make: Callable[[Path], None], problem: str) -> None:
    path = tmp_path / "identity.npy"
    make(path)
    with pytest.raises(DeepswapError) as caught:
        Identity.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: damaged identity (") and problem in message and "\n" not in message


def test_a_damaged_identity_stops_extract_in_one_line(ws: Path) -> None:
    identity = ws / "a" / "faces" / "identity.npy"
    identity.write_bytes(b"\x93NUMPY garbage")
    assert_one_line_error(deepswap("extract", ws, "--person", "a"), f"{identity}: damaged identity")


@pytest.mark.parametrize("edit, problem", [
    (lambda s: Replace([]), "top level"),
    (lambda s: s.update(iteration="4"), "iteration"),
    (lambda s: s.update(iteration=-1), "iteration"),
    (lambda s: s.pop("files"), "files: Field required"),
    (lambda s: s["files"].pop("optimizer"), "files.optimizer"),
    (lambda s: s["files"]["model"].update(sha256="xyz"), "files.model.sha256"),
    (lambda s: s["files"]["model"].update(bytes=-5), "files.model.bytes"),
    (lambda s: s.update(model=3), "model"),
    (lambda s: s.update(options=[1]), "options"),
    (lambda s: s.update(training=[]), "training"),
    (lambda s: s["training"].update(batch_size="big"), "training.batch_size"),
    (lambda s: s.update(format=2), "format"),
    (lambda s: s["files"].update(critic={**s["files"]["model"], "name": "../critic-00000004.safetensors"}), "files.critic"),
    (lambda s: s["files"].update(critic=s["files"]["model"]), "files.critic"),
    (lambda s: s["files"].update(segmenter={**s["files"]["model"], "name": "/tmp/segmenter-00000004.safetensors"}),
     "files.segmenter"),
    (lambda s: s["files"].update(segmenter=s["files"]["optimizer"]), "files.segmenter"),
    (lambda s: s["training"].update(segmenter_steps=-3), "training.segmenter_steps"),
], ids=["list", "iteration-text", "iteration-negative", "no-files", "no-optimizer-file", "sha", "bytes", "model",
        "options", "training", "batch-size", "format", "critic-elsewhere", "critic-names-the-model",
        "segmenter-elsewhere", "segmenter-names-the-optimizer", "segmenter-steps"])
def test_a_damaged_checkpoint_state_is_one_line(tmp_path: Path, edit: Callable[[dict], Any], problem: str) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "state.json").write_text(json.dumps(edited(valid_state(), edit)))
    with pytest.raises(DeepswapError) as caught:
        read_state(model)
    message = str(caught.value)
    assert message.startswith(f"{model / 'state.json'}: damaged checkpoint state (") and problem in message
    assert "\n" not in message


def test_status_reads_the_state_through_its_schema_and_reports_damage(ws: Path) -> None:
    model = ws / "model"
    model.mkdir()
    (model / "state.json").write_text(json.dumps(valid_state()))
    assert workspace_status(ws)["model"] == {"model": "lite", "iterations": 4}
    (model / "state.json").write_text(json.dumps({"model": "original", "iteration": "120"}))
    run = deepswap("status", ws)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert f"{model / 'state.json'}: damaged checkpoint state" in " ".join(run.stdout.split())
    report = json.loads(deepswap("status", ws, "--json").stdout)
    assert report["model"]["model"] is None and "damaged checkpoint state" in report["problems"][0]


@pytest.mark.parametrize("text, problem", [
    ("iteration,loss_a\n1,0.5\n", "columns"),
    ("iteration,loss_a,loss_b,learning_rate,samples_per_second,elapsed_seconds\n1,0.5,0.4,1e-4,3,1\nx,1,1,1,1,1\n",
     "line 3"),
    ("iteration,loss_a,loss_b,learning_rate,samples_per_second,elapsed_seconds\n1,nan,0.4,1e-4,3,1\n", "line 2"),
    ("iteration,loss_a,loss_b,learning_rate,samples_per_second,elapsed_seconds\n1.5,0.5,0.4,1e-4,3,1\n", "line 2"),
    ("\xff\xfe", "damaged loss log"),
], ids=["columns", "text-value", "nan", "fractional-iteration", "binary"])
def test_a_damaged_loss_log_is_one_line_and_kept(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "loss.csv"
    path.write_bytes(text.encode("utf-8", errors="surrogateescape") if text != "\xff\xfe" else b"\xff\xfe")
    before = path.read_bytes()
    with pytest.raises(DeepswapError) as caught:
        read_loss_log(path, up_to=100)
    message = str(caught.value)
    assert message.startswith(f"{path}: damaged loss log") and problem in message and "\n" not in message
    assert path.read_bytes() == before


@pytest.mark.parametrize("content", [b"{not json", b'{"path": "/x.mp4"}', b'[{"path": 3}]', b'[{"path": "rel.mp4"}]',
                                     b"\xff\xfe"], ids=["syntax", "object", "path-number", "relative", "binary"])
def test_damaged_outputs_are_reported_by_status_not_a_traceback(ws: Path, content: bytes) -> None:
    (ws / "outputs.json").write_bytes(content)
    with pytest.raises(DeepswapError, match=r"outputs\.json: damaged list of outputs"):
        Workspace.open(ws).outputs()
    run = deepswap("status", ws)
    assert run.returncode == 0 and "Traceback" not in run.stderr
    assert f"{ws / 'outputs.json'}: damaged list of outputs" in " ".join(run.stdout.split())


def test_recording_an_output_keeps_a_damaged_list_aside(ws: Path, tmp_path: Path) -> None:
    (ws / "outputs.json").write_bytes(b"[{broken")
    workspace = Workspace.open(ws)
    kept = workspace.record_output(tmp_path / "out.mp4", {"direction": "a2b", "frames": 3})
    assert kept is not None and kept.parent == ws and kept.name.startswith("outputs.json.damaged-")
    assert kept.read_bytes() == b"[{broken"
    assert workspace.outputs() == [{"path": str((tmp_path / "out.mp4").resolve()), "direction": "a2b", "frames": 3}]
    assert workspace.record_output(tmp_path / "out2.mp4", {}) is None


@pytest.mark.slow
def test_convert_keeps_its_video_when_outputs_json_is_damaged(trained_workspace: Path, tmp_path: Path,
                                                             s1_clips: list[Path]) -> None:
    root = tmp_path / "ws"
    shutil.copytree(trained_workspace, root)
    (root / "outputs.json").write_text("[{broken")
    out = tmp_path / "out.mp4"
    run = deepswap("convert", root, s1_clips[2], "-o", out, "--duration", "0.4")
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    assert out.is_file() and deepswap("verify", out).returncode == 0
    (kept,) = root.glob("outputs.json.damaged-*")
    assert kept.read_text() == "[{broken" and str(kept) in " ".join(run.stderr.split())
    assert [o["path"] for o in Workspace.open(root).outputs()] == [str(out.resolve())]


# fuzzing: every parser loads its file or raises DeepswapError, never anything else

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                    max_leaves=12)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def mutated(draw: st.DrawFn, document: Any) -> Any:
    """A copy of a valid document with one value somewhere replaced by an arbitrary JSON value,
    a key dropped, or a key added."""
    document = copy.deepcopy(document)
    node, steps = document, draw(st.integers(0, 6))
    for _ in range(steps):
        children = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) if isinstance(node, list) else []
        containers = [(key, child) for key, child in children if isinstance(child, (dict, list)) and child]
        if not containers:
            break
        _, node = draw(st.sampled_from(containers))
    keys = list(node) if isinstance(node, dict) else list(range(len(node)))
    action = draw(st.sampled_from(["replace", "drop", "add"]))
    if action == "add" and isinstance(node, dict):
        node[draw(st.text(max_size=12))] = draw(JSON)
    elif action == "drop" and isinstance(node, dict) and keys:
        del node[draw(st.sampled_from(keys))]
    elif keys:
        node[draw(st.sampled_from(keys))] = draw(JSON)
    return document


def loads_or_deepswap_error(load: Callable[[], Any]) -> None:
    try:
        load()
    except DeepswapError as error:
        assert "\n" not in str(error)


@pytest.fixture(scope="module")
def valid_alignments(extracted_workspace: Path) -> dict:
    data = json.loads((extracted_workspace / "b" / "faces" / "alignments.json").read_text())
    data["faces"] = dict(sorted(data["faces"].items())[:2])
    return data


@FUZZ
@given(data=st.data())
def test_fuzz_alignments(tmp_path: Path, valid_alignments: dict, data: st.DataObject) -> None:
    document = data.draw(st.one_of(JSON, mutated(valid_alignments)))
    (tmp_path / "alignments.json").write_text(json.dumps(document))
    loads_or_deepswap_error(lambda: FaceSet.load(tmp_path))


@FUZZ
@given(document=st.one_of(JSON, mutated(valid_state())))
def test_fuzz_checkpoint_state(tmp_path: Path, document: Any) -> None:
    (tmp_path / "state.json").write_text(json.dumps(document))
    loads_or_deepswap_error(lambda: read_state(tmp_path))


VALID_CONFIG = {"persons": {"a": {"name": "alice", "reference": "a/reference.jpg", "sources": [
    {"uri": "https://example.org/a.mp4", "kind": "url", "start": 1.0, "duration": 2.5},
    {"uri": "/footage/a.mp4", "kind": "video"}]}, "b": {"name": "bob", "sources": []}},
    "settings": {"face_size": 256}}
TOML_VALUES = st.recursive(st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)


@st.composite
def toml_text(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["mutated", "random-table", "bytes"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    document = draw(mutated(VALID_CONFIG)) if kind == "mutated" else draw(st.dictionaries(st.text(max_size=12), TOML_VALUES))
    try:
        return tomli_w.dumps(document).encode("utf-8")
    except (TypeError, ValueError):  # None has no TOML form: write the valid document
        return tomli_w.dumps(VALID_CONFIG).encode("utf-8")


@FUZZ
@given(content=toml_text())
def test_fuzz_workspace_file(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "deepswap.toml").write_bytes(content)
    loads_or_deepswap_error(lambda: Workspace.open(tmp_path))


@FUZZ
@given(document=st.one_of(JSON, mutated([{"path": "/out/x.mp4", "input": "/in/x.mp4", "direction": "a2b",
                                          "frames": 3, "swapped": 2, "output_id": "3fa2c1d9"}])))
def test_fuzz_outputs(tmp_path: Path, document: Any) -> None:
    (tmp_path / "deepswap.toml").write_text(tomli_w.dumps(VALID_CONFIG))
    (tmp_path / "outputs.json").write_text(json.dumps(document))
    loads_or_deepswap_error(lambda: Workspace.open(tmp_path).outputs())


@FUZZ
@given(rows=st.lists(st.lists(st.text(max_size=8) | st.floats().map(str) | st.integers().map(str), max_size=7),
                     max_size=5), header=st.booleans())
def test_fuzz_loss_log(tmp_path: Path, rows: list[list[str]], header: bool) -> None:
    lines = ([",".join(("iteration", "loss_a", "loss_b", "learning_rate", "samples_per_second", "elapsed_seconds"))]
             if header else []) + [",".join(row) for row in rows]
    (tmp_path / "loss.csv").write_text("\n".join(lines), "utf-8", errors="surrogatepass")
    loads_or_deepswap_error(lambda: read_loss_log(tmp_path / "loss.csv", up_to=10))


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(), st.binary(), st.builds(lambda fields, tail: f"{LABEL} {json.dumps(fields)}{tail}",
                                                        JSON, st.text(max_size=5)),
                      st.integers(1, 5000).map(lambda depth: LABEL + " " + "[" * depth + "]" * depth),
                      st.integers(1, 5000).map(lambda depth: LABEL + ' {"version": ' + "[" * depth + "]" * depth + "}")))
def test_fuzz_provenance_label(text: str | bytes) -> None:
    label = parse_label(text)
    assert label is None or isinstance(label, ProvenanceLabel)
    if label is not None:
        assert all(value is None or isinstance(value, str) for value in
                   (label.version, label.date, label.replaced_person, label.output_id))
        assert parse_label(label.text()) == label


# 6. bounded resources: photos over the pixel limit are refused before they are decoded


def png_bomb(path: Path, width: int, height: int) -> Path:
    """A real, valid grey PNG of width × height (all black): a few hundred KB on disk that would take
    width × height × 3 bytes once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer, row, parts = zlib.compressobj(9), b"\0" * (width + 1), []
    parts.extend(packer.compress(row) for _ in range(height))
    parts.append(packer.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bombs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bombs")
    return {"64mp": png_bomb(folder / "wide.png", 8000, 8000), "256mp": png_bomb(folder / "huge.png", 16000, 16000)}


@pytest.mark.parametrize("bomb, size", [("64mp", "8000×8000 = 64 megapixels"), ("256mp", "256 megapixels")])
def test_a_photo_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path, bombs: dict[str, Path], photos: list[Path],
                                                                 bomb: str, size: str) -> None:
    from deepswap.video import read_photos

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos[0], folder)
    shutil.copy(bombs[bomb], folder / "zz.png")
    expected = f"{folder / 'zz.png'}: {size} is over the 40-megapixel limit for photos; scale it down first"
    with pytest.raises(DeepswapError) as caught:
        list(read_photos(folder))
    assert str(caught.value) == expected


def test_a_reference_photo_over_the_pixel_limit_is_refused(ws: Path, bombs: dict[str, Path]) -> None:
    from deepswap import add_sources

    before = files_under(ws)
    with pytest.raises(DeepswapError, match="256 megapixels is over the 40-megapixel limit"):
        add_sources(ws, "a", [], reference=bombs["256mp"])
    assert files_under(ws) == before


def test_extract_refuses_a_photo_over_the_pixel_limit_in_one_line(tmp_path: Path, bombs: dict[str, Path],
                                                                  photos: list[Path]) -> None:
    from deepswap import add_sources, init_workspace

    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos[1], folder)
    shutil.copy(bombs["64mp"], folder / "wide.png")
    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    add_sources(root, "a", [str(folder)])
    assert_one_line_error(deepswap("extract", root, "--person", "a"), f"{folder / 'wide.png'}: 8000×8000",
                          "over the 40-megapixel limit")


# video inputs: zero bytes, truncated, garbage, wrong extension → DeepswapError from every reader


class Media(list):
    """The bytes of real media files (shown by name, not content, when hypothesis reports a case)."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__(path.read_bytes() for path in paths)
        self.names = [path.name for path in paths]

    def __repr__(self) -> str:
        return f"Media({self.names})"


@pytest.fixture(scope="module")
def media(s1_clips: list[Path], raw_mpg: Path, photos: list[Path]) -> Media:
    return Media([s1_clips[0], raw_mpg, *photos])


@st.composite
def damaged_media(draw: st.DrawFn, originals: list[bytes]) -> tuple[bytes, str]:
    data = bytearray(draw(st.sampled_from(originals)))
    how = draw(st.sampled_from(["empty", "truncated", "garbage", "flipped", "spliced", "intact"]))
    if how == "empty":
        data = bytearray()
    elif how == "truncated":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif how == "garbage":
        data = bytearray(draw(st.binary(max_size=4000)))
    elif how == "flipped":
        for position, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                             min_size=1, max_size=40)):
            data[position] = value
    elif how == "spliced":
        data = data[: draw(st.integers(0, len(data)))] + draw(st.binary(min_size=1, max_size=2000))
    suffix = draw(st.sampled_from([".mp4", ".mov", ".mkv", ".mpg", ".avi", ".jpg", ".png", ".webp"]))
    return bytes(data), suffix


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_video_and_photo_inputs_through_every_reader(tmp_path_factory: pytest.TempPathFactory, media: Media,
                                                          data: st.DataObject) -> None:
    from deepswap import add_sources, init_workspace
    from deepswap.video import probe_video, read_frames, read_photos

    content, suffix = data.draw(damaged_media(media))
    folder = tmp_path_factory.mktemp("input")
    path = folder / f"input{suffix}"
    path.write_bytes(content)
    init_workspace(folder / "ws", "alice", "bob")
    readers = [lambda: probe_video(path), lambda: sum(1 for _ in read_frames(path)),
               lambda: sum(1 for _ in read_frames(path, fps=5, start=1.2, duration=0.5)),
               lambda: sum(1 for _ in read_photos(path)), lambda: add_sources(folder / "ws", "a", [str(path)]),
               lambda: add_sources(folder / "ws", "b", [], reference=path)]
    for read in readers:
        loads_or_deepswap_error(read)


@pytest.mark.parametrize("content", [b"", b"\0" * 5000, b"not a video\n" * 50], ids=["zero-bytes", "zeros", "text"])
def test_add_refuses_a_damaged_video_in_one_line(tmp_path: Path, s1_clips: list[Path], content: bytes) -> None:
    from deepswap import init_workspace

    root = tmp_path / "ws"
    init_workspace(root, "alice", "bob")
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    assert_one_line_error(deepswap("add", root, "a", s1_clips[0], bad), f"{bad}: ")
    assert Workspace.open(root).persons["a"].sources == []


def test_extract_names_a_video_damaged_after_it_was_added(ws: Path, s1_clips: list[Path], tmp_path: Path) -> None:
    from deepswap import add_sources

    clip = tmp_path / "later.mp4"
    shutil.copy(s1_clips[3], clip)
    add_sources(ws, "a", [str(clip)])
    clip.write_bytes(clip.read_bytes()[:3000])
    assert_one_line_error(deepswap("extract", ws, "--person", "a"), f"{clip}: ")


@pytest.mark.parametrize("content", [b"", b"\0" * 5000], ids=["zero-bytes", "zeros"])
def test_convert_refuses_a_damaged_input_in_one_line(trained_workspace: Path, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    out = tmp_path / "out.mp4"
    assert_one_line_error(deepswap("convert", trained_workspace, bad, "-o", out), f"{bad}: ")
    assert not out.exists() and list(tmp_path.glob(".*part*")) == []
