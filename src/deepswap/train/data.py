"""Training data: each person's aligned faces, augmented the DeepFakes way, streamed by DataLoader workers.

A training sample is one face of A and one of B. Each face goes through:

1. the *face region*: a square of ``coverage`` × the crop side, centred on the mean face (the aligned
   crops from ``extract`` keep a margin of forehead and background around it), shrunk to the model's
   resolution with area averaging;
2. colour/lighting jitter in LAB (the same for input and target, so the model learns to reproduce it);
3. a random similarity transform (±10° rotation, ±5 % zoom, ±5 % shift) and a horizontal flip half
   of the time: this gives the *target*;
4. the original random warp: a 5×5 grid of control points pushed by Gaussian noise bends the target
   into the *input*, so the autoencoder must learn faces, not copy pixels.

The finishing stage of a training budget (``FINISHING_AUGMENT``) keeps only the flip and the colour
jitter: the input is the target, and the target is the face region as extract aligned it (or its
mirror image). Convert gives the model faces aligned exactly that way, so nothing is lost, and the
decoder no longer has to draw each face at a random sub-pixel offset and angle, which it can only
guess from a 64-px input and so draws their average: after 30 minutes of ``lite`` on a 2-core CPU the
face as drawn keeps 0.45 of unseen clips' sharpness instead of 0.27, a small face in a corner 0.85
instead of 0.54, at some cost in identity (SFace cosine to A 0.186 → 0.245; ``benchmarks/quality.py``).

The face mask and a map of the eyes (lids included) and the mouth (from the landmarks) go through
step 3 with the target; the loss uses them as weights. Synthetic occluders (``occluders.py``: a hand, a microphone, a shape,
a patch of another frame) are pasted in front of a quarter of the *inputs* (``INPUT_OCCLUSION``; the
target stays whole, so the decoders learn to draw the face behind a hand), and the batches the
learned mask trains on (``segmenter.py``) also carry its samples (``MaskSamples``): faces drawn and
augmented on their own — turned, zoomed and shifted in the finishing stage too — with an occluder
in front most of the time, labelled with the mask restricted to skin (``faces.skin``: no hair over
the forehead or temples) minus the occluder.

For a model that draws faces larger than it sees (``output_scale``), all of this happens at the
output resolution and the warped input is then shrunk to the input's. Sample ``n`` of the stream is
a pure function of (seed, n), so a resumed run sees exactly the data an uninterrupted one would
have. Each stream keeps the face regions it has read (step 1) in memory up to ``cache_bytes``:
decoding the crops was over half of a sample's cost, and on a 2-core CPU the data worker takes its
time from the training step.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .. import _io
from ..coverage import expression_weights
from ..errors import DeepswapError
from ..faces import FaceSet, face_mask, face_region, skin_mask
from ..workspace import PersonKey, Workspace
from . import segmenter
from .occluders import Occluder, random_occluder

EYES = (slice(36, 42), slice(42, 48))
MOUTH = slice(48, 60)
EYE_REGION = (1.5, 0.9)  # the eye ellipse's width and height, in eye widths (corner to corner): lids included


@dataclass(frozen=True)
class Augment:
    """Augmentation strengths (the defaults are those of the DeepFakes/faceswap tools)."""

    rotation: float = 10.0  # degrees, ±
    zoom: float = 0.05  # ±, relative
    shift: float = 0.05  # ±, of the side
    flip: float = 0.5  # probability
    warp: float = 5 / 160  # σ of the control-point noise, of the side
    lightness: float = 0.3  # LAB L jitter, ±
    color: float = 0.08  # LAB a/b jitter, ±

    @classmethod
    def none(cls) -> "Augment":
        return cls(rotation=0, zoom=0, shift=0, flip=0, warp=0, lightness=0, color=0)


REGION_CACHE_BYTES = 512 << 20  # face regions a stream keeps in memory (the trainer shares this among its data workers)
FINISHING_AUGMENT = Augment(rotation=0.0, zoom=0.0, shift=0.0, warp=0.0)  # the finishing stage: flips and colour only
INPUT_OCCLUSION = 0.25  # the share of the swap's inputs with an occluder in front of the face
SEGMENTER_OCCLUSION = 0.8  # the share of the segmenter's faces with one (the rest teach it the plain face)
MASK_CACHE_BYTES = 256 << 20  # the segmenter's face regions (``MaskSamples``) kept in memory


class PersonFaces:
    """The faces of one person that can be trained on: listed in alignments.json, crop on disk, not
    held out for evaluation (``FaceSet.holdout_ids``)."""

    def __init__(self, faceset: FaceSet, ids: list[str], landmarks: np.ndarray, weights: np.ndarray | None = None,
                 skin_labels: bool = False) -> None:
        self.faceset = faceset
        self.ids = ids
        self.landmarks = landmarks  # N×68×2, crop coordinates
        self.weights = weights  # N sampling weights (None: every face as often)
        self.skin_labels = skin_labels  # the learned mask's labels: skin only (``segmenter_label``)
        self.face_size = faceset.face_size

    @classmethod
    def load(cls, workspace: Workspace, key: PersonKey, skin_labels: bool = False) -> "PersonFaces":
        folder = workspace.faces_dir(key)
        faceset = FaceSet.load(folder)
        name = workspace.persons[key].name
        held_out = set(faceset.holdout_ids()) if faceset else set()  # kept for `deepswap evaluate`
        ids = [face for face in faceset.ids() if face not in held_out and faceset.crop_path(face).is_file()] if faceset else []
        if not faceset or not ids:
            raise DeepswapError(f"{folder}: no faces of person {key} ({name}) to train on; run `deepswap extract` first")
        landmarks = np.stack([faceset.crop_landmarks(face) for face in ids]).astype(np.float32)
        return cls(faceset, ids, landmarks, skin_labels=skin_labels)

    def __len__(self) -> int:
        return len(self.ids)

    def shard(self, rank: int, world_size: int) -> "PersonFaces":
        """Every ``world_size``-th face starting at ``rank``: this process's share under DDP."""
        if len(self) < world_size:
            raise DeepswapError(f"{self.faceset.folder}: {len(self)} faces cannot be shared among {world_size} processes")
        return PersonFaces(self.faceset, self.ids[rank::world_size], self.landmarks[rank::world_size],
                           skin_labels=self.skin_labels)

    def balanced(self) -> "PersonFaces":
        """These faces, drawn with ``coverage.expression_weights``: rare poses and expressions (closed
        eyes, a wide-open mouth, raised brows, a turned head) more often, at most 4× the usual."""
        return PersonFaces(self.faceset, self.ids, self.landmarks, expression_weights(self.landmarks), self.skin_labels)

    def read(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The RGB crop and mask of face ``index`` (a missing mask counts as all face)."""
        face = self.ids[index]
        image = _io.read_image(self.faceset.crop_path(face))
        if image is None:
            raise DeepswapError(f"{self.faceset.crop_path(face)}: unreadable face crop; delete it or run `deepswap extract` again")
        if image.shape[:2] != (self.face_size, self.face_size):
            image = cv2.resize(image, (self.face_size, self.face_size), interpolation=cv2.INTER_AREA)
        mask = _io.read_image(self.faceset.mask_path(face), grayscale=True)
        if mask is None or mask.shape != image.shape[:2]:
            mask = np.full(image.shape[:2], 255, np.uint8)
        return image, mask

    def segmenter_label(self, index: int, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The learned mask's label of face ``index`` (its crop and stored mask from ``read``): with
        ``skin_labels`` the stored mask restricted to skin (``faces.skin_mask``: no hair over the
        forehead or temples), else — and where the user corrected it by hand — the stored mask."""
        if not self.skin_labels or self.ids[index] in self.faceset.corrected:
            return mask
        return skin_mask(image, self.landmarks[index], mask)


def feature_map(landmarks: np.ndarray, size: int) -> np.ndarray:
    """uint8 size×size×2 map of the features the loss weights more: channel 0 the eyes, 255 over an
    ellipse around each eye sized by its corners alone (``EYE_REGION``), so that it covers the lids
    whether the eye is open or shut; channel 1 the mouth (the hull of its landmarks, enlarged by half)."""
    eyes, mouth = np.zeros((size, size), np.uint8), np.zeros((size, size), np.uint8)
    for eye in EYES:
        outer, inner = landmarks[eye][0], landmarks[eye][3]
        centre, across = landmarks[eye].mean(axis=0), inner - outer
        width, angle = float(np.linalg.norm(across)), float(np.degrees(np.arctan2(across[1], across[0])))
        box = ((float(centre[0]), float(centre[1])), (EYE_REGION[0] * width, EYE_REGION[1] * width), angle)
        cv2.ellipse(eyes, box, 255, -1, cv2.LINE_AA)
    points = landmarks[MOUTH]
    centre = points.mean(axis=0)
    hull = cv2.convexHull(((points - centre) * 1.5 + centre).astype(np.float32))
    cv2.fillConvexPoly(mouth, np.round(hull * 16).astype(np.int32), 255, lineType=cv2.LINE_AA, shift=4)
    return np.stack([eyes, mouth], axis=-1)


def region_face(image: np.ndarray, region: tuple[int, int, int], resolution: int) -> np.ndarray:
    """The face region of a crop at the model's resolution (area-averaged when shrinking)."""
    x, y, side = region
    patch = image[y:y + side, x:x + side]
    interpolation = cv2.INTER_AREA if side > resolution else cv2.INTER_CUBIC
    return cv2.resize(patch, (resolution, resolution), interpolation=interpolation)


def jitter_colour(image: np.ndarray, rng: np.random.Generator, augment: Augment) -> np.ndarray:
    """Shift lightness and colour in LAB space toward black/white by up to the augment amounts."""
    if augment.lightness == 0 and augment.color == 0:
        return image
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB).astype(np.float32)
    amounts = rng.uniform(-1, 1, 3) * np.array([augment.lightness, augment.color, augment.color])
    for channel, amount in enumerate(amounts):
        values = lab[..., channel]
        lab[..., channel] = values * (1 - amount) + 255 * amount if amount > 0 else values * (1 + amount)
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def random_transform(size: int, rng: np.random.Generator, augment: Augment) -> np.ndarray:
    """A 2×3 similarity (rotation, zoom, shift about the centre) plus a random horizontal flip. The
    centre is that of the pixel grid, (size - 1) / 2, so a flip alone is an exact mirror image."""
    angle = rng.uniform(-augment.rotation, augment.rotation)
    scale = rng.uniform(1 - augment.zoom, 1 + augment.zoom)
    shift = rng.uniform(-augment.shift, augment.shift, 2) * size
    centre = (size - 1) / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), angle, scale)
    matrix[:, 2] += shift
    if rng.random() < augment.flip:
        matrix = np.array([[-1, 0, 2 * centre], [0, 1, 0]], np.float64) @ np.vstack([matrix, [0, 0, 1]])
    return matrix


def warp_field(size: int, rng: np.random.Generator, sigma: float, grid: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Sampling maps (x, y) of the random warp: the identity plus a smooth displacement interpolated
    from a ``grid``×``grid`` lattice of control points moved by Gaussian noise (σ = ``sigma``·size)."""
    noise = rng.normal(0, sigma * size, (2, grid, grid)).astype(np.float32)
    dx, dy = (cv2.resize(n, (size, size), interpolation=cv2.INTER_CUBIC) for n in noise)
    xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    return xs + dx, ys + dy


def augment_face(image: np.ndarray, mask: np.ndarray, features: np.ndarray, rng: np.random.Generator,
                 augment: Augment) -> dict[str, np.ndarray]:
    """Steps 2–4 above on a face region (all arrays at the model's resolution; ``mask`` H×W or
    H×W×C, each channel moved alike): returns the warped input, the target and the target-aligned
    mask and feature map."""
    size = image.shape[0]
    image = jitter_colour(image, rng, augment)
    matrix = random_transform(size, rng, augment)
    border = {"borderMode": cv2.BORDER_REPLICATE}
    target = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, **border)
    mask = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    features = cv2.warpAffine(features, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    # The input samples the face where the target does, displaced by the warp field: map each
    # target pixel + displacement back through the inverse similarity into the face region.
    map_x, map_y = warp_field(size, rng, augment.warp)
    inverse = cv2.invertAffineTransform(matrix)
    source_x = inverse[0, 0] * map_x + inverse[0, 1] * map_y + inverse[0, 2]
    source_y = inverse[1, 0] * map_x + inverse[1, 1] * map_y + inverse[1, 2]
    warped = cv2.remap(image, source_x.astype(np.float32), source_y.astype(np.float32), cv2.INTER_LINEAR, **border)
    return {"warped": warped, "target": target, "mask": mask, "features": features}


class MaskSamples:
    """The segmenter's samples, in the swap's training and alone (``train --mask-steps``), a pure
    function of (seed, person, sample number): a face drawn by the faces' weights, with the full
    augmentation whatever the stage of the swap's training (the learned mask meets turned and
    shifted faces in footage), an occluder in front most of the time, its label and its loss
    weights, uint8 at ``segmenter.RESOLUTION``."""

    def __init__(self, people: dict[str, PersonFaces], coverage: float, seed: int) -> None:
        self.people, self.coverage, self.seed = people, coverage, seed
        self.augment = Augment()
        self._regions: dict[tuple[str, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def region(self, key: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Face ``index`` of ``key``: its face region, label (``PersonFaces.segmenter_label``: the
        stored mask, skin only unless corrected by hand) and care mask (landmark mask ∪ stored mask)
        at ``segmenter.RESOLUTION`` (kept in memory up to ``MASK_CACHE_BYTES``)."""
        if (key, index) in self._regions:
            return self._regions[key, index]
        people = self.people[key]
        image, mask = people.read(index)
        care = np.maximum(mask, face_mask(people.landmarks[index], people.face_size))
        label = people.segmenter_label(index, image, mask)
        region = face_region(people.face_size, self.coverage)
        arrays = tuple(region_face(array, region, segmenter.RESOLUTION) for array in (image, label, care))
        if len(self._regions) * segmenter.RESOLUTION * segmenter.RESOLUTION * 5 < MASK_CACHE_BYTES:
            self._regions[key, index] = arrays  # type: ignore[assignment]
        return arrays  # type: ignore[return-value]

    def sample(self, key: str, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        people = self.people[key]
        rng = np.random.default_rng([self.seed, ord(key), n, 3])
        weights = people.weights if people.weights is not None else np.ones(len(people))
        face, label, care = self.region(key, int(rng.choice(len(people), p=weights / weights.sum())))
        face = jitter_colour(face, rng, self.augment)
        matrix = random_transform(segmenter.RESOLUTION, rng, self.augment)
        size = (segmenter.RESOLUTION, segmenter.RESOLUTION)
        face = cv2.warpAffine(face, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        label, care = (cv2.warpAffine(array, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
                       for array in (label, care))
        if rng.random() < SEGMENTER_OCCLUSION:
            elsewhere = self.region(key, int(rng.integers(len(people))))[0]
            occluder = random_occluder(face, elsewhere, rng)
            face, label = occluder.paste(face), occluder.uncovered(label)
        return face, label, segmenter.loss_weights(care)

    def batch(self, step: int, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Step ``step``'s batch: ``size`` samples of each person (faces N×3×R×R, labels and weights N×R×R)."""
        samples = [self.sample(key, step * size + k) for key in self.people for k in range(size)]
        faces, labels, weights = (np.stack(arrays) for arrays in zip(*samples))
        return torch.from_numpy(faces).permute(0, 3, 1, 2), torch.from_numpy(labels), torch.from_numpy(weights)


class TrainingStream(Dataset):
    """An endless, reproducible stream of augmented pairs: item ``n`` holds face ``n`` of A and of B
    (each person's faces in a fresh random order every pass, or, for faces with ``weights``, a pass
    as long drawn by those weights), as uint8 arrays CHW/HW. Item ``n`` belongs to batch
    ``n // batch_size``; every ``segment_every``-th batch also holds the segmenter's samples (``occlude``)."""

    def __init__(self, faces: dict[str, PersonFaces], resolution: int, coverage: float, seed: int,
                 augment: Augment | None = None, output_resolution: int | None = None,
                 cache_bytes: int = REGION_CACHE_BYTES, batch_size: int = 1, segment_every: int = 1) -> None:
        self.faces = faces
        self.batch_size, self.segment_every = batch_size, segment_every
        self.resolution = resolution
        self.output_resolution = output_resolution or resolution
        self.coverage = coverage
        self.seed = seed
        self.augment = augment or Augment()
        self.cache_bytes = cache_bytes
        self._face_regions = {key: face_region(people.face_size, coverage) for key, people in faces.items()}
        self.mask_samples = MaskSamples(faces, coverage, seed)
        self._orders: dict[tuple[str, int], np.ndarray] = {}
        self._regions: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._cached_bytes = 0

    def face_index(self, key: str, n: int) -> int:
        count = len(self.faces[key])
        epoch = n // count
        if (key, epoch) not in self._orders:
            if len(self._orders) > 8:
                self._orders.clear()
            rng, weights = np.random.default_rng([self.seed, ord(key), epoch]), self.faces[key].weights
            self._orders[key, epoch] = (rng.permutation(count) if weights is None
                                        else rng.choice(count, count, p=weights / weights.sum()))
        return int(self._orders[key, epoch][n % count])

    def region(self, key: str, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The face region of face ``index`` of person ``key`` and its stored mask (the swap's loss
        weights) at the output resolution, read-only: from memory when this stream has read it
        before, else from disk (and kept while the stream holds less than ``cache_bytes``)."""
        if (key, index) in self._regions:
            return self._regions[key, index]
        region, people = self._face_regions[key], self.faces[key]
        image, mask = (region_face(array, region, self.output_resolution) for array in people.read(index))
        image.flags.writeable = mask.flags.writeable = False
        if self._cached_bytes + image.nbytes + mask.nbytes <= self.cache_bytes:
            self._regions[key, index] = image, mask
            self._cached_bytes += image.nbytes + mask.nbytes
        return image, mask

    def sample(self, key: str, n: int) -> dict[str, np.ndarray]:
        faces = self.faces[key]
        index = self.face_index(key, n)
        x, y, side = self._face_regions[key]
        size = self.output_resolution
        features = feature_map((faces.landmarks[index] - (x, y)) * size / side, size)
        rng = np.random.default_rng([self.seed, ord(key), n, 1])
        sample = augment_face(*self.region(key, index), features, rng, self.augment)
        sample.update(self.occlude(key, n, sample, np.random.default_rng([self.seed, ord(key), n, 2])))
        if size != self.resolution:
            sample["warped"] = cv2.resize(sample["warped"], (self.resolution, self.resolution), interpolation=cv2.INTER_AREA)
        return {name: (array.transpose(2, 0, 1) if array.ndim == 3 else array) for name, array in sample.items()}

    def occlude(self, key: str, n: int, sample: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
        """A random occluder in front of the sample's input (``INPUT_OCCLUSION`` of the time) and, in
        the batches the segmenter trains on, its sample (``MaskSamples``, as ``train --mask-steps``
        draws them: its own faces and augmentation, which the finishing stage leaves as they are, so
        the mask keeps learning faces turned and shifted as in real footage): its face, label and loss
        weights. Occluders are drawn at the segmenter's resolution."""
        extra = {}
        if rng.random() < INPUT_OCCLUSION:
            side = segmenter.RESOLUTION
            face = cv2.resize(sample["target"], (side, side), interpolation=cv2.INTER_AREA)
            warped = sample["warped"]
            extra["warped"] = self.occluder(key, face, rng).resized(warped.shape[0]).paste(warped)
        batch = n // self.batch_size
        if batch % self.segment_every:
            return extra
        step_sample = batch // self.segment_every * self.batch_size + n % self.batch_size
        face, label, weight = self.mask_samples.sample(key, step_sample)
        return extra | {"segment": face, "segment_label": label, "segment_weight": weight}

    def occluder(self, key: str, face: np.ndarray, rng: np.random.Generator) -> Occluder:
        """A random occluder over ``face``, its patches cut from another face region of the same person."""
        elsewhere, _ = self.region(key, int(rng.integers(len(self.faces[key]))))
        side = face.shape[0]
        return random_occluder(face, cv2.resize(elsewhere, (side, side), interpolation=cv2.INTER_AREA), rng)

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        return {f"{key}_{name}": torch.from_numpy(np.ascontiguousarray(array))
                for key in self.faces for name, array in self.sample(key, n).items()}


def lower_priority(worker: int) -> None:
    """A data worker's start on a CPU run: the lowest scheduling priority (nice 19), so it prepares
    batches on the cycles torch's threads leave and does not stall them (they wait on each other)."""
    if hasattr(os, "nice"):
        os.nice(19)


def make_loader(stream: TrainingStream, batch_size: int, first_sample: int, workers: int,
                pin_memory: bool = False, low_priority: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Batches of the stream from sample ``first_sample`` on, prepared by ``workers`` processes
    (at the lowest priority with ``low_priority``: ``lower_priority``).

    The workers are forked and run torch single-threaded (DataLoader's default). They must not
    call ``cv2.setNumThreads``: after a fork it waits for the parent's OpenCV pool threads, which
    do not exist in the child, and hangs (seen after extract had run in the same process).
    """
    loader = DataLoader(stream, batch_size=batch_size, sampler=itertools.count(first_sample), num_workers=workers,
                        pin_memory=pin_memory, persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
                        worker_init_fn=lower_priority if low_priority else None)
    batches = iter(loader)
    while True:
        try:
            yield next(batches)
        except DeepswapError as error:  # a worker's error arrives wrapped in its traceback: keep the one line
            raise DeepswapError(str(error).strip().splitlines()[-1].removeprefix("deepswap.errors.DeepswapError: ")) from None


def preview_faces(faces: PersonFaces, count: int, resolution: int, coverage: float) -> np.ndarray:
    """``count`` faces spread evenly over the set, unaugmented: count×R×R×3 uint8 (fixed preview sample)."""
    region = face_region(faces.face_size, coverage)
    picks = np.linspace(0, len(faces) - 1, min(count, len(faces))).round().astype(int)
    return np.stack([region_face(faces.read(int(i))[0], region, resolution) for i in picks])
