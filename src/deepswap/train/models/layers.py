"""Building blocks shared by the models: strided conv down, pixel-shuffle up, residual block, dense bottleneck."""

from __future__ import annotations

import torch
from torch import nn

LEAK = 0.1


class Downscale(nn.Sequential):
    """Halve the resolution: a k×k stride-2 convolution and LeakyReLU (the DeepFakes encoder step)."""

    def __init__(self, channels_in: int, channels_out: int, kernel: int = 5) -> None:
        super().__init__(nn.Conv2d(channels_in, channels_out, kernel, stride=2, padding=kernel // 2),
                         nn.LeakyReLU(LEAK))


class Upscale(nn.Sequential):
    """Double the resolution: a 3×3 convolution to 4× the channels, LeakyReLU, then pixel shuffle."""

    def __init__(self, channels_in: int, channels_out: int) -> None:
        super().__init__(nn.Conv2d(channels_in, channels_out * 4, 3, padding=1), nn.LeakyReLU(LEAK),
                         nn.PixelShuffle(2))


class ResidualBlock(nn.Module):
    """Two 3×3 convolutions added back onto the input; the second starts near zero so the block
    begins as (almost) the identity, which keeps deep stacks trainable without normalisation."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.act = nn.LeakyReLU(LEAK)
        with torch.no_grad():
            self.conv2.weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.conv2(self.act(self.conv1(x))))


class Bottleneck(nn.Module):
    """Flatten → Dense(latent) → Dense(side²·channels_out) → reshape: the fully connected middle of
    the DeepFakes autoencoder that forces one shared, identity-agnostic code for both people."""

    def __init__(self, channels_in: int, side: int, latent: int, channels_out: int) -> None:
        super().__init__()
        self.shape = (channels_out, side, side)
        self.squeeze = nn.Linear(channels_in * side * side, latent)
        self.expand = nn.Linear(latent, channels_out * side * side)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.squeeze(x.flatten(1)))
        return x.view(-1, *self.shape)
