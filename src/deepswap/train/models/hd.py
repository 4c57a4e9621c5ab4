"""``hd``: the modern default for GPUs — 128 px, residual blocks, pixel-shuffle upsampling, a mask head.

Same plan as the DeepFakes model (shared encoder with a dense bottleneck, a decoder per person)
with the choices that pay on a GPU:

- every heavy layer is a convolution of ≥ 128 channels, so the tensor cores stay busy (the arithmetic
  per byte moved is high; see ``benchmarks/train.py`` for FLOPs, samples/s and MFU);
- one residual block after each down- and upscale (no normalisation layers: they cost memory passes
  and batch statistics would tie the two people's batches together);
- the decoders' last convolution outputs 4 channels: RGB and the logits of the face mask, which
  the mask loss trains and convert uses to blend;
- no residual block at full resolution, where the channels are few and the layer is bound by memory.

``width`` (128) scales all channels: encoder w, 2w, 4w, 8w; decoder 4w, 2w, w, w/2. ``latent`` is
the Dense size. ``blocks`` is the number of residual blocks per stage.

Measured on an H100 (``benchmarks/train.py``, bf16 + channels_last, 77.4 GFLOP per sample forward +
backward): 3,492 samples/s (27 % MFU) eager at batch 64 per person, 3,794 (30 %) at 128, and with
``torch.compile`` 6,149 samples/s at batch 128 = 476 TFLOP/s = 48 % MFU. Narrower (width 96: 20 %
MFU) or shallower (no residual blocks: 27 %) variants use the GPU worse; wider (160) or deeper (2
blocks) ones cost more per sample for no better MFU (28–29 % eager). The whole ``deepswap train``
loop (data workers, augmentation, SSIM) reaches 4,895 samples/s compiled at batch 128.
"""

from __future__ import annotations

from torch import nn

from . import ModelSpec, SwapModel
from .layers import Bottleneck, Decoder, Downscale, ResidualBlock, Upscale


def _stage(block: nn.Module, channels: int, blocks: int) -> list[nn.Module]:
    return [block, *(ResidualBlock(channels) for _ in range(blocks))]


def build(resolution: int = 128, width: int = 128, latent: int = 512, blocks: int = 1) -> SwapModel:
    side = resolution // 16
    encoder = nn.Sequential(
        Downscale(3, width),
        *_stage(Downscale(width, 2 * width), 2 * width, blocks),
        *_stage(Downscale(2 * width, 4 * width), 4 * width, blocks),
        Downscale(4 * width, 8 * width),
        Bottleneck(8 * width, side, latent, 4 * width),
        Upscale(4 * width, 4 * width),
    )

    def decoder() -> nn.Module:
        return Decoder(
            *(ResidualBlock(4 * width) for _ in range(blocks)),
            *_stage(Upscale(4 * width, 2 * width), 2 * width, blocks),
            *_stage(Upscale(2 * width, width), width, blocks),
            Upscale(width, width // 2),
            nn.Conv2d(width // 2, 4, 3, padding=1),
        )

    options = {"resolution": resolution, "width": width, "latent": latent, "blocks": blocks}
    return SwapModel("hd", options, encoder, decoder(), decoder(), has_mask=True)


SPEC = ModelSpec(
    name="hd",
    summary="128 px, residual blocks, pixel-shuffle upsampling and a mask head: the default on GPUs",
    build=build,
    options={"resolution": 128, "width": 128, "latent": 512, "blocks": 1},
    batch_size=64,
    learning_rate=1e-4,
    betas=(0.5, 0.999),
    warmup=500,
    ssim_weight=1.0,
)
