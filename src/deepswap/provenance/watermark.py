"""Invisible watermark: a 48-bit payload (16-bit deepswap signature + 32-bit output id) in the luma.

Design (dither modulation on a frame-relative chip grid, placed by a just-noticeable-difference mask):

* The frame is divided into a grid of ``ROWS`` × ``cols`` cells ("chips"), ``cols`` following the
  aspect ratio, so the grid scales with the picture and survives resizing without any search.
* Every chip carries one payload bit and a keyed dither d in [0, 1). Each run of 48 chips (raster
  order) holds every bit once, in a keyed order, so any sizeable region carries the whole payload.
* What is measured per chip is its *residual*: the chip's mean luma minus the mean of its 8
  neighbours (exact area means with fractional pixel edges, so a resized frame measures the same).
* Embedding is informed quantisation (dither modulation): each chip's residual is moved to the
  nearest point of its bit's lattice ``STEP · (k + d + bit/2)``. The picture does not interfere with
  the reading (whatever the residual was, it ends on the lattice), so busy picture, which carries
  the mark, is no noise to it.
* Where the change goes is a JND mask computed from the picture: texture masking (the contrast of
  the fine detail around each point — the std of the high-passed luma — above a floor, so flat
  picture gets exactly nothing), eroded so that it does not bleed from an edge into a flat
  neighbour, times luminance masking (Chou & Li's visibility threshold: dark and bright areas hide
  more than mid-grey), times a veto at the frame's own pixel scale (``pixel_texture``: nothing
  where the local std of the pixels is within ``FLAT_STD``, which the chip-scale mask cannot see on
  enlarged footage). A chip's change is its amplitude times this gain map, so it follows the
  texture inside the chip; chips that a bounded amplitude cannot move far enough are moved part
  of the way. The embedder runs the decoder's own measurement on the marked picture (at analysis
  resolution) and corrects, a few times. No pixel changes by more than ``MAX_CHANGE`` grey
  levels, and the total change is capped at PSNR ≥ ``MIN_PSNR_DB``.
* The decoder reads each chip as a phasor ``exp(2πi · residual / STEP)``, weighted by its own
  estimate of the chip's texture gain (flat chips carry nothing and weigh nothing), and sums over
  frames. A bit's soft value is the sum of ``Re(phasor · exp(-2πi d))`` over its chips.
* Detection correlates the known signature bits: ``z = Σ Re(P · exp(-2πi (d + bit/2))) / sqrt(Σ |P|² / 2)``
  over the signature chips. Under "no watermark" the keyed dithers are uniform and independent of
  the picture, so each term is |P| cos(uniform), sub-Gaussian with variance proxy |P|²/2, and
  P(z > t) ≤ exp(-t²/2) for any picture. The scan over candidate regions and grid widths is
  covered by a union bound (:func:`false_alarm_bound`).

Visibility is measured by :func:`flat_area_visibility`: the std of the luma change over flat picture.
Marks made before this design (deepswap-watermark-v1, spread spectrum) are not read.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Union

import cv2
import numpy as np

from ..errors import DeepswapError

ROWS = 48
SIGNATURE = 0xD5E7
SIGNATURE_BITS = 16
ID_BITS = 32
PAYLOAD_BITS = SIGNATURE_BITS + ID_BITS
STEP = 11.0  # lattice spacing of a chip's residual, grey levels
MAX_AMPLITUDE = 7.0  # largest change in a chip, in units of its texture gain
ITERATIONS = 3
ANALYSIS_SCALE = 2  # analysis samples per chip side
HIGH_PASS_SIGMA = 1.0  # analysis samples: what counts as fine detail
TEXTURE_SIGMA = 1.5  # analysis samples: the window of the texture measure
TEXTURE_FLOOR = 1.0  # grey levels of detail contrast below which picture is flat (gain 0)
TEXTURE_SLOPE = 0.3  # gain per grey level of detail contrast above the floor
MAX_GAIN = 5.0  # before luminance masking
EDGE_EROSION = 3  # analysis samples the gain is kept back from flat picture
FULL_WEIGHT_GAIN = 1.0  # chips with at least this gain count fully in the decoder
MAX_CHANGE = 8.0  # grey levels, any pixel
MIN_PSNR_DB = 40.5
Z_THRESHOLD = 8.0
FLAT_BLOCK = 16
FLAT_STD = 2.0
PIXEL_WINDOW = 9  # pixels: the window of the pixel-scale flatness measure
PIXEL_RAMP = 2.0  # grey levels of local std above FLAT_STD over which the pixel veto lifts
_KEY = b"deepswap-watermark-v2"
_WINDOW_FRACTIONS = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
_WINDOW_STEPS = 8
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32) / 8
_EROSION = np.ones((3, 3), np.uint8)

Box = tuple[float, float, float, float]
Region = Union[Box, np.ndarray, None]


def new_output_id() -> str:
    """A fresh random output id: 8 hex digits (32 bits), the id carried by metadata and watermark."""
    return secrets.token_hex(ID_BITS // 8)


def _payload(output_id: str) -> np.ndarray:
    try:
        value = int(output_id, 16)
    except ValueError:
        value = -1
    if len(output_id) != ID_BITS // 4 or value < 0:
        raise ValueError(f"output id must be {ID_BITS // 4} hex digits, not {output_id!r}")
    word = (SIGNATURE << ID_BITS) | value
    return np.array([(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], np.uint8)


_SIGNATURE_SIGNS = np.zeros(PAYLOAD_BITS, np.float32)
_SIGNATURE_SIGNS[:SIGNATURE_BITS] = 1 - 2.0 * _payload("0" * (ID_BITS // 4))[:SIGNATURE_BITS]


def _output_id(bits: np.ndarray) -> str:
    value = 0
    for bit in bits[SIGNATURE_BITS:]:
        value = (value << 1) | int(bit)
    return f"{value:0{ID_BITS // 4}x}"


def _key_stream(name: str, count: int) -> np.ndarray:
    """``count`` keyed pseudo-random uint32 (SHA-256 in counter mode: identical on every platform)."""
    blocks = -(-count // 8)
    data = b"".join(hashlib.sha256(_KEY + f":{name}:{i}".encode()).digest() for i in range(blocks))
    return np.frombuffer(data, dtype="<u4")[:count]


@lru_cache(maxsize=16)
def _layout(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per chip: which payload bit it carries, and its keyed dither (uniform in [0, 1))."""
    count = rows * cols
    padded = -(-count // PAYLOAD_BITS) * PAYLOAD_BITS
    order = _key_stream("order", padded).reshape(-1, PAYLOAD_BITS)
    bit_of_chip = np.argsort(np.argsort(order, axis=1), axis=1).ravel()[:count]
    dither = _key_stream("dither", count) / 2.0**32
    return bit_of_chip.reshape(rows, cols), dither.reshape(rows, cols)


def grid_shape(height: int, width: int) -> tuple[int, int]:
    """Chip grid (rows, cols) for a frame size: ``ROWS`` rows, square-ish chips."""
    return ROWS, max(1, round(ROWS * width / height))


def _luma(image: np.ndarray) -> np.ndarray:
    """Grey (uint8 or float) view of an RGB or grey frame."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _integral(picture: np.ndarray) -> np.ndarray:
    return cv2.integral(picture, sdepth=cv2.CV_64F)


def _area_means(integral: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean of the picture over each cell of a rows × cols grid with fractional pixel edges, read
    bilinearly from its integral image (exact for pixels taken as uniform squares)."""
    height, width = integral.shape[0] - 1, integral.shape[1] - 1

    def edges(size: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        position = np.arange(count + 1) * (size / count)
        index = np.minimum(position.astype(np.intp), size - 1)
        return index, position - index

    ys, y_fraction = edges(height, rows)
    xs, x_fraction = edges(width, cols)
    along_y = integral[ys] * (1 - y_fraction)[:, None] + integral[ys + 1] * y_fraction[:, None]
    corners = along_y[:, xs] * (1 - x_fraction) + along_y[:, xs + 1] * x_fraction
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return (sums * (rows * cols / (height * width))).astype(np.float32)


def _block_means(values: np.ndarray) -> np.ndarray:
    """Per chip, the mean of its ANALYSIS_SCALE × ANALYSIS_SCALE analysis samples."""
    rows, cols = values.shape[0] // ANALYSIS_SCALE, values.shape[1] // ANALYSIS_SCALE
    return cv2.resize(values, (cols, rows), interpolation=cv2.INTER_AREA)


def _residual(chip_means: np.ndarray) -> np.ndarray:
    return chip_means - cv2.filter2D(chip_means, -1, _NEIGHBOURS, borderType=cv2.BORDER_REFLECT)


def texture_gain(small: np.ndarray) -> np.ndarray:
    """The JND mask on an analysis image (luma area means, ANALYSIS_SCALE samples per chip side):
    how much change each point hides, in units of a chip's amplitude. 0 on flat picture."""
    background = cv2.GaussianBlur(small, (0, 0), TEXTURE_SIGMA)
    detail = small - cv2.GaussianBlur(small, (0, 0), HIGH_PASS_SIGMA)
    contrast = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), TEXTURE_SIGMA))
    texture = np.clip((contrast - TEXTURE_FLOOR) * TEXTURE_SLOPE, 0, MAX_GAIN)
    return cv2.erode(texture, _EROSION, iterations=EDGE_EROSION) * _luminance_masking(background)


def pixel_texture(luma: np.ndarray) -> np.ndarray:
    """The JND mask's veto at the frame's own pixel scale, 0..1: 0 where the local std of the luma
    (a ``PIXEL_WINDOW`` window, kept back from flat picture by as much again) is at most
    ``FLAT_STD``, rising to 1 over ``PIXEL_RAMP`` grey levels. The chip-scale texture gain cannot
    see this on enlarged footage, where one analysis sample spans many smooth pixels. Frames of
    720 lines and more are measured on 2×2 (3×3, …) pixel means, which only makes the veto stricter;
    the veto is returned at that resolution."""
    height, width = luma.shape
    step = max(1, min(height, width) // 360)
    small = luma if step == 1 else cv2.resize(luma, (width // step, height // step), interpolation=cv2.INTER_AREA)
    side = max(3, PIXEL_WINDOW // step | 1)
    window = (side, side)
    mean = cv2.boxFilter(small, cv2.CV_32F, window)
    variance = cv2.sqrBoxFilter(small, cv2.CV_32F, window) - cv2.multiply(mean, mean)
    std = cv2.erode(cv2.sqrt(cv2.max(variance, 0.0)), cv2.getStructuringElement(cv2.MORPH_RECT, window))
    return cv2.min(cv2.max((std - FLAT_STD) * (1 / PIXEL_RAMP), 0.0), 1.0)


def _luminance_masking(background: np.ndarray) -> np.ndarray:
    """Chou & Li's visibility threshold at each background luminance, relative to its minimum (at 127)."""
    dark = 17 * (1 - np.sqrt(np.clip(background, 0, 127) / 127)) + 3
    bright = 3 / 128 * np.maximum(background - 127, 0) + 3
    return np.where(background < 127, dark, bright) / 3


@dataclass(frozen=True)
class _Analysis:
    """What embedder and decoder both measure in a frame: per chip, the residual (grey levels) and
    the texture gain; and the gain map at analysis resolution."""

    residual: np.ndarray
    chip_gain: np.ndarray
    gain: np.ndarray

    @property
    def weight(self) -> np.ndarray:
        """How much each chip counts in the decoder: as much as the mark it can carry, up to 1."""
        return np.clip(self.chip_gain / FULL_WEIGHT_GAIN, 0, 1)


def _analysis_image(integral: np.ndarray, rows: int, cols: int) -> np.ndarray:
    return _area_means(integral, rows * ANALYSIS_SCALE, cols * ANALYSIS_SCALE)


def _analyse(small: np.ndarray) -> _Analysis:
    gain = texture_gain(small)
    return _Analysis(_residual(_block_means(small)), _block_means(gain), gain)


def _spread(chip_values: np.ndarray) -> np.ndarray:
    """Chip values as a picture at analysis resolution (each chip's samples carry its value)."""
    rows, cols = chip_values.shape
    size = (cols * ANALYSIS_SCALE, rows * ANALYSIS_SCALE)
    return cv2.resize(chip_values.astype(np.float32), size, interpolation=cv2.INTER_NEAREST)


def _to_frame(small: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


@lru_cache(maxsize=8)
def _round_trip(height: int, width: int) -> np.ndarray:
    """How a change made at analysis resolution reads back after upsampling to the frame and area
    means (3×3 kernel)."""
    rows, cols = grid_shape(height, width)
    shape = (rows * ANALYSIS_SCALE, cols * ANALYSIS_SCALE)
    impulse = np.zeros(shape, np.float32)
    impulse[shape[0] // 2, shape[1] // 2] = 1
    back = _analysis_image(_integral(_to_frame(impulse, height, width)), rows, cols)
    return back[shape[0] // 2 - 1: shape[0] // 2 + 2, shape[1] // 2 - 1: shape[1] // 2 + 2].copy()


@lru_cache(maxsize=8)
def _own_response(height: int, width: int) -> float:
    """How far a chip's residual moves per unit of its amplitude (on a uniform gain of 1)."""
    rows, cols = grid_shape(height, width)
    impulse = np.zeros((rows, cols), np.float32)
    impulse[rows // 2, cols // 2] = 1
    pattern = _to_frame(_spread(impulse), height, width)
    residual = _residual(_block_means(_analysis_image(_integral(pattern), rows, cols)))
    return max(float(residual[rows // 2, cols // 2]), 0.05)


@dataclass(frozen=True)
class _Area:
    """Where a frame is marked: chip mask, bounding box, and pixel weights inside it (None = all 1)."""

    chips: np.ndarray
    rows: slice
    cols: slice
    weight: np.ndarray | None

    @property
    def pixels(self) -> float:
        if self.weight is not None:
            return float(self.weight.sum())
        return float((self.rows.stop - self.rows.start) * (self.cols.stop - self.cols.start))


def _area(region: Region, height: int, width: int) -> _Area:
    rows, cols = grid_shape(height, width)
    if region is None:
        return _Area(np.ones((rows, cols), np.float32), slice(0, height), slice(0, width), None)
    if isinstance(region, np.ndarray):
        if region.shape[:2] != (height, width):
            raise ValueError(f"region mask is {region.shape[:2]}, frame is {(height, width)}")
        weight = region.astype(np.float32) / (255.0 if region.dtype == np.uint8 else 1.0)
        ys, xs = np.nonzero(weight > 0)
        if len(ys) == 0:
            return _Area(np.zeros((rows, cols), np.float32), slice(0, 0), slice(0, 0), None)
        box_rows, box_cols = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
        chips = (_area_means(_integral(weight), rows, cols) > 0.5).astype(np.float32)
        return _Area(chips, box_rows, box_cols, weight[box_rows, box_cols])
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, x1 = max(0, min(x0, x1, width)), min(width, max(x0, x1, 0))
    y0, y1 = max(0, min(y0, y1, height)), min(height, max(y0, y1, 0))
    chips = np.outer(_coverage(y0, y1, height, rows), _coverage(x0, x1, width, cols)) > 0.5
    return _Area(chips.astype(np.float32), slice(y0, y1), slice(x0, x1), None)


def _coverage(start: int, stop: int, size: int, count: int) -> np.ndarray:
    """Fraction of each of ``count`` chip spans (edges as in ``_area_means``) inside [start, stop)."""
    edges = np.arange(count + 1) * (size / count)
    overlap = np.clip(np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start), 0, None)
    return overlap / np.diff(edges)


class Watermarker:
    """Embeds the watermark for one output id into frames (every frame of that output)."""

    def __init__(self, output_id: str) -> None:
        self.output_id = output_id
        self.bits = _payload(output_id)

    def chip_amplitudes(self, host: _Analysis, chip_mask: np.ndarray, frame_size: tuple[int, int],
                        veto: np.ndarray) -> np.ndarray:
        """Per chip, the amplitude (in units of the gain map) that moves its residual onto the
        nearest lattice point of its bit, within ±MAX_AMPLITUDE; found by reading back the change
        (the gain map times ``veto``, the pixel veto at analysis resolution) the way the decoder does."""
        rows, cols = host.residual.shape
        gain = host.gain * veto
        chip_gain = _block_means(gain)
        bit_of_chip, dither = _layout(rows, cols)
        offset = dither + 0.5 * self.bits[bit_of_chip]
        wanted = STEP * (np.round(host.residual / STEP - offset) + offset) - host.residual
        usable = chip_mask * (chip_gain > 0)
        per_unit = _own_response(*frame_size) * np.maximum(chip_gain, 1e-3)
        round_trip = _round_trip(*frame_size)
        amplitude = np.zeros((rows, cols), np.float32)
        moved = np.zeros((rows, cols), np.float32)
        for _ in range(ITERATIONS):
            amplitude = np.clip(amplitude + usable * (wanted - moved) / per_unit, -MAX_AMPLITUDE, MAX_AMPLITUDE)
            change = cv2.filter2D(_spread(amplitude) * gain, -1, round_trip, borderType=cv2.BORDER_REFLECT)
            moved = _residual(_block_means(change))
        return amplitude

    def embed(self, frame_rgb: np.ndarray, region: Region = None) -> np.ndarray:
        """Watermark an RGB uint8 frame in place (and return it); ``region``: box (x0, y0, x1, y1),
        an H×W mask (0..1 float or 0..255 uint8) or None for the whole frame."""
        if frame_rgb.dtype != np.uint8 or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3:
            raise ValueError("embed expects an H×W×3 uint8 RGB frame")
        height, width = frame_rgb.shape[:2]
        area = _area(region, height, width)
        if area.pixels == 0:
            return frame_rgb
        luma = _luma(frame_rgb)
        grid = grid_shape(height, width)
        host = _analyse(_analysis_image(_integral(luma), *grid))
        veto = pixel_texture(luma)
        analysis_size = (grid[1] * ANALYSIS_SCALE, grid[0] * ANALYSIS_SCALE)
        amplitude = self.chip_amplitudes(host, area.chips, (height, width),
                                         cv2.resize(veto, analysis_size, interpolation=cv2.INTER_AREA))
        marks = cv2.resize(_spread(amplitude) * host.gain, veto.shape[::-1], interpolation=cv2.INTER_LINEAR) * veto
        pattern = _to_frame(marks, height, width)[area.rows, area.cols]
        if area.weight is not None:
            pattern *= area.weight
        np.clip(pattern, -MAX_CHANGE, MAX_CHANGE, out=pattern)
        rms = math.sqrt(cv2.norm(pattern, cv2.NORM_L2SQR) / area.pixels)
        limit = 255.0 / 10 ** (MIN_PSNR_DB / 20)
        if rms > limit:
            pattern *= limit / rms
        target = frame_rgb[area.rows, area.cols]
        change = cv2.merge([pattern, pattern, pattern])
        if target.flags.c_contiguous:
            cv2.add(target, change, dst=target, dtype=cv2.CV_8U)
        else:
            target[:] = cv2.add(target, change, dtype=cv2.CV_8U)
        return frame_rgb


def _float_luma(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float64)
    return image if image.ndim == 2 else image @ np.array([0.299, 0.587, 0.114])


def flat_area_visibility(original: np.ndarray, marked: np.ndarray, block: int = FLAT_BLOCK,
                         flatness: float = FLAT_STD) -> float | None:
    """How much the watermark shows on flat picture: the standard deviation (grey levels) of the
    luma change from ``original`` to ``marked`` (RGB or grey, same size) over the ``block`` ×
    ``block`` pixel blocks of the original whose luma std is at most ``flatness`` (sky, walls, a
    blue screen; a perfectly flat frame is all flat). None when the original has no flat block."""
    before, after = _float_luma(original), _float_luma(marked)
    if before.shape != after.shape:
        raise ValueError(f"marked frame is {after.shape}, original is {before.shape}")
    rows, cols = before.shape[0] // block, before.shape[1] // block

    def blocks(values: np.ndarray) -> np.ndarray:
        return values[:rows * block, :cols * block].reshape(rows, block, cols, block).swapaxes(1, 2)

    flat = blocks(before).std(axis=(2, 3)) <= flatness
    if not flat.any():
        return None
    return float(blocks(after - before)[flat].std())


@dataclass(frozen=True)
class WatermarkResult:
    """What the detector found. ``confidence`` is the signature z-score (≈ N(0, 1) without a mark)."""

    found: bool
    confidence: float
    output_id: str | None
    bits: np.ndarray
    frames: int
    region: tuple[float, float, float, float]

    @property
    def false_alarm_bound(self) -> float:
        """Upper bound on the chance an unmarked input scores this high (union over the scan)."""
        return false_alarm_bound(self.confidence)


def _window_count() -> int:
    positions = sum(
        (_WINDOW_STEPS - round(h * _WINDOW_STEPS) + 1) * (_WINDOW_STEPS - round(w * _WINDOW_STEPS) + 1)
        for h in _WINDOW_FRACTIONS for w in _WINDOW_FRACTIONS)
    return 3 * positions


def false_alarm_bound(z: float) -> float:
    """P(max z ≥ z | no watermark) ≤ windows × exp(-z²/2) (sub-Gaussian sums of uniformly dithered phases)."""
    return min(1.0, _window_count() * math.exp(-z * z / 2))


class WatermarkDetector:
    """Accumulates chip readings over frames (any number, any order) and decodes the payload."""

    def __init__(self) -> None:
        self._sums: dict[int, np.ndarray] = {}
        self.frames = 0
        self._shape: tuple[int, int] | None = None

    def add(self, image: np.ndarray) -> None:
        """Add one frame (RGB or grey, any size; all frames of one input share a size)."""
        shape = image.shape[:2]
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise ValueError("all frames given to one detector must have the same size")
        integral = _integral(_luma(image))
        rows, cols = grid_shape(*shape)
        for candidate in (cols - 1, cols, cols + 1):
            if candidate >= 1:
                reading = _analyse(_analysis_image(integral, rows, candidate))
                phasor = reading.weight * np.exp(2j * np.pi / STEP * reading.residual)
                self._sums[candidate] = self._sums.get(candidate, 0) + phasor
        self.frames += 1

    def result(self) -> WatermarkResult:
        """Best-scoring grid width and region; ``found`` when z clears ``Z_THRESHOLD``."""
        if not self._sums:
            return WatermarkResult(False, 0.0, None, np.zeros(PAYLOAD_BITS, np.uint8), 0, (0, 0, 1, 1))
        best = max((_scan(total) for total in self._sums.values()), key=lambda found: found[0])
        z, bits, box = best
        found = z >= Z_THRESHOLD
        return WatermarkResult(found, z, _output_id(bits) if found else None, bits, self.frames, box)


def _scan(total: np.ndarray) -> tuple[float, np.ndarray, tuple[float, float, float, float]]:
    """Max signature z over windows of the chip grid; decoded bits inside the best window."""
    rows, cols = total.shape
    bit_of_chip, dither = _layout(rows, cols)
    aligned = (total * np.exp(-2j * np.pi * dither)).real
    score = _table(_SIGNATURE_SIGNS[bit_of_chip] * aligned)
    energy = _table((bit_of_chip < SIGNATURE_BITS) * np.abs(total) ** 2 / 2)

    best = (-np.inf, (0, 0, rows, cols))
    for fh in _WINDOW_FRACTIONS:
        for fw in _WINDOW_FRACTIONS:
            h, w = round(fh * _WINDOW_STEPS), round(fw * _WINDOW_STEPS)
            top = np.arange(_WINDOW_STEPS - h + 1) * rows // _WINDOW_STEPS
            bottom = np.minimum((np.arange(_WINDOW_STEPS - h + 1) + h) * rows // _WINDOW_STEPS, rows)
            left = np.arange(_WINDOW_STEPS - w + 1) * cols // _WINDOW_STEPS
            right = np.minimum((np.arange(_WINDOW_STEPS - w + 1) + w) * cols // _WINDOW_STEPS, cols)
            t, b = top[:, None], bottom[:, None]
            s = _box_sum(score, t, b, left[None], right[None])
            e = _box_sum(energy, t, b, left[None], right[None])
            z = np.where(e > 0, s / np.sqrt(np.maximum(e, 1e-12)), 0.0)
            i, j = np.unravel_index(int(np.argmax(z)), z.shape)
            if z[i, j] > best[0]:
                best = (float(z[i, j]), (int(top[i]), int(left[j]), int(bottom[i]), int(right[j])))
    z, (y0, x0, y1, x1) = best
    window = np.zeros((rows, cols), bool)
    window[y0:y1, x0:x1] = True
    soft = np.bincount(bit_of_chip[window], weights=aligned[window], minlength=PAYLOAD_BITS)
    bits = (soft < 0).astype(np.uint8)
    return z, bits, (x0 / cols, y0 / rows, x1 / cols, y1 / rows)


def _table(values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0] + 1, values.shape[1] + 1), np.float64)
    out[1:, 1:] = values.cumsum(0).cumsum(1)
    return out


def _box_sum(table: np.ndarray, top: np.ndarray, bottom: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    return table[bottom, right] - table[top, right] - table[bottom, left] + table[top, left]


def detect_watermark(frames: Iterable[np.ndarray]) -> WatermarkResult:
    """Detect and decode the watermark from frames (RGB or grey) of one video or image."""
    detector = WatermarkDetector()
    for frame in frames:
        detector.add(frame)
    if detector.frames == 0:
        raise DeepswapError("no frames to look for a watermark in")
    return detector.result()
