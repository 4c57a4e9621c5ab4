"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", model="lite", minutes=30)   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``config`` (options and the saved training config), ``checkpoint`` (safetensors
+ JSON, atomic, best backup), ``state`` (state.json, read and checked without torch), ``report``
(preview grid, loss log and curve), ``trainer`` (the loop), ``swapper`` (inference for convert).
The names below are imported when first used, so ``deepswap.train.state`` (``status``) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {"MODELS": "models", "ModelSpec": "models", "SwapModel": "models", "build_model": "models",
        "TrainConfig": "config", "TrainOptions": "config", "load_model": "checkpoint", "read_state": "state",
        "Swapper": "swapper", "load_swapper": "swapper", "TrainResult": "trainer", "train": "trainer"}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
