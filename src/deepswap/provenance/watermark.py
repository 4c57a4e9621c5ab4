"""Invisible watermark: a 48-bit payload (16-bit deepswap signature + 32-bit output id) in the luma.

Design (spread spectrum on a frame-relative chip grid, with informed embedding):

* The frame is divided into a grid of ``ROWS`` × ``cols`` cells ("chips"), ``cols`` following the
  aspect ratio, so the grid scales with the picture and survives resizing without any search.
* Every chip carries one payload bit, multiplied by a keyed pseudo-random sign. Each run of 48
  chips (raster order) holds every bit once, in a keyed order, so any sizeable region carries
  the whole payload many times over.
* The chip amplitudes are upsampled bilinearly to a smooth pattern and added equally to R, G and B
  (a pure luma change; chroma is untouched).
* The decoder averages the luma over each chip (from an integral image), subtracts the
  mean of the 8 neighbouring chips (removes the picture's smooth content) and clips the residual
  (edges and texture cannot dominate). A bit's soft value is the signed sum over its chips.
* Informed embedding: the embedder runs the same decoder on the host frame and raises the
  amplitude of the bits the picture works against, until each reads as if the host were flat.
  This removes most host interference, the main noise source for a single frame.
* The total change is capped so that PSNR ≥ ``MIN_PSNR_DB`` inside the marked region.
* Detection correlates the known signature chips with the accumulated response. Under "no
  watermark" the keyed signs are independent of the picture, so the normalised correlation
  ``z = Σ s·r / sqrt(Σ r²)`` is a Rademacher sum: P(z > t) ≤ exp(-t²/2) for any picture. The scan
  over candidate regions and grid widths is covered by a union bound (:func:`false_alarm_bound`).
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

ROWS = 64
SIGNATURE = 0xD5E7
SIGNATURE_BITS = 16
ID_BITS = 32
PAYLOAD_BITS = SIGNATURE_BITS + ID_BITS
STRENGTH = 2.5
CLIP = 2.5
MARGIN_ITERATIONS = 3
MAX_CHIP_GAIN = 3.0
MIN_PSNR_DB = 40.5
Z_THRESHOLD = 8.0
_KEY = b"deepswap-watermark-v1"
_WINDOW_FRACTIONS = (0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
_WINDOW_STEPS = 8
_NEIGHBOURS = np.array([[1, 1, 1], [1, 0, 1], [1, 1, 1]], np.float32) / 8

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
_SIGNATURE_SIGNS[:SIGNATURE_BITS] = 2.0 * _payload("0" * (ID_BITS // 4))[:SIGNATURE_BITS] - 1


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
    """Per chip: which payload bit it carries, and its keyed ±1 sign."""
    count = rows * cols
    padded = -(-count // PAYLOAD_BITS) * PAYLOAD_BITS
    order = _key_stream("order", padded).reshape(-1, PAYLOAD_BITS)
    bit_of_chip = np.argsort(np.argsort(order, axis=1), axis=1).ravel()[:count]
    signs = np.where(_key_stream("sign", count) & 1, 1.0, -1.0).astype(np.float32)
    return bit_of_chip.reshape(rows, cols), signs.reshape(rows, cols)


def grid_shape(height: int, width: int) -> tuple[int, int]:
    """Chip grid (rows, cols) for a frame size: ``ROWS`` rows, square-ish chips."""
    return ROWS, max(1, round(ROWS * width / height))


def _luma(image: np.ndarray) -> np.ndarray:
    """Grey (uint8 or float) view of an RGB or grey frame."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


def _chip_means(luma: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Mean luma of each chip (cells with whole-pixel edges), from one integral image."""
    height, width = luma.shape
    ys = np.round(np.arange(rows + 1) * height / rows).astype(np.intp)
    xs = np.round(np.arange(cols + 1) * width / cols).astype(np.intp)
    corners = cv2.integral(luma, sdepth=cv2.CV_64F)[ys][:, xs]
    sums = corners[1:, 1:] - corners[:-1, 1:] - corners[1:, :-1] + corners[:-1, :-1]
    return (sums / np.outer(np.diff(ys), np.diff(xs)).clip(min=1)).astype(np.float32)


def _residual(chip_means: np.ndarray) -> np.ndarray:
    return chip_means - cv2.filter2D(chip_means, -1, _NEIGHBOURS, borderType=cv2.BORDER_REFLECT)


def chip_response(image: np.ndarray, cols: int | None = None) -> np.ndarray:
    """The decoder's per-chip measurement of a frame (RGB or grey): clipped local luma residual."""
    height, width = image.shape[:2]
    rows, default_cols = grid_shape(height, width)
    return np.clip(_residual(_chip_means(_luma(image), rows, cols or default_cols)), -CLIP, CLIP)


@lru_cache(maxsize=8)
def _chip_kernel(height: int, width: int) -> np.ndarray:
    """How one chip's amplitude shows in the decoder's chip means (3×3, from bilinear upsampling)."""
    rows, cols = grid_shape(height, width)
    impulse = np.zeros((rows, cols), np.float32)
    impulse[rows // 2, cols // 2] = 1
    spread = _chip_means(cv2.resize(impulse, (width, height), interpolation=cv2.INTER_LINEAR), rows, cols)
    return spread[rows // 2 - 1: rows // 2 + 2, cols // 2 - 1: cols // 2 + 2].copy()


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
        chips = (_chip_means(weight, rows, cols) > 0.5).astype(np.float32)
        return _Area(chips, box_rows, box_cols, weight[box_rows, box_cols])
    x0, y0, x1, y1 = (int(round(v)) for v in region)
    x0, x1 = max(0, min(x0, x1, width)), min(width, max(x0, x1, 0))
    y0, y1 = max(0, min(y0, y1, height)), min(height, max(y0, y1, 0))
    chips = np.outer(_coverage(y0, y1, height, rows), _coverage(x0, x1, width, cols)) > 0.5
    return _Area(chips.astype(np.float32), slice(y0, y1), slice(x0, x1), None)


def _coverage(start: int, stop: int, size: int, count: int) -> np.ndarray:
    """Fraction of each of ``count`` chip spans (edges as in ``_chip_means``) inside [start, stop)."""
    edges = np.round(np.arange(count + 1) * size / count)
    overlap = np.clip(np.minimum(edges[1:], stop) - np.maximum(edges[:-1], start), 0, None)
    return overlap / np.maximum(np.diff(edges), 1)


class Watermarker:
    """Embeds the watermark for one output id into frames (every frame of that output)."""

    def __init__(self, output_id: str) -> None:
        self.output_id = output_id
        self.bits = _payload(output_id)
        self._bit_signs = (2.0 * self.bits - 1).astype(np.float32)

    def chip_amplitudes(self, frame_rgb: np.ndarray, chip_mask: np.ndarray) -> np.ndarray:
        """Informed spread spectrum: each chip's amplitude, raised where the picture opposes a bit."""
        height, width = frame_rgb.shape[:2]
        rows, cols = grid_shape(height, width)
        bit_of_chip, signs = _layout(rows, cols)
        target_sign = signs * self._bit_signs[bit_of_chip] * chip_mask
        amplitude = STRENGTH * target_sign
        kernel = _chip_kernel(height, width)
        centre_gain = max(float(kernel[1, 1]), 0.05)  # tiny frames: chips under a pixel
        host = _residual(_chip_means(_luma(frame_rgb), rows, cols))
        flat = bit_of_chip.ravel()
        wanted = STRENGTH * centre_gain * np.bincount(flat, weights=chip_mask.ravel(), minlength=PAYLOAD_BITS)
        for _ in range(MARGIN_ITERATIONS):
            seen = _residual(cv2.filter2D(amplitude, -1, kernel, borderType=cv2.BORDER_REFLECT)) + host
            responsive = (np.abs(seen) < CLIP) * chip_mask
            decoded = np.bincount(flat, weights=(np.clip(seen, -CLIP, CLIP) * signs * chip_mask).ravel(),
                                  minlength=PAYLOAD_BITS) * self._bit_signs
            active = np.bincount(flat, weights=responsive.ravel(), minlength=PAYLOAD_BITS)
            boost = np.maximum(wanted - decoded, 0) / np.maximum(active, 1) / centre_gain
            amplitude = np.clip(amplitude + target_sign * responsive * boost[bit_of_chip],
                                -MAX_CHIP_GAIN * STRENGTH, MAX_CHIP_GAIN * STRENGTH)
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
        amplitude = self.chip_amplitudes(frame_rgb, area.chips)
        pattern = cv2.resize(amplitude, (width, height), interpolation=cv2.INTER_LINEAR)[area.rows, area.cols]
        if area.weight is not None:
            pattern *= area.weight
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
    """P(max z ≥ z | no watermark) ≤ windows × exp(-z²/2) (Hoeffding bound on Rademacher sums)."""
    return min(1.0, _window_count() * math.exp(-z * z / 2))


class WatermarkDetector:
    """Accumulates chip responses over frames (any number, any order) and decodes the payload."""

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
        luma = _luma(image)
        _, cols = grid_shape(*shape)
        for candidate in (cols - 1, cols, cols + 1):
            if candidate >= 1:
                response = chip_response(luma, candidate)
                self._sums[candidate] = self._sums.get(candidate, 0) + response
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
    bit_of_chip, signs = _layout(rows, cols)
    is_signature = bit_of_chip < SIGNATURE_BITS
    expected = signs * _SIGNATURE_SIGNS[bit_of_chip]
    score = _integral(expected * total)
    energy = _integral(is_signature * total * total)

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
    soft = np.bincount(bit_of_chip[window], weights=(signs * total)[window], minlength=PAYLOAD_BITS)
    bits = (soft > 0).astype(np.uint8)
    return z, bits, (x0 / cols, y0 / rows, x1 / cols, y1 / rows)


def _integral(values: np.ndarray) -> np.ndarray:
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
