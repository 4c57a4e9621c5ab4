"""Colour matching of the generated face to the original face, inside the face mask."""

from __future__ import annotations

import cv2
import numpy as np

from .options import ColorMode


def reinhard_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give ``source`` the per-channel LAB mean and spread of ``target`` (Reinhard et al. 2001),
    measured where ``mask`` > 0.5 (the whole image when that is under 16 pixels). The per-channel
    affine map is applied as a lookup table on the 8-bit LAB image."""
    inside = (mask > 0.5).astype(np.uint8)
    inside = inside if cv2.countNonZero(inside) >= 16 else None
    source_lab = cv2.cvtColor(source, cv2.COLOR_RGB2LAB)
    source_mean, source_std = (values.ravel() for values in cv2.meanStdDev(source_lab, mask=inside))
    target_mean, target_std = (values.ravel() for values in cv2.meanStdDev(cv2.cvtColor(target, cv2.COLOR_RGB2LAB),
                                                                          mask=inside))
    scale = target_std / np.maximum(source_std, 1e-3)
    levels = np.arange(256, dtype=np.float64)[:, None]
    table = np.clip((levels - source_mean) * scale + target_mean, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.LUT(source_lab, table[:, None, :]), cv2.COLOR_LAB2RGB)


def histogram_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Map each RGB channel of ``source`` so its histogram (inside the mask) matches ``target``'s."""
    result = np.empty_like(source)
    inside = mask > 0.5
    for channel in range(3):
        src = source[..., channel]
        src_hist = np.bincount((src[inside] if inside.sum() >= 16 else src.ravel()), minlength=256).cumsum()
        tgt = target[..., channel]
        tgt_hist = np.bincount((tgt[inside] if inside.sum() >= 16 else tgt.ravel()), minlength=256).cumsum()
        lookup = np.interp(src_hist / src_hist[-1], tgt_hist / tgt_hist[-1], np.arange(256))
        lookup = np.round(lookup).astype(np.uint8)
        result[..., channel] = lookup[src]
    return result


def match_color(source: np.ndarray, target: np.ndarray, mask: np.ndarray, mode: ColorMode) -> np.ndarray:
    """Colour-correct a generated face crop ``source`` toward the original crop ``target``."""
    if mode == "reinhard":
        return reinhard_transfer(source, target, mask)
    if mode == "hist":
        return histogram_transfer(source, target, mask)
    return source
