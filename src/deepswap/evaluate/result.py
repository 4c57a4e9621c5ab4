"""What ``deepswap evaluate`` found, typed (``Evaluation``), and its goals (``TARGETS``).

``Evaluation.to_dict`` is the JSON-ready report ``evaluate`` returns and ``--json`` prints (NaN
as null, and ``targets``: each goal and whether it is met); ``Evaluation.from_dict`` reads it back.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping


@dataclass(frozen=True)
class ModelInfo:
    name: str
    iteration: int
    resolution: int


@dataclass(frozen=True)
class IdentityScores:
    """Of the swapped faces: the share closer to B's identity centre than to A's, the mean cosine
    similarity to each, and (a control) the share of the untouched input faces closer to B."""

    transfer: float
    similarity_b: float
    similarity_a: float
    input_transfer: float


@dataclass(frozen=True)
class ReconstructionScores:
    """A→A or B→B: mean masked SSIM and PSNR over ``faces`` faces of ``split``."""

    faces: int
    split: str
    ssim: float
    psnr: float


@dataclass(frozen=True)
class StabilityScores:
    input_jitter: float
    output_jitter: float
    jitter_ratio: float


@dataclass(frozen=True)
class ExpressionScores:
    """Output against input: landmark distance, mouth-open correlation, faces left out (cut by the
    frame's edge), the widest mouths' ratio (90th percentiles, each above its 10th: the resting gap), eye-openness correlation, and the share
    of the ``closed_eye_faces`` input faces with closed eyes whose output's eyes are closed too. The
    mouth's figures leave out the ``mouth_hidden_faces`` whose lips an occluder covers, the eyes'
    the ``eyes_hidden_faces`` whose eyes it covers (footage with occluder masks)."""

    landmark_distance: float
    mouth_open_correlation: float
    faces_cut_by_edge: int
    widest_mouth_ratio: float = math.nan
    eye_open_correlation: float = math.nan
    blinks_followed: float = math.nan
    closed_eye_faces: int = 0
    mouth_hidden_faces: int = 0
    eyes_hidden_faces: int = 0


@dataclass(frozen=True)
class OccluderScores:
    """On footage with occluder masks: over the ``frames`` with an occluder in front of the face, the
    mean and the worst frame's share of its pixels the output kept."""

    frames: int = 0
    kept_mean: float = math.nan
    kept_worst: float = math.nan


@dataclass(frozen=True)
class HairScores:
    """Share of the input face's jaw band (inside its outline) the output made dark, and of its
    forehead band (above the brows): mean and worst frame of each."""

    added_mean: float = math.nan
    added_worst: float = math.nan
    forehead_mean: float = math.nan
    forehead_worst: float = math.nan


@dataclass(frozen=True)
class SharpnessScores:
    input: float
    output: float
    ratio: float


@dataclass(frozen=True)
class WatermarkScores:
    flat_area_std: float  # the largest std the watermark adds on the flat picture of a swapped frame


@dataclass(frozen=True)
class Evaluation:
    """One ``evaluate`` run: what was evaluated and every figure (NaN, or None once read back from
    JSON, where a figure cannot be computed)."""

    workspace: str
    model: ModelInfo
    detail: float
    footage: str
    clips: list[str]
    frames: int
    faces_swapped: int
    faces_found_in_output: int
    identity: IdentityScores
    reconstruction: dict[str, ReconstructionScores]
    stability: StabilityScores
    expression: ExpressionScores
    sharpness: SharpnessScores
    watermark: WatermarkScores
    seconds: float
    occluder: OccluderScores = OccluderScores()
    hair: HairScores = HairScores()
    coverage: dict[str, Any] | None = None  # ``Coverage.to_dict`` of the workspace's faces

    def targets(self) -> dict[str, dict[str, Any]]:
        """Each goal of ``TARGETS`` as text and whether this evaluation meets it (None: no value)."""
        return {name: {"goal": f"{target.comparison} {target.goal:g}", "met": target.met(self)}
                for name, target in TARGETS.items()}

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready report: the fields in order, then ``targets``; NaN and inf as None."""
        return _json_ready({**dataclasses.asdict(self), "targets": self.targets()})

    @classmethod
    def from_dict(cls, report: Mapping[str, Any]) -> "Evaluation":
        """An evaluation read back from ``to_dict``'s report (its ``targets`` are worked out again)."""
        return cls(**{**{key: value for key, value in report.items() if key != "targets"},
                      "model": ModelInfo(**report["model"]), "identity": IdentityScores(**report["identity"]),
                      "reconstruction": {key: ReconstructionScores(**scores)
                                         for key, scores in report["reconstruction"].items()},
                      "stability": StabilityScores(**report["stability"]),
                      "expression": ExpressionScores(**report["expression"]),
                      "sharpness": SharpnessScores(**report["sharpness"]),
                      "watermark": WatermarkScores(**report["watermark"]),
                      "occluder": OccluderScores(**report.get("occluder", {})),
                      "hair": HairScores(**report.get("hair", {}))})


@dataclass(frozen=True)
class Target:
    """A goal of issues 7, 14 and 34: the figure (``value``), ``comparison`` to ``goal``, and the goal as printed."""

    value: Callable[[Evaluation], float | None]
    comparison: str  # ">=" or "<="
    goal: float
    text: str

    def met(self, evaluation: Evaluation) -> bool | None:
        """Whether the evaluation's figure reaches the goal (None when it has no figure)."""
        value = self.value(evaluation)
        if value is None or not math.isfinite(value):
            return None
        return value >= self.goal if self.comparison == ">=" else value <= self.goal


TARGETS = {  # named as the report's path to the figure
    "identity.transfer": Target(lambda e: e.identity.transfer, ">=", 0.90, "≥ 90 %"),
    "identity.similarity_b": Target(lambda e: e.identity.similarity_b, ">=", 0.55, "≥ 0.55"),
    "identity.similarity_a": Target(lambda e: e.identity.similarity_a, "<=", 0.30, "≤ 0.30"),
    "reconstruction.b.ssim": Target(lambda e: e.reconstruction["b"].ssim, ">=", 0.75, "≥ 0.75"),
    "stability.jitter_ratio": Target(lambda e: e.stability.jitter_ratio, "<=", 1.0, "≤ 1"),
    "expression.mouth_open_correlation": Target(lambda e: e.expression.mouth_open_correlation, ">=", 0.75, "≥ 0.75"),
    "expression.widest_mouth_ratio": Target(lambda e: e.expression.widest_mouth_ratio, ">=", 0.6, "≥ 0.6"),
    "expression.eye_open_correlation": Target(lambda e: e.expression.eye_open_correlation, ">=", 0.8, "≥ 0.8"),
    "expression.blinks_followed": Target(lambda e: e.expression.blinks_followed, ">=", 0.9, "≥ 90 %"),
    "occluder.kept_mean": Target(lambda e: e.occluder.kept_mean, ">=", 0.95, "≥ 95 %"),
    "occluder.kept_worst": Target(lambda e: e.occluder.kept_worst, ">=", 0.80, "≥ 80 %"),
    "hair.added_mean": Target(lambda e: e.hair.added_mean, "<=", 0.01, "≤ 1 %"),
    "hair.forehead_mean": Target(lambda e: e.hair.forehead_mean, "<=", 0.01, "≤ 1 %"),
    "sharpness.ratio": Target(lambda e: e.sharpness.ratio, ">=", 0.6, "≥ 0.6"),
    "watermark.flat_area_std": Target(lambda e: e.watermark.flat_area_std, "<=", 0.3, "≤ 0.3"),
}


def _json_ready(value: Any) -> Any:
    """``value`` with NaN/inf as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_ready(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
