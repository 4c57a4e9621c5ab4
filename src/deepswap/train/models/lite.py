"""``lite``: the DeepFakes shape narrowed for CPUs — a quarter of the original's width and Dense size
(5.1 M parameters, a sixteenth of its arithmetic per face) trained at batch 8 with a high learning
rate (Adam 4e-4) and SSIM + L1 + a focal frequency loss: on a CPU it does about five times the
iterations per minute of the half-width shape it had before (20 M parameters, batch 32, 1e-4), and
after the same minutes its faces are clearer and more like B (``benchmarks/quality.py``).

``output_scale`` 2 draws 128-px faces from the 64-px encoder: the only way past the sharpness a
64-px face can have in the frame (a perfect 64-px face reaches a sharpness ratio of 0.29 on GRID,
a 128-px one 0.62), but each iteration costs about 2.4 times as much, and in short CPU runs the
extra iterations of the 64-px model were worth more (measured at 430–500 iterations).
"""

from __future__ import annotations

from functools import partial

from . import ModelSpec
from .original import build

SPEC = ModelSpec(
    name="lite",
    summary="the original shape at quarter width (64 px, 5 M parameters, batch 8): the default on CPUs",
    build=partial(build, name="lite"),
    options={"resolution": 64, "width": 32, "latent": 256, "output_scale": 1},
    batch_size=8,
    learning_rate=4e-4,
    betas=(0.5, 0.999),
    ssim_weight=1.0,
    frequency_weight=50.0,
)
