"""Synthetic occluders: things that come between the camera and a face, drawn at random over face regions.

The learned mask (``segmenter.py``) is taught what is *not* face by pasting these over the user's
own faces, and the swap decoders see them on their inputs (never on their targets), so they learn
to draw the face behind a hand whole. No hand labelling: the label is the landmark mask minus the
occluder's own alpha. Nirkin et al. (2018, "On Face Segmentation, Face Swapping, and Face
Perception") showed that hand-occlusion augmentation like this teaches a segmentation network to
leave hands out of the face.

Four kinds, each with a hard or a soft (blurred) edge:

- a **hand**: palm, four fingers and a thumb, and the wrist running off the picture, in a skin tone
  (half of the time the face's own, so colour alone does not tell them apart);
- a **microphone**: a round head with a mesh and a stick running off the bottom, dark or metallic;
- a **shape**: a random polygon or ellipse, flat, striped or noisy;
- a **patch**: a piece cut from another of the person's frames (background, hair, clothes, face).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

KINDS = ("hand", "microphone", "shape", "patch")


@dataclass(frozen=True)
class Occluder:
    """An occluder over an S×S face region: its colours (S×S×3 float32, 0..255) and its alpha (S×S float32, 0..1)."""

    rgb: np.ndarray
    alpha: np.ndarray

    def paste(self, image: np.ndarray) -> np.ndarray:
        """``image`` (S×S×3 uint8) with the occluder in front of it."""
        alpha = self.alpha[..., None]
        return np.clip(image * (1 - alpha) + self.rgb * alpha + 0.5, 0, 255).astype(np.uint8)

    def uncovered(self, mask: np.ndarray) -> np.ndarray:
        """A uint8 mask (0..255) with the occluder taken out of it: the label of the occluded face."""
        return np.round(mask * (1 - self.alpha)).astype(np.uint8)

    def resized(self, size: int) -> Occluder:
        """The same occluder over an S×S region of another side ``size``."""
        if size == self.alpha.shape[0]:
            return self
        return Occluder(*(cv2.resize(array, (size, size), interpolation=cv2.INTER_LINEAR) for array in (self.rgb, self.alpha)))


def _fill(size: int, rng: np.random.Generator, draw) -> np.ndarray:
    """An S×S float32 alpha drawn at 2× and shrunk (smooth edges), then hard or blurred (soft)."""
    scale = 2
    canvas = np.zeros((size * scale, size * scale), np.uint8)
    draw(canvas, size * scale)
    alpha = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    if rng.random() < 0.5:
        sigma = rng.uniform(0.5, 2.5) * size / 64
        alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
    return alpha


def _capsule(canvas: np.ndarray, start: np.ndarray, end: np.ndarray, thickness: float) -> None:
    cv2.line(canvas, tuple(int(v) for v in start), tuple(int(v) for v in end), 255, max(1, int(thickness)), cv2.LINE_AA)


def _entry(size: float, rng: np.random.Generator, sides: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A point over the lower or middle face where an occluder ends, and the unit direction it
    comes from (towards one of the picture's ``sides``: 0 left, 1 right, 2 bottom)."""
    target = np.array([rng.uniform(0.25, 0.75), rng.uniform(0.45, 0.85)]) * size
    side = sides[rng.integers(len(sides))]
    direction = {0: np.array([-1.0, 0.0]), 1: np.array([1.0, 0.0]), 2: np.array([0.0, 1.0])}[side]
    angle = rng.uniform(-0.5, 0.5)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return target, rotation @ direction


def hand_alpha(size: int, rng: np.random.Generator) -> np.ndarray:
    """A hand (palm, fingers pointing inwards, thumb) and its wrist running off the picture."""
    def draw(canvas: np.ndarray, side: int) -> None:
        tip, outward = _entry(side, rng, (0, 1, 2))
        palm_side = rng.uniform(0.22, 0.34) * side
        palm = tip + outward * palm_side * rng.uniform(0.9, 1.3)
        across = np.array([-outward[1], outward[0]])
        angle = float(np.degrees(np.arctan2(outward[1], outward[0])))
        cv2.ellipse(canvas, tuple(int(v) for v in palm), (int(palm_side * 0.55), int(palm_side * 0.5)), angle, 0, 360,
                    255, -1, cv2.LINE_AA)
        _capsule(canvas, palm, palm + outward * side * 2, palm_side * 0.75)
        finger = palm_side * rng.uniform(0.16, 0.22)
        spread = rng.uniform(-0.25, 0.25)
        for k in range(4):
            base = palm - outward * palm_side * 0.35 + across * palm_side * (k - 1.5) * 0.27
            length = palm_side * rng.uniform(0.6, 1.0) * (0.8 if k in (0, 3) else 1.0)
            bend = -outward + across * spread * (k - 1.5) / 1.5
            _capsule(canvas, base, base + bend / np.linalg.norm(bend) * length, finger)
        thumb_side = 1 if rng.random() < 0.5 else -1
        base = palm + across * thumb_side * palm_side * 0.45
        _capsule(canvas, base, base + (across * thumb_side - outward * 0.6) * palm_side * 0.6, finger * 1.2)
    return _fill(size, rng, draw)


def microphone_alpha(size: int, rng: np.random.Generator) -> np.ndarray:
    """A round microphone head over the mouth or chin, its stick running off the bottom."""
    def draw(canvas: np.ndarray, side: int) -> None:
        head, downward = _entry(side, rng, (2,))
        radius = rng.uniform(0.08, 0.17) * side
        _capsule(canvas, head, head + downward * side * 2, radius * rng.uniform(0.5, 0.9))
        cv2.circle(canvas, tuple(int(v) for v in head), int(radius), 255, -1, cv2.LINE_AA)
    return _fill(size, rng, draw)


def shape_alpha(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random polygon or ellipse somewhere over the face region."""
    def draw(canvas: np.ndarray, side: int) -> None:
        centre = rng.uniform(0.2, 0.8, 2) * side
        radius = rng.uniform(0.1, 0.3) * side
        if rng.random() < 0.5:
            axes = (int(radius), int(radius * rng.uniform(0.4, 1.0)))
            cv2.ellipse(canvas, tuple(int(v) for v in centre), axes, rng.uniform(0, 180), 0, 360, 255, -1, cv2.LINE_AA)
        else:
            corners = int(rng.integers(3, 8))
            angles = (np.arange(corners) + rng.uniform(-0.35, 0.35, corners)) * 2 * np.pi / corners
            radii = radius * rng.uniform(0.5, 1.2, len(angles))
            points = centre + np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii[:, None]
            cv2.fillPoly(canvas, [points.astype(np.int32)], 255, cv2.LINE_AA)
    return _fill(size, rng, draw)


def skin_tone(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A skin colour (RGB): half of the time the face's own (its centre's median, relit), else a random one."""
    size = face.shape[0]
    if rng.random() < 0.5:
        centre = face[size * 2 // 5:size * 3 // 5, size * 2 // 5:size * 3 // 5].reshape(-1, 3)
        return np.median(centre, axis=0) * rng.uniform(0.75, 1.2)
    hsv = np.uint8([[[rng.uniform(3, 15), rng.uniform(60, 170), rng.uniform(70, 245)]]])
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def shaded(size: int, colour: np.ndarray, rng: np.random.Generator, noise: float = 6.0) -> np.ndarray:
    """A flat colour lit by a linear gradient, with a little noise: S×S×3 float32."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0.05, 0.35) * ((xs - 0.5) * np.cos(angle) + (ys - 0.5) * np.sin(angle))
    texture = colour[None, None, :] * light[..., None] + rng.normal(0, noise, (size, size, 1))
    return texture.astype(np.float32)


def microphone_texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """Dark or metallic grey with a mesh of lines."""
    grey = rng.uniform(15, 70) if rng.random() < 0.5 else rng.uniform(110, 220)
    texture = shaded(size, np.full(3, grey), rng, noise=4.0)
    pitch = max(2, int(rng.uniform(0.03, 0.06) * size))
    ys, xs = np.mgrid[0:size, 0:size]
    mesh = ((xs + ys) % pitch == 0) | ((xs - ys) % pitch == 0)
    texture[mesh] *= rng.uniform(0.6, 1.4)
    return texture


def pattern_texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """A random colour, flat, striped or noisy."""
    texture = shaded(size, rng.uniform(0, 255, 3), rng, noise=rng.uniform(0, 30))
    if rng.random() < 0.5:
        ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
        stripes = np.sin((xs * np.cos(rng.uniform(0, np.pi)) + ys) * rng.uniform(0.2, 1.2)) > 0
        texture[stripes] = texture[stripes] * 0.4 + rng.uniform(0, 255, 3) * 0.6
    return texture


def random_occluder(face: np.ndarray, elsewhere: np.ndarray, rng: np.random.Generator) -> Occluder:
    """An occluder of a random kind over the S×S×3 uint8 face region ``face``; ``elsewhere`` is
    another face region of the same footage (S×S×3 uint8), the source of cut-out patches."""
    size = face.shape[0]
    kind = KINDS[rng.integers(len(KINDS))]
    if kind == "hand":
        alpha, rgb = hand_alpha(size, rng), shaded(size, skin_tone(face, rng), rng)
    elif kind == "microphone":
        alpha, rgb = microphone_alpha(size, rng), microphone_texture(size, rng)
    elif kind == "shape":
        alpha, rgb = shape_alpha(size, rng), pattern_texture(size, rng)
    else:
        alpha = shape_alpha(size, rng)
        shift = rng.integers(size // 3, size // 2 + 1, 2) * rng.choice((-1, 1), 2)  # the region's border to the middle
        rgb = np.roll(elsewhere, tuple(shift), axis=(0, 1)).astype(np.float32)
    return Occluder(np.clip(rgb, 0, 255), alpha)
