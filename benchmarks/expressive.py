"""Issue 34's expressive footage: train on the clip itself as A, then swap that clip.

    python benchmarks/expressive.py [--minutes 20 | --iterations N] [--clips-b 40] [--workdir DIR] [--crops DIR] [--json]

A is one expressive clip (``footage.expressive``: a wide-open mouth, raised brows, wide-eyed looks and
blinks warped in from the landmarks, rolled ±12°, lit by a window, the face ~50 px wide in a 640×360
frame) made from GRID speaker ``SPEAKER``'s two recordings (CC BY 4.0; 150 frames); every frame is extracted.
B is the first ``--clips-b`` clips of GRID speaker s1 at 10 frames/s. The workspace trains with the
CLI defaults for ``--minutes`` of wall-clock time (or to ``--iterations``: on a shared machine, the
iterations the same minutes give on an idle one), and the swap is evaluated on the clip it trained on
(``evaluate`` flags it optimistic). Before training, ``train`` says which of A's faces s1's footage
does not cover. Goals (issue 34): ≥ 95 % of frames B, mouth-open correlation ≥ 0.85 with the widest
mouths at ≥ 60 % of the input's, eye-openness correlation ≥ 0.5, sharpness ratio ≥ 0.5.
With ``--workdir`` the workspace is kept and a second run resumes it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from deepswap.convert import Converter, ReplaceSettings
from deepswap.coverage import check_coverage
from deepswap.evaluate import EvaluateOptions, evaluate, report_text
from deepswap.extract import ExtractOptions, extract
from deepswap.faces import FaceAnalyzer
from deepswap.sources import add_sources
from deepswap.train import TrainOptions, read_state, train
from deepswap.workspace import CONFIG_NAME, init_workspace
from footage import expressive, frames_of, write_clip
from quality import SHARED, following_table, save_crops

SPEAKER = "lrwp9a"  # not s1 (B); two recordings: speakers/ and raw_mpg/ (quality.py checks they differ)


def build_clip(path: Path) -> Path:
    """The expressive clip of ``SPEAKER`` (kept when it exists)."""
    if not path.is_file():
        recordings = [SHARED / "speakers" / f"{SPEAKER}.mp4", SHARED / "raw_mpg" / f"{SPEAKER}.mpg"]
        frames = [frame for recording in recordings if recording.is_file() for frame in frames_of(recording)]
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, expressive(frames, FaceAnalyzer()))
    return path


def build_workspace(root: Path, clip: Path, clips_b: int, console: Console) -> None:
    """A = the clip (every frame), B = s1's first clips at 10 frames/s; extraction resumes."""
    if not (root / CONFIG_NAME).is_file():
        init_workspace(root, SPEAKER, "s1")
        add_sources(root, "a", [str(clip)])
        add_sources(root, "b", [str(path) for path in sorted((SHARED / "s1").glob("*.mp4"))[:clips_b]])
    began = time.perf_counter()
    extract(root, ExtractOptions(person="a"))
    extract(root, ExtractOptions(person="b", fps=10))
    console.print(f"extract: {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="training wall-clock budget (default 20)")
    budget.add_argument("--iterations", type=int, help="train to this many iterations instead")
    parser.add_argument("--clips-b", type=int, default=40, help="s1 clips of B")
    parser.add_argument("--workdir", type=Path, help="keep the workspace (and the clip) here; resumed if it exists")
    parser.add_argument("--crops", type=Path, help="write before/after face crops of the clip into this folder")
    parser.add_argument("--json", action="store_true", help="print the report and the budget as JSON")
    args = parser.parse_args()
    console = Console(stderr=True)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{os.cpu_count()} CPU cores"
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.workdir or Path(scratch)
        clip = build_clip(folder / "expressive.mp4")
        root = folder / "ws"
        build_workspace(root, clip, args.clips_b, console)
        console.print(check_coverage(root).summary())
        minutes = None if args.iterations else (args.minutes if args.minutes is not None else 20.0)
        train(root, TrainOptions(minutes=minutes, iterations=args.iterations))
        state = read_state(root / "model")
        report = evaluate(root, EvaluateOptions(clips=clip, max_frames=10_000))
        if args.crops:
            args.crops.mkdir(parents=True, exist_ok=True)
            save_crops(Converter(root), clip, ReplaceSettings(), args.crops / "expressive_trained.png")
    training = state["training"]
    summary = {"model": state["model"], "device": device, "iterations": state["iteration"],
               "training_minutes_total": training["elapsed_seconds"] / 60, "speaker_a": SPEAKER, "clips_b": args.clips_b}
    if args.json:
        print(json.dumps({"budget": summary, "report": report}, indent=1))
        return
    out = Console(width=None if Console().is_terminal else 120)
    out.print(f"training: {summary['training_minutes_total']:.1f} min of {summary['model']} on {device}, "
              f"{summary['iterations']} iterations; A = expressive {SPEAKER}, B = {args.clips_b} s1 clips")
    out.print(report_text(report), highlight=False, markup=False)
    out.print(following_table([("expressive (trained on)", report, "")]))


if __name__ == "__main__":
    main()
