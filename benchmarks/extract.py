"""Extract speed and quality on GRID footage: frames/s and faces/s split by step, face yield,
alignment stability and how much embedding the identity tracker saves.

    python benchmarks/extract.py [--clips 20] [--threads 2] [--identity-every 12] [--detect-size 320]

Uses ../shared/data/grid/s1 (or the clips shipped in the package when it is absent).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from deepswap.faces import FaceSet
from deepswap.extract import ExtractOptions, extract
from deepswap.sources import add_sources
from deepswap.workspace import Workspace, init_workspace

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid" / "s1"
PACKAGED = REPO / "src" / "deepswap" / "data" / "grid" / "s1"


def consecutive_jitter(faceset: FaceSet) -> tuple[float, float]:
    """Mean distance (px at the crop size) that aligned landmarks move between consecutive frames:
    over all 68 points, and over the rigid ones (brows, nose, eyes)."""
    all_points, rigid = [], []
    previous: dict[str, tuple[int, np.ndarray]] = {}
    for face in faceset.ids():
        record = faceset.faces[face]
        points = faceset.crop_landmarks(face)
        last = previous.get(record["source"])
        if last is not None and record["frame"] == last[0] + 1:
            moved = np.linalg.norm(points - last[1], axis=1)
            all_points.append(moved.mean())
            rigid.append(moved[17:48].mean())
        previous[record["source"]] = (record["frame"], points)
    return float(np.mean(all_points)), float(np.mean(rigid))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="cv2.setNumThreads (default: OpenCV's choice)")
    parser.add_argument("--identity-every", type=int, default=25)
    parser.add_argument("--detect-size", type=int, default=320)
    parser.add_argument("--face-size", type=int, default=256)
    args = parser.parse_args()
    if args.threads is not None:
        cv2.setNumThreads(args.threads)
    folder = SHARED if SHARED.is_dir() else PACKAGED
    clips = sorted(folder.glob("*.mp4"))
    clips = [clips[round(i * len(clips) / args.clips)] for i in range(args.clips)] if len(clips) > args.clips else clips
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        init_workspace(root, "s1", "nobody")
        workspace = Workspace.open(root)
        workspace.settings["face_size"] = args.face_size
        workspace.save()
        add_sources(root, "a", [str(c) for c in clips])
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        report = extract(root, ExtractOptions(person="a", detect_size=args.detect_size,
                         identity_every=args.identity_every))["a"]
        wall = time.perf_counter() - start
        faceset = FaceSet.load(workspace.faces_dir("a"))
        size_mb = sum(p.stat().st_size for p in workspace.faces_dir("a").rglob("*.png")) / 1e6
        all_jitter, rigid_jitter = consecutive_jitter(faceset)
    loop = sum(seconds for step, seconds in report.times.items() if step != "setup")
    print(f"{len(clips)} clips from {folder}, {report.frames} frames, {report.faces} faces, "
          f"OpenCV threads {cv2.getNumThreads()}, detect size {args.detect_size}, face size {args.face_size}, "
          f"{os.cpu_count()} CPUs, load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after")
    print(f"whole extract: {wall:.1f} s wall = {report.frames / wall:.1f} frames/s, {report.faces / wall:.1f} faces/s")
    print(f"frame loop:    {loop:.1f} s = {report.frames / loop:.1f} frames/s (setup {report.times['setup']:.1f} s: "
          "model loading, identity from a sample)")
    for step, seconds in report.times.items():
        if step != "setup":
            print(f"  {step:10s} {seconds:6.2f} s  {1000 * seconds / max(1, report.frames):6.2f} ms/frame")
    print(f"frames with exactly one aligned face: {100 * report.faces / max(1, report.frames):.2f} % "
          f"(no face {report.skipped_no_face}, other person {report.skipped_other_person})")
    print(f"identity embeddings: {report.embedded} for {report.faces} faces "
          f"(every {args.identity_every} frames on a track; {100 * (1 - report.embedded / max(1, report.faces)):.0f} % saved)")
    print(f"aligned landmark movement between consecutive frames: {all_jitter:.2f} px all 68, "
          f"{rigid_jitter:.2f} px rigid (brows, nose, eyes) at {args.face_size} px")
    print(f"crops + masks on disk: {size_mb:.1f} MB ({1000 * size_mb / max(1, report.faces):.0f} kB per face)")


if __name__ == "__main__":
    main()
