"""Watermark visibility, robustness, false positives and cost on GRID footage.

    python benchmarks/watermark.py [--clips 6] [--negatives 40] [--footage DIR | --no-footage] [--only SECTION ...]
                                   [--regions REGION ...] [--attacks TEXT ...]

Visibility is the standard deviation of the luma change the mark adds on flat picture
(``flat_area_visibility``, goal ≤ 0.3 grey levels): on perfectly flat grey frames, on the blue screen
behind the GRID speakers, and over every flat 16×16 block of the frames (std ≤ 2 before marking).
Each clip is written the way convert writes it (every frame watermarked, H.264 crf 18, through
VideoWriter), then attacked; the table gives the worst bit accuracy (48 payload bits), the
worst detection z over the clips, and how many inputs were confirmed with the right id, confirmed
with the id reported unreadable, and confirmed with a wrong id (the goal: none). Marks cover the whole frame or only a region: the tight face
box, or the head (face + hair). Smaller copies are made at the output's own size (360×288 GRID:
the benchmark's clips, and the 11 clips shipped in the package with ``--only shipped``; 640×360
with a small face in a corner; 1920×1080; and 1280×960, the smallest 4:3 frame whose quarter-size
copy keeps 240 lines) by each scaler users' tools use — libswscale's
bilinear, bicubic and area (PyAV's ``reformat``, ffmpeg's ``-sws_flags``), OpenCV's INTER_LINEAR,
INTER_AREA and INTER_CUBIC, Pillow's default — at half size, and at quarter size where the copy
keeps at least 240 lines, each then re-encoded at crf 23 and at crf 28. Unmarked clips, photos and noise give the false-positive z
(threshold Z_THRESHOLD). Cost is per 360×288 and per 1280×720 frame (a GRID clip upscaled), wall clock and CPU time
(the CPU time is the steadier figure on a shared machine).
``--only margins`` calibrates the id's guard (``ID_MARGIN``): every id the reader can decide on
harsh copies of marked clips and on untouched clips, the margins of the wrong ones, and the
convolutional id's margins under simulated Gaussian noise.
The same visibility and robustness figures, whole frame, on the harder footage of ``footage.py``
(720p zoom/pan/roll, a small face in a corner of a wall, two people, a cut), built into ``--footage``.
Uses ../shared/data/grid (or the clips shipped in the package when it is absent).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import av
import cv2
import numpy as np
from PIL import Image

from deepswap.provenance import Watermarker, WatermarkDetector, detect_watermark
from deepswap.provenance import watermark
from deepswap.provenance.watermark import ID_BITS, ID_MARGIN, Z_THRESHOLD, Region, flat_area_visibility
from deepswap.verify import verify_file
from deepswap.video import VideoWriter, read_frames
from footage import DEFAULT_OUT, build_footage

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DEEPSWAP_SHARED_DATA", REPO.parent / "shared" / "data")) / "grid"
PACKAGED = REPO / "src" / "deepswap" / "data" / "grid"
REGIONS = {"whole frame": None, "head box": (95, 70, 265, 270), "face box": (95, 85, 225, 255)}
BLUE_SCREEN = ((8, 20, 64, 140), (296, 20, 352, 140))  # left and right of the speaker, in a 360×288 GRID frame
GRID_SIZE = (288, 360)
GREY_LEVELS = (16, 64, 128, 192, 235)
OUTPUT_ID = "3fa2c1d9"
Frames = list[np.ndarray]


def grid_clips(person: str, count: int) -> list[Path]:
    folder = SHARED / person if (SHARED / person).is_dir() else PACKAGED / person
    return sorted(folder.glob("*.mp4"))[:count]


def frames_of(path: Path | str, **kwargs: float) -> Frames:
    return [frame.image for frame in read_frames(path, **kwargs)]


def encode(frames: Frames, crf: int, folder: Path) -> Frames:
    """Re-encode with plain libx264 (as a re-upload would) and decode again."""
    path = folder / f"attack_{crf}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for frame in frames:
            image = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return frames_of(path)


def swscale(interpolation: str) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    """libswscale, as PyAV's ``VideoFrame.reformat`` and ffmpeg's ``-sws_flags`` use it."""
    def resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
        return video_frame.reformat(*size, interpolation=interpolation).to_ndarray()
    return resize


def opencv(interpolation: int) -> Callable[[np.ndarray, tuple[int, int]], np.ndarray]:
    return lambda frame, size: cv2.resize(frame, size, interpolation=interpolation)


def pillow(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow's default ``Image.resize`` (bicubic, with its support widened as it shrinks)."""
    return np.asarray(Image.fromarray(frame).resize(size))


SCALERS = {
    "swscale bilinear": swscale("BILINEAR"), "swscale bicubic": swscale("BICUBIC"), "swscale area": swscale("AREA"),
    "OpenCV linear": opencv(cv2.INTER_LINEAR), "OpenCV area": opencv(cv2.INTER_AREA),
    "OpenCV cubic": opencv(cv2.INTER_CUBIC), "Pillow default": pillow,
}
QUARTER_FROM = 4 * 240  # lines: a quarter-size copy is tried where it keeps at least 240


def shrink(frames: Frames, scaler: str, factor: int) -> Frames:
    height, width = frames[0].shape[:2]
    return [SCALERS[scaler](frame, (width // factor, height // factor)) for frame in frames]


def jpeg(frame: np.ndarray, quality: int = 75) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def attacks(folder: Path, height: int) -> dict[str, Callable[[Frames], list[Frames]]]:
    """Each attack turns the written frames into one or more inputs for the detector: re-encoding,
    trimming, single frames, and smaller copies made by each scaler (half size, and quarter size
    where the frame keeps at least 240 lines) then re-encoded."""
    table: dict[str, Callable[[Frames], list[Frames]]] = {
        "as written (crf 18)": lambda f: [f],
        "H.264 crf 23": lambda f: [encode(f, 23, folder)],
        "H.264 crf 28": lambda f: [encode(f, 28, folder)],
        "2-s windows + crf 23": lambda f: [encode(f[s: s + 50], 23, folder) for s in range(0, len(f) - 49, 12)],
        "2-s windows + crf 28": lambda f: [encode(f[s: s + 50], 28, folder) for s in range(0, len(f) - 49, 12)],
        "one frame, JPEG q75": lambda f: [[jpeg(frame)] for frame in f[::15]],
        "one frame, crf 28": lambda f: [[frame] for frame in encode(f, 28, folder)[::15]],
    }
    factors = (2, 4) if height >= QUARTER_FROM else (2,)
    for factor in factors:
        for scaler in SCALERS:
            for crf in (23, 28):
                name = f"{'half' if factor == 2 else 'quarter'}, {scaler} + crf {crf}"
                table[name] = lambda f, scaler=scaler, factor=factor, crf=crf: [encode(shrink(f, scaler, factor), crf, folder)]
    return table


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / max(np.mean((a.astype(np.float64) - b) ** 2), 1e-12)))


def flat_grey() -> None:
    watermarker = Watermarker(OUTPUT_ID)
    print("\nflat grey frames (levels " + ", ".join(map(str, GREY_LEVELS)) + "), std added by the mark (goal ≤ 0.3):")
    for height, width in ((288, 360), (720, 1280)):
        stds = []
        for level in GREY_LEVELS:
            grey = np.full((height, width, 3), level, np.uint8)
            stds.append(flat_area_visibility(grey, watermarker.embed(grey.copy())))
        print(f"  {width}×{height}: max {max(stds):.3f} grey levels")


def _crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def small_corner(frame: np.ndarray) -> np.ndarray:
    """A 360×288 GRID frame at 40 % size in the top-left corner of a 640×360 frame of its own
    studio wall, enlarged: a small face on a plain wall."""
    canvas = cv2.resize(frame[4:52, 4:52], (640, 360), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(frame, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    canvas[16:16 + small.shape[0], 16:16 + small.shape[1]] = small
    return canvas


def full_hd(frame: np.ndarray) -> np.ndarray:
    """A GRID frame cropped to 16:9 and enlarged to 1920×1080: tall enough for a quarter-size copy."""
    return cv2.resize(frame[43:245], (1920, 1080), interpolation=cv2.INTER_CUBIC)


def tallest_quartered(frame: np.ndarray) -> np.ndarray:
    """A GRID frame cropped to 4:3 and enlarged to 1280×960: the smallest such frame whose
    quarter-size copy (320×240) keeps 240 lines."""
    return cv2.resize(frame[9:279], (1280, QUARTER_FROM), interpolation=cv2.INTER_CUBIC)


def written_as_convert(frames: Frames, folder: Path, region: Region = None) -> Frames:
    """The frames marked and written the way convert writes them (H.264 crf 18), read back."""
    marked = folder / "marked.mp4"
    with VideoWriter(marked, 25, output_id=OUTPUT_ID) as writer:
        for frame in frames:
            writer.write(frame, region)
    return frames_of(marked)


def robustness(clips: list[Path], folder: Path, regions: dict[str, Region] = REGIONS,
               framing: Callable[[np.ndarray], np.ndarray] | None = None, kept: tuple[str, ...] = ("",)) -> None:
    """Mark each clip as convert writes it (``framing``: how its frames are laid out first), attack
    it, and print the worst bits right and z per attack over the clips (the attacks whose name
    contains any text of ``kept``)."""
    bits = Watermarker(OUTPUT_ID).bits
    for name, region in regions.items():
        worst: dict[str, tuple[float, float, int, int, int, int]] = {}
        lowest_psnr, flat, screen = np.inf, [], []
        for clip in clips:
            original = [framing(frame) for frame in frames_of(clip)] if framing else frames_of(clip)
            written = written_as_convert(original, folder, region)
            watermarker = Watermarker(OUTPUT_ID)
            x0, y0, x1, y1 = region or (0, 0, original[0].shape[1], original[0].shape[0])
            crop = (slice(y0, y1), slice(x0, x1))
            for frame in original[::25]:
                marked_frame = watermarker.embed(frame.copy(), region)
                lowest_psnr = min(lowest_psnr, psnr(frame[crop], marked_frame[crop]))
                flat.append(flat_area_visibility(frame[crop], marked_frame[crop]))
                if frame.shape[:2] == GRID_SIZE:
                    screen += [flat_area_visibility(_crop(frame, box), _crop(marked_frame, box)) for box in BLUE_SCREEN]
            for attack, make in attacks(folder, original[0].shape[0]).items():
                if not any(text in attack for text in kept):
                    continue
                for inputs in make(written):
                    result = detect_watermark(inputs)
                    accuracy, z, right, unreadable, wrong, tried = worst.get(attack, (1.0, np.inf, 0, 0, 0, 0))
                    worst[attack] = (min(accuracy, float(np.mean(result.bits == bits))), min(z, result.confidence),
                                     right + (result.found and result.output_id == OUTPUT_ID),
                                     unreadable + (result.found and result.output_id is None),
                                     wrong + (result.found and result.output_id not in (OUTPUT_ID, None)), tried + 1)
        print(f"\n{name}: {len(clips)} clips, PSNR ≥ {lowest_psnr:.1f} dB inside the marked area; std added on flat "
              f"picture (goal ≤ 0.3): blue screen ≤ {_largest(screen)}, any flat 16×16 block of the area ≤ {_largest(flat)} grey levels")
        print(f"  {'attack':36s} {'bits right (worst)':>19s} {'z (worst)':>10s} {'detected, right id':>19s} "
              f"{'id unreadable':>14s} {'wrong id':>9s}")
        for attack, (accuracy, z, right, unreadable, wrong, tried) in worst.items():
            print(f"  {attack:36s} {100 * accuracy:18.1f}% {z:10.1f} {right:>12d} of {tried} {unreadable:>14d} {wrong:>9d}")


MARGIN_STEPS = (0.6, 0.8, 1.0, 1.2)
HARSH_SCALERS = ("swscale bilinear", "OpenCV area", "Pillow default")


def id_margins(clips: list[Path], negatives: list[Path], folder: Path) -> None:
    """How clearly wrong ids are read, against ``ID_MARGIN``: every id the reader can decide (each
    grid and pair, confirmed or not: ``WatermarkDetector.id_decisions``) on harsh copies of marked
    clips (half size by three scalers, then crf 28 and 33; each copy whole and one frame a second)
    and on untouched clips; then the same for the convolutional id under Gaussian noise."""
    right, wrong, unmarked = [], [], []
    for clip in clips:
        written = written_as_convert(frames_of(clip), folder)
        for scaler in HARSH_SCALERS:
            for crf in (28, 33):
                copy = encode(shrink(written, scaler, 2), crf, folder)
                for inputs in [copy] + [[frame] for frame in copy[::25]]:
                    for decision in _decisions(inputs):
                        (right if decision.output_id == OUTPUT_ID else wrong).append(decision)
    for clip in negatives:
        unmarked += _decisions(frames_of(clip))
    print(f"\nid margins (ID_MARGIN {ID_MARGIN}), every id decided on {len(clips)} marked clips' harsh copies "
          f"and {len(negatives)} untouched clips:")
    convolutional = [decision for decision in wrong if "conv" in decision.grids]
    for name, decisions in (("wrong ids, marked copies", wrong), ("  on convolutional grids", convolutional),
                            ("  confirmed (z ≥ 8)", _confirmed(wrong)), ("ids decided on untouched clips", unmarked),
                            ("right ids, marked copies", right), ("  confirmed (z ≥ 8)", _confirmed(right))):
        margins = np.array([decision.margin for decision in decisions] or [0.0])
        counts = ", ".join(f"≥ {step}: {int((margins >= step).sum())}" for step in MARGIN_STEPS)
        print(f"  {name:32s} {len(decisions):5d}, largest margin {margins.max():.2f}; {counts}")
    clearest = sorted(wrong + unmarked, key=lambda decision: -decision.margin)[:3]
    print("  clearest wrong ids: " + "; ".join(f"{d.grids} z {d.confidence:.1f} margin {d.margin:.2f}" for d in clearest))
    simulated_margins()


def _decisions(frames: Frames) -> list:
    detector = WatermarkDetector()
    for frame in frames:
        detector.add(frame)
    return detector.id_decisions()


def _confirmed(decisions: list) -> list:
    return [decision for decision in decisions if decision.confidence >= Z_THRESHOLD]


def simulated_margins(trials: int = 400, seed: int = 0) -> None:
    """The convolutional id's margins under Gaussian noise of known variance: per symbol amplitude
    (in noise std), how often the id is read right past ``ID_MARGIN`` and how often a wrong id
    clears each margin."""
    rng = np.random.default_rng(seed)
    print(f"  convolutional id, Gaussian noise, {trials} random ids per amplitude: read right; wrong ids clearing a margin")
    for amplitude in (0.5, 0.7, 0.9, 1.1, 1.3, 1.6, 2.0):
        read, wrong = 0, []
        for _ in range(trials):
            id_bits = rng.integers(0, 2, ID_BITS).astype(np.uint8)
            symbols = 1 - 2.0 * watermark._convolutional_encode(id_bits)
            decoded, margin = watermark._convolutional_read(amplitude * symbols + rng.normal(size=len(symbols)),
                                                           np.ones(len(symbols)))
            if np.array_equal(decoded, id_bits):
                read += margin >= ID_MARGIN
            else:
                wrong.append(margin)
        counts = ", ".join(f"≥ {step}: {sum(margin >= step for margin in wrong)}" for step in MARGIN_STEPS)
        print(f"    amplitude {amplitude}: read {100 * read / trials:5.1f} %, wrong {len(wrong):4d} "
              f"(largest margin {max(wrong, default=0.0):.2f}; {counts})")


def _largest(values: list[float | None]) -> str:
    known = [value for value in values if value is not None]
    return f"{max(known):.3f}" if known else "n/a"


def false_positives(negatives: list[Path], folder: Path) -> None:
    print(f"\nfalse positives (threshold z ≥ {Z_THRESHOLD}):")
    zs = [verify_file(clip).watermark.confidence for clip in negatives]
    print(f"  {len(negatives)} untouched GRID clips: max z {max(zs):.1f}, mean {np.mean(zs):.1f}, "
          f"marked {sum(verify_file(c).synthetic for c in negatives[:5])} of first 5")
    recoded = [max(detect_watermark(encode(frames_of(clip), crf, folder)).confidence for crf in (18, 28))
               for clip in negatives[:10]]
    print(f"  {len(recoded)} GRID clips re-encoded at crf 18 / 28: max z {max(recoded):.1f}")
    photos = sorted((REPO / "tests" / "data").glob("*.[pj][np]g"))
    print("  photos: " + ", ".join(f"{p.name} z {verify_file(p).watermark.confidence:.1f}" for p in photos))
    rng = np.random.default_rng(0)
    noise = [detect_watermark([rng.integers(0, 256, (288, 360, 3), dtype=np.uint8)]).confidence for _ in range(50)]
    print(f"  50 random-noise frames: max z {max(noise):.1f}")


def cost(clip: Path) -> None:
    small = frames_of(clip, duration=1.2)
    frames = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in small]
    watermarker = Watermarker(OUTPUT_ID)
    cpu = time.process_time()
    for frame in small:
        watermarker.embed(frame)
    print(f"\ncost per 360×288 frame: embed CPU {1000 * (time.process_time() - cpu) / len(small):.2f} ms")
    face = (320, 210, 800, 700)
    print("\ncost per 1280×720 frame:")
    for threads in (1, cv2.getNumberOfCPUs()):
        cv2.setNumThreads(threads)
        copies = [f.copy() for f in frames]
        watermarker.embed(copies[0].copy())
        started, cpu = time.perf_counter(), time.process_time()
        for frame in copies:
            watermarker.embed(frame)
        embed_ms = 1000 * (time.perf_counter() - started) / len(copies)
        embed_cpu_ms = 1000 * (time.process_time() - cpu) / len(copies)
        started = time.perf_counter()
        for frame in [f.copy() for f in frames]:
            watermarker.embed(frame, face)
        region_ms = 1000 * (time.perf_counter() - started) / len(frames)
        detector = WatermarkDetector()
        started = time.perf_counter()
        for frame in copies:
            detector.add(frame)
        found = detector.result()
        detect_ms = 1000 * (time.perf_counter() - started) / len(copies)
        print(f"  {threads} OpenCV thread(s): embed {embed_ms:.2f} ms, CPU {embed_cpu_ms:.2f} ms (face box {region_ms:.2f} ms), "
              f"decode {detect_ms:.2f} ms  [found {found.found}, z {found.confidence:.1f}]")


SECTIONS = ["cost", "flat", "grid", "shipped", "corner", "hd", "960", "footage", "negatives", "margins"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=6, help="clips marked and attacked (s1 + other speakers)")
    parser.add_argument("--negatives", type=int, default=40, help="untouched clips checked for false positives")
    parser.add_argument("--footage", type=Path, default=DEFAULT_OUT, help="folder of the harder footage (built if missing)")
    parser.add_argument("--no-footage", action="store_true", help="GRID clips only")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS, help="sections to run (all by default)")
    parser.add_argument("--regions", nargs="+", choices=list(REGIONS), default=list(REGIONS),
                        help="what the grid section marks (all by default)")
    parser.add_argument("--attacks", nargs="+", default=[""], metavar="TEXT",
                        help="only the attacks whose name contains one of these, e.g. 'crf 28' (all by default)")
    args = parser.parse_args()
    kept = tuple(args.attacks)
    speakers = grid_clips("speakers", args.clips // 2)
    clips = grid_clips("s1", args.clips - len(speakers)) + speakers
    shipped = sorted(PACKAGED.glob("*/*.mp4"))
    with tempfile.TemporaryDirectory() as tmp:
        sections = {
            "cost": lambda: cost(clips[0]),
            "flat": flat_grey,
            "grid": lambda: robustness(clips, Path(tmp), {name: REGIONS[name] for name in args.regions}, kept=kept),
            "corner": lambda: robustness(clips, Path(tmp), {"640×360, a small face in a corner (whole frame)": None}, small_corner, kept),
            "shipped": lambda: robustness(shipped, Path(tmp), {"the 11 shipped GRID clips (whole frame)": None}, kept=kept),
            "hd": lambda: robustness(clips[:1], Path(tmp), {"1920×1080, a GRID clip enlarged (whole frame)": None}, full_hd, kept),
            "960": lambda: robustness(clips[:1], Path(tmp), {"1280×960, a GRID clip enlarged (whole frame)": None},
                                      tallest_quartered, kept),
            "footage": lambda: args.no_footage or robustness([footage.path for footage in build_footage(args.footage)], Path(tmp),
                                                             {"whole frame, harder footage (zoom_pan_roll, small_corner, two_people, cut)": None},
                                                             kept=kept),
            "negatives": lambda: false_positives(
                grid_clips("s1", args.negatives + args.clips)[args.clips:] or grid_clips("speakers", 10), Path(tmp)),
            "margins": lambda: id_margins(clips, grid_clips("s1", args.clips + 10)[args.clips:], Path(tmp)),
        }
        for name in SECTIONS:
            if name in args.only:
                sections[name]()


if __name__ == "__main__":
    main()
