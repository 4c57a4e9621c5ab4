"""Colour matching of the generated face to the original face, inside the face mask."""

from __future__ import annotations

import cv2
import numpy as np

from .options import ColorMode


def _masked_pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    selected = image[mask > 0.5]
    return selected if len(selected) >= 16 else image.reshape(-1, image.shape[-1])


def reinhard_transfer(source: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Give ``source`` the per-channel LAB mean and spread of ``target`` (Reinhard et al. 2001)."""
    source_lab = cv2.cvtColor(source, cv2.COLOR_RGB2LAB).astype(np.float32)
    target_lab = cv2.cvtColor(target, cv2.COLOR_RGB2LAB).astype(np.float32)
    src = _masked_pixels(source_lab, mask)
    tgt = _masked_pixels(target_lab, mask)
    scale = tgt.std(axis=0) / np.maximum(src.std(axis=0), 1e-3)
    shifted = (source_lab - src.mean(axis=0)) * scale + tgt.mean(axis=0)
    return cv2.cvtColor(np.clip(shifted, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


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
