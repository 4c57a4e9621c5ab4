"""Every call the web UI makes into the deepswap library, in one module.

Quick reads and short writes run in the server (``open_workspace``, ``add_files``, ``faces``…);
the long steps in ``JOBS`` run in a job's child process (see ``jobs``) and return plain data.
Nothing here decides how a step works: the library does; this module only translates what a
page sends into the library's own option objects and its results into what a page shows.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import cv2

import deepswap
from deepswap import _io
from deepswap._io import unused_path
from deepswap.errors import DeepswapError
from deepswap.extract.masks import MAX_MASK_BYTES
from deepswap.filetypes import PHOTO_SUFFIXES, VIDEO_SUFFIXES
from deepswap.options import Declared, Option, OptionError, build, declared
from deepswap.progress import ProgressCallback
from deepswap.workspace import CONFIG_NAME, PERSON_KEYS, PersonKey, Workspace

__all__ = ["MAX_MASK_BYTES", "PERSON_KEYS", "PHOTO_SUFFIXES", "VIDEO_SUFFIXES", "Declared", "Option", "OptionError", "PersonKey", "Workspace",
           "unused_path"]  # besides the calls below

THUMBNAIL_SIZE = 112
FACE_ORDERS = {"time": "source order", "blur": "blurriest first", "distance": "least alike first"}


# Reads and short writes (in the server)

def is_workspace(folder: Path) -> bool:
    return (folder / CONFIG_NAME).is_file()


def is_registered_output(folder: Path, path: Path) -> bool:
    """Whether ``path`` (resolved) is an output the workspace at ``folder`` lists (False when the list is damaged)."""
    try:
        return any(Path(output["path"]).resolve() == path for output in deepswap.Workspace.open(folder).outputs())
    except DeepswapError:
        return False


def keep_upload(data: BinaryIO, target: Path, shown_name: str, media: bool) -> None:
    """Write an uploaded file's ``data`` to ``target`` atomically; with ``media``, only once it
    proved to be the photo or video its suffix says (``check_media``)."""
    with _io.atomic_path(target) as tmp:
        with tmp.open("wb") as out:
            data.seek(0)
            shutil.copyfileobj(data, out, 2 ** 20)
        if media:
            check_media(tmp, shown_name)


def check_media(path: Path, shown_name: str) -> None:
    """Refuse (one line naming ``shown_name``) a file that is not the photo or video its suffix says:
    a photo must decode, a video must have a video stream with a first frame."""
    from deepswap.video.reader import read_frames

    if path.suffix.lower() in PHOTO_SUFFIXES:
        if _io.read_image(path) is None:
            raise DeepswapError(f"{shown_name}: not a readable photo")
        return
    frames = read_frames(path)
    try:
        first = next(frames, None)
    except DeepswapError as error:
        reason = str(error).removeprefix(f"{path}: ")
        raise DeepswapError(f"{shown_name}: not a readable video ({reason})") from None
    finally:
        frames.close()
    if first is None:
        raise DeepswapError(f"{shown_name}: not a readable video (no frames)")


def open_workspace(folder: Path) -> Workspace:
    return deepswap.Workspace.open(folder)


def create_workspace(folder: Path, a: str, b: str, face_size: int | None = None, samples: bool = False) -> Workspace:
    """A new workspace; with ``samples``, holding the demo's footage (names default to the demo's)."""
    from deepswap.demo import sample_footage

    if face_size is not None and not 64 <= face_size <= 1024:
        raise DeepswapError(f"face size must be 64..1024 pixels, not {face_size}")
    footage = sample_footage() if samples else None
    if footage is not None:
        a, b = a or footage.names[0], b or footage.names[1]
    workspace = deepswap.init_workspace(folder, a=a, b=b)
    if face_size is not None:
        workspace.settings["face_size"] = face_size
        workspace.save()
    if footage is not None:
        deepswap.add_sources(workspace, "a", [str(clip) for clip in footage.a])
        deepswap.add_sources(workspace, "b", [str(clip) for clip in footage.b])
        # the clip the demo converts, kept out of training, ready on the Convert page
        _io.write_bytes(folder / "uploads" / "convert" / footage.held_back.name, footage.held_back.read_bytes())
    return workspace


def status(folder: Path) -> dict[str, Any]:
    return deepswap.workspace_status(folder)


def add_urls(folder: Path, person: str, urls: list[str], start: float | None, duration: float | None) -> int:
    return len(deepswap.add_sources(folder, person, urls, start=start, duration=duration))


def add_files(folder: Path, person: str, paths: list[Path], start: float | None, duration: float | None) -> int:
    return len(deepswap.add_sources(folder, person, [str(path) for path in paths], start=start, duration=duration))


def set_reference(folder: Path, person: str, photo: Path) -> None:
    deepswap.add_sources(folder, person, [], reference=photo)


@dataclass(frozen=True)
class FaceTile:
    """One face of the grid: its number (as `deepswap faces` counts), id and what it was sorted by."""

    number: int
    id: str
    source: str
    time: float
    blur: float
    distance: float


def faces(workspace: Workspace, person: PersonKey, order: str = "time") -> list[FaceTile]:
    """A person's extracted faces in ``order`` (time: source order, blur: blurriest first,
    distance: least like the person first); [] before extraction."""
    from deepswap.extract import pick_faces

    faceset = deepswap.FaceSet.load(workspace.faces_dir(person))
    if faceset is None:
        return []
    faceset.forget_deleted()
    ids = faceset.ids()
    names = {source.id: Path(source.uri).name for source in workspace.persons[person].sources}
    tiles = []
    for number in pick_faces(faceset, len(ids), order):  # type: ignore[arg-type]
        record = faceset.faces[ids[number]]
        tiles.append(FaceTile(number, ids[number], names.get(record["source"], record["source"]),
                              float(record.get("time", 0.0)), float(record["blur"]), float(record["identity_distance"])))
    return tiles


def faces_summary(workspace: Workspace, person: PersonKey) -> dict[str, int] | None:
    from deepswap.extract import faces_summary as summary

    if deepswap.FaceSet.load(workspace.faces_dir(person)) is None:
        return None
    return summary(workspace.root, person)


def thumbnail(workspace: Workspace, person: PersonKey, face: str) -> bytes | None:
    """A small JPEG of one face crop, or None when the face is not in the set."""
    faceset = deepswap.FaceSet.load(workspace.faces_dir(person))
    if faceset is None or face not in faceset.faces:
        return None
    crop = cv2.resize(faceset.load_crop(face), (THUMBNAIL_SIZE, THUMBNAIL_SIZE), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 88])
    return encoded.tobytes() if ok else None


def remove_faces(workspace: Workspace, person: PersonKey, face_ids: list[str]) -> int:
    return len(deepswap.remove_faces(workspace.root, person, ",".join(face_ids))) if face_ids else 0


@dataclass(frozen=True)
class MaskFace:
    """One face as the mask editor shows it: its crop and stored mask, size, number and neighbours
    (in source order), whether its mask was corrected by hand, and whether a learned mask exists."""

    id: str
    number: int
    size: int
    crop: Path
    mask: Path
    corrected: bool
    previous: str | None
    next: str | None
    learned: bool


def mask_face(workspace: Workspace, person: PersonKey, face: str) -> MaskFace | None:
    """The mask editor's view of one face, or None when the person has no such face."""
    faceset = deepswap.FaceSet.load(workspace.faces_dir(person))
    if faceset is None or face not in faceset.faces:
        return None
    ids = faceset.ids()
    number = ids.index(face)
    return MaskFace(face, number, faceset.face_size, faceset.crop_path(face), faceset.mask_path(face),
                    face in faceset.corrected, ids[number - 1] if number else None,
                    ids[number + 1] if number + 1 < len(ids) else None, _segmenter_state(workspace) is not None)


def corrected_faces(workspace: Workspace, person: PersonKey) -> set[str]:
    """The faces of ``person`` whose mask was corrected by hand."""
    faceset = deepswap.FaceSet.load(workspace.faces_dir(person))
    return set(faceset.corrected) if faceset is not None else set()


def _segmenter_state(workspace: Workspace) -> dict[str, Any] | None:
    """The checkpoint state when it holds a learned mask, else None."""
    from deepswap.train import read_state

    state = read_state(workspace.model_dir)
    return state if state is not None and state["files"].get("segmenter") else None


def learned_mask(workspace: Workspace, person: PersonKey, face: str) -> bytes | None:
    """What the learned mask says of one face crop, as a grey PNG of the crop's size (white: face;
    black outside the face region it sees), or None without a face or a learned mask."""
    import numpy as np

    from deepswap.faces import face_region
    from deepswap.train import checkpoint
    from deepswap.train.config import COVERAGE
    from deepswap.train.segmenter import Segmenter, face_probabilities

    state = _segmenter_state(workspace)
    faceset = deepswap.FaceSet.load(workspace.faces_dir(person))
    if state is None or faceset is None or face not in faceset.faces:
        return None
    segmenter = Segmenter()
    checkpoint.load_companion(workspace.model_dir, state, "segmenter", segmenter)
    crop = faceset.load_crop(face)
    x, y, side = face_region(crop.shape[0], float(state["training"].get("coverage") or COVERAGE))
    learned = np.zeros(crop.shape[:2], np.uint8)
    learned[y:y + side, x:x + side] = np.round(face_probabilities(segmenter, crop[None, y:y + side, x:x + side])[0] * 255)
    return _io.encode_image(learned, ".png")


def correct_mask(workspace: Workspace, person: PersonKey, face: str, png: bytes) -> int:
    from deepswap.extract import correct_mask as correct

    return correct(workspace.root, person, face, png)


def models() -> dict[str, str]:
    """Model names and one-line summaries, for the train form."""
    return {name: spec.summary for name, spec in deepswap.MODELS.items()}


def saved_model(workspace: Workspace) -> dict[str, Any]:
    """The saved model's name and iteration (name None before training)."""
    return status(workspace.root)["model"]


def loss_history(workspace: Workspace) -> list[tuple[float, float, float]]:
    """(iteration, loss A, loss B) of the saved model's training so far."""
    from deepswap.train.report import read_loss_log

    rows = read_loss_log(workspace.model_dir / "loss.csv", up_to=math.inf)  # type: ignore[arg-type]
    return [(row["iteration"], row["loss_a"], row["loss_b"]) for row in rows]


OPTION_CLASSES = {"add": deepswap.AddOptions, "extract": deepswap.ExtractOptions, "train": deepswap.TrainOptions, "convert": deepswap.ConvertOptions,
                  "evaluate": deepswap.EvaluateOptions}


def form_options(kind: str) -> list[Option]:
    """The options the ``kind`` form (extract, train, convert) offers, as the library declares them."""
    return [found for found in declared(OPTION_CLASSES[kind]) if found.declared.form]


def build_options(kind: str, values: dict[str, Any]) -> Any:
    """The library's option object for the ``kind`` form (it checks the values itself); options
    not in ``values`` take the library's defaults."""
    return build(OPTION_CLASSES[kind], values)


def default_output(folder: Path, input_path: Path, *, gif: bool, preview: bool, stem: str) -> Path:
    """Where the Convert page writes a conversion of ``input_path`` (convert's own naming rule)."""
    from deepswap.convert.outputs import default_output

    return default_output(folder, input_path, gif=gif, preview=preview, stem=stem)


def convertible_videos(workspace: Workspace) -> dict[PersonKey, list[Path]]:
    """Each person's footage that exists on disk as a video file (what convert can take from the workspace)."""
    found: dict[PersonKey, list[Path]] = {}
    for key in PERSON_KEYS:
        found[key] = [workspace.local_path(key, source) for source in workspace.persons[key].sources
                      if source.kind != "photos" and workspace.is_available(key, source)]
    return found


def verify(path: Path) -> dict[str, Any]:
    """What ``deepswap verify`` says about one file: its verdict, exit code and the lines of evidence
    (watermark, label, Content Credentials, mismatches, problems)."""
    report = deepswap.verify_file(path)
    return {"synthetic": report.synthetic, "verdict": report.verdict, "exit_code": report.exit_code,
            "evidence": [line.strip() for line in report.summary().splitlines()[1:]]}


def evaluation_rows(report: dict[str, Any]) -> list[Any]:
    """The rows `deepswap evaluate` prints (metric, value, target, met)."""
    from deepswap.evaluate import report_rows

    return report_rows(report)


@dataclass(frozen=True)
class CoverageGroup:
    """One kind of A's faces that B's faces do not cover: the line to show, the advice, and a few
    examples as (A's face crop, the nearest B face's crop)."""

    line: str
    advice: str
    examples: list[tuple[Path, Path]]


def coverage_groups(folder: Path) -> list[CoverageGroup]:
    """The coverage check of a workspace's extracted faces (``deepswap.check_coverage``; landmarks
    only, quick), as groups with example crops; none before both people's faces are extracted."""
    from deepswap.coverage import EXAMPLES

    try:
        coverage = deepswap.check_coverage(folder)
    except DeepswapError:
        return []
    faces = {key: folder / key / "faces" for key in PERSON_KEYS}
    return [CoverageGroup(group.line(coverage.faces_a), group.advice(coverage.name_b),
                          [(faces["a"] / f"{a}.png", faces["b"] / f"{b}.png")
                           for a, b in zip(group.faces[:EXAMPLES], group.nearest[:EXAMPLES])])
            for group in coverage.groups]


# Long steps (in a job's child process): each takes on_progress and returns plain data

def run_fetch(workspace: Path, on_progress: ProgressCallback) -> dict[str, Any]:
    results = deepswap.fetch_sources(workspace, on_progress=on_progress)
    return {"downloaded": sum(result.downloaded for result in results), "sources": len(results)}


def run_extract(workspace: Path, options: Any, on_progress: ProgressCallback) -> dict[str, Any]:
    from deepswap.extract import check_failed

    reports = deepswap.extract(workspace, options, on_progress=on_progress)
    check_failed(reports)  # the job fails with the line the CLI prints; what was extracted is kept
    return {key: {"faces": report.faces, "new_faces": report.new_faces, "frames": report.frames}
            for key, report in reports.items()}


def run_train(workspace: Path, options: Any, on_progress: ProgressCallback) -> dict[str, Any]:
    result = deepswap.train(workspace, options, on_progress=on_progress)
    return {"model": result.model, "iteration": result.iteration, "stopped_by": result.stopped_by,
            "stopped": result.stopped_by == "signal", "loss_a": result.loss_a, "loss_b": result.loss_b}


def run_train_mask(workspace: Path, options: Any, on_progress: ProgressCallback) -> dict[str, Any]:
    result = deepswap.train_mask(workspace, options, on_progress=on_progress)
    return {"start_step": result.start_step, "step": result.step, "loss": result.loss, "stopped_by": result.stopped_by,
            "stopped": result.stopped_by == "signal", "corrected": result.corrected}


def run_convert(workspace: Path, input_path: Path, output: Path, options: Any,
                on_progress: ProgressCallback) -> dict[str, Any]:
    report = deepswap.convert(workspace, input_path, output, options, on_progress=on_progress)
    return {"output": str(report.output), "files": [str(path) for path in report.files], "frames": report.frames,
            "swapped": report.swapped, "preview": options.preview is not None, "fps": report.fps}


def run_convert_batch(workspace: Path, inputs: list[Path], folder: Path, options: Any,
                      on_progress: ProgressCallback) -> dict[str, Any]:
    report = deepswap.convert_batch(workspace, inputs, folder, options, on_progress=on_progress)
    kept = [item for item in report.items if item.state != "failed"]
    return {"output": str(folder), "files": [str(item.output) for item in kept], "frames": report.frames,
            "swapped": sum(item.swapped for item in kept), "preview": False, "fps": report.fps,
            "summary": report.summary(), "failed": [item.reason for item in report.failed]}


def run_evaluate(workspace: Path, options: Any, on_progress: ProgressCallback) -> dict[str, Any]:
    return deepswap.evaluate(workspace, options, on_progress=on_progress)


JOBS = {"fetch": run_fetch, "extract": run_extract, "train": run_train, "train_mask": run_train_mask, "convert": run_convert,
        "convert_batch": run_convert_batch, "evaluate": run_evaluate}
