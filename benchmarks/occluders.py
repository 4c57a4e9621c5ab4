"""Drawn occluders and landmark-driven expressions for the test footage of ``footage.py``.

Everything here works on RGB uint8 frames and dlib's 68 landmarks (frame pixels); sizes are in
eye-corner distances (``unit``), so the shapes fit any face size.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SUPERSAMPLE = 4  # shapes are drawn this much larger and shrunk: smooth edges


def unit(landmarks: np.ndarray) -> float:
    """The eye-corner distance of a face."""
    return float(np.linalg.norm(landmarks[45] - landmarks[36]))


def face_region(landmarks: np.ndarray, shape: tuple[int, ...], grow: float = 0.1) -> np.ndarray:
    """H×W bool: the convex hull of the 68 landmarks, ``grow`` eye-corner distances wider."""
    region = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(np.round(landmarks).astype(np.int32)), 1)
    side = 2 * max(1, round(grow * unit(landmarks))) + 1
    return cv2.dilate(region, np.ones((side, side), np.uint8)).astype(bool)


def _coverage(shape: tuple[int, ...], polygons: list[np.ndarray], ellipses: list[tuple] = ()) -> np.ndarray:
    """H×W float 0..1: how much of each pixel the polygons and ellipses (centre, axes, angle) cover."""
    height, width = shape[:2]
    big = np.zeros((height * SUPERSAMPLE, width * SUPERSAMPLE), np.uint8)
    for polygon in polygons:
        cv2.fillPoly(big, [np.round(np.asarray(polygon) * SUPERSAMPLE).astype(np.int32)], 255)
    for centre, axes, angle in ellipses:
        cv2.ellipse(big, tuple(round(c * SUPERSAMPLE) for c in centre),
                    tuple(round(a * SUPERSAMPLE) for a in axes), angle, 0, 360, 255, -1)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def _paint(image: np.ndarray, cover: np.ndarray, colour: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``colour`` (H×W×3 float) over ``image`` where ``cover`` says, and the pixels wholly covered."""
    blended = image.astype(np.float32) * (1 - cover[..., None]) + colour * cover[..., None]
    return np.clip(blended, 0, 255).astype(np.uint8), cover >= 0.999


def microphone(image: np.ndarray, centre: np.ndarray, size: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A microphone on a stand drawn over ``image``: a dark metallic rounded head (radius ``size``)
    at ``centre`` with a grille and a highlight, on a stand down to the frame's bottom. Returns the
    frame and the mask of the pixels it wholly covers."""
    height, width = image.shape[:2]
    cx, cy = centre
    head = ((cx, cy), (size * 0.8, size), 0)
    stand = np.array([[cx - 0.14 * size, cy], [cx + 0.14 * size, cy], [cx + 0.2 * size, height], [cx - 0.2 * size, height]])
    cover = np.maximum(_coverage(image.shape, [], [head]), _coverage(image.shape, [stand]))
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    # a sphere lit from the top left, a vertical highlight on the stand, a woven grille, some grain
    dx, dy = (xs - cx) / (0.8 * size), (ys - cy) / size
    light = np.clip(1 - 0.6 * np.hypot(dx + 0.35, dy + 0.4), 0.15, 1)
    grille = 0.8 + 0.2 * (np.sin(xs * 2.2) * np.sin(ys * 2.2) > 0)
    metal = 40 + 120 * light * grille + rng.normal(0, 4, light.shape)
    on_stand = (ys > cy + size * 0.95)
    metal = np.where(on_stand, 35 + 60 * np.exp(-((xs - cx + 0.05 * size) / (0.09 * size)) ** 2), metal)
    colour = np.stack([metal, metal * 1.02, metal * 1.08], axis=-1)
    return _paint(image, cover, colour)


def hand_polygons(centre: np.ndarray, size: float, angle: float) -> list[np.ndarray]:
    """A flat right hand, palm towards the camera, fingers up and tilted by ``angle`` degrees: the
    palm, four fingers and the thumb as polygons (``size``: the palm's width)."""
    def rounded(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
        radius = (x1 - x0) / 2
        arc = [(x0 + radius + radius * math.cos(t), y0 + radius - radius * math.sin(t)) for t in np.linspace(0, math.pi, 9)]
        return np.array([(x1, y1), *arc, (x0, y1)])

    parts = [np.array([(-0.5, 0.0), (0.5, 0.0), (0.45, 0.9), (0.1, 1.15), (-0.35, 1.05), (-0.5, 0.6)])]
    for offset, length in ((-0.38, 0.78), (-0.13, 0.92), (0.12, 0.86), (0.36, 0.66)):
        parts.append(rounded(offset - 0.1, -length, offset + 0.1, 0.05))
    thumb = rounded(-0.11, -0.55, 0.11, 0.05)
    turn = np.radians(50)
    parts.append(thumb @ np.array([[math.cos(turn), math.sin(turn)], [-math.sin(turn), math.cos(turn)]]) + (-0.55, 0.65))
    rotation = np.radians(angle)
    matrix = np.array([[math.cos(rotation), -math.sin(rotation)], [math.sin(rotation), math.cos(rotation)]])
    return [part @ matrix.T * size + centre for part in parts]


def hand(image: np.ndarray, centre: np.ndarray, size: float, angle: float,
         rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A skin-toned hand (``hand_polygons``) drawn over ``image``, shaded across the palm, darker in
    the gaps between the fingers, with skin grain. Returns the frame and the mask it wholly covers."""
    parts = hand_polygons(centre, size, angle)
    cover = _coverage(image.shape, parts)
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    shade = 0.78 + 0.22 * np.clip(1 - np.hypot(xs - centre[0] + 0.2 * size, ys - centre[1]) / (1.3 * size), 0, 1)
    edges = cv2.GaussianBlur(cover, (0, 0), max(1.0, size * 0.04))
    shade *= 0.8 + 0.2 * np.clip(edges * 1.6, 0, 1)  # darker at the outline and between the fingers
    grain = cv2.GaussianBlur(rng.normal(0, 1, (height, width)).astype(np.float32), (0, 0), 1.0) * 6
    skin = np.array([214.0, 160.0, 128.0])
    colour = skin * shade[..., None] + grain[..., None]
    return _paint(image, cover, colour)


def triangles(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """The Delaunay triangles (K×3 indices) of points inside a ``width``×``height`` frame."""
    subdivision = cv2.Subdiv2D((0, 0, width, height))
    for point in points:
        subdivision.insert((float(point[0]), float(point[1])))
    corners = subdivision.getTriangleList().reshape(-1, 3, 2)
    index = np.linalg.norm(corners[:, :, None, :] - points[None, None, :, :], axis=-1).argmin(axis=-1)
    inside = (corners >= 0).all(axis=(1, 2)) & (corners[..., 0] < width).all(axis=1) & (corners[..., 1] < height).all(axis=1)
    return index[inside]


def warp_to(image: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``image`` warped piecewise-affinely so that its points ``source`` (N×2) land on ``target``
    (triangles of the source points and the frame's corners and edge midpoints)."""
    height, width = image.shape[:2]
    border = np.array([[0, 0], [width / 2, 0], [width - 1, 0], [width - 1, height / 2], [width - 1, height - 1],
                       [width / 2, height - 1], [0, height - 1], [0, height / 2]], np.float64)
    source, target = np.vstack([source, border]), np.vstack([target, border])
    out = image.copy()
    for triangle in triangles(source, width, height):
        src, dst = source[triangle].astype(np.float32), target[triangle].astype(np.float32)
        x, y, w, h = cv2.boundingRect(dst)
        if w == 0 or h == 0:
            continue
        matrix = cv2.getAffineTransform(src, dst - np.float32([x, y]))
        patch = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        inside = np.zeros((h, w), np.uint8)
        cv2.fillConvexPoly(inside, np.round(dst - [x, y]).astype(np.int32), 1)
        region = out[y:y + h, x:x + w]
        region[inside[:region.shape[0], :region.shape[1]] > 0] = patch[:region.shape[0], :region.shape[1]][
            inside[:region.shape[0], :region.shape[1]] > 0]
    return out


def expression(landmarks: np.ndarray, mouth: float, brows: float, eyes: float) -> np.ndarray:
    """Landmarks moved to an expression, in eye-corner distances: the jaw, chin and lower lip down by
    ``mouth``; the brows up by ``brows``; the upper lids up by ``eyes`` (wide-eyed) or, negative, down
    towards the lower lids (−1: shut)."""
    moved = np.asarray(landmarks, np.float64).copy()
    size = unit(moved)
    down = moved[8] - moved[27]
    down /= np.linalg.norm(down)
    for index, share in {**{i: 0.35 for i in (4, 12)}, **{i: 0.7 for i in (5, 11)}, **{i: 1.0 for i in range(6, 11)},
                         **{i: 1.0 for i in range(55, 60)}, **{i: 1.0 for i in range(65, 68)}}.items():
        moved[index] += down * mouth * size * share
    moved[17:27] -= down * brows * size
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        if eyes >= 0:
            moved[upper] -= down * eyes * size
        else:
            moved[upper] += (moved[lower] - moved[upper]) * min(1.0, -eyes) * 0.9
    return moved


def mouth_interior(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The open mouth's inside (between the inner lips, points 60–67) painted dark, upper teeth showing."""
    inner = landmarks[60:68]
    cover = _coverage(image.shape, [inner])
    if cover.max() == 0:
        return image
    height, width = image.shape[:2]
    ys = np.mgrid[0:height, 0:width][0].astype(np.float32)
    top, bottom = inner[:, 1].min(), inner[:, 1].max()
    depth = np.clip((ys - top) / max(1.0, bottom - top), 0, 1)
    teeth = depth < 0.18
    throat = np.array([70.0, 28.0, 30.0]) * (1 - 0.5 * depth[..., None])
    colour = np.where(teeth[..., None], np.array([185.0, 172.0, 155.0]), throat)
    painted, _ = _paint(image, cv2.GaussianBlur(cover, (0, 0), 0.7), colour)
    return painted


def window_light(image: np.ndarray, strength: float = 0.55) -> np.ndarray:
    """Light from a window on the picture's left: warm and bright there, falling off to the right."""
    width = image.shape[1]
    fall = np.linspace(1 + strength * 0.5, 1 - strength * 0.6, width, dtype=np.float32)[None, :, None]
    warm = np.array([1.05, 1.0, 0.9], np.float32)
    return np.clip(image.astype(np.float32) * fall * warm, 0, 255).astype(np.uint8)
