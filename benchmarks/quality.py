"""Swap quality after a fixed training budget: `deepswap evaluate` on GRID footage the model never saw.

    python benchmarks/quality.py [--minutes 20] [--model lite] [--clips-a 40] [--eval-clips 4] [--fps 10]
                                 [--workdir DIR] [--json]

Builds a workspace from ../shared/data: A = the first ``--clips-a`` clips of GRID speaker s1 (faces
sampled at ``--fps``), B = grid/speakers/lrwp9a.mp4, every frame (plus raw_mpg/lrwp9a.mpg when SFace
says it is the same person and it is not the same recording), trains ``--model`` for ``--minutes`` of
wall-clock time, then evaluates A→B on the next ``--eval-clips`` s1 clips, all their frames.
Targets (issue 7): identity transfer ≥ 90 %, face SSIM of B→B ≥ 0.75, output jitter ≤ input jitter.
With ``--workdir`` the workspace is kept, and a second run resumes it (extract skips what is done,
training continues for another ``--minutes``).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from deepswap.demo import CPU_MODEL, GPU_MODEL
from deepswap.evaluate import evaluate, print_report
from deepswap.faces import FaceAnalyzer, cosine_distance
from deepswap.extract import ExtractOptions, extract
from deepswap.faces.identity import DEFAULT_THRESHOLD
from deepswap.train import read_state, train
from deepswap.video import read_frames
from deepswap.workspace import CONFIG_NAME, add_sources, init_workspace

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0, help="training wall-clock budget of this run")
    parser.add_argument("--model", help="train this model with its own defaults (default: the demo's choice for "
                                           "this device, e.g. a narrow lite at lr 4e-4 on CPUs)")
    parser.add_argument("--clips-a", type=int, default=40, help="s1 clips to train on")
    parser.add_argument("--eval-clips", type=int, default=4, help="s1 clips after those to evaluate on")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second of A's clips to extract")
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (resumed if it exists)")
    parser.add_argument("--json", action="store_true", help="print the report and the budget as JSON")
    args = parser.parse_args()
    console = Console(stderr=True)
    s1 = sorted((SHARED / "s1").glob("*.mp4"))
    if len(s1) < args.clips_a + args.eval_clips:
        parser.error(f"{SHARED / 's1'}: {len(s1)} clips, fewer than --clips-a + --eval-clips")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    console.print(f"device {device}, torch {torch.__version__}; A = {args.clips_a} s1 clips at {args.fps:g} frames/s, "
                  f"B = lrwp9a; {args.model or 'the demo model'} for {args.minutes:g} min; evaluated on {args.eval_clips} other s1 clips")
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch) / "ws"
        build_workspace(root, s1[:args.clips_a], args.fps, console)
        if args.model:
            result = train(root, model=args.model, minutes=args.minutes, console=console)
        else:
            name, options, batch_size, learning_rate = GPU_MODEL if torch.cuda.is_available() else CPU_MODEL
            result = train(root, model=name, minutes=args.minutes, batch_size=batch_size, options=options,
                           learning_rate=learning_rate, console=console)
        held_out = root / "held_out_clips"
        held_out.mkdir(exist_ok=True)
        for clip in s1[args.clips_a:args.clips_a + args.eval_clips]:
            if not (held_out / clip.name).exists():
                (held_out / clip.name).symlink_to(clip)
        report = evaluate(root, clips=held_out, max_frames=75 * args.eval_clips)
        trained_seconds = read_state(root / "model")["training"]["elapsed_seconds"]
    budget = {"model": result.model, "device": device, "minutes_this_run": args.minutes,
              "training_minutes_total": trained_seconds / 60, "iterations": result.iteration,
              "samples_per_second": result.samples_per_second, "faces_a_clips": args.clips_a, "fps_a": args.fps}
    if args.json:
        print(json.dumps({"budget": budget, "report": report}, indent=1))
        return
    out = Console()
    out.print(f"training budget: {budget['training_minutes_total']:.1f} min of {result.model} on {device}, "
              f"{result.iteration} iterations, {result.samples_per_second:.1f} samples/s")
    print_report(report, out)


if __name__ == "__main__":
    main()
