"""``lite``: the DeepFakes shape narrowed for CPUs — a quarter of the original's width and Dense size
(5.1 M parameters, a sixteenth of its arithmetic per face) trained at batch 8 with a high learning
rate (Adam 4e-4) and SSIM + L1 + a focal frequency loss: on a CPU it does about five times the
iterations per minute of the half-width shape it had before (20 M parameters, batch 32, 1e-4), and
after the same minutes its faces are clearer and more like B (``benchmarks/quality.py``).

Its decoders draw 128-px faces from the 64-px encoder (``output_scale`` 2; 1 draws 64 px, as models
saved before this default do): a perfect 64-px face reaches a sharpness ratio of only 0.29 on GRID,
a 128-px one 0.62. Each iteration costs about 1.6 times as much, but after 30 minutes on a 2-core
CPU (4,083 iterations against 6,589) the swap of unseen s1 clips is as close to B (SFace cosine
0.682 against 0.684), further from A (0.244 against 0.290) and crisper (sharpness 0.76 against
0.69), and a small face in a corner of the frame gains most (cosine to B 0.502 → 0.562, sharpness
0.26 → 0.40). In runs of a few hundred iterations the 64-px faces were ahead.

In its finishing stage a swap critic (``critic.py``) teaches B's decoder to draw A's faces as crisply
as B's own: after 30 minutes on a 2-core Zen 3 the small face keeps 0.54 of the footage's sharpness
instead of 0.50 (weight 0.1, ``benchmarks/quality.py``). Since the finishing stage stopped turning
and shifting the faces (``data.FINISHING_AUGMENT``), it keeps 0.85. At weight 0.3 the swap also
reads less like A: in two 30-minute runs SFace's cosine to A fell by 0.021 and 0.029 on unseen s1
clips and stayed under 0.30 on all of ``quality.py``'s footage (docs/benchmarks.md).
"""

from __future__ import annotations

from functools import partial

from . import ModelSpec
from .original import build

SPEC = ModelSpec(
    name="lite",
    summary="the original shape at quarter width (sees 64 px, draws 128 px, 5 M parameters, batch 8): the default on CPUs",
    build=partial(build, name="lite"),
    options={"resolution": 64, "width": 32, "latent": 256, "output_scale": 2},
    batch_size=8,
    learning_rate=4e-4,
    betas=(0.5, 0.999),
    ssim_weight=1.0,
    frequency_weight=50.0,
    critic_weight=0.3,
    background_weight=0.05,  # its small decoders spend less on B's hair and backdrop (docs/training.md)
)
