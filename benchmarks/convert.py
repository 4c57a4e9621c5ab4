"""Convert speed: frames/s on a GRID clip, a 512×512 and a 1280×720 version of it, split by stage.

    python benchmarks/convert.py [--model lite] [--device cpu|cuda] [--sizes grid,512,720p] [--frames 75]

Stages are timed one after another on the same frames (decode, detect+align, model, masks,
eyelids+lips, colour+paste, encode); "pipeline" is the real `convert` run, where decode and encode
overlap the rest in threads. The model is trained for one iteration only: speed does not depend
on the weights. Reference point: faceswap converts a 512×512 video with its `original` model at
about 4.4 frames/s on a 2-core CPU; the target here is ≥ 3× that, and ≥ 8 frames/s at 720p with `lite`
on 2 cores (≥ 60 frames/s with `hd` on a GPU).

Last, Content Credentials: a 10-second 720p clip is converted, then signing a file like its output
(the input's hash included) is timed alone; the target is ≤ 5 % of the convert time.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from deepswap.convert import ConvertOptions, convert
from deepswap.convert import FaceReplacer, ReplaceSettings
from deepswap.faces import FaceAnalyzer, IdentityTracker, load_faceset
from deepswap.extract import ExtractOptions, extract
from deepswap.provenance import new_output_id
from deepswap.provenance.credentials import Claim, sign
from deepswap.train import Swapper, TrainOptions, build_model, load_swapper, train
from deepswap.userconfig import signing_identity
from deepswap.video import read_frames
from deepswap.video.writer import VideoWriter
from deepswap.sources import add_sources
from deepswap.workspace import init_workspace

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "src" / "deepswap" / "data" / "grid"
FACESWAP_ORIGINAL_512_FPS = 4.4


def resized_clip(source: Path | list[Path], target: Path, size: str, seconds: float | None = None) -> Path:
    """A copy of a GRID clip (or of clips one after another, up to ``seconds``) at another size:
    '512' (centre square upscaled) or '720p' (letterboxed)."""
    if size == "grid":
        return source
    sources = source if isinstance(source, list) else [source]
    frames = (frame for clip in sources for frame in read_frames(clip))
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=25, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height = (512, 512) if size == "512" else (1280, 720)
        for frame in itertools.islice(frames, round(25 * seconds) if seconds else None):
            image = frame.image
            if size == "512":
                side = min(image.shape[:2])
                x = (image.shape[1] - side) // 2
                image = cv2.resize(image[:, x:x + side], (512, 512), interpolation=cv2.INTER_CUBIC)
            else:
                scaled = cv2.resize(image, (900, 720), interpolation=cv2.INTER_CUBIC)
                image = cv2.copyMakeBorder(scaled, 0, 0, 190, 190, cv2.BORDER_CONSTANT)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return target


def workspace_with_model(folder: Path, model: str, device: str) -> Path:
    root = folder / "ws"
    init_workspace(root, "s1", "lrwp9a")
    add_sources(root, "a", [str(sorted((GRID / "s1").glob("*.mp4"))[0])])
    add_sources(root, "b", [str(GRID / "speakers" / "lrwp9a.mp4")])
    extract(root, ExtractOptions(fps=5))
    train(root, TrainOptions(model=model, iterations=1, batch_size=2, workers=0))
    return root


class StageClock:
    """Seconds spent in some methods of some objects, summed by stage: ``wrap`` replaces a method on
    its instance with a timed call to it (CUDA synchronised, so the GPU's share is counted too)."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.seconds: dict[str, float] = {}

    def wrap(self, owner: object, method: str, stage: str) -> None:
        inner = getattr(owner, method)
        self.seconds[stage] = 0.0

        def timed(*args, **kwargs):
            began = time.perf_counter()
            result = inner(*args, **kwargs)
            if self.device == "cuda":
                torch.cuda.synchronize()
            self.seconds[stage] += time.perf_counter() - began
            return result

        setattr(owner, method, timed)


def stage_times(root: Path, clip: Path, device: str, frames: int) -> dict[str, float]:
    """Seconds per frame of each stage, run one after another. Rendering is split into the model,
    the masks (the learned mask on the footage and on the drawn face, and the drawn face's forehead
    skin test), the eyelids and lips (the drawn face's landmarks where A's eyes close, on every face
    for its mouth, and the warps) and the rest: colour matching (and the footage's skin shown, toned,
    where the model drew hair) and pasting with the footage's detail."""
    swapper = load_swapper(root, device)
    analyzer = FaceAnalyzer(face_size=256)
    identity = load_faceset(root / "a" / "faces").identity()
    replacer = FaceReplacer(analyzer, IdentityTracker(identity, analyzer.encoder), swapper, "b", ReplaceSettings())
    clock = StageClock(device)
    clock.wrap(swapper, "swap", "model")
    clock.wrap(replacer, "footage_probabilities", "masks")
    clock.wrap(replacer, "drawn_face", "masks")
    clock.wrap(replacer, "follow_expression", "eyelids+lips")
    began = time.perf_counter()
    decoded = [frame for _, frame in zip(range(frames), read_frames(clip))]
    decode = time.perf_counter() - began
    began = time.perf_counter()
    located = [replacer.locate(frame) for frame in decoded]
    locate = time.perf_counter() - began
    replacer.render([decoded[0].image], located[:1])  # warm-up
    clock.seconds = dict.fromkeys(clock.seconds, 0.0)
    began = time.perf_counter()
    rendered = []
    for start in range(0, len(decoded), 16):
        rendered += replacer.render([f.image for f in decoded[start:start + 16]], located[start:start + 16])
    render = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        with VideoWriter(Path(scratch) / "out.mp4", fps=25, preset="fast") as writer:
            for image in rendered:
                writer.write(image)
        encode = time.perf_counter() - began
    count = len(decoded)
    return {"decode": decode / count, "detect+align": locate / count,
            **{stage: seconds / count for stage, seconds in clock.seconds.items()},
            "colour+paste": (render - sum(clock.seconds.values())) / count, "encode+watermark+sign": encode / count}


def signing_cost(root: Path, folder: Path, seconds: float = 10.0) -> None:
    """Print the time to sign a 10-second 720p output beside the time to convert it."""
    source = resized_clip(sorted((GRID / "s1").glob("*.mp4")), folder / "clip_720p_10s.mp4", "720p", seconds)
    report = convert(root, source, folder / "signed.mp4", ConvertOptions())
    fresh_input = folder / "unhashed_input.mp4"  # a path not hashed yet: the timing includes hashing the input
    shutil.copyfile(source, fresh_input)
    began = time.perf_counter()
    identity = signing_identity()
    sign(source, folder / "resigned.mp4", Claim(new_output_id(), "out.mp4", "lite", fresh_input), identity)
    signing = time.perf_counter() - began
    size = (folder / "signed.mp4").stat().st_size / 1e6
    print(f"Content Credentials: signing a {seconds:g}-second 720p output ({size:.1f} MB, input {source.stat().st_size / 1e6:.1f} MB) "
          f"takes {1000 * signing:.0f} ms; converting it took {report.seconds:.1f} s ({report.frames} frames) "
          f"→ signing adds {signing / (report.seconds - signing):.2%} (target ≤ 5 %)", flush=True)


def model_stage_fps(model: str, device: str, batch: int = 32, seconds: float = 10.0) -> float:
    """Faces/s of the model stage alone (Swapper.swap on 256-px crops), untrained weights."""
    swapper = Swapper(build_model(model), coverage=0.8, device=torch.device(device), batch_size=batch)
    crops = np.random.default_rng(0).integers(0, 255, (batch, 256, 256, 3), dtype=np.uint8)
    swapper.swap(crops, "b")
    count, began = 0, time.perf_counter()
    while time.perf_counter() - began < seconds:
        swapper.swap(crops, "b")
        count += batch
    return count / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model to time (default: lite on CPU, hd on CUDA)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sizes", default="grid,512,720p")
    parser.add_argument("--frames", type=int, default=75)
    parser.add_argument("--compare-original", action="store_true", help="also time `original` at 512×512 (faceswap's reference)")
    parser.add_argument("--model-only", action="store_true",
                        help="time only the model stage (no face detection/landmark models needed)")
    args = parser.parse_args()
    model = args.model or ("hd" if args.device == "cuda" else "lite")
    print(f"device {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{os.cpu_count()} CPU cores'}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.model_only:
        for name in (model, "original", "lite") if model == "hd" else (model,):
            print(f"model stage {name:8s} {model_stage_fps(name, args.device):8.1f} faces/s (batch 32, 256-px crops)", flush=True)
        return
    runs = [(model, size) for size in args.sizes.split(",")]
    if args.compare_original:
        runs.append(("original", "512"))
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        workspaces: dict[str, Path] = {}
        clip = sorted((GRID / "s1").glob("*.mp4"))[3]
        for name, size in runs:
            if name not in workspaces:
                (folder / name).mkdir()
                workspaces[name] = workspace_with_model(folder / name, name, args.device)
            source = resized_clip(clip, folder / f"clip_{size}.mp4", size)
            times = stage_times(workspaces[name], source, args.device, args.frames)
            out = folder / f"out_{name}_{size}.mp4"
            report = convert(workspaces[name], source, out, ConvertOptions())
            sequential = 1 / sum(times.values())
            split = "  ".join(f"{stage} {1000 * seconds:.1f} ms" for stage, seconds in times.items())
            line = (f"{name:8s} {size:5s}  pipeline {report.fps:6.1f} frames/s, {report.swapped}/{report.frames} swapped  (stages one after another: "
                    f"{sequential:.1f} frames/s = {split})")
            if name == "original" and size == "512":
                line += f"  → {report.fps / FACESWAP_ORIGINAL_512_FPS:.1f}× faceswap's {FACESWAP_ORIGINAL_512_FPS} frames/s"
            print(line, flush=True)
        signing_cost(workspaces[model], folder)


if __name__ == "__main__":
    main()
