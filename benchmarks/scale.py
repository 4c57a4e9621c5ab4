"""Scaling out: extract of 8 GRID sources, a 60-second 720p video in chunks and a 20-shot batch,
with 1 and 2 local worker processes and on a local 2-CPU Ray cluster.

    python benchmarks/scale.py [--seconds 60] [--chunk-seconds 10] [--shots 20] [--sources 8] [--footage DIR]
                               [--no-ray] [--runs extract,batch,long]

Prints frames/s of each run, the peak resident memory of the driver and of a worker process
(an extract worker's after the extract runs, which come first), and the overhead of cutting and
joining chunks: a chunked run in one process against a single pass, and the keyframe scan alone.
The model is `lite`, trained for one iteration (speed does not depend on the weights). Run it on
an otherwise idle machine; the figures in docs/scale.md come from it.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from convert import GRID, resized_clip  # noqa: E402  (the 720p copies the convert benchmark makes)

from deepswap.convert import ConvertOptions, convert, convert_batch  # noqa: E402
from deepswap.extract import ExtractOptions, extract  # noqa: E402
from deepswap.sources import add_sources  # noqa: E402
from deepswap.train import TrainOptions, train  # noqa: E402
from deepswap.video import keyframe_times  # noqa: E402
from deepswap.workspace import init_workspace  # noqa: E402


def workspace_with_model(folder: Path) -> Path:
    root = folder / "ws"
    init_workspace(root, "s1", "lrwp9a")
    add_sources(root, "a", [str(sorted((GRID / "s1").glob("*.mp4"))[0])])
    add_sources(root, "b", [str(GRID / "speakers" / "lrwp9a.mp4")])
    extract(root, ExtractOptions(fps=5))
    train(root, TrainOptions(model="lite", iterations=1, batch_size=2, workers=0))
    return root


def peak_gib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 2**20


def timed(label: str, run, frames_of) -> float:
    began = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - began
    frames = frames_of(result)
    print(f"{label:<44} {frames:>5} frames in {seconds:6.1f} s = {frames / seconds:5.2f} frames/s", flush=True)
    return seconds


def long_video(root: Path, folder: Path, video: Path, chunk: float, use_ray: bool) -> None:
    convert(root, video, folder / "warm-up.mp4", ConvertOptions(duration=0.4))  # models loaded, caches warm
    name = f"{video.stem}:"
    one_pass = timed(f"{name} one pass (no chunks)",
                     lambda: convert(root, video, folder / "single.mp4", ConvertOptions(chunk_seconds=0)),
                     lambda report: report.frames)
    began = time.perf_counter()
    keyframe_times(video)
    scan = time.perf_counter() - began
    runs = {"1 worker": ConvertOptions(chunk_seconds=chunk, workers=1),
            "2 workers": ConvertOptions(chunk_seconds=chunk, workers=2)}
    if use_ray:
        runs["local Ray cluster, 2 CPUs"] = ConvertOptions(chunk_seconds=chunk, ray="auto")
    seconds = {run: timed(f"{name} {chunk:g} s chunks, {run}",
                          lambda options=options, run=run: convert(root, video, folder / f"{run}.mp4", options),
                          lambda report: report.frames)
               for run, options in runs.items()}
    print(f"long video: 2 workers {seconds['1 worker'] / seconds['2 workers']:.2f}x chunks in one process", flush=True)
    print(f"splitting and joining: {seconds['1 worker'] - one_pass:+.1f} s against one pass "
          f"({(seconds['1 worker'] - one_pass) / one_pass:+.1%}); the keyframe scan alone {scan:.2f} s", flush=True)


def extract_sources(folder: Path, footage: Path, count: int, use_ray: bool) -> None:
    """Extract every frame of ``count`` clips of ``footage``, a person's sources, in one process,
    two workers and on Ray."""
    clips = sorted(path for path in footage.iterdir() if path.suffix in (".mp4", ".mpg"))[:count]
    runs = {"1 worker": ExtractOptions(person="a", workers=1), "2 workers": ExtractOptions(person="a", workers=2)}
    if use_ray:
        runs["local Ray cluster, 2 CPUs"] = ExtractOptions(person="a", ray="auto")
    seconds = {}
    for run, options in runs.items():
        root = folder / f"extract-{run.split(',')[0].replace(' ', '-')}"
        init_workspace(root, "s1", "other")
        add_sources(root, "a", [str(clip) for clip in clips])
        seconds[run] = timed(f"extract of {len(clips)} sources, {run}", lambda root=root, options=options:
                             extract(root, options), lambda reports: reports["a"].frames)
    print(f"extract: 2 workers {seconds['1 worker'] / seconds['2 workers']:.2f}x one process; peak resident memory "
          f"of an extract worker {peak_gib(resource.RUSAGE_CHILDREN):.2f} GiB", flush=True)


def batch(root: Path, folder: Path, shots: int, use_ray: bool) -> None:
    clips = sorted((GRID / "s1").glob("*.mp4"))
    inputs = []
    for k in range(shots):  # distinct files, so that no output is skipped as done
        inputs.append(shutil.copy(clips[k % len(clips)], folder / f"shot{k:02d}.mp4"))
    runs = {"1 worker": ConvertOptions(workers=1), "2 workers": ConvertOptions(workers=2)}
    if use_ray:
        runs["local Ray cluster, 2 CPUs"] = ConvertOptions(ray="auto")
    seconds = {run: timed(f"{shots}-shot batch, {run}",
                          lambda run=run, options=options: convert_batch(root, inputs, folder / f"batch {run}", options),
                          lambda report: report.frames)
               for run, options in runs.items()}
    print(f"batch: 2 workers {seconds['1 worker'] / seconds['2 workers']:.2f}x one process", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--chunk-seconds", type=float, default=10.0)
    parser.add_argument("--shots", type=int, default=20)
    parser.add_argument("--sources", type=int, default=8)
    parser.add_argument("--footage", type=Path, default=GRID / "s1", help="the clips extract takes its sources from")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--runs", default="extract,batch,long")
    arguments = parser.parse_args()
    runs = arguments.runs.split(",")
    use_ray = not arguments.no_ray
    if use_ray:
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="deepswap-scale-") as scratch:
        folder = Path(scratch)
        if "extract" in runs:
            extract_sources(folder, arguments.footage, arguments.sources, use_ray)
        root = workspace_with_model(folder)
        if "batch" in runs:
            batch(root, folder, arguments.shots, use_ray)
        if "long" in runs:
            video = resized_clip(sorted((GRID / "s1").glob("*.mp4")) * 30, folder / f"{arguments.seconds:g}s_720p.mp4",
                                 "720p", arguments.seconds)
            long_video(root, folder, video, arguments.chunk_seconds, use_ray)
    print(f"peak resident memory: this process {peak_gib(resource.RUSAGE_SELF):.2f} GiB, "
          f"largest worker process {peak_gib(resource.RUSAGE_CHILDREN):.2f} GiB", flush=True)


if __name__ == "__main__":
    main()
