"""`deepswap extract` / `deepswap faces` on real GRID footage: outputs, identity filtering, resume, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from typer.testing import CliRunner

from deepswap import _io
from deepswap.cli import app
from deepswap.errors import DeepswapError
from deepswap.extract import ExtractOptions, contact_sheet, extract, remove_faces
from deepswap.faces import FaceSet, canonical_landmarks
from deepswap.progress import ProgressEvent
from deepswap.status import workspace_status
from deepswap.video import read_frames
from deepswap.sources import add_sources
from deepswap.workspace import Workspace, init_workspace


def _write_video(path: Path, images: list[np.ndarray], fps: int = 25) -> Path:
    """An H.264 mp4 with its index first (so a cut-off copy still opens)."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps, options={"crf": "18", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def _frames(clip: Path, **kwargs) -> list[np.ndarray]:
    return [frame.image for frame in read_frames(clip, **kwargs)]


def _new_workspace(tmp_path: Path, face_size: int = 64) -> Path:
    root = tmp_path / "ws"
    init_workspace(root, "s1", "other")
    workspace = Workspace.open(root)
    workspace.settings["face_size"] = face_size
    workspace.save()
    return root


def _copy(workspace: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(workspace, tmp_path / "copy"))


@pytest.fixture(scope="module")
def lrwp9a(speaker_clips: list[Path]) -> Path:
    return next(c for c in speaker_clips if c.stem == "lrwp9a")


@pytest.fixture(scope="module")
def s1_reference(s1_clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A still of s1 from a clip no test extracts."""
    path = tmp_path_factory.mktemp("refs") / "s1.png"
    _io.write_image(path, _frames(s1_clips[5], start=1.0, duration=0.04)[0])
    return path


def test_extract_writes_crops_masks_identity_and_alignments(extracted_workspace: Path) -> None:
    workspace = Workspace.open(extracted_workspace)
    for key, sources in (("a", 2), ("b", 1)):
        faces = FaceSet.load(workspace.faces_dir(key))
        data = json.loads((workspace.faces_dir(key) / "alignments.json").read_text())
        assert set(data) == {"version", "face_size", "identity", "sources", "removed", "faces"}
        assert data["version"] == 1 and data["face_size"] == 128 and data["identity"]["origin"] == "footage"
        assert len(data["sources"]) == sources
        for state in data["sources"].values():
            assert state["complete"] and state["frames"] == 30 and state["faces"] == 30  # 3 s at 10 frames/s
            assert state["skipped_no_face"] == state["skipped_other_person"] == 0
        assert len(faces) == 30 * sources == workspace_status(extracted_workspace)["persons"][key]["faces"]
        for face_id in faces.ids()[::10]:
            record = data["faces"][face_id]
            assert face_id == f"{record['source']}_{record['frame']:06d}"
            assert record["time"] == pytest.approx(record["frame"] / 25, abs=1e-3)
            assert np.array(record["landmarks"]).shape == (68, 2) and np.array(record["matrix"]).shape == (2, 3)
            assert record["score"] > 0.7 and record["blur"] > 0 and 0 <= record["identity_distance"] < 0.5
            crop, mask = faces.load_crop(face_id), faces.load_mask(face_id)
            assert crop.shape == (128, 128, 3) and mask.shape == (128, 128) and mask.dtype == np.uint8
            assert 0.25 < (mask > 127).mean() < 0.7
            rigid = np.linalg.norm(faces.crop_landmarks(face_id)[17:48] - canonical_landmarks(128)[17:48], axis=1)
            assert rigid.mean() < 3.0
        centre = np.load(faces.identity_path, allow_pickle=False)
        assert centre.shape == (128,) and centre.dtype == np.float32 and abs(np.linalg.norm(centre) - 1) < 1e-4
        identity = faces.identity()
        assert identity.origin == "footage" and identity.threshold == 0.5 and np.allclose(identity.centre, centre)


def test_aligned_faces_are_stable_from_frame_to_frame(extracted_workspace: Path) -> None:
    faces = FaceSet.load(Workspace.open(extracted_workspace).faces_dir("a"))
    ids = faces.ids()
    moves = [np.linalg.norm(faces.crop_landmarks(b)[17:48] - faces.crop_landmarks(a)[17:48], axis=1).mean()
             for a, b in zip(ids, ids[1:]) if faces.faces[a]["source"] == faces.faces[b]["source"]]
    assert np.mean(moves) < 1.5  # px at 128, frames 0.1 s apart


def test_rerun_does_no_work_and_leaves_files_alone(extracted_workspace: Path, tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    crops = sorted((root / "a" / "faces").glob("*.png"))
    before = {p: p.stat().st_mtime_ns for p in crops}
    alignments = (root / "a" / "faces" / "alignments.json").read_text()
    reports = extract(root, ExtractOptions(fps=10))
    assert all(r.frames == 0 and r.new_faces == 0 for r in reports.values())
    assert {p: p.stat().st_mtime_ns for p in crops} == before
    assert (root / "a" / "faces" / "alignments.json").read_text() == alignments


def test_deleted_and_removed_faces_stay_out(extracted_workspace: Path, tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    faces_dir = root / "a" / "faces"
    ids = FaceSet.load(faces_dir).ids()
    (faces_dir / f"{ids[5]}.png").unlink()  # the user deletes a crop
    dropped = remove_faces(root, "a", "0,2-3")  # and drops three by number
    assert dropped == [ids[0], ids[2], ids[3]]
    report = extract(root, ExtractOptions(person="a", fps=10))["a"]
    assert report.new_faces == 0
    faces = FaceSet.load(faces_dir)
    assert len(faces) == 56 and sorted(faces.removed) == sorted([ids[0], ids[2], ids[3], ids[5]])
    for gone in faces.removed:
        assert not (faces_dir / f"{gone}.png").exists() and not (faces_dir / "masks" / f"{gone}.png").exists()


def test_force_redoes_everything(extracted_workspace: Path, tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    remove_faces(root, "b", "4")
    report = extract(root, ExtractOptions(person="b", fps=10, force=True))["b"]
    assert report.frames == 30 and report.new_faces == 30
    faces = FaceSet.load(root / "b" / "faces")
    assert len(faces) == 30 and faces.removed == []


def test_interrupted_source_resumes_where_it_stopped(s1_clips: list[Path], tmp_path: Path) -> None:
    full = _write_video(tmp_path / "full.mp4", _frames(s1_clips[2]))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])  # the copy stops half-way
    root = _new_workspace(tmp_path)
    add_sources(root, "a", [str(clip)])
    failed = extract(root, ExtractOptions(person="a", fps=10))["a"].failed
    assert list(failed) == [str(clip)] and "video is truncated" in failed[str(clip)]
    state = next(iter(FaceSet.load(root / "a" / "faces").sources.values()))
    assert not state["complete"] and 5 <= state["faces"] == state["frames"] < 30
    first_pass = state["frames"]
    clip.write_bytes(full.read_bytes())  # the complete file arrives
    report = extract(root, ExtractOptions(person="a", fps=10))["a"]
    assert report.frames == 30 - first_pass
    state = next(iter(FaceSet.load(root / "a" / "faces").sources.values()))
    assert state["complete"] and state["frames"] == state["faces"] == 30 == len(FaceSet.load(root / "a" / "faces"))


def test_reference_of_someone_else_keeps_no_faces(s1_clips: list[Path], lrwp9a: Path, tmp_path: Path) -> None:
    reference = tmp_path / "other.png"
    _io.write_image(reference, _frames(lrwp9a, duration=0.04)[0])
    root = _new_workspace(tmp_path)
    add_sources(root, "a", [str(s1_clips[3])], reference=reference)
    with pytest.raises(DeepswapError, match=r"no faces of s1 found .* check the --reference photo"):
        extract(root, ExtractOptions(person="a", fps=5))
    faces = FaceSet.load(root / "a" / "faces")
    state = next(iter(faces.sources.values()))
    assert len(faces) == 0 and state["complete"] and state["skipped_other_person"] == state["frames"] == 15


@pytest.fixture(scope="module")
def mixed_video(s1_clips: list[Path], lrwp9a: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 s of s1 followed by 1 s of another speaker (frames 0–49 s1, 50–74 the other)."""
    images = _frames(s1_clips[4])[:50] + _frames(lrwp9a)[:25]
    return _write_video(tmp_path_factory.mktemp("mixed") / "mixed.mp4", images)


@pytest.mark.parametrize("with_reference", [True, False], ids=["reference", "dominant"])
def test_mixed_footage_keeps_only_the_person(mixed_video: Path, s1_reference: Path, tmp_path: Path,
                                             with_reference: bool) -> None:
    root = _new_workspace(tmp_path)
    add_sources(root, "a", [str(mixed_video)], reference=s1_reference if with_reference else None)
    report = extract(root, ExtractOptions(person="a", fps=10))["a"]
    faces = FaceSet.load(root / "a" / "faces")
    frames = sorted(record["frame"] for record in faces.faces.values())
    assert frames and max(frames) < 50 and len(frames) == 20
    assert report.skipped_other_person == 10 and report.skipped_no_face == 0
    assert faces.data["identity"]["origin"] == ("reference" if with_reference else "footage")


def test_contact_sheet_numbers_faces(extracted_workspace: Path, tmp_path: Path) -> None:
    out = contact_sheet(extracted_workspace, "a", tmp_path / "sheet.png", count=12, thumb=64, columns=4)
    sheet = _io.read_image(out)
    assert sheet.shape == (3 * 64, 4 * 64, 3)
    blurriest = contact_sheet(extracted_workspace, "b", tmp_path / "blur.jpg", count=5, order="blur", thumb=32)
    assert _io.read_image(blurriest).shape == (32, 5 * 32, 3)
    with pytest.raises(DeepswapError, match="face numbers go from 0 to 59"):
        remove_faces(extracted_workspace, "a", "60")


def test_cli_faces_sheet_and_remove(extracted_workspace: Path, tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    runner = CliRunner()
    result = runner.invoke(app, ["faces", str(root), "b", "--remove", "1,3", "--sheet", str(tmp_path / "s.png"), "--count", "4"])
    assert result.exit_code == 0, result.output
    assert "removed 2 face(s)" in result.output and (tmp_path / "s.png").is_file()
    result = runner.invoke(app, ["faces", str(root), "b"])
    assert "b: 28 faces from 1 source(s), 2 removed" in result.output
    result = runner.invoke(app, ["extract", str(root), "--person", "b", "--fps", "10"])
    assert result.exit_code == 0 and "done before (28 faces)" in result.output


# bad input: one clear line, earlier results intact


def test_reference_with_no_face_or_several_faces(extracted_workspace: Path, photos: list[Path], s1_clips: list[Path],
                                                 tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    alignments = (root / "a" / "faces" / "alignments.json").read_text()
    backdrop = tmp_path / "wall.png"
    _io.write_image(backdrop, np.ascontiguousarray(_frames(s1_clips[0], duration=0.04)[0][:90]))
    add_sources(root, "a", [], reference=backdrop)
    with pytest.raises(DeepswapError, match=r"a/reference\.png: no face found in the reference photo; use a clear"):
        extract(root, ExtractOptions(person="a"))
    pair = tmp_path / "pair.png"
    _io.write_image(pair, np.concatenate([_io.read_image(p)[:512, :512] for p in photos], axis=1))
    add_sources(root, "a", [], reference=pair)
    with pytest.raises(DeepswapError, match=r"a/reference\.png: 2 faces in the reference photo; use one that shows only s1"):
        extract(root, ExtractOptions(person="a"))
    assert (root / "a" / "faces" / "alignments.json").read_text() == alignments
    assert len(list((root / "a" / "faces").glob("*.png"))) == 60


def test_video_without_faces(s1_clips: list[Path], tmp_path: Path) -> None:
    wall = _write_video(tmp_path / "wall.mp4", [np.ascontiguousarray(f[:96]) for f in _frames(s1_clips[0], duration=1)])
    root = _new_workspace(tmp_path)
    add_sources(root, "a", [str(wall)])
    with pytest.raises(DeepswapError, match=r"wall\.mp4: no face found in 2 sampled frames; add footage that shows s1's face"):
        extract(root, ExtractOptions(person="a"))


def test_unreadable_photo_is_named_and_skipped(lrwp9a: Path, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    for i, image in enumerate(_frames(lrwp9a, fps=1)):
        _io.write_image(folder / f"{i}.png", image)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    root = _new_workspace(tmp_path)
    add_sources(root, "b", [str(folder)])
    events: list[ProgressEvent] = []
    report = extract(root, ExtractOptions(person="b"), events.append)["b"]
    assert report.faces == 3 and any("broken.jpg: not a readable image; skipped (fix or remove it)" in n for n in report.notes)
    assert any(e.kind == "note" and "broken.jpg: not a readable image" in e.message for e in events)
    frames = [e for e in events if e.stage == "extract" and e.kind in ("task", "progress", "done")]
    assert frames[0].kind == "task" and frames[0].unit == "frames" and frames[-1].kind == "done"
    assert [e.done for e in frames if e.kind == "progress"] == list(range(1, len(frames) - 1))


def test_failed_download_is_named_and_the_rest_extracted(extracted_workspace: Path, tmp_path: Path) -> None:
    root = _copy(extracted_workspace, tmp_path)
    add_sources(root, "b", ["http://127.0.0.1:9/gone.mp4"])
    report = extract(root, ExtractOptions(person="b", fps=10))["b"]
    assert report.faces == 30 and report.frames == 0
    assert report.notes == ["http://127.0.0.1:9/gone.mp4: footage not available (run `deepswap fetch`); skipped"]


def test_workspace_without_sources_is_one_line(tmp_path: Path) -> None:
    root = _new_workspace(tmp_path)
    with pytest.raises(DeepswapError, match="no sources for either person; add footage with `deepswap add`"):
        extract(root)
    result = subprocess.run([sys.executable, "-c", "from deepswap.cli import main; main()", "extract", str(root), "--person", "b"],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {root}: no sources for person b; add footage with `deepswap add`"]
