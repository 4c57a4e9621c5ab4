"""``lite``: the original DeepFakes shape at half the width and half the Dense size (~20 M parameters,
about a quarter of the arithmetic), with SSIM + L1 loss: trains usefully on a CPU."""

from __future__ import annotations

from functools import partial

from . import ModelSpec
from .original import build

SPEC = ModelSpec(
    name="lite",
    summary="the original shape at half width (64 px, 20 M parameters), for CPUs and small GPUs",
    build=partial(build, name="lite"),
    options={"resolution": 64, "width": 64, "latent": 512, "output_scale": 1},
    batch_size=32,
    learning_rate=1e-4,
    betas=(0.5, 0.999),
    ssim_weight=1.0,
)
