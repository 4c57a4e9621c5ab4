"""Evaluate: a trained workspace's swap quality in numbers, on footage it did not train on.

    deepswap.evaluate("ws", clips="more_of_alice/")   # or: deepswap evaluate ws --clips more_of_alice/ [--json]

The A→B swap runs through convert's own per-frame pipeline (``Converter.replacer``) on videos of A; the
face is then found again in each output frame (near the input face's box) and measured the same way
as the input face. Every metric is a pure function over arrays, usable on its own:

- identity transfer (``identity_transfer``): share of swapped faces whose SFace embedding is closer
  (cosine) to B's identity centre than to A's, and the mean cosine similarity to B;
- reconstruction (``masked_ssim``, ``masked_psnr``): A→A and B→B on faces held out of training
  (``FaceSet.holdout_ids``), over the stored face masks;
- temporal stability (``landmark_jitter``): landmark shake of the output face against the input's;
- expression and pose (``landmark_distance``, ``mouth_open``, ``correlation``): how far the output
  face's landmarks are from the input's after a similarity alignment, and whether the mouth opens
  and closes with the input's, over the frames where the input face lies wholly inside the picture
  (``inside_picture``: of a face cut by the frame's edge, the landmarks beyond it are guesses, and
  with the chin out of the picture the mouth-open ratio has no measure);
- sharpness (``faces.inner_face_box``, ``sharpness``): variance of the Laplacian inside the inner face
  box of the output frame over that of the input frame, per frame, averaged (1: as crisp as the footage);
- watermark visibility (``watermark_visibility``): the std the watermark adds on the flat picture of
  the swapped frames (goal ≤ 0.3 grey levels).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from .convert import Converter, ReplaceSettings, swap_frames
from .errors import DeepswapError
from .faces import FIT_POINTS, FaceAnalyzer, FaceSet, inner_face_box, load_faceset, transform_points, umeyama
from .filetypes import VIDEO_SUFFIXES
from .progress import ProgressCallback, Reporter
from .provenance.watermark import Watermarker, flat_area_visibility
from .train import Swapper
from .video import Frame, read_frames
from .workspace import PERSON_KEYS, PersonKey, Workspace, WorkspaceLike, as_workspace

HELD_OUT_FOOTAGE = "held-out clips"
TRAINING_FOOTAGE = "training footage (optimistic)"
MIXED_FOOTAGE = "clips include training footage (optimistic)"
PSNR_CAP = 100.0  # dB: what identical faces score
MAX_RECONSTRUCTED = 256  # held-out faces scored per person, spread over the set
MIN_RUN = 25  # consecutive frames taken from a clip at least (the jitter needs runs)
EYE_CORNERS = (36, 45)
INNER_LIPS = ((61, 67), (62, 66), (63, 65))
NOSE_BRIDGE, CHIN = 27, 8
VISIBILITY_ID = "00000000"  # any output id: how visible the mark is does not depend on it
TARGETS = {  # metric path → (comparison, value, as printed): the goals of issues 7 and 14
    "identity.transfer": (">=", 0.90, "≥ 90 %"),
    "identity.similarity_b": (">=", 0.55, "≥ 0.55"),
    "identity.similarity_a": ("<=", 0.30, "≤ 0.30"),
    "reconstruction.b.ssim": (">=", 0.75, "≥ 0.75"),
    "stability.jitter_ratio": ("<=", 1.0, "≤ 1"),
    "expression.mouth_open_correlation": (">=", 0.75, "≥ 0.75"),
    "sharpness.ratio": (">=", 0.6, "≥ 0.6"),
    "watermark.flat_area_std": ("<=", 0.3, "≤ 0.3"),
}
EDGE_MARGIN = 0.2  # eye-corner distances: how far inside the picture a face's landmarks must lie to count as whole


# The metrics: pure functions over arrays.

def identity_transfer(embeddings: np.ndarray, centre_a: np.ndarray, centre_b: np.ndarray) -> dict[str, float]:
    """Identity of swapped faces from their unit embeddings (N×D; a NaN row is a face not found in
    the output, which counts as not transferred): ``transfer``, the share closer (cosine) to B's
    centre than to A's, and the mean cosine similarity to each centre over the faces found."""
    embeddings = np.asarray(embeddings, np.float64).reshape(-1, len(centre_b))
    found = embeddings[np.isfinite(embeddings).all(axis=1)]
    similarity_a, similarity_b = found @ np.asarray(centre_a, np.float64), found @ np.asarray(centre_b, np.float64)
    return {"transfer": float((similarity_b > similarity_a).sum() / len(embeddings)) if len(embeddings) else math.nan,
            "similarity_b": _mean(similarity_b), "similarity_a": _mean(similarity_a)}


def _weights(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    return mask.astype(np.float64) / 255 if mask.dtype == np.uint8 else mask.astype(np.float64)


def masked_ssim(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """SSIM of two H×W×3 uint8 images (Gaussian window 11, σ 1.5, the training loss's), averaged
    over the pixels of ``mask`` (H×W, uint8 0..255 or float 0..1, used as weights)."""
    from .train.loss import ssim_map

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.asarray(array, np.float32) / 255).permute(2, 0, 1)[None]

    values = ssim_map(tensor(image), tensor(reference))[0].mean(dim=0).double().numpy()
    weights = _weights(mask)
    return float((values * weights).sum() / weights.sum()) if weights.sum() > 0 else math.nan


def masked_psnr(image: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """PSNR in dB of two H×W×3 uint8 images over the pixels of ``mask``; identical faces score PSNR_CAP."""
    weights = _weights(mask)
    if weights.sum() <= 0:
        return math.nan
    error = ((np.asarray(image, np.float64) - np.asarray(reference, np.float64)) ** 2).mean(axis=2)
    mse = float((error * weights).sum() / weights.sum())
    return min(PSNR_CAP, 10 * math.log10(255 ** 2 / mse)) if mse > 0 else PSNR_CAP


def eye_distance(landmarks: np.ndarray) -> np.ndarray:
    """Distance between the outer eye corners of 68-point landmarks (…×68×2): the unit of face size here."""
    landmarks = np.asarray(landmarks, np.float64)
    return np.linalg.norm(landmarks[..., EYE_CORNERS[1], :] - landmarks[..., EYE_CORNERS[0], :], axis=-1)


def landmark_jitter(landmarks: np.ndarray) -> float:
    """How much a face's landmarks shake from frame to frame, in eye-corner distances.

    ``landmarks`` is T×68×2 (frame pixels, a NaN row where there was no face). The shake at frame t
    is the mean size of the second difference p[t+1] − 2·p[t] + p[t−1] over the 68 points, so a head
    moving at a steady speed does not count; it is averaged over every run of three frames with a face.
    A still face scores 0.
    """
    points = np.asarray(landmarks, np.float64)
    if len(points) < 3:
        return math.nan
    acceleration = points[2:] - 2 * points[1:-1] + points[:-2]
    shake = np.linalg.norm(acceleration, axis=-1).mean(axis=-1) / eye_distance(points[1:-1])
    return _mean(shake)


def landmark_distance(landmarks: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance between the landmarks of two faces (T×68×2 each, NaN rows skipped) after a
    similarity transform of the rigid points (brows, nose, eyes) of each face onto the reference's,
    in eye-corner distances of the reference: what the expression and head pose changed."""
    landmarks, reference = np.asarray(landmarks, np.float64), np.asarray(reference, np.float64)
    distances = []
    for face, target in zip(landmarks, reference):
        if np.isfinite(face).all() and np.isfinite(target).all():
            aligned = transform_points(face, umeyama(face[FIT_POINTS], target[FIT_POINTS]))
            distances.append(np.linalg.norm(aligned - target, axis=1).mean() / eye_distance(target))
    return _mean(np.array(distances))


def mouth_open(landmarks: np.ndarray) -> np.ndarray:
    """Mouth-open ratio of 68-point landmarks (…×68×2): the inner-lip gap over the face height
    (nose bridge to chin); 0 when closed, about 0.15 wide open."""
    landmarks = np.asarray(landmarks, np.float64)
    gap = np.mean([np.linalg.norm(landmarks[..., top, :] - landmarks[..., bottom, :], axis=-1)
                   for top, bottom in INNER_LIPS], axis=0)
    return gap / np.linalg.norm(landmarks[..., NOSE_BRIDGE, :] - landmarks[..., CHIN, :], axis=-1)


def inside_picture(landmarks: np.ndarray, size: tuple[int, int], margin: float = EDGE_MARGIN) -> np.ndarray:
    """Per face (…×68×2 landmarks, frame pixels), whether all 68 points lie inside a picture of
    ``size`` (width, height), at least ``margin`` eye-corner distances from its edge; False for a NaN
    face. (Of a face cut by the edge, the landmark model still puts the points beyond it just inside.)"""
    points = np.asarray(landmarks, np.float64)
    margin = (margin * eye_distance(points))[..., None, None]
    with np.errstate(invalid="ignore"):
        inside = (points >= margin) & (points < np.asarray(size, np.float64) - margin)
    return inside.all(axis=(-2, -1))


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two series over the entries finite in both; NaN with fewer than three
    such entries or when either series is constant there."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    both = np.isfinite(x) & np.isfinite(y)
    if both.sum() < 3:
        return math.nan
    x, y = x[both] - x[both].mean(), y[both] - y[both].mean()
    scale = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / scale) if scale > 0 else math.nan


def sharpness(image: np.ndarray, box: np.ndarray) -> float:
    """Variance of the Laplacian (3×3) of the grey ``image`` inside ``box`` ([x0, y0, x1, y1], clipped
    to the image): high for crisp eyes, lips and skin texture, low for a blur; NaN for an empty box."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = np.clip(np.asarray(box), 0, [width, height, width, height])
    if x1 - x0 < 3 or y1 - y0 < 3:
        return math.nan
    patch = image[y0:y1, x0:x1]
    grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    return float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F)[1:-1, 1:-1].var())


def watermark_visibility(output: np.ndarray) -> float:
    """How much the watermark convert adds to an output frame (RGB) shows on its flat picture: the
    std in grey levels of the luma change over its flat blocks (``flat_area_visibility``); NaN when
    the frame has none."""
    visibility = flat_area_visibility(output, Watermarker(VISIBILITY_ID).embed(output.copy()))
    return math.nan if visibility is None else visibility


def _mean(values: np.ndarray) -> float:
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else math.nan


# Measuring faces in frames.

EMBEDDING_SIZE = 128  # SFace


@dataclass
class FaceMeasures:
    """Per frame, the face's 68 landmarks (T×68×2, frame pixels) and unit identity embedding (T×128);
    NaN rows where no face was measured."""

    landmarks: np.ndarray
    embeddings: np.ndarray


def _no_face() -> tuple[np.ndarray, np.ndarray]:
    return np.full((68, 2), np.nan), np.full(EMBEDDING_SIZE, np.nan)


def measure_face(analyzer: FaceAnalyzer, image: np.ndarray, near: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks (68×2) and unit embedding of the face in ``image`` nearest the box ``near``
    ([x, y, w, h]; the face's centre must lie within half the box's width of the box's centre), or
    NaN arrays when there is none. Input and swapped frames are measured alike with it."""
    near = np.asarray(near, np.float64)
    centre = near[:2] + near[2:] / 2
    detections = analyzer.detect(image)
    offsets = [float(np.linalg.norm(d.box[:2] + d.box[2:] / 2 - centre)) for d in detections]
    if not offsets or min(offsets) > near[2] / 2:
        return _no_face()
    detection = detections[int(np.argmin(offsets))]
    return analyzer.describe(image, detection).landmarks, analyzer.embed(image, detection)


def measure_faces(analyzer: FaceAnalyzer, images: list[np.ndarray], boxes: list[np.ndarray | None]) -> FaceMeasures:
    """``measure_face`` over a sequence of images; a None box gives a NaN row (no face to look for)."""
    return _stacked([measure_face(analyzer, image, box) if box is not None else _no_face() for image, box in zip(images, boxes)])


def _stacked(rows: list[tuple[np.ndarray, np.ndarray]]) -> FaceMeasures:
    return FaceMeasures(np.stack([landmarks for landmarks, _ in rows]), np.stack([embedding for _, embedding in rows]))


def _concatenated(measures: list[FaceMeasures]) -> FaceMeasures:
    return FaceMeasures(np.concatenate([m.landmarks for m in measures]), np.concatenate([m.embeddings for m in measures]))


# What evaluate runs.

def reconstruction_scores(swapper: Swapper, faceset: FaceSet, key: PersonKey, limit: int = MAX_RECONSTRUCTED) -> dict[str, Any]:
    """A→A or B→B on a person's held-out faces (or, for a person with too few faces to hold any out,
    on training faces, flagged optimistic): mean masked SSIM and PSNR of the ``Swapper``'s output
    at the workspace's face size against the aligned crop, over the stored face mask."""
    held_out = faceset.holdout_ids()
    candidates = held_out or faceset.ids()
    faces = [candidates[i] for i in np.linspace(0, len(candidates) - 1, min(limit, len(candidates))).round().astype(int)]
    crops = np.stack([faceset.load_crop(face) for face in faces])
    generated, _ = swapper.swap(crops, to=key)
    masks = [faceset.load_mask(face) for face in faces]
    return {"faces": len(faces), "split": "held-out faces" if held_out else "training faces (optimistic)",
            "ssim": _mean(np.array([masked_ssim(out, crop, mask) for out, crop, mask in zip(generated, crops, masks)])),
            "psnr": _mean(np.array([masked_psnr(out, crop, mask) for out, crop, mask in zip(generated, crops, masks)]))}


@dataclass(frozen=True)
class Clip:
    """A video of A to evaluate on, read from ``start`` seconds (a source's own start)."""

    path: Path
    start: float | None = None


def find_footage(workspace: Workspace, clips: str | Path | None) -> tuple[list[Clip], str]:
    """The videos of A to swap and what they are: ``clips`` (a video or a folder of them), else A's
    own source videos (seen in training, so the scores are optimistic)."""
    sources = [source for source in workspace.persons["a"].sources if source.kind in ("video", "url")]
    trained = {workspace.local_path("a", source).resolve() for source in sources}
    if clips is None:
        footage = [Clip(workspace.local_path("a", s), s.start) for s in sources if workspace.is_available("a", s)]
        if not footage:
            raise DeepswapError(f"{workspace.root}: person A has no video footage to evaluate on; give --clips with videos of A")
        return footage, TRAINING_FOOTAGE
    path = Path(clips)
    if not path.exists():
        raise DeepswapError(f"{path}: no such file or folder")
    candidates = sorted(path.iterdir()) if path.is_dir() else [path]
    videos = [video for video in candidates if video.is_file() and video.suffix.lower() in VIDEO_SUFFIXES]
    if not videos:
        raise DeepswapError(f"{path}: no videos ({' '.join(sorted(VIDEO_SUFFIXES))}) to evaluate on")
    seen = any(video.resolve() in trained for video in videos)
    return [Clip(video) for video in videos], MIXED_FOOTAGE if seen else HELD_OUT_FOOTAGE


@dataclass
class ClipMeasures:
    """One clip's frames: where A was found and swapped, and the input and output faces measured."""

    swapped: np.ndarray
    input: FaceMeasures
    output: FaceMeasures
    sharpness: np.ndarray  # T×2: input and output frame inside the input face's inner box (NaN: no face)
    whole: np.ndarray  # T: the input face lies wholly inside the picture
    watermark_visibility: np.ndarray


def swap_and_measure(converter: Converter, clips: list[Clip], max_frames: int, reporter: Reporter,
                     settings: ReplaceSettings = ReplaceSettings()) -> list[ClipMeasures]:
    """Swap A→B through up to ``max_frames`` frames of the clips with convert's per-frame pipeline
    (fitting faces in with ``settings``), in runs of consecutive frames (at least MIN_RUN per clip),
    and measure the input and the output face of every frame where A was found."""
    analyzer = converter.analyzer
    replacer = converter.replacer("a2b", settings)
    per_clip = max(MIN_RUN, math.ceil(max_frames / len(clips)))
    reporter.task("evaluate A→B", total=max_frames, unit="frames")
    measured: list[ClipMeasures] = []
    frames_left = max_frames
    for clip in clips:
        if frames_left <= 0:
            break
        found: list[bool] = []
        input_faces: list[tuple[np.ndarray, np.ndarray]] = []
        output_faces: list[tuple[np.ndarray, np.ndarray]] = []
        sharpness_pairs: list[tuple[float, float]] = []
        visibility: list[float] = []
        whole: list[bool] = []

        def on_frame(frame: Frame, swapped: np.ndarray, where: Any) -> None:
            found.append(where is not None)
            visibility.append(watermark_visibility(swapped) if where else math.nan)
            input_faces.append(measure_face(analyzer, frame.image, where.face.box) if where else _no_face())
            output_faces.append(measure_face(analyzer, swapped, where.face.box) if where else _no_face())
            landmarks = input_faces[-1][0]
            whole.append(bool(inside_picture(landmarks, (frame.image.shape[1], frame.image.shape[0]))))
            box = inner_face_box(landmarks) if np.isfinite(landmarks).all() else None
            sharpness_pairs.append((sharpness(frame.image, box), sharpness(swapped, box)) if box is not None
                                   else (math.nan, math.nan))
            reporter.advance()

        replacer.reset()
        frames = islice(read_frames(clip.path, start=clip.start), min(per_clip, frames_left))
        swap_frames(frames, replacer, converter.swapper.batch_size, on_frame)
        frames_left -= len(found)
        if found:
            measured.append(ClipMeasures(np.array(found), _stacked(input_faces), _stacked(output_faces),
                                         np.array(sharpness_pairs, np.float64), np.array(whole), np.array(visibility)))
    reporter.update(max_frames - frames_left, total=max_frames - frames_left)
    reporter.finish()
    return measured


def _max(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(values.max()) if len(values) else math.nan


def _joined(sequences: list[np.ndarray]) -> np.ndarray:
    """Landmark sequences one after another with a NaN row between them (no jitter across clips)."""
    gap = np.full((1, 68, 2), np.nan)
    return np.concatenate([part for sequence in sequences for part in (sequence, gap)])


def evaluate(workspace: WorkspaceLike, clips: str | Path | None = None, max_frames: int = 150,
             on_progress: ProgressCallback | None = None, replace: ReplaceSettings = ReplaceSettings()) -> dict[str, Any]:
    """Score a trained workspace's swap (see the module docstring) on up to ``max_frames`` frames of
    ``clips`` (videos of A not used for training; default: A's own footage, marked optimistic),
    fitting the faces in as convert does with ``replace``.
    Progress: one ``task`` counted in frames.

    Returns a JSON-ready dict: ``identity``, ``reconstruction`` (per person), ``stability``,
    ``expression``, ``sharpness``, ``watermark`` (``flat_area_std``: the largest std the watermark adds
    on the flat picture of a swapped frame), ``targets`` (the goals and whether they are met), and what was evaluated.
    Values that cannot be computed (say, no face found again in any output) are None.
    """
    started = time.perf_counter()
    workspace = as_workspace(workspace)
    if max_frames < 3:
        raise DeepswapError(f"--max-frames must be ≥ 3, not {max_frames}")
    facesets = {key: load_faceset(workspace.faces_dir(key)) for key in PERSON_KEYS}
    for key, faceset in facesets.items():
        if not len(faceset):
            raise DeepswapError(f"{faceset.folder}: no faces of person {key}; run `deepswap extract {workspace.root}` first")
    centres = {key: faceset.identity().centre for key, faceset in facesets.items()}
    footage, footage_kind = find_footage(workspace, clips)
    converter = Converter(workspace)
    swapper = converter.swapper
    reconstruction = {key: reconstruction_scores(swapper, facesets[key], key) for key in PERSON_KEYS}
    measured = swap_and_measure(converter, footage, max_frames, Reporter("evaluate", on_progress), replace)
    swapped = np.concatenate([clip.swapped for clip in measured]) if measured else np.zeros(0, bool)
    frames = len(swapped)
    if not swapped.any():
        where = clips if clips is not None else f"{workspace.root} (A's footage)"
        raise DeepswapError(f"{where}: no face of person A ({workspace.persons['a'].name}) found in {frames} frames; "
                            "are these videos of A?")
    inputs, outputs = _concatenated([c.input for c in measured]), _concatenated([c.output for c in measured])
    identity = identity_transfer(outputs.embeddings[swapped], centres["a"], centres["b"])
    identity["input_transfer"] = identity_transfer(inputs.embeddings[swapped], centres["a"], centres["b"])["transfer"]
    input_jitter = landmark_jitter(_joined([clip.input.landmarks for clip in measured]))
    output_jitter = landmark_jitter(_joined([clip.output.landmarks for clip in measured]))
    input_sharpness, output_sharpness = np.concatenate([clip.sharpness for clip in measured])[swapped].T
    whole = np.concatenate([clip.whole for clip in measured])
    report = {
        "workspace": str(workspace.root),
        "model": {"name": swapper.name, "iteration": swapper.iteration, "resolution": swapper.resolution},
        "detail": replace.detail,
        "footage": footage_kind,
        "clips": [str(clip.path) for clip in footage[:len(measured)]],
        "frames": frames,
        "faces_swapped": int(swapped.sum()),
        "faces_found_in_output": int(np.isfinite(outputs.embeddings[swapped]).all(axis=1).sum()),
        "identity": identity,
        "reconstruction": reconstruction,
        "stability": {"input_jitter": input_jitter, "output_jitter": output_jitter,
                      "jitter_ratio": output_jitter / input_jitter if input_jitter > 0 else math.nan},
        "expression": {"landmark_distance": landmark_distance(outputs.landmarks[whole], inputs.landmarks[whole]),
                       "mouth_open_correlation": correlation(mouth_open(inputs.landmarks[whole]),
                                                             mouth_open(outputs.landmarks[whole])),
                       "faces_cut_by_edge": int((swapped & ~whole & np.isfinite(inputs.landmarks).all(axis=(1, 2))).sum())},
        "sharpness": {"input": _mean(input_sharpness), "output": _mean(output_sharpness),
                      "ratio": _mean(output_sharpness / np.where(input_sharpness > 0, input_sharpness, np.nan))},
        "watermark": {"flat_area_std": _max(np.concatenate([clip.watermark_visibility for clip in measured]))},
        "seconds": time.perf_counter() - started,
    }
    report["targets"] = {name: {"goal": f"{comparison} {goal:g}", "met": _meets(_lookup(report, name), comparison, goal)}
                         for name, (comparison, goal, _) in TARGETS.items()}
    return _json_ready(report)


@dataclass(frozen=True)
class ReportRow:
    """One line of an ``evaluate`` report as the CLI and the web UI show it; ``met`` is whether the
    value reaches its target (None where there is no target or no value)."""

    metric: str
    value: str
    target: str
    met: bool | None = None


def report_rows(report: dict[str, Any]) -> list[ReportRow]:
    """The report's figures, in order, as text: metric, value, target."""
    identity, stability, expression = report["identity"], report["stability"], report["expression"]

    def row(metric: str, value: str, fallback: str, target: str | None = None) -> ReportRow:
        checked = report["targets"].get(target) if target else None
        if checked is None:
            return ReportRow(metric, value, fallback)
        return ReportRow(metric, value, TARGETS[target][2], checked["met"])  # type: ignore[index]

    rows = [
        row("identity transfer A→B", _percent(identity["transfer"]), "", "identity.transfer"),
        row("  cosine similarity to B", _number(identity["similarity_b"], ".2f"), "higher", "identity.similarity_b"),
        row("  cosine similarity to A", _number(identity["similarity_a"], ".2f"), "lower", "identity.similarity_a"),
        row("  untouched input (control)", _percent(identity["input_transfer"]), "≈ 0 %"),
        row("  faces found in the output", f"{report['faces_found_in_output']}/{report['faces_swapped']}", "all"),
    ]
    for key, scores in report["reconstruction"].items():
        pair = f"{key.upper()}→{key.upper()}"
        rows.append(row(f"{pair} SSIM, {scores['faces']} {scores['split']}", _number(scores["ssim"]), "higher",
                        f"reconstruction.{key}.ssim"))
        rows.append(row(f"{pair} PSNR", _number(scores["psnr"], ".1f", " dB"), "higher"))
    rows += [
        row("jitter output / input", f"{_number(stability['jitter_ratio'], '.2f')} ({_number(stability['output_jitter'], '.4f')} / "
            f"{_number(stability['input_jitter'], '.4f')})", "", "stability.jitter_ratio"),
        row("landmark distance (eye widths)", _number(expression["landmark_distance"]), "lower"),
        row("mouth-open correlation", _number(expression["mouth_open_correlation"], ".2f") + _cut_faces(expression),
            "near 1", "expression.mouth_open_correlation"),
        row("sharpness output / input (inner face)", f"{_number(report['sharpness']['ratio'], '.2f')} "
            f"({_number(report['sharpness']['output'], '.0f')} / {_number(report['sharpness']['input'], '.0f')})", "",
            "sharpness.ratio"),
        row("watermark on flat picture (std added)", _number(report["watermark"]["flat_area_std"], ".2f", " grey levels"),
            "lower", "watermark.flat_area_std"),
    ]
    return rows


def _cut_faces(expression: dict[str, Any]) -> str:
    cut = expression["faces_cut_by_edge"]
    return f" ({cut} faces cut by the frame's edge left out)" if cut else ""


def _number(value: float | None, form: str = ".3f", unit: str = "") -> str:
    return "n/a" if value is None else f"{value:{form}}{unit}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f} %"


def _lookup(report: dict[str, Any], name: str) -> Any:
    for part in name.split("."):
        report = report[part]
    return report


def _meets(value: float, comparison: str, goal: float) -> bool | None:
    if value is None or not math.isfinite(value):
        return None
    return value >= goal if comparison == ">=" else value <= goal


def _json_ready(value: Any) -> Any:
    """The report with NaN/inf as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
