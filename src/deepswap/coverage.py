"""Coverage: which of A's faces B's footage can stand in for, judged from the landmarks extract wrote.

A swap can only draw the head poses and expressions that B's faces show. Each face is described by
``describe_faces`` (head yaw and pitch, mouth opening, eye openness, brow height; see
``deepswap.faces.expression``), with eyes, brows and pitch taken relative to the person's own usual
value (the median over their faces) so that two people's resting faces match. An A face is covered
when some B face has its head pose (yaw and pitch within ``TOLERANCES``) and, for each part of the
face (mouth, eyes, brows), some B face in a similar pose does that part alike (``coverage_gaps``).
An uncovered face is put down to the axis furthest off, in tolerances, and the direction it is off
in: "mouth wide open", "eyes closed", … The nearest B face overall is shown beside it.
Roll is not checked: alignment turns every face upright before the model sees it.

    deepswap.check_coverage("ws").summary()   # or: deepswap evaluate ws (shows it), deepswap train (warns)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .faces import FaceSet, load_faceset
from .faces.expression import brow_height, eye_openness, head_pose, mouth_open
from .workspace import WorkspaceLike, as_workspace

AXES = ("yaw", "pitch", "mouth", "eyes", "brows")
# How far a B face may be from an A face on each axis and still stand in for it (chosen on GRID
# footage, see docs/evaluating.md): degrees, degrees, mouth-open ratio, eye openness as a share of the
# person's usual, brow height in eye-corner distances.
TOLERANCES = {"yaw": 12.0, "pitch": 10.0, "mouth": 0.04, "eyes": 0.25, "brows": 0.05}
WORTH_TELLING = 0.01  # the share of A's faces a group needs before `train` mentions it
EXAMPLES = 4  # A faces (with their nearest B face) kept per uncovered group
MOST_BOOST = 4.0  # the most a rare face's sampling weight may exceed the median's (``expression_weights``)
CHUNK = 256  # A faces compared with all of B's at once

# (axis, direction) → what A's faces do, and the footage of B to add
_WHY = {
    ("yaw", 1): ("head turned right", "turning the head to the picture's right"),
    ("yaw", -1): ("head turned left", "turning the head to the picture's left"),
    ("pitch", 1): ("head tilted up", "looking up"),
    ("pitch", -1): ("head tilted down", "looking down"),
    ("mouth", 1): ("mouth wide open", "with the mouth wide open (laughing, shouting, singing)"),
    ("mouth", -1): ("mouth closed", "with the mouth closed (listening, smiling with closed lips)"),
    ("eyes", 1): ("eyes wide open", "with wide-open eyes (surprise)"),
    ("eyes", -1): ("eyes closed", "blinking or with closed eyes"),
    ("brows", 1): ("brows raised", "raising the brows"),
    ("brows", -1): ("brows lowered", "frowning"),
}
_UNITS = {"yaw": "°", "pitch": "°", "mouth": "", "eyes": " of usual", "brows": ""}


def describe_faces(landmarks: np.ndarray) -> np.ndarray:
    """N×5 descriptors (``AXES``) of one person's faces from their 68 landmarks (N×68×2): yaw in
    degrees; pitch in degrees from the person's median; mouth-open ratio; eye openness over the
    person's median; brow height (eye-corner distances) minus the person's median."""
    landmarks = np.asarray(landmarks, np.float64).reshape(-1, 68, 2)
    pose = head_pose(landmarks)
    eyes, brows = eye_openness(landmarks), brow_height(landmarks)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.column_stack([pose[:, 0], pose[:, 1] - _median(pose[:, 1]), mouth_open(landmarks),
                                eyes / _median(eyes), brows - _median(brows)])


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if len(finite) else float("nan")


@dataclass(frozen=True)
class UncoveredGroup:
    """A's faces that no B face covers, for one reason (``axis`` and ``direction``: +1 more, −1 less)."""

    axis: str
    direction: int
    faces: list[str]  # A's face ids, furthest off first
    nearest: list[str]  # for each, the nearest B face's id
    a_extreme: float  # A's furthest value on the axis, in that direction
    b_extreme: float  # B's furthest value on the axis, in that direction

    @property
    def label(self) -> str:
        return _WHY[(self.axis, self.direction)][0]

    def line(self, total: int) -> str:
        """One line: what A does, how often, and how far B goes."""
        unit = _UNITS[self.axis]
        reach = "up to" if self.direction > 0 else "down to"
        head = f"{self.label}: {len(self.faces)} of A's {total} faces ({reach} {self.a_extreme:.2f}{unit}); "
        if (self.b_extreme - self.a_extreme) * self.direction >= 0:
            return head + "B goes as far only with another pose or expression"
        return head + f"B's {'most' if self.direction > 0 else 'least'} is {self.b_extreme:.2f}{unit}"

    def advice(self, name_b: str) -> str:
        return f"add footage of {name_b} {_WHY[(self.axis, self.direction)][1]}"


@dataclass(frozen=True)
class Coverage:
    """The coverage of A's faces by B's: ``groups`` of uncovered faces, largest first."""

    faces_a: int
    faces_b: int
    name_b: str
    groups: list[UncoveredGroup] = field(default_factory=list)

    @property
    def uncovered(self) -> int:
        return sum(len(group.faces) for group in self.groups)

    def lines(self, min_share: float = 0.0) -> list[str]:
        """One line per group of at least ``min_share`` of A's faces: what, how many, the advice."""
        return [f"{group.line(self.faces_a)} — {group.advice(self.name_b)}" for group in self.groups
                if len(group.faces) >= min_share * self.faces_a]

    def summary(self, min_share: float = 0.0) -> str:
        """The coverage in a few lines: a head line, then ``lines(min_share)``."""
        lines = self.lines(min_share)
        if not lines:
            return f"coverage: B's {self.faces_b} faces cover {self.faces_a - self.uncovered} of A's {self.faces_a}"
        head = f"coverage: {self.uncovered} of A's {self.faces_a} faces have no face of B's like them"
        return "\n".join([head, *(f"  {line}" for line in lines)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: counts, and per group its reason, counts, extremes, advice and examples."""
        return {"faces_a": self.faces_a, "faces_b": self.faces_b, "uncovered": self.uncovered,
                "groups": [{"reason": group.label, "axis": group.axis, "direction": group.direction,
                            "faces": len(group.faces), "a_extreme": group.a_extreme, "b_extreme": group.b_extreme,
                            "advice": group.advice(self.name_b),
                            "examples": [{"a": a, "b": b} for a, b in
                                         zip(group.faces[:EXAMPLES], group.nearest[:EXAMPLES])]}
                           for group in self.groups]}


def coverage_gaps(descriptors_a: np.ndarray, descriptors_b: np.ndarray,
                  tolerances: dict[str, float] = TOLERANCES) -> tuple[np.ndarray, np.ndarray]:
    """For each A face (N×5 descriptors against B's M×5), how far B's faces are from it on each axis,
    in tolerances and signed (A's value minus B's; |gap| ≤ 1: covered): on yaw and pitch, from the B
    face nearest in head pose; on mouth, eyes and brows, from the B face nearest on that axis among
    those in a similar head pose (each part of the face is drawn on its own, so two B faces, one
    opening the mouth as wide and one closing the eyes, together cover an A face doing both). Also
    the index of the nearest B face overall (the smallest largest gap), to show beside it. An axis
    where either face has no value does not count."""
    scale = np.array([tolerances[axis] for axis in AXES])
    a, b = descriptors_a / scale, descriptors_b / scale
    gaps, nearest = np.zeros(a.shape), np.zeros(len(a), int)
    for start in range(0, len(a), CHUNK):
        difference = a[start:start + CHUNK, None, :] - b[None, :, :]
        difference = np.where(np.isfinite(difference), difference, 0.0)
        size = np.abs(difference)
        nearest[start:start + CHUNK] = size.max(axis=2).argmin(axis=1)
        pose_gap = size[:, :, :2].max(axis=2)
        closest_pose = pose_gap.argmin(axis=1)
        rows = np.arange(len(difference))
        gaps[start:start + CHUNK, :2] = difference[rows, closest_pose, :2]
        posed = np.where((pose_gap <= 1)[:, :, None], size[:, :, 2:], np.inf)
        closest = posed.argmin(axis=1)  # per A face and expression axis
        gaps[start:start + CHUNK, 2:] = np.take_along_axis(difference[:, :, 2:], closest[:, None, :], axis=1)[:, 0]
        unposed = ~np.isfinite(posed.min(axis=1))
        gaps[start:start + CHUNK, 2:][unposed] = 0.0  # no B face in that pose: the pose gap says so
    return gaps, nearest


def coverage_between(landmarks_a: np.ndarray, ids_a: list[str], landmarks_b: np.ndarray, ids_b: list[str],
                     name_b: str = "B", tolerances: dict[str, float] = TOLERANCES) -> Coverage:
    """The coverage of A's faces (N×68×2 landmarks, their ids) by B's (M×68×2, ids)."""
    descriptors_a, descriptors_b = describe_faces(landmarks_a), describe_faces(landmarks_b)
    if not len(ids_a) or not len(ids_b):
        return Coverage(len(ids_a), len(ids_b), name_b)
    off, nearest = coverage_gaps(descriptors_a, descriptors_b, tolerances)
    uncovered = np.abs(off).max(axis=1) > 1
    groups = []
    for axis_index, direction in _reasons(off[uncovered]):
        members = np.flatnonzero(uncovered & (np.abs(off).argmax(axis=1) == axis_index)
                                 & (np.sign(off[:, axis_index]) == direction))
        members = members[np.argsort(-np.abs(off[members, axis_index]))]
        values_a, values_b = descriptors_a[members, axis_index], descriptors_b[:, axis_index]
        pick = np.nanmax if direction > 0 else np.nanmin
        groups.append(UncoveredGroup(AXES[axis_index], direction, [ids_a[i] for i in members],
                                     [ids_b[nearest[i]] for i in members], float(pick(values_a)), float(pick(values_b))))
    return Coverage(len(ids_a), len(ids_b), name_b, sorted(groups, key=lambda group: -len(group.faces)))


def _reasons(uncovered: np.ndarray) -> set[tuple[int, int]]:
    """The (axis index, direction) pairs that the uncovered faces (their gaps) are put down to."""
    axes = np.abs(uncovered).argmax(axis=1)
    return {(int(axis), int(np.sign(row[axis]))) for axis, row in zip(axes, uncovered)}


def expression_weights(landmarks: np.ndarray, tolerances: dict[str, float] = TOLERANCES, strength: float = 1.0,
                       most: float = MOST_BOOST) -> np.ndarray:
    """A sampling weight per face of one person (N×68×2 landmarks), mean 1, so that training sees rare
    poses and expressions more often: each face's weight is 1 / (its number of alike faces —
    within ``tolerances`` on every axis, itself included) ** ``strength``, at most ``most`` times the
    median weight."""
    descriptors = describe_faces(landmarks) / np.array([tolerances[axis] for axis in AXES])
    descriptors = np.where(np.isfinite(descriptors), descriptors, 0.0)
    alike = np.zeros(len(descriptors))
    for start in range(0, len(descriptors), CHUNK):
        difference = np.abs(descriptors[start:start + CHUNK, None, :] - descriptors[None, :, :]).max(axis=2)
        alike[start:start + CHUNK] = (difference <= 1).sum(axis=1)
    weights = alike ** -strength if len(alike) else alike
    weights = np.minimum(weights, most * np.median(weights)) if len(weights) else weights
    return weights / weights.mean() if len(weights) else weights


def faceset_landmarks(faceset: FaceSet) -> tuple[np.ndarray, list[str]]:
    """The frame landmarks (N×68×2) and ids of a face set's faces."""
    ids = faceset.ids()
    landmarks = np.array([faceset.faces[face]["landmarks"] for face in ids], np.float64).reshape(-1, 68, 2)
    return landmarks, ids


def check_coverage(workspace: WorkspaceLike, tolerances: dict[str, float] = TOLERANCES) -> Coverage:
    """Which of A's extracted faces B's extracted faces do not cover, and why (landmarks only: quick)."""
    workspace = as_workspace(workspace)
    faces_a, ids_a = faceset_landmarks(load_faceset(workspace.faces_dir("a")))
    faces_b, ids_b = faceset_landmarks(load_faceset(workspace.faces_dir("b")))
    return coverage_between(faces_a, ids_a, faces_b, ids_b, workspace.persons["b"].name, tolerances)
