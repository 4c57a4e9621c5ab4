"""What `convert --eyelids follow` costs: frames/s of convert on GRID clips with blinks, with and without it.

    python benchmarks/eyelids.py [--workspace WS] [--clips 8] [--rounds 2]

Converts the package's s1 clips (every one has a blink) with ``--eyelids off`` and ``follow``,
the two arms alternated clip by clip and round by round so that both see the same load, and
prints each arm's frames/s and the slowdown. The landmark pass on the drawn face runs only on
frames where A's eyes close (``eyelids.CLOSING``); their share is printed too. ``--workspace``: a
trained workspace (e.g. quality.py's ``--workdir``); by default a `lite` model trained for one
iteration (speed does not depend on the weights). The target: no more than 10 % slower.

    python benchmarks/eyelids.py --workspace WS --closed-eyes CLIP_OR_DIR ... [--strip PNG]
                                 [--second-judge PYTHON]

instead swaps each clip (a folder: its videos, 300 frames in all, as ``evaluate`` takes them) with the
default settings and lists each frame where the judge (``evaluate``'s landmark reading of the input
frame) finds A's eyes closed: the input's and the output's openness over their clip's median
(``blinks_followed`` counts the output closed under 0.65) and, per eye, A's share of A's usual openness,
the follower's target lid gap, and the predictor's reading of the drawn face before and after the
warp. ``--strip`` writes those frames' eye regions, a row each in the listed order, input beside
output, the judge's eye points on each (one PNG per clip or folder, numbered after the first).

``--second-judge PYTHON`` reads the same input and output frames again with MediaPipe Face Mesh
(``mediapipe_eyes.py``, run by PYTHON, a Python that has MediaPipe: see that file), whose attention
model refines the eyelids, and prints its readings beside the judge's, then per clip or folder both
judges' closed-eye input faces, blinks followed and eye-openness correlation, each by its own
readings, and how many of the judge's closed-eye faces the second judge reads closed in the output;
``--strip`` adds its eyelid points in magenta.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert import GRID, workspace_with_model  # noqa: E402  (the convert benchmark's 1-iteration workspace)

from deepswap.convert import (  # noqa: E402
    Converter,
    ConvertOptions,
    Located,
    ReplaceSettings,
    swap_frames,
)
from deepswap.convert.eyelids import CLOSING, EyelidFollower  # noqa: E402
from deepswap.convert.warp import drawn_landmarks  # noqa: E402
from deepswap.evaluate.metrics import (  # noqa: E402
    CLOSED_EYES,
    FOLLOWED_MARGIN,
    blinks_followed,
    closed_eyes,
    correlation,
    eye_openness,
)
from deepswap.evaluate.run import MIN_RUN, measure_face  # noqa: E402
from deepswap.faces.expression import eye_ratios  # noqa: E402
from deepswap.faces.landmarks import LandmarkPredictor  # noqa: E402
from deepswap.filetypes import VIDEO_SUFFIXES  # noqa: E402
from deepswap.video import Frame, read_frames, write_image  # noqa: E402

ARMS = ("off", "follow")


def closing_share(converter: Converter, clips: list[Path]) -> float:
    """The share of the clips' frames on which A's eyes close past ``CLOSING`` of A's usual openness."""
    usual = np.asarray(converter.eyelid_follower("a").usual_replaced)
    closing = []
    for clip in clips:
        for frame in read_frames(clip):
            faces = converter.analyzer.analyze(frame.image)
            if faces:
                closing.append(bool((eye_ratios(faces[0].landmarks) < CLOSING * usual).any()))
    return float(np.mean(closing))


@dataclass(frozen=True)
class ReadingFollower(EyelidFollower):
    """The follower as convert runs it, keeping per call A's share, the targets and the predictor's
    reading of the drawn face before and after (``readings``)."""

    readings: list[np.ndarray] = field(default_factory=list)

    def follow(self, drawn: np.ndarray, replaced_landmarks: np.ndarray, box: np.ndarray,
               predictor: LandmarkPredictor, pixel: float = 1.0) -> np.ndarray:
        def reading(face: np.ndarray) -> np.ndarray:
            return eye_ratios(drawn_landmarks(face, box, predictor))

        followed = super().follow(drawn, replaced_landmarks, box, predictor, pixel)
        self.readings.append(np.stack([eye_ratios(replaced_landmarks) / np.asarray(self.usual_replaced),
                                       self.target_ratios(replaced_landmarks), reading(drawn), reading(followed)]))
        return followed


def swap_measured(converter: Converter, clip: Path, frames: int, settings: ReplaceSettings = ReplaceSettings()) -> list[dict]:
    """Per frame of ``clip`` (up to ``frames``) where A was found, swapped with ``settings``: the
    input and output frames, the judge's landmarks on each and the follower's ``readings`` (4×2:
    share, target, before, after; NaN with the eyelids off)."""
    replacer = converter.replacer("a2b", settings)
    usual = converter.eyelid_follower("a")
    follower = ReadingFollower(usual.usual_replaced, usual.usual_other)
    if replacer.eyelids is not None:
        replacer.eyelids = follower
    rows: list[dict] = []

    def on_frame(frame: Frame, swapped: np.ndarray, where: Located | None) -> None:
        if where is not None:
            rows.append({"clip": clip.name, "path": clip, "frame": frame.index, "input": frame.image, "output": swapped,
                         "box": where.face.box,
                         "judged": [measure_face(converter.analyzer, image, where.face.box)[0] for image in (frame.image, swapped)]})

    swap_frames(islice(read_frames(clip), frames), replacer, converter.swapper.batch_size, on_frame)
    readings = follower.readings if replacer.eyelids is not None else [np.full((4, 2), np.nan)] * len(rows)
    for row, reading in zip(rows, readings):
        row["readings"] = reading
    return rows


def eye_strip(rows: list[dict], scale: int = 6) -> np.ndarray:
    """The rows' eye regions, input beside output, enlarged ``scale`` times, the judge's eye points in
    green and the second judge's eyelids (a row's ``eyelids``, if read) in magenta."""
    tiles = []
    for row in rows:
        eyes = row["judged"][0][36:48]
        (x0, y0), (x1, y1) = np.floor(eyes.min(axis=0) - 12).astype(int), np.ceil(eyes.max(axis=0) + 12).astype(int)
        pair = []
        second = row.get("eyelids", np.full((2, 32, 2), np.nan))
        for image, judged, eyelids in zip((row["input"], row["output"]), row["judged"], second):
            tile = cv2.resize(image[max(y0, 0):y1, max(x0, 0):x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            for points, colour in ((judged[36:48], (0, 255, 0)), (eyelids[np.isfinite(eyelids).all(axis=1)], (255, 0, 255))):
                for x, y in points:
                    cv2.circle(tile, (int((x - max(x0, 0)) * scale), int((y - max(y0, 0)) * scale)), 2, colour, -1)
            pair.append(tile)
        tiles.append(np.hstack(pair))
    width = max(tile.shape[1] for tile in tiles)
    return np.vstack([np.pad(tile, ((0, 2), (0, width - tile.shape[1]), (0, 0))) for tile in tiles])


def second_judge_readings(python: str, rows: list[dict]) -> dict[str, np.ndarray]:
    """MediaPipe Face Mesh's eye openness of the rows' input and output faces (``mediapipe_eyes.py``
    run by ``python``): per side, N openness values, and ``eyelids``: N×2×32×2, input and output."""
    script = Path(__file__).resolve().parent / "mediapipe_eyes.py"
    boxes = np.stack([row["box"] for row in rows]).astype(np.float64)
    readings: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for side in ("input", "output"):
            frames, out = Path(scratch) / f"{side}.npz", Path(scratch) / f"{side}_eyes.npz"
            np.savez(frames, images=np.stack([row[side] for row in rows]), boxes=boxes)
            subprocess.run([python, str(script), str(frames), str(out)], check=True, stderr=subprocess.DEVNULL)
            with np.load(out) as read:
                readings[side], readings[f"{side} eyelids"] = read["openness"], read["eyelids"].reshape(len(rows), 32, 2)
    readings["eyelids"] = np.stack([readings.pop("input eyelids"), readings.pop("output eyelids")], axis=1)
    return readings


def judged(openness: dict[str, np.ndarray]) -> dict[str, float]:
    """Closed-eye input faces, blinks followed and eye-openness correlation by one judge's readings."""
    followed, closed = blinks_followed(openness["input"], openness["output"])
    return {"closed_eye_faces": closed, "blinks_followed": followed,
            "eye_open_correlation": correlation(openness["input"], openness["output"])}


def judged_text(scores: dict[str, float]) -> str:
    """``judged``'s figures in a line."""
    return (f"{scores['closed_eye_faces']} closed-eye faces, {scores['blinks_followed']:.0%} followed, eye correlation "
            f"{scores['eye_open_correlation']:.2f}")


def footage_rows(converter: Converter, footage: Path, settings: ReplaceSettings = ReplaceSettings()) -> list[dict]:
    """``swap_measured`` over a clip, or a folder's videos in ``evaluate``'s runs of 300 frames in all."""
    clips = sorted(p for p in footage.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if footage.is_dir() else [footage]
    per_clip = max(MIN_RUN, math.ceil(300 / len(clips))) if footage.is_dir() else 10 ** 6
    return [row for clip in clips for row in swap_measured(converter, clip, per_clip, settings)]


def judges_openness(rows: list[dict]) -> dict[str, np.ndarray]:
    """The 68-point judge's eye openness of the rows' input and output faces."""
    return {side: eye_openness(np.stack([row["judged"][k] for row in rows])) for k, side in enumerate(("input", "output"))}


def second_judge_scores(converter: Converter, footage: Path, python: str,
                        settings: ReplaceSettings = ReplaceSettings()) -> dict[str, float]:
    """``footage`` swapped with ``settings`` and judged by Face Mesh (``judged``), with how many of the
    68-point judge's closed-eye input faces Face Mesh reads closed in the output (``closed_of_68``)."""
    rows = footage_rows(converter, footage, settings)
    second = second_judge_readings(python, rows)
    closed = closed_eyes(judges_openness(rows)["input"])
    shut = closed_eyes(second["output"], CLOSED_EYES + FOLLOWED_MARGIN)  # as blinks_followed judges an output
    scores = {**judged(second), "closed_of_68": int((shut & closed).sum()), "closed_68": int(closed.sum())}
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in scores.items()}


def closed_eye_report(converter: Converter, footage: Path, strip: Path | None, second_judge: str | None,
                      eyelids: str = "follow") -> None:
    """Swap ``footage`` and list the frames where the judge finds A's eyes closed (see the module docstring)."""
    rows = footage_rows(converter, footage, ReplaceSettings(eyelids=eyelids))
    openness = judges_openness(rows)
    medians = {side: float(np.nanmedian(values)) for side, values in openness.items()}
    second = second_judge_readings(second_judge, rows) if second_judge else None
    if second is not None:
        second_shut = closed_eyes(second["output"], CLOSED_EYES + FOLLOWED_MARGIN)
        for row, eyelids in zip(rows, second["eyelids"]):
            row["eyelids"] = eyelids
    closed = np.flatnonzero(closed_eyes(openness["input"]))
    print(f"{footage}: median openness input {medians['input']:.3f}, output {medians['output']:.3f}; "
          f"{len(closed)} closed-eye input frames")
    for index in closed:
        row, share = rows[index], openness["output"][index] / medians["output"]
        verdict = "closed" if share < CLOSED_EYES + FOLLOWED_MARGIN else "OPEN"
        readings = " ".join(f"{name} {values[0]:.2f}/{values[1]:.2f}" for name, values in
                            zip(("A's share", "target", "drawn", "warped"), row["readings"]))
        line = (f"{row['clip']} frame {row['frame']}: input {openness['input'][index] / medians['input']:.2f}, "
                f"output {share:.2f} {verdict}; {readings}")
        if second is not None:
            line += (f"; Face Mesh: input {second['input'][index] / np.nanmedian(second['input']):.2f}, output "
                     f"{second['output'][index] / np.nanmedian(second['output']):.2f} {'closed' if second_shut[index] else 'OPEN'}")
        print(line)
    print(f"  68 landmarks: {judged_text(judged(openness))}")
    if second is not None:
        print(f"  Face Mesh:    {judged_text(judged(second))}; of the 68-point judge's {len(closed)}, the output closed on "
              f"{int(second_shut[closed].sum())}")
    if strip is not None and len(closed):
        write_image(strip, eye_strip([rows[i] for i in closed]), replaced_person="s1", model=converter.swapper.name,
                    source=rows[closed[0]]["path"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, help="a trained workspace (default: a 1-iteration lite model)")
    parser.add_argument("--clips", type=int, default=8, help="s1 clips of the package to convert")
    parser.add_argument("--rounds", type=int, default=2, help="times each arm converts every clip")
    parser.add_argument("--closed-eyes", type=Path, nargs="+", help="clips or folders: list their closed-eye frames instead")
    parser.add_argument("--strip", type=Path, help="with --closed-eyes: a PNG of those frames' eyes, input | output")
    parser.add_argument("--second-judge", metavar="PYTHON", help="with --closed-eyes: a Python with MediaPipe, to read "
                        "the eyes again with Face Mesh (mediapipe_eyes.py)")
    parser.add_argument("--eyelids", choices=("follow", "off"), default="follow",
                        help="with --closed-eyes: convert's --eyelids (off: the eyes as the model draws them)")
    args = parser.parse_args()
    if args.closed_eyes is not None:
        if args.workspace is None:
            parser.error("--closed-eyes needs --workspace")
        converter = Converter(args.workspace)
        for number, footage in enumerate(args.closed_eyes):
            strip = args.strip.with_stem(f"{args.strip.stem}-{number}") if args.strip and number else args.strip
            closed_eye_report(converter, footage, strip, args.second_judge, args.eyelids)
        return
    clips = sorted((GRID / "s1").glob("*.mp4"))[:args.clips]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        converter = Converter(args.workspace or workspace_with_model(folder, "lite", "cpu"))
        frames, seconds = dict.fromkeys(ARMS, 0), dict.fromkeys(ARMS, 0.0)
        for round_index in range(args.rounds):
            for clip in clips:
                for arm in ARMS if round_index % 2 == 0 else ARMS[::-1]:
                    options = ConvertOptions(replace=ReplaceSettings(eyelids=arm), force=True)
                    began = time.perf_counter()
                    report = converter.convert(clip, folder / f"{arm}.mp4", options)
                    seconds[arm] += time.perf_counter() - began
                    frames[arm] += report.frames
        print(f"{len(clips)} s1 clips × {args.rounds} rounds; A's eyes closing on "
              f"{closing_share(converter, clips):.0%} of the frames")
        fps = {arm: frames[arm] / seconds[arm] for arm in ARMS}
        for arm in ARMS:
            print(f"--eyelids {arm}: {frames[arm]} frames in {seconds[arm]:.1f} s = {fps[arm]:.1f} frames/s")
        print(f"follow is {1 - fps['follow'] / fps['off']:.1%} slower")


if __name__ == "__main__":
    main()
