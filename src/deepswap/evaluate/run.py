"""The ``evaluate`` run: swap A→B through clips with convert's pipeline, measure the input and output
faces of every frame, score A→A and B→B on held-out faces, and gather it all in an ``Evaluation``."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..convert import Converter, ReplaceSettings, swap_frames
from ..coverage import check_coverage
from ..errors import DeepswapError
from ..faces import FaceAnalyzer, FaceSet, inner_face_box, load_faceset
from ..filetypes import VIDEO_SUFFIXES
from ..progress import ProgressCallback, Reporter
from ..train import Swapper
from ..video import Frame, probe_video, read_frames
from ..workspace import PERSON_KEYS, PersonKey, Workspace, WorkspaceLike, as_workspace
from .options import EvaluateOptions
from .metrics import (EYES, LIPS, blinks_followed, correlation, eye_openness, finite_max, finite_mean, forehead_hair_added,
                      hair_added, hidden_behind, identity_transfer, inside_picture, landmark_distance, landmark_jitter,
                      masked_psnr, masked_ssim, mouth_open, occluder_kept, sharpness, watermark_visibility,
                      widest_mouth_ratio)
from .result import (Evaluation, ExpressionScores, HairScores, IdentityScores, ModelInfo, OccluderScores,
                     ReconstructionScores, SharpnessScores, StabilityScores, WatermarkScores)

HELD_OUT_FOOTAGE = "held-out clips"
TRAINING_FOOTAGE = "training footage (optimistic)"
MIXED_FOOTAGE = "clips include training footage (optimistic)"
MAX_RECONSTRUCTED = 256  # held-out faces scored per person, spread over the set
MIN_RUN = 25  # consecutive frames taken from a clip at least (the jitter needs runs)


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


def reconstruction_scores(swapper: Swapper, faceset: FaceSet, key: PersonKey,
                          limit: int = MAX_RECONSTRUCTED) -> ReconstructionScores:
    """A→A or B→B on a person's held-out faces (or, for a person with too few faces to hold any out,
    on training faces, flagged optimistic): mean masked SSIM and PSNR of the ``Swapper``'s output
    at the workspace's face size against the aligned crop, over the stored face mask."""
    held_out = faceset.holdout_ids()
    candidates = held_out or faceset.ids()
    faces = [candidates[i] for i in np.linspace(0, len(candidates) - 1, min(limit, len(candidates))).round().astype(int)]
    crops = np.stack([faceset.load_crop(face) for face in faces])
    generated, _ = swapper.swap(crops, to=key)
    masks = [faceset.load_mask(face) for face in faces]
    return ReconstructionScores(
        faces=len(faces), split="held-out faces" if held_out else "training faces (optimistic)",
        ssim=finite_mean(np.array([masked_ssim(out, crop, mask) for out, crop, mask in zip(generated, crops, masks)])),
        psnr=finite_mean(np.array([masked_psnr(out, crop, mask) for out, crop, mask in zip(generated, crops, masks)])))


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


OCCLUDER_SIDECAR = ".occluder.npz"  # next to a clip: ``masks``, T×H×W bool, what is in front of the face per frame


@dataclass
class ClipMeasures:
    """One clip's frames: where A was found and swapped, and the input and output faces measured."""

    swapped: np.ndarray
    input: FaceMeasures
    output: FaceMeasures
    sharpness: np.ndarray  # T×2: input and output frame inside the input face's inner box (NaN: no face)
    whole: np.ndarray  # T: the input face lies wholly inside the picture
    watermark_visibility: np.ndarray
    occluder_kept: np.ndarray  # T: share of the occluder's pixels kept (NaN: no occluder in the frame)
    hair_added: np.ndarray  # T: share of the input face's jaw band the output made dark (NaN: no face)
    forehead_hair_added: np.ndarray  # T: the same over its forehead band
    mouth_hidden: np.ndarray  # T: an occluder covers the input face's lips (``hidden_behind``)
    eyes_hidden: np.ndarray  # T: an occluder covers either of its eyes
    cuts: np.ndarray  # T: the swap found a cut here (``Located.cut``; a frame without A breaks a run anyway)


def occluder_masks(clip: Path) -> np.ndarray | None:
    """The clip's occluder masks (T×H×W bool, frames of the clip's size) from its sidecar
    ``<clip>.occluder.npz``, if it has one."""
    sidecar = clip.with_name(clip.stem + OCCLUDER_SIDECAR)
    if not sidecar.is_file():
        return None
    try:
        with np.load(sidecar, allow_pickle=False) as stored:
            masks = np.asarray(stored["masks"], bool)
    except (OSError, ValueError, KeyError) as error:
        raise DeepswapError(f"{sidecar}: unreadable occluder masks ({error})") from None
    info = probe_video(clip)
    if masks.ndim != 3 or masks.shape[1:] != (info.height, info.width):
        raise DeepswapError(f"{sidecar}: occluder masks of shape {masks.shape}, not frames × {info.height} × {info.width}")
    return masks


class ClipRecorder:
    """Measures each frame of one clip as the swap goes (``record``) and gathers them (``measures``)."""

    def __init__(self, analyzer: FaceAnalyzer, occluders: np.ndarray | None) -> None:
        self.analyzer, self.occluders = analyzer, occluders
        self.found: list[bool] = []
        self.input_faces: list[tuple[np.ndarray, np.ndarray]] = []
        self.output_faces: list[tuple[np.ndarray, np.ndarray]] = []
        # Per frame: sharpness in, out, whole, visibility, occluder kept, hair added (jaw, forehead), lips and eyes
        # hidden, a cut.
        self.rows: list[tuple[float, ...]] = []

    def record(self, frame: Frame, swapped: np.ndarray, where: Any) -> None:
        self.found.append(where is not None)
        self.input_faces.append(measure_face(self.analyzer, frame.image, where.face.box) if where else _no_face())
        self.output_faces.append(measure_face(self.analyzer, swapped, where.face.box) if where else _no_face())
        landmarks = self.input_faces[-1][0]
        whole = float(inside_picture(landmarks, (frame.image.shape[1], frame.image.shape[0])))
        box = inner_face_box(landmarks) if np.isfinite(landmarks).all() else None
        sharp = (sharpness(frame.image, box), sharpness(swapped, box)) if box is not None else (math.nan, math.nan)
        occluder = self.occluders[frame.index] if self.occluders is not None and frame.index < len(self.occluders) else None
        kept = occluder_kept(frame.image, swapped, occluder) if occluder is not None else math.nan
        self.rows.append((*sharp, whole, watermark_visibility(swapped) if where else math.nan, kept,
                          hair_added(frame.image, swapped, landmarks), forehead_hair_added(frame.image, swapped, landmarks),
                          hidden_behind(occluder, landmarks, (LIPS,)), hidden_behind(occluder, landmarks, EYES),
                          where is not None and where.cut))

    def measures(self) -> ClipMeasures:
        rows = np.array(self.rows, np.float64).reshape(-1, 10)
        return ClipMeasures(np.array(self.found), _stacked(self.input_faces), _stacked(self.output_faces), rows[:, :2],
                            rows[:, 2] > 0, rows[:, 3], rows[:, 4], rows[:, 5], rows[:, 6], rows[:, 7] > 0, rows[:, 8] > 0,
                            rows[:, 9] > 0)


def swap_and_measure(converter: Converter, clips: list[Clip], max_frames: int, reporter: Reporter,
                     settings: ReplaceSettings = ReplaceSettings()) -> list[ClipMeasures]:
    """Swap A→B through up to ``max_frames`` frames of the clips with convert's per-frame pipeline
    (fitting faces in with ``settings``), in runs of consecutive frames (at least MIN_RUN per clip),
    and measure the input and the output face of every frame where A was found (and, for a clip
    with occluder masks, how much of the occluder the output keeps)."""
    replacer = converter.replacer("a2b", settings)
    per_clip = max(MIN_RUN, math.ceil(max_frames / len(clips)))
    reporter.task("evaluate A→B", total=max_frames, unit="frames")
    measured: list[ClipMeasures] = []
    frames_left = max_frames
    for clip in clips:
        if frames_left <= 0:
            break
        recorder = ClipRecorder(converter.analyzer, occluder_masks(clip.path))

        def on_frame(frame: Frame, swapped: np.ndarray, where: Any, recorder: ClipRecorder = recorder) -> None:
            recorder.record(frame, swapped, where)
            reporter.advance()

        replacer.reset()
        frames = islice(read_frames(clip.path, start=clip.start), min(per_clip, frames_left))
        swap_frames(frames, replacer, converter.swapper.batch_size, on_frame)
        frames_left -= len(recorder.found)
        if recorder.found:
            measured.append(recorder.measures())
    reporter.update(max_frames - frames_left, total=max_frames - frames_left)
    reporter.finish()
    return measured


def _joined(sequences: list[np.ndarray]) -> np.ndarray:
    """Landmark sequences one after another with a NaN row between them (no jitter across clips)."""
    gap = np.full((1, 68, 2), np.nan)
    return np.concatenate([part for sequence in sequences for part in (sequence, gap)])


def _shots(measured: list[ClipMeasures], side: str) -> list[np.ndarray]:
    """The input's or the output's (``side``) landmark sequences, shot by shot: a cut is not shake."""
    return [shot for clip in measured
            for shot in np.split(getattr(clip, side).landmarks, np.flatnonzero(clip.cuts))]


def evaluate(workspace: WorkspaceLike, options: EvaluateOptions = EvaluateOptions(),
             on_progress: ProgressCallback | None = None, replace: ReplaceSettings = ReplaceSettings()) -> dict[str, Any]:
    """Score a trained workspace's swap (see the package docstring) on up to ``options.max_frames``
    frames of ``options.clips`` (videos of A not used for training; default: A's own footage, marked
    optimistic), fitting the faces in as convert does with ``replace``.
    Progress: one ``task`` counted in frames.

    Returns the JSON-ready report (``Evaluation.to_dict``; ``Evaluation.from_dict`` types it):
    ``identity``, ``reconstruction`` (per person), ``stability``, ``expression``, ``sharpness``,
    ``watermark`` (``flat_area_std``: the largest std the watermark adds on the flat picture of a
    swapped frame), ``targets`` (the goals and whether they are met), and what was evaluated.
    Values that cannot be computed (say, no face found again in any output) are None.
    """
    started = time.perf_counter()
    workspace = as_workspace(workspace)
    clips, max_frames = options.clips, options.max_frames
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
    if not swapped.any():
        where = clips if clips is not None else f"{workspace.root} (A's footage)"
        raise DeepswapError(f"{where}: no face of person A ({workspace.persons['a'].name}) found in {len(swapped)} "
                            "frames; are these videos of A?")
    inputs, outputs = _concatenated([c.input for c in measured]), _concatenated([c.output for c in measured])
    whole = np.concatenate([clip.whole for clip in measured])
    control = identity_transfer(inputs.embeddings[swapped], centres["a"], centres["b"])["transfer"]
    return Evaluation(
        workspace=str(workspace.root), model=ModelInfo(swapper.name, swapper.iteration, swapper.resolution),
        detail=replace.detail, footage=footage_kind, clips=[str(clip.path) for clip in footage[:len(measured)]],
        frames=len(swapped), faces_swapped=int(swapped.sum()),
        faces_found_in_output=int(np.isfinite(outputs.embeddings[swapped]).all(axis=1).sum()),
        identity=IdentityScores(**identity_transfer(outputs.embeddings[swapped], centres["a"], centres["b"]),
                                input_transfer=control),
        reconstruction=reconstruction,
        stability=stability_scores(measured),
        expression=expression_scores(inputs, outputs, swapped, whole, *(np.concatenate([getattr(clip, name) for clip in measured])
                                                                        for name in ("mouth_hidden", "eyes_hidden"))),
        sharpness=sharpness_scores(np.concatenate([clip.sharpness for clip in measured])[swapped]),
        watermark=WatermarkScores(finite_max(np.concatenate([clip.watermark_visibility for clip in measured]))),
        seconds=time.perf_counter() - started,
        occluder=occluder_scores(measured), hair=hair_scores(measured, swapped),
        coverage=check_coverage(workspace).to_dict(),
    ).to_dict()


def stability_scores(measured: list[ClipMeasures]) -> StabilityScores:
    """Landmark shake of the input and the output faces, shot by shot, and their ratio."""
    input_jitter = landmark_jitter(_joined(_shots(measured, "input")))
    output_jitter = landmark_jitter(_joined(_shots(measured, "output")))
    return StabilityScores(input_jitter, output_jitter, output_jitter / input_jitter if input_jitter > 0 else math.nan)


def expression_scores(inputs: FaceMeasures, outputs: FaceMeasures, swapped: np.ndarray, whole: np.ndarray,
                      mouth_hidden: np.ndarray, eyes_hidden: np.ndarray) -> ExpressionScores:
    """Over the faces wholly inside the picture (``whole``), output against input: landmark distance,
    mouth-open correlation and the widest mouths' ratio where no occluder covers the lips
    (``mouth_hidden``), eye-openness correlation and the blinks followed where none covers the eyes
    (``eyes_hidden``); how many swapped faces the frame's edge cut, and how many whole faces each
    occluder test left out."""
    cut = int((swapped & ~whole & np.isfinite(inputs.landmarks).all(axis=(1, 2))).sum())
    mouth, eyes = whole & ~mouth_hidden, whole & ~eyes_hidden
    mouth_in, mouth_out = mouth_open(inputs.landmarks[mouth]), mouth_open(outputs.landmarks[mouth])
    eyes_in, eyes_out = eye_openness(inputs.landmarks[eyes]), eye_openness(outputs.landmarks[eyes])
    followed, closed = blinks_followed(eyes_in, eyes_out)
    return ExpressionScores(landmark_distance(outputs.landmarks[whole], inputs.landmarks[whole]),
                            correlation(mouth_in, mouth_out), cut, widest_mouth_ratio(mouth_in, mouth_out),
                            correlation(eyes_in, eyes_out), followed, closed,
                            int((whole & mouth_hidden).sum()), int((whole & eyes_hidden).sum()))


def occluder_scores(measured: list[ClipMeasures]) -> OccluderScores:
    """How much of the occluders the output kept: mean and worst frame over the frames with one."""
    kept = np.concatenate([clip.occluder_kept for clip in measured])
    finite = kept[np.isfinite(kept)]
    return OccluderScores(int(len(finite)), finite_mean(finite), float(finite.min()) if len(finite) else math.nan)


def hair_scores(measured: list[ClipMeasures], swapped: np.ndarray) -> HairScores:
    """Dark pixels the swap added along the jaw and on the forehead: mean and worst frame of each
    over the swapped faces."""
    jaw, forehead = (np.concatenate([getattr(clip, name) for clip in measured])[swapped]
                     for name in ("hair_added", "forehead_hair_added"))
    return HairScores(finite_mean(jaw), finite_max(jaw), finite_mean(forehead), finite_max(forehead))


def sharpness_scores(pairs: np.ndarray) -> SharpnessScores:
    """Mean sharpness of input and output frames (``pairs``: N×2) and the mean of their per-frame ratio."""
    input_sharpness, output_sharpness = pairs.T
    return SharpnessScores(finite_mean(input_sharpness), finite_mean(output_sharpness),
                           finite_mean(output_sharpness / np.where(input_sharpness > 0, input_sharpness, np.nan)))
