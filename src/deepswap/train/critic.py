"""The swap critic: a light patch discriminator that judges A's faces drawn by B's decoder.

B's decoder learns to draw B from B's own faces, and on those (a few dozen frames, seen thousands
of times) its reconstructions come so close to the targets that a critic judging them stayed at
chance (issue 14's measurements). The swap, A's latent through B's decoder, is where the face goes
soft, so that is what this critic judges: real = B's training faces, fake = A→B, both cut to the inner face (brows to mouth, where a
swap's detail is seen; the background differs between A's and B's footage and would give the
critic an easy tell that says nothing about the face). Its adversarial loss trains B's decoder
only (A's latent is detached: the encoder keeps learning A's expression from A's reconstruction).
The critic starts with a run's finishing stage, once the faces are settled (``trainer``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..faces import canonical_landmarks, face_region, inner_face_box

MARGIN = 0.05  # of the side, around the mean face's inner face


class PatchCritic(nn.Module):
    """Three 4×4 stride-2 convolutions and a 3×3 one to a map of logits, one per overlapping patch
    (each sees 34 px): real B face > 0, drawn < 0."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for out in (width, 2 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        self.layers = nn.Sequential(*layers, nn.Conv2d(channels, 1, 3, padding=1))

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.layers(faces * 2 - 1)


def inner_face_slices(resolution: int, coverage: float) -> tuple[slice, slice]:
    """(rows, columns) of the inner face — brows to mouth, plus ``MARGIN`` — in the model's
    ``resolution``-px face square, from the mean face."""
    crop = 256  # any aligned crop size: the box is scaled to the model's square
    x, y, side = face_region(crop, coverage)
    points = (canonical_landmarks(crop) - (x, y)) * resolution / side
    x0, y0, x1, y1 = np.clip(inner_face_box(points, MARGIN * resolution), 0, resolution)
    return slice(int(y0), int(y1)), slice(int(x0), int(x1))


def generator_loss(critic: nn.Module, drawn: torch.Tensor) -> torch.Tensor:
    """The non-saturating adversarial loss of faces the decoder drew (gradients reach the decoder)."""
    return F.softplus(-critic(drawn).float()).mean()


def critic_loss(critic: nn.Module, real: torch.Tensor, drawn: torch.Tensor) -> torch.Tensor:
    """The critic's loss on real faces and drawn ones (detached: this trains the critic only), in one
    pass (DistributedDataParallel expects one forward per backward)."""
    real_logits, drawn_logits = critic(torch.cat([real, drawn.detach()])).float().split([len(real), len(drawn)])
    return F.softplus(-real_logits).mean() + F.softplus(drawn_logits).mean()
