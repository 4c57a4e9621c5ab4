"""The learned face mask: a tiny U-Net that tells, pixel by pixel, what of a face region is face.

The landmark mask (``faces.mask``) covers the whole outline of the face, and whatever is in front
of it — a microphone, a hand, a cup — with it: convert painted B's face over them. This network is
trained per workspace, on the user's own aligned faces of both persons, with labels that need no
hand labelling: the landmark mask minus synthetic occluders pasted over the face (``occluders``).
It learns the face's look in this footage, and that a hand or a microphone in front of it is not
face. Convert keeps the landmark mask ∩ this mask, smoothed over time (``convert.replace``).

It trains alongside the swap, one step every ``EVERY`` swap iterations (``SegmenterStep``) on its
own samples of both persons' faces (``data.MaskSamples``), at the swap's schedule, and is saved
with the checkpoint (role ``segmenter``; its step count as ``segmenter_steps`` in ``state.json``'s
``training``). Convert uses it once it has taken ``MIN_STEPS``. At 64 px and width 8 it has 53 k
parameters; its steps cost ~6 % of ``lite``'s training time on a 2-core CPU (docs/training.md).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

RESOLUTION = 64  # pixels across the face region the segmenter sees
LEARNING_RATE = 3e-3
EVERY = 4  # training iterations per segmenter step (each on the iteration's faces of both persons)
MIN_STEPS = 250  # steps before convert uses it (1,000 training iterations): a younger mask leaves out real face
CARE_MARGIN = 0.08  # of the side: how far around the landmark mask the segmenter's loss counts fully


def _block(channels_in: int, channels_out: int) -> nn.Sequential:
    """Two 3×3 convolutions, each followed by a LeakyReLU (no normalisation: batches are small)."""
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, padding=1), nn.LeakyReLU(0.1),
                         nn.Conv2d(channels_out, channels_out, 3, padding=1), nn.LeakyReLU(0.1))


class Segmenter(nn.Module):
    """A U-Net of three levels: 64 → 32 → 16 → 8 px and back, skip connections at each level.
    Input N×3×R×R RGB in 0..1; output N×1×R×R logits (> 0: face)."""

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        widths = (width, 2 * width, 4 * width)
        self.down = nn.ModuleList()
        channels = 3
        for out in widths:
            self.down.append(_block(channels, out))
            channels = out
        self.middle = _block(channels, channels)
        self.up = nn.ModuleList([_block(8 * width, 2 * width), _block(4 * width, width), _block(2 * width, width)])
        self.head = nn.Conv2d(width, 1, 1)

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        skips = []
        x = faces * 2 - 1
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.middle(x)
        for block, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        return self.head(x)


def loss_weights(mask: np.ndarray) -> np.ndarray:
    """How much each pixel of a face region counts in the segmenter's loss (uint8, 255 = fully), from
    its landmark mask (uint8): fully inside the mask grown by ``CARE_MARGIN``, a tenth outside. Convert
    keeps the landmark mask ∩ the learned one, so what the segmenter must get right is what of the
    landmark mask is face; far outside it, its answer is never used."""
    side = mask.shape[0]
    grow = max(1, round(CARE_MARGIN * side))
    near = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return np.maximum(near, 26).astype(np.uint8)


def segmenter_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy against soft labels (N×1×R×R, 0..1), each pixel counted by its weight."""
    losses = F.binary_cross_entropy_with_logits(logits.float(), labels, reduction="none")
    return (losses * weights).sum() / weights.sum()


def build_segmenter(seed: int, device: torch.device | str = "cpu") -> tuple[Segmenter, torch.optim.Optimizer]:
    """A new segmenter (the same for the same seed, whatever the global RNG) and its Adam."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        segmenter = Segmenter().to(device)
    return segmenter, torch.optim.Adam(segmenter.parameters(), lr=LEARNING_RATE)


def steps_taken(optimizer: torch.optim.Optimizer) -> int:
    """How many steps the segmenter's Adam has taken (0 before the first)."""
    return int(next(iter(optimizer.state.values()), {}).get("step", 0))


class SegmenterStep:
    """One Adam step of the segmenter on a batch of occluded faces (N×3×R×R uint8), their labels and
    their loss weights (N×R×R uint8), at ``rate_share`` of ``LEARNING_RATE``: the training's schedule,
    whose fall at the end of a budget settles the mask as it settles the faces (at a constant rate the
    last step's weights, and what of a hand they keep, vary from run to run)."""

    def __init__(self, segmenter: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        self.segmenter, self.optimizer = segmenter, optimizer

    def __call__(self, faces: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
                 rate_share: float = 1.0) -> torch.Tensor:
        for group in self.optimizer.param_groups:
            group["lr"] = LEARNING_RATE * rate_share
        self.optimizer.zero_grad(set_to_none=True)
        loss = segmenter_loss(self.segmenter(faces.float() / 255), labels.float().unsqueeze(1) / 255,
                              weights.float().unsqueeze(1) / 255)
        loss.backward()
        self.optimizer.step()
        return loss.detach()


@torch.no_grad()
def face_probabilities(segmenter: Segmenter, regions: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """The segmenter's face probability (N×S×S float32, 0..1) over face regions (N×S×S×3 uint8 RGB, any S)."""
    size = regions.shape[1]
    shrink = cv2.INTER_AREA if size > RESOLUTION else cv2.INTER_LINEAR
    small = np.stack([cv2.resize(region, (RESOLUTION, RESOLUTION), interpolation=shrink) for region in regions])
    inputs = torch.from_numpy(small).to(device).permute(0, 3, 1, 2).float() / 255
    probabilities = torch.sigmoid(segmenter.eval()(inputs).float())[:, 0].cpu().numpy()
    return np.stack([cv2.resize(p, (size, size), interpolation=cv2.INTER_LINEAR) for p in probabilities])
