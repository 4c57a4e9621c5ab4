"""The training loss: SSIM + L1 on the face, weighted by the face mask and more on eyes and mouth,
plus a focal frequency term (fine detail) and a mask loss for models with a mask head. Computed in
float32 (SSIM's variance terms cancel badly in bf16)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class LossWeights:
    ssim: float = 1.0  # DSSIM weight; 0 gives the plain (masked) MAE of the original model
    background: float = 0.2  # weight of pixels outside the face mask
    eyes: float = 3.0  # extra weight over the eyes and their lids (weight 1 + eyes there)
    mouth: float = 2.0  # extra weight over the mouth (weight 1 + mouth there)
    mask: float = 1.0  # weight of the mask head's binary cross-entropy
    frequency: float = 0.0  # weight of the focal frequency loss (0: none)


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    window = torch.exp(-coords ** 2 / (2 * sigma ** 2))
    return window / window.sum()


def _blur_matrix(side: int, window: int, sigma: float, device: torch.device) -> torch.Tensor:
    """The side×side matrix M with which M @ image blurs an image down its height (image @ M.T
    across its width) with a Gaussian of ``window`` taps, borders reflected: SSIM's blur as two
    matrix products, which on a 2-core CPU take two thirds of the time of depthwise convolutions."""
    pad = window // 2
    taps = torch.arange(side, device=device)[:, None] + torch.arange(window, device=device)[None, :] - pad
    taps = taps.abs()
    taps = torch.where(taps > side - 1, 2 * (side - 1) - taps, taps)
    weights = _gaussian_window(window, sigma, device).expand(side, window)
    return torch.zeros(side, side, device=device).scatter_add_(1, taps, weights)


def ssim_map(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel SSIM of two N×C×H×W images in 0..1 (Gaussian window, reflected borders)."""
    channels, height, width = x.shape[1:]
    window = min(window, min(height, width) // 2 * 2 - 1)
    down, across = _blur_matrix(height, window, sigma, x.device), _blur_matrix(width, window, sigma, x.device).T

    def blurred(*images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return (down @ torch.cat(images, dim=1) @ across).split(channels, dim=1)

    # y's own statistics apart: a target that needs no gradient costs the backward pass nothing.
    mu_x, xx, xy = blurred(x, x * x, x * y)
    mu_y, yy = blurred(y, y * y)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))


def focal_frequency_loss(rgb: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Per image, the focal frequency loss (Jiang et al. 2021) of the weighted error: the squared
    distance of the two images' 2-D spectra, each frequency weighted by its own distance (relative
    to the image's largest, raised to ``alpha``, not back-propagated), so the frequencies the model
    renders worst — in practice the fine detail that pixel losses let it blur — count most."""
    spectrum = torch.fft.fft2((rgb - target) * weight, norm="ortho")
    distance = spectrum.real ** 2 + spectrum.imag ** 2
    focus = distance.detach().sqrt() ** alpha
    focus = focus / focus.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return (focus * distance).mean(dim=(1, 2, 3))


def pixel_weights(mask: torch.Tensor, features: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """N×1×H×W loss weights from the mask (N×H×W) and the map of eyes and mouth (N×2×H×W: eyes,
    mouth; ``data.feature_map``), all in 0..1."""
    weight = weights.background + (1 - weights.background) * mask
    return (weight * (1 + weights.eyes * features[:, 0] + weights.mouth * features[:, 1])).unsqueeze(1)


def reconstruction_loss(rgb: torch.Tensor, mask_logits: torch.Tensor | None, target: torch.Tensor,
                        mask: torch.Tensor, features: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """The loss of one person's batch: weighted L1 + weighted DSSIM (+ mask BCE), each image
    normalised by its own weights, then averaged over the images. Inputs in 0..1."""
    with torch.autocast(rgb.device.type, enabled=False):
        rgb, target = rgb.float(), target.float()
        weight = pixel_weights(mask.float(), features.float(), weights)
        per_image = weight.sum(dim=(1, 2, 3)) * 3
        loss = (weight * (rgb - target).abs()).sum(dim=(1, 2, 3)) / per_image
        if weights.ssim:
            dssim = (1 - ssim_map(rgb, target)) / 2
            loss = loss + weights.ssim * (weight * dssim).sum(dim=(1, 2, 3)) / per_image
        if weights.frequency:
            loss = loss + weights.frequency * focal_frequency_loss(rgb, target, weight / weight.amax(dim=(1, 2, 3), keepdim=True))
        if mask_logits is not None and weights.mask:
            loss = loss + weights.mask * F.binary_cross_entropy_with_logits(
                mask_logits.float().squeeze(1), mask.float(), reduction="none").mean(dim=(1, 2))
    return loss.mean()
