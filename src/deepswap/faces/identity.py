"""Step 3: who is it. SFace embeddings (128-d, unit length) compared by cosine distance.

Same-person distances on GRID footage stay below 0.16 and different people are at least 0.64
apart, so the default threshold of 0.5 leaves a wide margin on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import _io
from ..errors import DeepswapError
from .detect import Detection
from .defaults import DEFAULT_THRESHOLD
from .models import SFACE, model_file

EMBEDDING_SIZE = 128


class IdentityEncoder:
    """SFace through OpenCV's ``FaceRecognizerSF``: five-point aligned 112×112 crop → embedding."""

    def __init__(self) -> None:
        self._net = cv2.FaceRecognizerSF.create(str(model_file(*SFACE)), "")

    def embed(self, image: np.ndarray, detection: Detection) -> np.ndarray:
        """Unit-length float32 embedding of one detected face in an RGB image."""
        bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        feature = self._net.feature(self._net.alignCrop(bgr, detection.yunet_row())).ravel()
        return (feature / max(float(np.linalg.norm(feature)), 1e-12)).astype(np.float32)


def cosine_distance(embeddings: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """1 − cosine similarity of unit-length embeddings (N×128 or 128) to a unit-length centre."""
    return 1.0 - np.asarray(embeddings, np.float32) @ np.asarray(centre, np.float32)


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


@dataclass
class Identity:
    """The person to keep: a unit embedding centre and the largest cosine distance still counted as them.

    ``origin`` is ``"reference"`` (from a reference photo) or ``"footage"`` (the dominant face).
    """

    centre: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    origin: str = "footage"

    def distance(self, embedding: np.ndarray) -> float:
        return float(cosine_distance(embedding, self.centre))

    def matches(self, embedding: np.ndarray) -> bool:
        return self.distance(embedding) <= self.threshold

    def save(self, path: Path) -> None:
        """Store the centre as a plain .npy (float32, no pickle)."""
        with _io.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, self.centre.astype(np.float32), allow_pickle=False)

    @classmethod
    def load(cls, path: Path, threshold: float = DEFAULT_THRESHOLD, origin: str = "footage") -> "Identity":
        """Read a centre saved by ``save``; anything but 128 finite, non-zero floats is a one-line error."""
        try:
            centre = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            problem = f"not a .npy array: {exc}"
        else:
            problem = _embedding_problem(centre)
        if problem:
            raise DeepswapError(f"{path}: damaged identity ({problem}); run `deepswap extract --force` to redo it")
        return cls(_unit(centre), threshold, origin)


def _embedding_problem(centre: object) -> str | None:
    """What is wrong with a stored embedding centre, or None."""
    if not isinstance(centre, np.ndarray):
        return "not a .npy array"
    if centre.shape != (EMBEDDING_SIZE,):
        return f"shape {centre.shape}, not ({EMBEDDING_SIZE},)"
    if not np.issubdtype(centre.dtype, np.floating):
        return f"dtype {centre.dtype}, not float"
    if not np.isfinite(centre).all():
        return "values not finite"
    if float(np.linalg.norm(centre.astype(np.float64))) < 1e-6:
        return "all zero"
    return None


@dataclass
class Cluster:
    centre: np.ndarray
    members: np.ndarray


def dominant_identity(embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[Cluster, Cluster | None]:
    """The most frequent person among face embeddings, and the runner-up if there is one.

    Density-peak clustering on cosine distance: the embedding with the most neighbours within
    ``threshold`` seeds a cluster, whose centre is refined twice from its members; the members
    are then set aside and the runner-up is found the same way among the rest.
    """
    embeddings = np.asarray(embeddings, np.float32)
    if len(embeddings) == 0:
        raise ValueError("no embeddings to cluster")
    first = _densest_cluster(embeddings, threshold, np.arange(len(embeddings)))
    rest = np.setdiff1d(np.arange(len(embeddings)), first.members)
    second = _densest_cluster(embeddings, threshold, rest) if len(rest) else None
    return first, second


def _densest_cluster(embeddings: np.ndarray, threshold: float, candidates: np.ndarray) -> Cluster:
    pool = embeddings[candidates]
    neighbours = (1.0 - pool @ pool.T) <= threshold
    seed = int(np.argmax(neighbours.sum(axis=1)))
    members = candidates[neighbours[seed]]
    centre = pool[seed]
    for _ in range(2):
        centre = _unit(embeddings[members].mean(axis=0))
        members = candidates[cosine_distance(pool, centre) <= threshold]
        if len(members) == 0:
            members = candidates[[seed]]
    return Cluster(centre, members)


class IdentityTracker:
    """Picks the target person's face in consecutive frames while embedding as few faces as possible.

    A face that overlaps the last kept face (IoU ≥ ``min_iou``) and looks like it (normalized
    correlation of small grey thumbnails ≥ ``min_similarity``, which catches cuts) is the same
    person; its identity is re-checked with an embedding every ``recheck_every`` frames. Any
    other situation (new track, several candidates, a cut) embeds every candidate.
    ``reset()`` between unrelated images (a new source, each photo).
    """

    def __init__(self, identity: Identity, encoder: IdentityEncoder, recheck_every: int = 25,
                 min_iou: float = 0.5, min_similarity: float = 0.8, max_candidates: int = 5) -> None:
        self.identity = identity
        self.encoder = encoder
        self.recheck_every = recheck_every
        self.min_iou = min_iou
        self.min_similarity = min_similarity
        self.max_candidates = max_candidates
        self.embedded = 0
        self.reset()

    def reset(self) -> None:
        self._box: np.ndarray | None = None
        self._thumb: np.ndarray | None = None
        self._distance = 0.0
        self._since_check = 0

    def select(self, image: np.ndarray, detections: list[Detection]) -> tuple[Detection | None, float]:
        """The detection that is the target person (or None) and its identity distance."""
        if not detections:
            self.reset()
            return None, float("nan")
        tracked = self._tracked(image, detections)
        if tracked is not None:
            self._since_check += 1
            return tracked, self._distance
        best, best_distance = None, float("inf")
        for detection in sorted(detections, key=lambda d: -d.area)[: self.max_candidates]:
            distance = self.identity.distance(self.encoder.embed(image, detection))
            self.embedded += 1
            if distance < best_distance:
                best, best_distance = detection, distance
        if best is None or best_distance > self.identity.threshold:
            self.reset()
            return None, best_distance
        self._box, self._thumb = best.box, _thumbnail(image, best.box)
        self._distance, self._since_check = best_distance, 0
        return best, best_distance

    def _tracked(self, image: np.ndarray, detections: list[Detection]) -> Detection | None:
        if self._box is None or self._since_check + 1 >= self.recheck_every:
            return None
        overlapping = [d for d in detections if _iou(d.box, self._box) >= self.min_iou]
        if len(overlapping) != 1:
            return None
        thumb = _thumbnail(image, overlapping[0].box)
        if float(np.dot(thumb, self._thumb)) < self.min_similarity:
            return None
        self._box, self._thumb = overlapping[0].box, thumb
        return overlapping[0]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return float(inter / max(a[2] * a[3] + b[2] * b[3] - inter, 1e-6))


def _thumbnail(image: np.ndarray, box: np.ndarray, size: int = 16) -> np.ndarray:
    """A zero-mean, unit-norm 16×16 grey patch of a box, for a cheap same-face check."""
    height, width = image.shape[:2]
    x, y, w, h = box
    x0, y0 = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
    x1, y1 = int(np.clip(x + w, x0 + 1, width)), int(np.clip(y + h, y0 + 1, height))
    patch = cv2.resize(image[y0:y1, x0:x1], (size, size), interpolation=cv2.INTER_AREA)
    grey = patch.astype(np.float32).mean(axis=2).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)
