"""An ``evaluate`` report as text: the rows the CLI's table and the web UI show (``report_rows``), and
the whole report as plain text (``report_text``, for scripts and benchmarks)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from .result import TARGETS, Evaluation

MARKS = {True: " ✓", False: " ✗", None: ""}  # after a target met, missed, or not set (or no value)


@dataclass(frozen=True)
class ReportRow:
    """One line of an ``evaluate`` report as the CLI and the web UI show it; ``met`` is whether the
    value reaches its target (None where there is no target or no value)."""

    metric: str
    value: str
    target: str
    met: bool | None = None


def report_title(report: Evaluation | Mapping[str, Any]) -> str:
    """What was evaluated, in a line: workspace, model, iteration, frames and footage."""
    evaluation = _typed(report)
    return (f"{evaluation.workspace}: {evaluation.model.name} model, iteration {evaluation.model.iteration}, "
            f"{evaluation.frames} frames of {evaluation.footage}")


def report_rows(report: Evaluation | Mapping[str, Any]) -> list[ReportRow]:
    """The report's figures, in order, as text: metric, value, target (``report``: an evaluation or
    the JSON-ready report ``evaluate`` returns)."""
    evaluation = _typed(report)
    identity, stability, expression = evaluation.identity, evaluation.stability, evaluation.expression
    sharpness = evaluation.sharpness

    def row(metric: str, value: str, fallback: str, target: str | None = None) -> ReportRow:
        if target is None:
            return ReportRow(metric, value, fallback)
        return ReportRow(metric, value, TARGETS[target].text, TARGETS[target].met(evaluation))

    rows = [
        row("identity transfer A→B", _percent(identity.transfer), "", "identity.transfer"),
        row("  cosine similarity to B", _number(identity.similarity_b, ".2f"), "higher", "identity.similarity_b"),
        row("  cosine similarity to A", _number(identity.similarity_a, ".2f"), "lower", "identity.similarity_a"),
        row("  untouched input (control)", _percent(identity.input_transfer), "≈ 0 %"),
        row("  faces found in the output", f"{evaluation.faces_found_in_output}/{evaluation.faces_swapped}", "all"),
    ]
    for key, scores in evaluation.reconstruction.items():
        pair = f"{key.upper()}→{key.upper()}"
        target = f"reconstruction.{key}.ssim"
        rows.append(row(f"{pair} SSIM, {scores.faces} {scores.split}", _number(scores.ssim), "higher",
                        target if target in TARGETS else None))
        rows.append(row(f"{pair} PSNR", _number(scores.psnr, ".1f", " dB"), "higher"))
    rows += [
        row("jitter output / input", f"{_number(stability.jitter_ratio, '.2f')} ({_number(stability.output_jitter, '.4f')} / "
            f"{_number(stability.input_jitter, '.4f')})", "", "stability.jitter_ratio"),
        row("landmark distance (eye widths)", _number(expression.landmark_distance), "lower"),
        row("mouth-open correlation", _number(expression.mouth_open_correlation, ".2f")
            + _left_out(expression.faces_cut_by_edge, "cut by the frame's edge")
            + _left_out(expression.mouth_hidden_faces, "with the lips behind the occluder"),
            "near 1", "expression.mouth_open_correlation"),
        row("  widest mouths output / input (90th − 10th pct)", _number(expression.widest_mouth_ratio, ".2f"), "near 1",
            "expression.widest_mouth_ratio"),
        row("eye-openness correlation", _number(expression.eye_open_correlation, ".2f")
            + _left_out(expression.eyes_hidden_faces, "with an eye behind the occluder"), "near 1",
            "expression.eye_open_correlation"),
        row(f"  blinks followed ({expression.closed_eye_faces} closed-eye faces)", _percent(expression.blinks_followed),
            "", "expression.blinks_followed"),
        row("sharpness output / input (inner face)", f"{_number(sharpness.ratio, '.2f')} "
            f"({_number(sharpness.output, '.0f')} / {_number(sharpness.input, '.0f')})", "", "sharpness.ratio"),
        row("watermark on flat picture (std added)", _number(evaluation.watermark.flat_area_std, ".2f", " grey levels"),
            "lower", "watermark.flat_area_std"),
        row("hair added along the jaw (mean, worst)", f"{_percent(evaluation.hair.added_mean, '.1f')}, "
            f"{_percent(evaluation.hair.added_worst, '.1f')}", "", "hair.added_mean"),
        row("hair added on the forehead (mean, worst)", f"{_percent(evaluation.hair.forehead_mean, '.1f')}, "
            f"{_percent(evaluation.hair.forehead_worst, '.1f')}", "", "hair.forehead_mean"),
    ]
    occluder = evaluation.occluder
    if occluder.frames:
        rows += [row(f"occluder kept, mean of {occluder.frames} frames", _percent(occluder.kept_mean), "",
                     "occluder.kept_mean"),
                 row("  worst frame", _percent(occluder.kept_worst), "", "occluder.kept_worst")]
    return rows


def coverage_lines(report: Evaluation | Mapping[str, Any]) -> list[str]:
    """The coverage check's groups of A's faces that B's faces do not cover, one line each with the advice."""
    coverage = _typed(report).coverage
    if not coverage:
        return []
    return [f"{group['reason']}: {group['faces']} of A's {coverage['faces_a']} faces — {group['advice']}"
            for group in coverage["groups"]]


def report_text(report: Evaluation | Mapping[str, Any]) -> str:
    """The title and the rows in aligned columns, ✓/✗ after a target met or missed."""
    rows = report_rows(report)
    metric_width, value_width = max(len(row.metric) for row in rows), max(len(row.value) for row in rows)
    lines = [f"{row.metric:<{metric_width}}  {row.value:<{value_width}}  {row.target}{MARKS[row.met]}" for row in rows]
    coverage = coverage_lines(report)
    if coverage:
        lines += ["not covered by B's faces:", *(f"  {line}" for line in coverage)]
    return "\n".join([report_title(report), *lines])


def _typed(report: Evaluation | Mapping[str, Any]) -> Evaluation:
    return report if isinstance(report, Evaluation) else Evaluation.from_dict(report)


def _left_out(faces: int, why: str) -> str:
    return f" ({faces} faces {why} left out)" if faces else ""


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _number(value: float | None, form: str = ".3f", unit: str = "") -> str:
    return f"{value:{form}}{unit}" if _known(value) else "n/a"


def _percent(value: float | None, form: str = ".0f") -> str:
    return f"{100 * value:{form}} %" if _known(value) else "n/a"
