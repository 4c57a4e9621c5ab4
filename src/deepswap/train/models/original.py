"""The 2017 DeepFakes autoencoder, layer for layer (faceit.py / faceswap "original").

Encoder: four 5×5 stride-2 convolutions (128, 256, 512, 1024 filters, LeakyReLU 0.1) → Dense 1024
→ Dense 4·4·1024 → reshape → upscale to 8×8×512. Decoder per person: upscale to 256, 128, 64
channels (3×3 conv + LeakyReLU + pixel shuffle each), then a 5×5 convolution to RGB with a sigmoid.
At 64 px that is 82.1 M parameters. ``width`` scales every layer (128 = the original) and
``latent`` is the Dense size, so ``lite`` and tests reuse this file at other sizes. With
``output_scale`` 2 the decoders upscale once more (pixel shuffle at w/2 channels) and draw the face
at twice the input resolution: the detail of a 128-px face from a 64-px encoder.
"""

from __future__ import annotations

from torch import nn

from . import ModelSpec, SwapModel
from .layers import Bottleneck, Decoder, Downscale, Upscale


def build(name: str = "original", resolution: int = 64, width: int = 128, latent: int = 1024,
          output_scale: int = 1) -> SwapModel:
    side = resolution // 16
    encoder = nn.Sequential(
        Downscale(3, width), Downscale(width, 2 * width), Downscale(2 * width, 4 * width),
        Downscale(4 * width, 8 * width),
        Bottleneck(8 * width, side, latent, 8 * width),
        Upscale(8 * width, 4 * width),
    )

    def decoder() -> nn.Module:
        finer = [Upscale(width // 2, width // 2)] if output_scale == 2 else []
        return Decoder(Upscale(4 * width, 2 * width), Upscale(2 * width, width), Upscale(width, width // 2),
                             *finer, nn.Conv2d(width // 2, 3, 5, padding=2))

    options = {"resolution": resolution, "width": width, "latent": latent, "output_scale": output_scale}
    return SwapModel(name, options, encoder, decoder(), decoder(), has_mask=False)


SPEC = ModelSpec(
    name="original",
    summary="the 2017 DeepFakes autoencoder (64 px, 82 M parameters), to compare with",
    build=build,
    options={"resolution": 64, "width": 128, "latent": 1024, "output_scale": 1},
    batch_size=64,
    learning_rate=5e-5,
    betas=(0.5, 0.999),
    ssim_weight=0.0,
)
