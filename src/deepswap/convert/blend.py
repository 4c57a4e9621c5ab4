"""Putting the generated face back into the frame: inverse warp, mask feathering, blending."""

from __future__ import annotations

import cv2
import numpy as np

from .options import BlendMode


def prepare_mask(mask: np.ndarray, erode: float, blur: float) -> np.ndarray:
    """Erode then feather a 0..1 crop mask; ``erode``/``blur`` are fractions of the crop size."""
    size = mask.shape[0]
    mask = mask.astype(np.float32)
    erode_px = int(round(abs(erode) * size))
    if erode_px:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        mask = cv2.erode(mask, kernel) if erode > 0 else cv2.dilate(mask, kernel)
    blur_px = feather_kernel(blur, size)
    if blur_px > 1:
        mask = cv2.GaussianBlur(mask, (blur_px, blur_px), 0)
    return np.clip(mask, 0.0, 1.0)


def feather_kernel(blur: float, size: int) -> int:
    """The odd side in pixels of the Gaussian that feathers a mask by ``blur`` × ``size``."""
    return int(round(blur * size)) | 1


def region_window(size: int, region: tuple[int, int, int], blur: float) -> np.ndarray:
    """A crop-sized weight: 1 inside the model's ``region`` of the crop, falling to 0 at its edge over
    the mask's feather (``blur``, a fraction of the crop). The generated face ends where the region
    does (the swapper leaves the footage outside it), so a mask reaching past the region would show
    a straight seam there."""
    x, y, side = region
    inset = feather_kernel(blur, size) // 2 + 1  # the feather's radius, and a pixel
    window = np.zeros((size, size), np.float32)
    window[y + inset:y + side - inset, x + inset:x + side - inset] = 1
    return prepare_mask(window, 0.0, blur)


TONE_REACH = (0.05, 0.25)  # of the crop: how far the new face's tone is carried from where it is measured (near, far)
FAR_SHARE = 0.05  # the far reach's weight: it decides only where the near one finds nothing to measure
TONE_GRID = 64  # pixels across: the tone offset is smooth, so it is measured and carried on a grid this coarse


def fill_from_footage(drawn: np.ndarray, footage: np.ndarray, keep: np.ndarray, skin: np.ndarray,
                      measured: np.ndarray, scale: float) -> np.ndarray:
    """The drawn face (S×S×3 uint8) where ``keep`` (S×S, 0..1) says it is face, and elsewhere the
    footage's own crop softened to the drawn face's resolution (``scale``: drawn pixels per crop
    pixel; paste_face lays the footage's finer detail over both alike) and, where the footage is
    ``skin`` (S×S, 0..1), shifted by the drawn face's colour difference from it: measured where the
    drawn face is kept and ``measured`` (S×S, 0..1: skin in both) and carried smoothly over the rest
    (``TONE_REACH``). So the footage's own forehead or cheek, shown where the model drew hair, meets
    the new face without a seam in tone, and the footage's hair there is left as it is."""
    size = drawn.shape[0]
    soft = footage.astype(np.float32)
    if scale < 1:
        small = cv2.resize(footage, (max(1, round(size * scale)),) * 2, interpolation=cv2.INTER_AREA)
        soft = cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    face = drawn.astype(np.float32)
    weight = (keep * measured).astype(np.float32)
    offset = carried((face - soft) * weight[..., None], weight, size)
    fill = soft + offset * skin[..., None]
    keep = keep[..., None]
    return np.clip(face * keep + fill * (1 - keep) + 0.5, 0, 255).astype(np.uint8)


def carried(weighted: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """The weighted mean of a smooth quantity (``weighted``: H×W×C, already multiplied by ``weight``,
    H×W) around each pixel, over ``TONE_REACH`` of the crop, as a ``size``-px square; 0 where nothing
    has weight."""
    grid = (TONE_GRID, TONE_GRID)
    values = cv2.resize(weighted, grid, interpolation=cv2.INTER_AREA)
    weights = cv2.resize(weight, grid, interpolation=cv2.INTER_AREA)
    total, norm = np.zeros_like(values), np.zeros_like(weights)
    for reach, share in zip(TONE_REACH, (1.0, FAR_SHARE)):
        total += share * cv2.GaussianBlur(values, (0, 0), reach * TONE_GRID)
        norm += share * cv2.GaussianBlur(weights, (0, 0), reach * TONE_GRID)
    mean = total / np.maximum(norm, 1e-6)[..., None]
    return cv2.resize(mean, (size, size), interpolation=cv2.INTER_LINEAR)


def fine_detail(patch: np.ndarray, scale: float) -> np.ndarray:
    """The luma of an RGB patch finer than ``scale`` (< 1) times its resolution, in grey levels
    (float32, zero mean): the luma minus itself shrunk by ``scale`` and grown back."""
    luma = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY).astype(np.float32)
    height, width = luma.shape
    small = cv2.resize(luma, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    return luma - cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def paste_face(
    frame: np.ndarray,
    face: np.ndarray,
    mask: np.ndarray,
    matrix: np.ndarray,
    mode: BlendMode = "feather",
    detail: float = 0.0,
    detail_scale: float = 1.0,
) -> np.ndarray:
    """Warp a face crop back into ``frame`` with the inverse of the frame→crop ``matrix`` and blend it.

    The face is warped bicubically (a bilinear warp blurs away its finest detail). ``detail`` is the
    share of the frame's own detail finer than ``detail_scale`` × its resolution (``fine_detail``)
    laid over the face inside the mask, at the frame's resolution. Only the face's bounding
    rectangle in the frame is touched, so the cost does not grow with the frame size; pixels
    outside the mask stay byte-identical.
    """
    height, width = frame.shape[:2]
    size = face.shape[0]
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float32)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(mapped.min(axis=0)).astype(int).clip(0, [width, height])
    x1, y1 = np.ceil(mapped.max(axis=0)).astype(int).clip(0, [width, height])
    if x1 <= x0 or y1 <= y0:
        return frame
    shifted = inverse.copy()
    shifted[:, 2] -= (x0, y0)
    region = (x1 - x0, y1 - y0)
    warped_face = cv2.warpAffine(face, shifted, region, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    warped_mask = cv2.warpAffine(mask, shifted, region, flags=cv2.INTER_LINEAR, borderValue=0.0)
    output = frame.copy()
    patch = output[y0:y1, x0:x1]
    if mode == "seamless" and (warped_mask > 0.5).any():
        binary = (warped_mask > 0.5).astype(np.uint8) * 255
        ys, xs = np.nonzero(binary)
        center = (int((xs.min() + xs.max()) // 2), int((ys.min() + ys.max()) // 2))
        padded = cv2.copyMakeBorder(patch, 1, 1, 1, 1, cv2.BORDER_REFLECT)
        cloned = cv2.seamlessClone(
            cv2.copyMakeBorder(warped_face, 1, 1, 1, 1, cv2.BORDER_REFLECT), padded,
            cv2.copyMakeBorder(binary, 1, 1, 1, 1, cv2.BORDER_CONSTANT), (center[0] + 1, center[1] + 1), cv2.NORMAL_CLONE,
        )[1:-1, 1:-1]
        warped_face = cloned
    alpha = warped_mask[..., None]
    drawn = warped_face.astype(np.float32)
    if detail and detail_scale < 1:
        drawn += detail * fine_detail(patch, detail_scale)[..., None]
    blended = patch.astype(np.float32) * (1 - alpha) + drawn * alpha
    touched = warped_mask > 0
    patch[touched] = np.clip(blended[touched] + 0.5, 0, 255).astype(np.uint8)
    return output
