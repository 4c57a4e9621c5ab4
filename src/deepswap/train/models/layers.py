"""Building blocks shared by the models: strided conv down, pixel-shuffle up, residual block, dense
bottleneck, and a decoder that draws its last layer at half resolution where that is cheaper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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
                         PixelShuffle(2))


def pixel_shuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``F.pixel_shuffle`` as a view, a permutation and one copy for contiguous tensors: the same
    values, forward and backward about three times as fast on CPUs as ATen's kernel (other memory
    layouts, such as channels_last on GPUs, take the kernel)."""
    if not x.is_contiguous():
        return F.pixel_shuffle(x, factor)
    n, c, h, w = x.shape
    channels = c // factor ** 2
    return (x.view(n, channels, factor, factor, h, w).permute(0, 1, 4, 2, 5, 3)
            .reshape(n, channels, h * factor, w * factor))


class PixelShuffle(nn.PixelShuffle):
    """``nn.PixelShuffle`` through ``pixel_shuffle`` (no parameters: checkpoints are unchanged)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_shuffle(x, self.upscale_factor)


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


def half_resolution_taps(channels_out: int, channels_in: int) -> torch.Tensor:
    """For a 5×5 convolution (padding 2) applied to a 2× pixel-shuffled image, the index of each
    weight of the equivalent 3×3 convolution (padding 1) of the image before the shuffle, whose
    4·``channels_out`` outputs shuffle into the same result: the index into the 5×5 weights
    flattened, or their length where the 3×3 weight is zero.

    Output pixel (2i+p, 2j+q) reads input rows 2i+p+dy-2 for taps dy = 0..4; with t = p+dy-2 that
    is row 2·(i + t//2) + t%2 of the fine image, i.e. row i + t//2 of the shuffled-in phase t%2,
    and t//2 only takes -1, 0 or 1. Every tap lands on one place, so the two convolutions agree to
    float rounding, and the output is shuffled by ``pixel_shuffle``.
    """
    taps = torch.full((channels_out, 2, 2, channels_in, 2, 2, 3, 3), channels_out * channels_in * 25)
    flat = torch.arange(channels_out * channels_in * 25).view(channels_out, channels_in, 5, 5)
    for p in range(2):
        for dy in range(5):
            ky, r = divmod(p + dy - 2, 2)
            for q in range(2):
                for dx in range(5):
                    kx, s = divmod(q + dx - 2, 2)
                    taps[:, p, q, :, r, s, ky + 1, kx + 1] = flat[:, :, dy, dx]
    return taps.view(channels_out * 4, channels_in * 4, 3, 3)


class Decoder(nn.Sequential):
    """A decoder's layers in order. When it ends in an ``Upscale`` and a 5×5 convolution (the
    DeepFakes decoders), the convolution runs on the last upscale's output before its pixel
    shuffle, as the equivalent 3×3 convolution with four times the channels each way
    (``half_resolution_taps``), and only its few output channels are shuffled: the same faces with
    the same weights and checkpoints. The 5×5 convolution to 3 channels at full resolution is among
    the slowest things oneDNN runs: with it, ``PixelShuffle`` and SSIM's change (``loss.ssim_map``),
    the ``lite`` training step runs 1.18–1.24 times as fast on a 2-core CPU
    (``benchmarks/train.py --step-only``)."""

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        *_, upscale, last = layers
        self.halved = (isinstance(upscale, Upscale) and isinstance(last, nn.Conv2d)
                       and last.kernel_size == (5, 5) and last.padding == (2, 2) and last.stride == (1, 1)
                       and last.dilation == (1, 1) and last.groups == 1)
        if self.halved:
            self.register_buffer("taps", half_resolution_taps(last.out_channels, last.in_channels), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.halved:
            return super().forward(x)
        *body, upscale, last = self
        for layer in body:
            x = layer(x)
        conv, activation, _ = upscale
        weight = torch.cat([last.weight.flatten(), last.weight.new_zeros(1)])[self.taps]
        bias = None if last.bias is None else last.bias.repeat_interleave(4)
        return pixel_shuffle(F.conv2d(activation(conv(x)), weight, bias, padding=1), 2)
