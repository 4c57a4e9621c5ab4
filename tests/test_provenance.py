"""Provenance: the synthetic label and the invisible watermark survive what happens to shared videos,
the watermark cannot be seen on flat picture, and nothing unmarked is reported as marked."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deepswap.cli import app
from deepswap.errors import DeepswapError
from deepswap.provenance import (LABEL, WatermarkDetector, Watermarker, detect_watermark, new_output_id, parse_label,
                                 provenance_label, read_label)
from deepswap.provenance.watermark import (CODED, FINE, GOLAY_JOINT, ID_MARGIN, Z_THRESHOLD, WatermarkResult, _decode, _encode,
                                           _golay_codewords, _read_id, flat_area_visibility, pixel_texture)
from deepswap.verify import verify_file
from deepswap.video import VideoWriter, read_frames, write_image

OUTPUT_ID = "3fa2c1d9"
FIRST_GRID_MARK = Path(__file__).parent / "data" / "legacy" / "marked_first_grid.jpg"  # marked before the fine grid
GOLAY_SMALL_FRAME_MARK = Path(__file__).parent / "data" / "legacy" / "marked_small_frame_golay.jpg"  # a 360×288 frame, stop 38's mark
STRONG_Z = 1.5 * Z_THRESHOLD  # what the attacks of issue 14 must leave: well above the threshold
INVISIBLE = 0.3  # grey levels of std the mark may add on flat picture (issue 14)
BLUE_SCREEN = ((8, 20, 64, 140), (296, 20, 352, 140))  # left and right of a GRID speaker (360×288)
ATTACKED_CLIPS = ["bbaf2n", "swiz3n"]  # an s1 clip, and the shipped speaker with the least texture


def encode(frames: list[np.ndarray], path: Path, crf: int, fps: int = 25, metadata: dict[str, str] | None = None) -> Path:
    """Plain libx264 encode (what a re-upload does) — not through deepswap's writer; ``metadata``:
    container tags to write."""
    with av.open(str(path), "w") as container:
        container.metadata.update(metadata or {})
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = frames[0].shape[0] // 2 * 2, frames[0].shape[1] // 2 * 2
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
        for frame in frames:
            image = np.ascontiguousarray(frame[: stream.height, : stream.width])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    return path


def images(path: Path, **kwargs: float) -> list[np.ndarray]:
    return [frame.image for frame in read_frames(path, **kwargs)]


def half(frame: np.ndarray) -> np.ndarray:
    return cv2.resize(frame, (frame.shape[1] // 2, frame.shape[0] // 2), interpolation=cv2.INTER_AREA)


def jpeg(frame: np.ndarray, quality: int = 75) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def bit_accuracy(frames: list[np.ndarray]) -> float:
    result = detect_watermark(frames)
    assert result.found and result.output_id == OUTPUT_ID
    return float(np.mean(result.bits == Watermarker(OUTPUT_ID).bits))


def decoded(frames: list[np.ndarray]) -> WatermarkResult:
    """The detector's result, checked: found, every one of the 48 bits right."""
    result = detect_watermark(frames)
    assert result.found and result.output_id == OUTPUT_ID
    assert np.array_equal(result.bits, Watermarker(OUTPUT_ID).bits)
    return result


def confirmed_never_wrong(result: WatermarkResult) -> WatermarkResult:
    """Confirmed, and its id either read right or reported unreadable: never a wrong id."""
    assert result.found and result.output_id in (OUTPUT_ID, None)
    assert result.output_id is not None or result.id_confidence < ID_MARGIN
    return result


def crop(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255**2 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.fixture(scope="module")
def original(s1_clips: list[Path]) -> list[np.ndarray]:
    return images(s1_clips[0])


@pytest.fixture(scope="module")
def marked(original: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What convert writes: every frame of a GRID clip watermarked, H.264 crf 18, labelled."""
    path = tmp_path_factory.mktemp("marked") / "swapped.mp4"
    with VideoWriter(path, 25, replaced_person="s1", output_id=OUTPUT_ID) as writer:
        for frame in original:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def marked_frames(marked: Path) -> list[np.ndarray]:
    return images(marked)


@pytest.fixture(scope="module", params=ATTACKED_CLIPS)
def clip(request: pytest.FixtureRequest, s1_clips: list[Path], speaker_clips: list[Path]) -> Path:
    return next(path for path in s1_clips + speaker_clips if path.stem == request.param)


@pytest.fixture(scope="module")
def written(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GRID clip as convert writes it (every frame watermarked, H.264 crf 18)."""
    path = tmp_path_factory.mktemp("written") / f"{clip.stem}.mp4"
    with VideoWriter(path, 25, output_id=OUTPUT_ID) as writer:
        for frame in images(clip):
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def written_frames(written: Path) -> list[np.ndarray]:
    return images(written)


def test_new_output_ids_are_distinct_32_bit_hex() -> None:
    ids = {new_output_id() for _ in range(100)}
    assert len(ids) == 100 and all(len(i) == 8 and int(i, 16) >= 0 for i in ids)


def test_watermark_is_imperceptible(original: list[np.ndarray]) -> None:
    watermarker = Watermarker(OUTPUT_ID)
    for frame in original[::25]:
        assert psnr(frame, watermarker.embed(frame.copy())) >= 40.0


@pytest.mark.parametrize("size", [(288, 360), (720, 1280), (64, 64)])
def test_flat_grey_frames_are_left_as_they_are(size: tuple[int, int]) -> None:
    watermarker = Watermarker(OUTPUT_ID)
    for level in (0, 16, 128, 235, 255):
        grey = np.full((*size, 3), level, np.uint8)
        assert flat_area_visibility(grey, watermarker.embed(grey.copy())) <= INVISIBLE


def test_flat_picture_of_real_footage_gets_no_visible_mark(clip: Path) -> None:
    watermarker = Watermarker(OUTPUT_ID)
    for frame in images(clip)[::25]:
        marked = watermarker.embed(frame.copy())
        assert flat_area_visibility(frame, marked) <= INVISIBLE
        for box in BLUE_SCREEN:
            assert flat_area_visibility(crop(frame, box), crop(marked, box)) <= INVISIBLE
        assert psnr(frame, marked) < 60, "the busy parts of the frame carry the mark"


def enlarged(frame: np.ndarray) -> np.ndarray:
    """A GRID frame as a 720p camera would frame it zoomed in: 3.5× larger, so one chip of the
    mark's grid spans many smooth pixels."""
    return cv2.resize(frame[4:-4, 4:-4], None, fx=3.5, fy=3.5, interpolation=cv2.INTER_CUBIC)[:720, :1280]


def small_on_a_wall(frame: np.ndarray) -> np.ndarray:
    """A GRID frame at 40 % size in the corner of a 640×512 frame of its own studio wall, enlarged."""
    canvas = cv2.resize(frame[4:52, 4:52], (640, 512), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(frame, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    canvas[16:16 + small.shape[0], 16:16 + small.shape[1]] = small
    return canvas


@pytest.mark.parametrize("framing", [enlarged, small_on_a_wall])
def test_smooth_picture_of_enlarged_footage_gets_no_visible_mark(original: list[np.ndarray], framing) -> None:
    watermarker = Watermarker(OUTPUT_ID)
    for frame in original[::25]:
        picture = framing(frame)
        marked = watermarker.embed(picture.copy())
        assert flat_area_visibility(picture, marked) <= INVISIBLE
        assert psnr(picture, marked) < 60, "the busy parts of the frame carry the mark"


def test_enlarged_footage_still_carries_the_mark(original: list[np.ndarray]) -> None:
    watermarker = Watermarker(OUTPUT_ID)
    marked = [watermarker.embed(enlarged(frame)) for frame in original[:25]]
    result = detect_watermark(marked)
    assert result.found and result.output_id == OUTPUT_ID


@pytest.fixture(scope="module")
def wall_written(original: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small face on a plain wall (a GRID clip at 40 % in a corner of 640×512), as convert writes it."""
    path = tmp_path_factory.mktemp("wall") / "small_face.mp4"
    with VideoWriter(path, 25, output_id=OUTPUT_ID) as writer:
        for frame in original:
            writer.write(small_on_a_wall(frame))
    return path


WALL_ATTACKS = {
    "as written": lambda path, tmp: images(path),
    "H.264 crf 28": lambda path, tmp: images(encode(images(path), tmp / "crf28.mp4", 28)),
    "half size": lambda path, tmp: [half(frame) for frame in images(path)],
    "2 s, crf 28": lambda path, tmp: images(encode(images(path, start=0.5, duration=2.0), tmp / "trim.mp4", 28)),
    "one frame, JPEG q75": lambda path, tmp: [jpeg(images(path)[40], 75)],
}


@pytest.mark.parametrize("attack", WALL_ATTACKS)
def test_small_face_on_a_plain_wall_carries_the_whole_mark(wall_written: Path, tmp_path: Path, attack: str) -> None:
    """Only ~5 % of the frame is busy enough to carry the mark: the fine grid carries it, and the
    Golay-coded id still decodes bit for bit after each attack of issue 14 but crf 28, after which
    its weakest code block is read too close to its runner-up (under ``ID_MARGIN`` noise std) for
    the reader to vouch for it: the id may then be reported unreadable, never wrong (issue 35)."""
    frames = WALL_ATTACKS[attack](wall_written, tmp_path)
    if "crf 28" in attack:
        confirmed_never_wrong(detect_watermark(frames))
    else:
        decoded(frames)


def small_in_a_corner(frame: np.ndarray) -> np.ndarray:
    """A GRID frame at 40 % size in the corner of a 640×360 frame of its own studio wall, enlarged:
    a frame too small for the fine grid, with a small face on a plain wall."""
    canvas = cv2.resize(frame[4:52, 4:52], (640, 360), interpolation=cv2.INTER_CUBIC)
    small = cv2.resize(frame, None, fx=0.4, fy=0.4, interpolation=cv2.INTER_AREA)
    canvas[16:16 + small.shape[0], 16:16 + small.shape[1]] = small
    return canvas


def test_small_face_in_a_corner_of_a_small_frame_survives_half_size(original: list[np.ndarray], tmp_path: Path) -> None:
    """Issue 35: a 640×360 frame whose only busy picture is a small face in a corner, halved by
    swscale's default scaler and re-encoded at crf 23, is still confirmed (on the two grids of
    larger frames of its size: z 4.8); its id may be unreadable, never wrong."""
    watermarker = Watermarker(OUTPUT_ID)
    marked = [watermarker.embed(small_in_a_corner(frame)) for frame in original[:25]]
    small = [SCALERS["swscale bilinear"](frame, (320, 180)) for frame in marked]
    confirmed_never_wrong(detect_watermark(images(encode(small, tmp_path / "half.mp4", 23))))


def test_fine_grid_id_code_corrects_3_wrong_bits_per_block() -> None:
    """The id's Golay codewords differ in at least 8 of their 24 bits, so any 3 wrong readings of a
    block still decode to the payload."""
    weights = _golay_codewords().sum(axis=1)
    assert len(weights) == 4096 and sorted(set(weights)) == [0, 8, 12, 16, 24]  # linear: distance = weight
    payload = Watermarker(OUTPUT_ID).bits
    soft = 1 - 2.0 * _encode(FINE, payload)
    rng = np.random.default_rng(5)
    for block in range(3):
        soft[16 + 24 * block + rng.choice(24, 3, replace=False)] *= -1
    assert np.array_equal(_decode(FINE, soft), payload)


def test_marks_of_the_first_grid_design_still_verify() -> None:
    report = verify_file(FIRST_GRID_MARK)
    assert report.synthetic and report.watermark.output_id == OUTPUT_ID


def test_small_frame_marks_with_golay_coded_ids_still_verify() -> None:
    """A 360×288 frame marked before its id was one convolutional codeword (its id in 3 Golay
    blocks, JPEG q90) is still read with its id."""
    report = verify_file(GOLAY_SMALL_FRAME_MARK)
    assert report.synthetic and report.watermark.output_id == OUTPUT_ID


def noisy_symbols(grid, weak: slice, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A grid's symbols for OUTPUT_ID read at amplitude 2 in unit noise, those in ``weak`` (id
    symbols) at 0.5: a third of the id read from chips that lost most of the mark."""
    signs = 1 - 2.0 * _encode(grid, Watermarker(OUTPUT_ID).bits)
    amplitude = np.full(len(signs), 2.0)
    amplitude[16:][weak] = 0.5
    return amplitude * signs + rng.normal(size=len(signs)), np.ones(len(signs))


def test_convolutional_id_code_corrects_any_4_wrong_symbols() -> None:
    """The id's convolutional codewords differ in at least 10 of their 64 symbols (free distance 10),
    so any 4 wrong readings still decode to the payload, with a positive margin."""
    payload = Watermarker(OUTPUT_ID).bits
    rng = np.random.default_rng(11)
    for _ in range(10):
        soft = 1 - 2.0 * _encode(CODED, payload)
        soft[16 + rng.choice(64, 4, replace=False)] *= -1
        bits, margin = _read_id(CODED, soft, np.ones(len(soft)))
        assert np.array_equal(bits, payload) and margin > 0


def test_a_weak_third_of_the_id_is_decided_with_the_rest() -> None:
    """Issue 35: at half size + crf 28 one Golay block in three was read too weakly to vouch for,
    and the id was unreadable though every block was right. The convolutional code spreads every id
    bit over symbols dealt all over the picture, so a third of its symbols read weakly are outvoted:
    over the same noise, Golay's id is vouched for less often and the new code's never wrongly."""
    rng = np.random.default_rng(2)
    payload = Watermarker(OUTPUT_ID).bits
    vouched = {"golay": 0, "convolutional": 0}
    for _ in range(40):
        for name, grid, weak in (("golay", GOLAY_JOINT[1], slice(24, 48)), ("convolutional", CODED, slice(0, 64, 3))):
            bits, margin = _read_id(grid, *noisy_symbols(grid, weak, rng))
            if margin >= ID_MARGIN:
                assert np.array_equal(bits[16:], payload[16:])
                vouched[name] += 1
    assert vouched["convolutional"] >= vouched["golay"] + 10, vouched


def test_pixel_veto_is_zero_on_flat_picture_and_one_on_busy_picture() -> None:
    rng = np.random.default_rng(3)
    for size in ((288, 360), (720, 1280)):
        flat = np.full(size, 90, np.uint8) + rng.integers(0, 2, size, dtype=np.uint8)
        assert pixel_texture(flat).max() == 0
        busy = rng.integers(0, 256, size, dtype=np.uint8)
        assert pixel_texture(busy).min() == 1
        half = np.concatenate([flat[:, : size[1] // 2], busy[:, size[1] // 2:]], axis=1)
        veto = pixel_texture(half)
        middle, margin = veto.shape[1] // 2, veto.shape[1] // 16
        assert veto[:, : middle - margin].max() == 0 and veto[:, middle + margin:].min() == 1


def test_flat_area_visibility_is_the_std_added_on_flat_blocks() -> None:
    grey = np.full((64, 64, 3), 100, np.uint8)
    checkered = grey.copy()
    checkered[::2, ::2] += 1
    checkered[1::2, 1::2] += 1
    assert flat_area_visibility(grey, checkered) == pytest.approx(0.5)
    busy = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    assert flat_area_visibility(busy, busy // 2) is None
    half_busy = np.concatenate([grey[:32], busy[32:]])
    changed = np.concatenate([grey[:32], busy[32:] // 2])
    assert flat_area_visibility(half_busy, changed) == 0.0


@pytest.mark.parametrize("shape", ["box", "mask"])
def test_region_mark_changes_only_the_region_and_is_found(original: list[np.ndarray], shape: str) -> None:
    box = (95, 70, 265, 270)  # the face and hair of the GRID speaker, about a third of the frame
    inside = np.zeros(original[0].shape[:2], np.uint8)
    centre, axes = ((box[0] + box[2]) // 2, (box[1] + box[3]) // 2), ((box[2] - box[0]) // 2, (box[3] - box[1]) // 2)
    cv2.ellipse(inside, centre, axes, 0, 0, 360, 255, -1)
    if shape == "box":
        inside[:] = 0
        inside[box[1]:box[3], box[0]:box[2]] = 255
    watermarker = Watermarker(OUTPUT_ID)
    marked = [watermarker.embed(frame.copy(), region=box if shape == "box" else inside) for frame in original[:10]]
    outside = inside == 0
    assert np.array_equal(marked[0][outside], original[0][outside])
    assert psnr(original[0][~outside], marked[0][~outside]) >= 40.0
    assert bit_accuracy(marked) == 1.0


def test_output_is_labelled_and_marked(marked: Path, marked_frames: list[np.ndarray]) -> None:
    label = read_label(marked)
    assert label is not None and label.replaced_person == "s1" and label.output_id == OUTPUT_ID
    assert label.version and label.date
    assert bit_accuracy(marked_frames) == 1.0


@pytest.mark.parametrize("crf", [23, 28])
def test_survives_h264_reencode(written_frames: list[np.ndarray], tmp_path: Path, crf: int) -> None:
    reencoded = encode(written_frames, tmp_path / f"crf{crf}.mp4", crf)
    assert decoded(images(reencoded)).confidence >= STRONG_Z


def test_survives_half_size_downscale_and_reencode(written_frames: list[np.ndarray], tmp_path: Path) -> None:
    small = [half(frame) for frame in written_frames]
    assert decoded(small).confidence >= STRONG_Z
    assert decoded(images(encode(small, tmp_path / "half.mp4", 23))).confidence >= STRONG_Z


def swscale(interpolation: str):
    """libswscale with one of its scalers, as PyAV's ``reformat`` and ffmpeg's ``-sws_flags`` use it."""
    return lambda frame, size: av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(
        *size, interpolation=interpolation).to_ndarray()


def opencv(interpolation: int):
    return lambda frame, size: cv2.resize(frame, size, interpolation=interpolation)


SCALERS = {
    "swscale bilinear": swscale("BILINEAR"), "swscale bicubic": swscale("BICUBIC"), "swscale area": swscale("AREA"),
    "OpenCV linear": opencv(cv2.INTER_LINEAR), "OpenCV area": opencv(cv2.INTER_AREA),
    "OpenCV cubic": opencv(cv2.INTER_CUBIC),
    "Pillow default": lambda frame, size: np.asarray(Image.fromarray(frame).resize(size)),
}


@pytest.mark.slow
@pytest.mark.parametrize("crf", [23, 28])
@pytest.mark.parametrize("scaler", SCALERS)
def test_half_size_copy_made_by_any_common_scaler_is_confirmed(written_frames: list[np.ndarray], tmp_path: Path,
                                                                scaler: str, crf: int) -> None:
    """Issue 35: a 360×288 output halved the way common tools do it and re-encoded is still confirmed
    (before, at crf 28, swscale's bilinear, which blurs over 4 pixels, left z 5.8 and 5.2 on these clips).
    At crf 23 its id is read right too; at crf 28 on bbaf2n by every scaler, on swiz3n, the shipped
    clip with the least texture, by 2 to 5 of 7 from one encode to the next (docs/watermark.md)."""
    size = (written_frames[0].shape[1] // 2, written_frames[0].shape[0] // 2)
    small = [SCALERS[scaler](frame, size) for frame in written_frames]
    result = confirmed_never_wrong(detect_watermark(images(encode(small, tmp_path / "half.mp4", crf))))
    if crf == 23:
        assert result.output_id == OUTPUT_ID


@pytest.fixture(scope="module")
def halved_at_crf_28(marked_frames: list[np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The 360×288 output halved by swscale's default scaler and re-encoded at crf 28."""
    size = (marked_frames[0].shape[1] // 2, marked_frames[0].shape[0] // 2)
    small = [SCALERS["swscale bilinear"](frame, size) for frame in marked_frames]
    return images(encode(small, tmp_path_factory.mktemp("halved") / "half.mp4", 28))


def test_half_size_copy_at_crf_28_keeps_its_id(halved_at_crf_28: list[np.ndarray]) -> None:
    """Issue 35: a 360×288 output halved by swscale's default scaler and re-encoded at crf 28 is
    read with its id (margin 2.6). With the id in three Golay blocks, each vouched for alone, one
    weak block left such copies' ids unreadable on about half of the clips."""
    result = detect_watermark(halved_at_crf_28)
    assert result.found and result.output_id == OUTPUT_ID


def test_wrong_ids_the_reader_decides_stay_under_the_id_margin(halved_at_crf_28: list[np.ndarray]) -> None:
    """Every id the reader can decide on that copy, confirmed or not (each grid at each width read,
    and each pair): the 24-row grid the frame was marked on is confirmed with the right id past
    ``ID_MARGIN``; the other grids, whose keyed dithers owe nothing to the picture, decide wrong
    ids, none of them as clearly as ``ID_MARGIN`` asks (the guard's calibration:
    ``benchmarks/watermark.py --only margins``)."""
    detector = WatermarkDetector()
    for frame in halved_at_crf_28:
        detector.add(frame)
    decisions = detector.id_decisions()
    assert any(decision.grids.startswith("large-conv:") and decision.output_id == OUTPUT_ID
               and decision.margin >= ID_MARGIN and decision.confidence >= Z_THRESHOLD for decision in decisions)
    wrong = [decision.margin for decision in decisions if decision.output_id != OUTPUT_ID]
    assert len(wrong) >= 10 and max(wrong) < ID_MARGIN


@pytest.mark.parametrize("index", [0, 37])
def test_single_frame_halved_by_swscale_default_keeps_its_id(original: list[np.ndarray], index: int) -> None:
    """Issue 35: one marked 360×288 frame, halved by swscale's default scaler (bilinear: a 4-pixel
    tent that mixes neighbouring chips) and saved as JPEG q75, is confirmed with its id read. The
    24-row grid is placed where such a copy measures it; placed at full size, these two frames'
    ids were unreadable (margins 0.65 and 0.94 against ``ID_MARGIN`` 1.2)."""
    frame = Watermarker(OUTPUT_ID).embed(original[index].copy())
    small = SCALERS["swscale bilinear"](frame, (frame.shape[1] // 2, frame.shape[0] // 2))
    result = detect_watermark([jpeg(small, 75)])
    assert result.found and result.output_id == OUTPUT_ID


@pytest.mark.slow
def test_quarter_size_copy_of_a_full_hd_output_at_crf_28_keeps_its_id(original: list[np.ndarray], tmp_path: Path) -> None:
    """Issue 35: a 1920×1080 output shrunk to 480×270 by swscale's default scaler and re-encoded at
    crf 28 is confirmed with its id. Large frames carry the coarse grid; its 32 id bits, read one by
    one before, left this copy's id unreadable (margin 0.76 against ``ID_MARGIN`` 1.2)."""
    watermarker = Watermarker(OUTPUT_ID)
    marked = [watermarker.embed(cv2.resize(frame[43:245], (1920, 1080), interpolation=cv2.INTER_CUBIC))
              for frame in original]
    small = [SCALERS["swscale bilinear"](frame, (480, 270)) for frame in marked]
    result = detect_watermark(images(encode(small, tmp_path / "quarter.mp4", 28)))
    assert result.found and result.output_id == OUTPUT_ID


def test_face_box_mark_names_its_own_id(speaker_clips: list[Path], tmp_path: Path) -> None:
    """Issue 35: a mark on the tight face box of lrwp9a, as convert writes it, is read with its own
    id. On the coarse grid's uncoded id the reader named another id (margin 1.72, past the guard)."""
    path = tmp_path / "face_box.mp4"
    with VideoWriter(path, 25, output_id=OUTPUT_ID) as writer:
        for frame in images(next(clip for clip in speaker_clips if clip.stem == "lrwp9a")):
            writer.write(frame, (95, 85, 225, 255))
    result = detect_watermark(images(path))
    assert result.found and result.output_id == OUTPUT_ID


@pytest.mark.parametrize("start", [0.0, 0.6, 1.0])
def test_survives_trimming_to_2_seconds(written: Path, tmp_path: Path, start: float) -> None:
    window = images(written, start=start, duration=2.0)
    assert len(window) == 50
    assert decoded(images(encode(window, tmp_path / "trim.mp4", 23))).confidence >= STRONG_Z


@pytest.mark.parametrize("index", [0, 37, 73])
def test_single_jpeg_frame_is_enough(written_frames: list[np.ndarray], index: int) -> None:
    assert decoded([jpeg(written_frames[index], 75)]).confidence >= STRONG_Z


def test_the_last_frame_as_jpeg_is_confirmed_and_never_misread(written_frames: list[np.ndarray]) -> None:
    """x264's macroblock tree codes a video's last frame coarser (no later frame refers to it): on
    some CPUs its id no longer reads from one JPEG of it (docs/provenance.md), but the mark does."""
    confirmed_never_wrong(detect_watermark([jpeg(written_frames[-1], 75)]))


def test_photo_resaved_as_jpeg_q75_verifies(original: list[np.ndarray], tmp_path: Path) -> None:
    png = tmp_path / "photo.png"
    write_image(png, original[0], output_id=OUTPUT_ID)
    resaved = tmp_path / "resaved.jpg"
    cv2.imwrite(str(resaved), cv2.imread(str(png)), [cv2.IMWRITE_JPEG_QUALITY, 75])  # no label, no manifest
    report = verify_file(resaved)
    assert report.label is None and report.synthetic and report.watermark.output_id == OUTPUT_ID


@pytest.mark.slow
def test_no_false_positive_on_untouched_footage(s1_clips: list[Path], speaker_clips: list[Path], raw_mpg: Path) -> None:
    for clip in s1_clips + speaker_clips + [raw_mpg]:
        report = verify_file(clip)
        assert not report.synthetic and report.label is None
        assert report.watermark.confidence < Z_THRESHOLD / 2, clip


def test_no_false_positive_on_photos(photos: list[Path]) -> None:
    for photo in photos:
        report = verify_file(photo)
        assert not report.synthetic and report.watermark.confidence < Z_THRESHOLD / 2


@pytest.mark.slow
def test_no_false_positive_on_other_video_reencoded_the_same_way(speaker_clips: list[Path], tmp_path: Path) -> None:
    other = encode(images(speaker_clips[0]), tmp_path / "other.mp4", 18)
    reencoded = encode(images(other), tmp_path / "other_crf28.mp4", 28)
    for path in (other, reencoded):
        assert not verify_file(path).synthetic


def test_no_false_positive_on_noise() -> None:
    rng = np.random.default_rng(7)
    for size in ((288, 360), (720, 1280), (64, 64)):
        frames = [rng.integers(0, 256, (*size, 3), dtype=np.uint8) for _ in range(4)]
        result = detect_watermark(frames)
        assert not result.found and result.output_id is None


def test_label_round_trips_through_text() -> None:
    label = provenance_label("alice", OUTPUT_ID)
    assert label.text().startswith(LABEL)
    assert parse_label(label.text()) == label
    assert parse_label(f"{LABEL} not json") is not None
    assert parse_label("synthetic: something else") is None and parse_label(None) is None


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".gif"])
def test_images_carry_label_and_watermark(original: list[np.ndarray], tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    assert write_image(path, original[0], replaced_person="s1", output_id=OUTPUT_ID) == OUTPUT_ID
    report = verify_file(path)
    assert report.synthetic and report.label.output_id == OUTPUT_ID
    if suffix == ".gif":  # a 256-colour palette: confirmed (z 13), its id read too close to the next to vouch for
        confirmed_never_wrong(report.watermark)
    else:
        assert report.watermark.found and report.watermark.output_id == OUTPUT_ID


def test_verify_command_exit_codes(marked: Path, s1_clips: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["verify", str(marked)])
    assert result.exit_code == 0 and "SYNTHETIC" in result.output and OUTPUT_ID in result.output
    result = runner.invoke(app, ["verify", str(s1_clips[1])])
    assert result.exit_code == 1 and "no deepswap mark" in result.output
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(marked.read_bytes()[:3000])
    result = runner.invoke(app, ["verify", str(marked), str(broken), str(tmp_path / "missing.mp4")])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_verify_rejects_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "text.mp4").write_text("not a video\n" * 100)
    for name in ("empty.mp4", "text.mp4", "missing.png"):
        with pytest.raises(DeepswapError, match=name):
            verify_file(tmp_path / name)
