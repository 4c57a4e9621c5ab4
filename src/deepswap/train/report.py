"""What training shows: the preview grid, ``loss.csv`` and the loss-curve PNG (drawn with OpenCV)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import cv2
import numpy as np

from .. import _io
from ..errors import DeepswapError

LOSS_COLUMNS = ("iteration", "loss_a", "loss_b", "learning_rate", "samples_per_second", "elapsed_seconds")
PREVIEW_ROWS = ("A", "A>A", "A>B", "B", "B>B", "B>A")
COLOURS = {"a": (31, 119, 180), "b": (214, 39, 40)}  # RGB


def preview_grid(rows: list[np.ndarray], tile: int = 128) -> np.ndarray:
    """Stack 6 rows of N×R×R×3 uint8 faces (A, A→A, A→B, B, B→B, B→A) into one labelled RGB image."""
    label_width = 56
    height = tile * len(rows)
    width = label_width + tile * max(len(r) for r in rows)
    grid = np.full((height, width, 3), 255, np.uint8)
    for row_index, (label, faces) in enumerate(zip(PREVIEW_ROWS, rows)):
        top = row_index * tile
        cv2.putText(grid, label, (6, top + tile // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        for column, face in enumerate(faces):
            left = label_width + column * tile
            grid[top:top + tile, left:left + tile] = cv2.resize(face, (tile, tile), interpolation=cv2.INTER_CUBIC)
    return grid


def read_loss_log(path: Path, up_to: int) -> list[dict[str, float]]:
    """Rows of an existing ``loss.csv`` up to iteration ``up_to`` (later rows belong to a run whose
    checkpoint was lost, so a resumed run writes them anew); [] if there is none. A damaged log is a
    one-line error (it is never silently replaced: it holds the whole training history)."""
    if not path.is_file():
        return []
    advice = "fix it, or move it away to start a new log"
    try:
        lines = csv.reader(io.StringIO(path.read_text("utf-8")))
        header = next(lines, None)
        if header is None or tuple(header) != LOSS_COLUMNS:
            raise DeepswapError(f"{path}: damaged loss log (the columns are not {','.join(LOSS_COLUMNS)}); {advice}")
        rows = [_loss_row(path, number, values, advice) for number, values in enumerate(lines, start=2) if values]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DeepswapError(f"{path}: damaged loss log ({exc}); {advice}") from None
    return [row for row in rows if row["iteration"] <= up_to]


def _loss_row(path: Path, number: int, values: list[str], advice: str) -> dict[str, float]:
    """One checked row of loss.csv: a whole iteration ≥ 0 and finite numbers."""
    try:
        row = {key: float(value) for key, value in zip(LOSS_COLUMNS, values, strict=True)}
    except ValueError:
        row = {}
    if not row or not all(math.isfinite(value) for value in row.values()) or row["iteration"] < 0 \
            or row["iteration"] != int(row["iteration"]):
        shown = ",".join(values)
        raise DeepswapError(f"{path}: damaged loss log (line {number}: {shown[:60]!r} is not "
                            f"{len(LOSS_COLUMNS)} finite numbers after a whole iteration); {advice}")
    return row


def write_loss_log(path: Path, rows: list[dict[str, float]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, LOSS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: (int(row[key]) if key == "iteration" else f"{row[key]:.6g}") for key in LOSS_COLUMNS})
    _io.write_text(path, out.getvalue())


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def loss_curve(rows: list[dict[str, float]], size: tuple[int, int] = (800, 420)) -> np.ndarray:
    """An RGB plot of loss A and B (log scale, lightly smoothed) against iteration."""
    width, height = size
    image = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 20, 30, 45
    plot_w, plot_h = width - left - right, height - top - bottom
    cv2.rectangle(image, (left, top), (left + plot_w, top + plot_h), (0, 0, 0), 1)
    if not rows:
        return image
    iterations = np.array([row["iteration"] for row in rows], np.float64)
    series = {key: np.log10(np.maximum([row[f"loss_{key}"] for row in rows], 1e-8)) for key in ("a", "b")}
    window = max(1, len(rows) // 50)
    series = {key: _smooth(values, window) for key, values in series.items()}
    low = min(values.min() for values in series.values())
    high = max(values.max() for values in series.values())
    low, high = math.floor(low * 10) / 10, math.ceil(high * 10) / 10 + 1e-9
    span_x = max(iterations[-1] - iterations[0], 1.0)

    def to_pixel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        px = left + (x - iterations[0]) / span_x * plot_w
        py = top + (high - y) / (high - low) * plot_h
        return np.stack([px, py], axis=1).round().astype(np.int32)

    font = cv2.FONT_HERSHEY_SIMPLEX
    for tick in np.linspace(low, high, 5):
        y = int(to_pixel(iterations[:1], np.array([tick]))[0, 1])
        cv2.line(image, (left - 4, y), (left + plot_w, y), (225, 225, 225), 1)
        cv2.putText(image, f"{10 ** tick:.3g}", (4, y + 4), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    for tick in np.linspace(iterations[0], iterations[-1], 5):
        x = int(to_pixel(np.array([tick]), np.array([low]))[0, 0])
        cv2.putText(image, f"{int(tick)}", (x - 15, top + plot_h + 18), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, "iteration", (left + plot_w // 2 - 30, height - 8), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for index, (key, values) in enumerate(series.items()):
        colour = COLOURS[key]
        cv2.polylines(image, [to_pixel(iterations, values)], False, colour, 2, cv2.LINE_AA)
        cv2.putText(image, f"loss {key.upper()}", (left + 10 + 90 * index, top - 10), font, 0.5, colour, 1, cv2.LINE_AA)
    return image
