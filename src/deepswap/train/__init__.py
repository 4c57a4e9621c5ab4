"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", model="lite", minutes=30)   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``checkpoint`` (safetensors + JSON, atomic, best backup), ``report``
(preview grid, loss log and curve), ``trainer`` (the loop), ``swapper`` (inference for convert),
``state`` (state.json, read without torch: ``deepswap.train.state`` imports no torch, so the names
below are imported when first used).
"""

from __future__ import annotations

import importlib
from typing import Any

_API = {"MODELS": "models", "ModelSpec": "models", "SwapModel": "models", "build_model": "models",
        "load_model": "checkpoint", "read_state": "state", "Swapper": "swapper", "load_swapper": "swapper",
        "TrainResult": "trainer", "train": "trainer"}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
