"""Swap quality after a fixed training budget: `deepswap evaluate` on GRID footage the model never saw.

    python benchmarks/quality.py [--minutes 20] [--model lite] [--clips-a 40] [--eval-clips 4] [--fps 10]
                                 [--detail 1] [--drawn-hair] [--keep-fringe] [--lips follow|off] [--workdir DIR] [--footage DIR | --no-footage] [--only NAME ...]
                                 [--crops DIR] [--json]

Builds a workspace from ../shared/data: A = the first ``--clips-a`` clips of GRID speaker s1 (faces
sampled at ``--fps``), B = grid/speakers/lrwp9a.mp4, every frame (plus raw_mpg/lrwp9a.mpg when SFace
says it is the same person and it is not the same recording), trains ``--model`` for ``--minutes`` of
wall-clock time, then evaluates A→B on the next ``--eval-clips`` s1 clips, all their frames.
Then the same on the harder footage of ``footage.py`` (720p zoom/pan/roll, a small face in a corner,
two people where only A may change, a cut to another speaker and back, a microphone and a hand in
front of the face, natural blinks, warped expressions at a low resolution), built from s1 clips 60 on
into ``--footage`` (kept between runs); for two people it also reports how much the bystander's half
of the frame changed, and for the cut how many frames of the other speaker were swapped (both 0).
Targets (issue 7): identity transfer ≥ 90 %, face SSIM of B→B ≥ 0.75, output jitter ≤ input jitter;
(issue 14) sharpness ratio ≥ 0.6, mean cosine to B ≥ 0.55 and to A ≤ 0.30, mouth-open correlation ≥ 0.75;
(issue 34) occluder kept ≥ 95 % on average and ≥ 80 % on the worst frame, blinks followed ≥ 90 %,
eye-openness correlation ≥ 0.8, widest mouths ≥ 0.6 of the input's, no hair added along the jaw.
The expressive clip's coverage by B's faces (``deepswap.coverage``) is printed too.
With ``--workdir`` the workspace is kept, and a second run resumes it (extract skips what is done,
training continues for another ``--minutes``; ``--minutes 0`` only evaluates, e.g. at another
``--detail``: the share of the footage's fine detail convert keeps on the new face, 0 = the model's
face as drawn; ``--drawn-hair``: convert pastes the hair the model draws beside the face too, as
before ``drawn_face_only``; ``--keep-fringe``: A's own hair above the brows stays in front (convert
``--keep-fringe``); ``--lips off``: the mouth as the model draws it, as before ``lips``).
``--second-judge PYTHON`` reads the eyes of each footage's swap again with MediaPipe Face Mesh (see
``eyelids.py``) and adds its blinks followed to the issue-34 table.
``--crops DIR`` writes, per footage, a few faces as input | the model's face as drawn | the face convert writes (labelled and watermarked PNGs, the crops enlarged alike) to
look at; ``before_after.py`` puts two runs' crops side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from itertools import islice
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from deepswap.convert import Converter, ReplaceSettings, swap_frames
from deepswap.coverage import Coverage, coverage_between, faceset_landmarks
from deepswap.evaluate import EvaluateOptions, evaluate, report_text
from deepswap.extract import ExtractOptions, extract
from deepswap.faces import DEFAULT_THRESHOLD, FaceAnalyzer, cosine_distance, load_faceset
from deepswap.train import TrainOptions, read_state, train
from deepswap.video import probe_video, read_frames, write_image
from deepswap.sources import add_sources
from deepswap.workspace import CONFIG_NAME, init_workspace
from eyelids import second_judge_scores
from footage import CLIP_FRAMES, CUT_TO, DEFAULT_OUT, FIRST_CLIP, Footage, build_footage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid"
HELD_OUT = "held-out s1"  # the plain unseen clips' row in the issue-34 table
CROP = 256  # pixels: the side each face crop of --crops is shown at
SAME_RECORDING = 4.0  # mean absolute difference of the first frames (grey levels) below which two files are one recording


def first_faces(analyzer: FaceAnalyzer, clip: Path, count: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The first frame of a clip and the unit SFace centre of the largest face in ``count`` frames spread over it."""
    frames = [frame.image for frame in islice(read_frames(clip), 75)]
    embeddings = []
    for image in frames[:: max(1, len(frames) // count)]:
        detections = sorted(analyzer.detect(image), key=lambda d: -d.area)
        if detections:
            embeddings.append(analyzer.embed(image, detections[0]))
    centre = np.mean(embeddings, axis=0)
    return frames[0], centre / np.linalg.norm(centre)


def extra_b_footage(console: Console) -> list[Path]:
    """raw_mpg/lrwp9a.mpg if it shows the same person as speakers/lrwp9a.mp4 in another recording."""
    main, extra = SHARED / "speakers" / "lrwp9a.mp4", SHARED / "raw_mpg" / "lrwp9a.mpg"
    if not extra.is_file():
        return []
    analyzer = FaceAnalyzer()
    (first_main, centre_main), (first_extra, centre_extra) = first_faces(analyzer, main), first_faces(analyzer, extra)
    distance = float(cosine_distance(centre_extra, centre_main))
    difference = float(np.abs(first_main.astype(np.float32) - first_extra).mean()) if first_main.shape == first_extra.shape else np.inf
    same_person, same_recording = distance <= DEFAULT_THRESHOLD, difference < SAME_RECORDING
    console.print(f"{extra.name}: SFace distance to {main.name} {distance:.3f} ({'same' if same_person else 'another'} person), "
                  f"first frames differ by {difference:.1f} grey levels "
                  f"({'the same recording re-encoded: not added' if same_recording else 'another recording'})")
    return [extra] if same_person and not same_recording else []


def build_workspace(root: Path, clips_a: list[Path], fps: float, console: Console) -> None:
    """The benchmark workspace, extracted (both steps resume when the workspace already exists)."""
    if not (root / CONFIG_NAME).is_file():
        init_workspace(root, "s1", "lrwp9a")
        add_sources(root, "a", [str(clip) for clip in clips_a])
        add_sources(root, "b", [str(SHARED / "speakers" / "lrwp9a.mp4"), *map(str, extra_b_footage(console))])
    began = time.perf_counter()
    extract(root, ExtractOptions(person="a", fps=fps))
    extract(root, ExtractOptions(person="b"))
    console.print(f"extract: {time.perf_counter() - began:.0f} s")


def other_face_check(converter: Converter, footage: Footage, settings: ReplaceSettings) -> str:
    """What must stay untouched, as convert's face pipeline renders the frames (before watermark
    and encoder, so untouched pixels differ by exactly 0): for two people, the largest mean absolute
    change of the bystander's (right) half over the frames; for the cut, the frames of the other
    speaker (the middle clip) that were swapped. Empty for the other footage."""
    if footage.name not in ("two_people", "cut"):
        return ""
    changes: list[float] = []

    def on_frame(frame, swapped, where) -> None:
        if footage.name == "two_people":
            half = frame.image.shape[1] // 2
            changes.append(float(np.abs(swapped[:, half:].astype(np.int16) - frame.image[:, half:]).mean()))
        elif CLIP_FRAMES <= frame.index < 2 * CLIP_FRAMES:
            changes.append(float(where is not None))

    swap_frames(read_frames(footage.path), converter.replacer("a2b", settings), converter.swapper.batch_size, on_frame)
    if footage.name == "two_people":
        return f"bystander Δ {max(changes):.2f}"
    return f"{CUT_TO}: {sum(changes):.0f}/{len(changes)} swapped"


def face_row(panels: list[np.ndarray], box: np.ndarray) -> np.ndarray:
    """Frames of one size side by side, each cropped to ``CROP`` pixels around the face ``box`` (x, y, w, h)."""
    x, y, width, height = box
    half, centre = 0.7 * max(width, height), (x + width / 2, y + height / 2)
    matrix = np.array([[CROP / (2 * half), 0, CROP / 2 - centre[0] * CROP / (2 * half)],
                       [0, CROP / (2 * half), CROP / 2 - centre[1] * CROP / (2 * half)]])
    return np.hstack([cv2.warpAffine(panel, matrix, (CROP, CROP), flags=cv2.INTER_LANCZOS4) for panel in panels])


def save_crops(converter: Converter, clip: Path, settings: ReplaceSettings, path: Path,
                picks: tuple[int, ...] = (12, 37, 62)) -> None:
    """Frames ``picks`` of ``clip``, each as a row of three crops around the replaced face: the input,
    the model's face as drawn (no fine detail of the footage) and the face as convert fits it in."""
    replacer, drawn = converter.replacer("a2b", settings), converter.replacer("a2b", replace(settings, detail=0.0))
    rows = []
    for frame in islice(read_frames(clip), max(picks) + 1):
        where = replacer.locate(frame)
        if frame.index not in picks or where is None:
            continue
        panels = [frame.image, drawn.render([frame.image], [where])[0], replacer.render([frame.image], [where])[0]]
        rows.append(face_row(panels, where.face.box))
    if rows:
        write_image(path, np.vstack(rows), replaced_person="s1", model=converter.swapper.name, source=clip)


def footage_coverage(root: Path, clip: Path) -> Coverage:
    """How B's extracted faces cover the faces of a clip, as if it were A's footage (``deepswap.coverage``)."""
    analyzer = FaceAnalyzer()
    landmarks, ids = [], []
    for frame in read_frames(clip):
        detections = analyzer.detect(frame.image)
        if detections:
            landmarks.append(analyzer.describe(frame.image, max(detections, key=lambda d: d.area)).landmarks)
            ids.append(f"frame {frame.index}")
    faces_b, ids_b = faceset_landmarks(load_faceset(root / "b" / "faces"))
    return coverage_between(np.array(landmarks), ids, faces_b, ids_b, "lrwp9a")


def _figure(value: float | None, form: str = ".2f", scale: float = 1.0, unit: str = "") -> str:
    return "n/a" if value is None else f"{scale * value:{form}}{unit}"


def _left_out(expression: dict, *counts: tuple[str, str]) -> str:
    """The faces a figure leaves out, as " (3 cut, 68 hidden)"; nothing when none."""
    parts = [f"{expression[key]} {what}" for key, what in counts if expression.get(key)]
    return f" ({', '.join(parts)})" if parts else ""


def _mouth(expression: dict) -> str:
    """The mouth-open correlation, with the faces cut by the frame's edge and those whose lips an
    occluder hides, which it leaves out."""
    return _figure(expression["mouth_open_correlation"]) + _left_out(
        expression, ("faces_cut_by_edge", "cut"), ("mouth_hidden_faces", "lips hidden"))


def _eyes(expression: dict) -> str:
    """Eye-openness correlation, and the blinks followed out of the input's closed-eye faces (the
    faces whose eyes an occluder hides left out)."""
    closed = expression.get("closed_eye_faces") or 0
    blinks = f" · {_figure(expression.get('blinks_followed'), '.0f', 100, ' %')} of {closed}" if closed else ""
    return _figure(expression.get("eye_open_correlation")) + blinks + _left_out(expression, ("eyes_hidden_faces", "eyes hidden"))


def _occluder(report: dict) -> str:
    occluder = report.get("occluder") or {}
    if not occluder.get("frames"):
        return ""
    return f"{_figure(occluder['kept_mean'], '.0f', 100, ' %')} (worst {_figure(occluder['kept_worst'], '.0f', 100, ' %')})"


def footage_table(rows: list[tuple[str, dict, str]]) -> Table:
    """One row per footage: faces swapped, identity, mouth, sharpness, jitter, watermark, the untouched check."""
    table = Table(title="harder footage (issue 14: sharpness ≥ 0.6, cos B ≥ 0.55, cos A ≤ 0.30, all → B, mouth ≥ 0.75, "
                        "mark on flat picture ≤ 0.3)")
    for column in ("footage", "swapped", "→ B", "cos B / A", "mouth", "sharpness", "jitter", "mark flat", "untouched"):
        table.add_column(column)
    for name, report, check in rows:
        identity = report["identity"]
        table.add_row(name, f"{report['faces_swapped']}/{report['frames']}", _figure(identity["transfer"], ".0f", 100, " %"),
                      f"{_figure(identity['similarity_b'])} / {_figure(identity['similarity_a'])}",
                      _mouth(report["expression"]), _figure(report["sharpness"]["ratio"]),
                      _figure(report["stability"]["jitter_ratio"]), _figure(report["watermark"]["flat_area_std"]), check)
    return table


def _second_judge(scores: dict | None) -> str:
    """Face Mesh's eye correlation and blinks followed, and of the 68-point judge's closed-eye faces how many it reads shut."""
    if not scores:
        return ""
    return (f"{_eyes(scores)}; shut: {scores['closed_of_68']} of {scores['closed_68']}")


def following_table(rows: list[tuple[str, dict, str]], second_judge: dict[str, dict] | None = None) -> Table:
    """One row per footage: what the swap must follow or leave alone (issue 34): the widest mouths,
    eye openness and blinks (and by Face Mesh, ``second_judge``, by footage), the occluder kept and
    the hair added."""
    table = Table(title="issue 34: widest mouths ≥ 0.6, eyes ≥ 0.8, blinks ≥ 90 %, occluder kept ≥ 95 % "
                        "(worst frame ≥ 80 %), hair added ≈ 0")
    columns = ["footage", "mouth", "widest mouths", "eyes · blinks followed", "occluder kept", "hair added: jaw · forehead"]
    for column in columns + (["Face Mesh: eyes · blinks followed"] if second_judge else []):
        table.add_column(column)
    for name, report, _ in rows:
        expression, hair = report["expression"], report.get("hair") or {}
        cells = [name, _mouth(expression), _figure(expression.get("widest_mouth_ratio")), _eyes(expression),
                 _occluder(report), f"{_figure(hair.get('added_mean'), '.1f', 100, ' %')} · "
                                    f"{_figure(hair.get('forehead_mean'), '.1f', 100, ' %')}"]
        table.add_row(*cells, *([_second_judge(second_judge.get(name))] if second_judge else []))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget of this run (0: evaluate only)")
    parser.add_argument("--model", help="train this model with its own defaults (default: what `deepswap train` "
                                           "picks here: lite on CPUs, hd on GPUs)")
    parser.add_argument("--clips-a", type=int, default=40, help="s1 clips to train on")
    parser.add_argument("--eval-clips", type=int, default=4, help="s1 clips after those to evaluate on")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second of A's clips to extract")
    parser.add_argument("--detail", type=float, default=ReplaceSettings.detail,
                        help="share of the footage's fine detail kept on the new face (convert --detail)")
    parser.add_argument("--lips", choices=("follow", "off"), default=ReplaceSettings.lips,
                        help="the new mouth opens as far as A's (convert --lips)")
    parser.add_argument("--drawn-hair", action="store_true",
                        help="paste the hair the model draws beside the face too (convert --drawn-face-only false)")
    parser.add_argument("--keep-fringe", action="store_true",
                        help="leave A's own hair above the brows in front of the new face (convert --keep-fringe)")
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (resumed if it exists)")
    parser.add_argument("--footage", type=Path, default=DEFAULT_OUT, help="folder of the harder footage (built if missing)")
    parser.add_argument("--no-footage", action="store_true", help="evaluate on the plain s1 clips only")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="of the harder footage, only these clips (footage.py's names, e.g. zoom_pan_roll occluded_hand)")
    parser.add_argument("--crops", type=Path, help="write before/after face crops of each footage into this folder")
    parser.add_argument("--second-judge", metavar="PYTHON", help="a Python with MediaPipe: judge the blinks again with "
                        "Face Mesh (eyelids.py)")
    parser.add_argument("--json", action="store_true", help="print the report and the budget as JSON")
    args = parser.parse_args()
    console = Console(stderr=True)
    s1 = sorted((SHARED / "s1").glob("*.mp4"))
    if len(s1) < args.clips_a + args.eval_clips:
        parser.error(f"{SHARED / 's1'}: {len(s1)} clips, fewer than --clips-a + --eval-clips")
    if not args.no_footage and args.clips_a + args.eval_clips > FIRST_CLIP:
        parser.error(f"the harder footage is built from s1 clips {FIRST_CLIP} on; use fewer clips or --no-footage")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    console.print(f"device {device}, torch {torch.__version__}; A = {args.clips_a} s1 clips at {args.fps:g} frames/s, "
                  f"B = lrwp9a; {args.model or 'the default model'} for {args.minutes:g} min; evaluated on {args.eval_clips} other s1 clips")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch) / "ws"
        build_workspace(root, s1[:args.clips_a], args.fps, console)
        if args.minutes > 0:
            train(root, TrainOptions(model=args.model, minutes=args.minutes))
        elif read_state(root / "model") is None:
            parser.error("--minutes 0 evaluates a trained --workdir; this one has no model yet")
        state = read_state(root / "model")
        settings = ReplaceSettings(detail=args.detail, drawn_face_only=not args.drawn_hair, keep_fringe=args.keep_fringe,
                                   lips=args.lips)
        held_out = root / "held_out_clips"
        held_out.mkdir(exist_ok=True)
        for clip in s1[args.clips_a:args.clips_a + args.eval_clips]:
            if not (held_out / clip.name).exists():
                (held_out / clip.name).symlink_to(clip)
        report = evaluate(root, EvaluateOptions(clips=held_out, max_frames=75 * args.eval_clips), replace=settings)
        converter = Converter(root)
        second_judge = {HELD_OUT: second_judge_scores(converter, held_out, args.second_judge, settings)} if args.second_judge else {}
        if args.crops:
            args.crops.mkdir(parents=True, exist_ok=True)
            save_crops(converter, sorted(held_out.iterdir())[0], settings, args.crops / "held_out.png")
        harder, coverage = [], None
        if not args.no_footage:
            for footage in build_footage(args.footage, names=args.only):
                if args.crops:
                    save_crops(converter, footage.path, settings, args.crops / f"{footage.name}.png")
                scores = evaluate(root, EvaluateOptions(clips=footage.path, max_frames=probe_video(footage.path).frames),
                              replace=settings)
                harder.append((footage.name, scores, other_face_check(converter, footage, settings)))
                if args.second_judge:
                    second_judge[footage.name] = second_judge_scores(converter, footage.path, args.second_judge, settings)
                if footage.name == "expressive":
                    coverage = footage_coverage(root, footage.path)
    training = state["training"]
    budget = {"model": state["model"], "device": device, "minutes_this_run": args.minutes,
              "training_minutes_total": training["elapsed_seconds"] / 60, "iterations": state["iteration"],
              "faces_a_clips": args.clips_a, "fps_a": args.fps, "detail": args.detail, "lips": args.lips,
              "keep_fringe": args.keep_fringe}
    if args.json:
        print(json.dumps({"budget": budget, "report": report,
                          "footage": {name: {"report": scores, "untouched": check} for name, scores, check in harder},
                          "expressive_coverage": coverage.to_dict() if coverage else None,
                          "second_judge": second_judge or None}, indent=1))
        return
    out = Console(width=None if Console().is_terminal else 120)
    out.print(f"training budget: {budget['training_minutes_total']:.1f} min of {budget['model']} on {device}, "
              f"{budget['iterations']} iterations; convert keeps {args.detail:g} of the footage's fine detail")
    out.print(report_text(report), highlight=False, markup=False)
    if harder:
        out.print(footage_table(harder))
        out.print(following_table([(HELD_OUT, report, ""), *harder], second_judge))
    if coverage:
        out.print("expressive.mp4 as A's footage, " + coverage.summary(), highlight=False, markup=False)


if __name__ == "__main__":
    main()
