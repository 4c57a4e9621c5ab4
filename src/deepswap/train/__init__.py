"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", TrainOptions(model="lite", minutes=30))   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``critic`` (the swap critic of the finishing stage), ``config`` (options and the
saved training config), ``checkpoint`` (safetensors + JSON, atomic, best backup), ``state`` (state.json, read and checked without torch), ``report``
(preview grid, loss log and curve), ``trainer`` (the loop), ``swapper`` (inference for convert).
The names below are imported when first used, so ``deepswap.train.state`` (``status``) needs no torch.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

_API = {"MODELS": "models", "ModelSpec": "models", "SwapModel": "models", "build_model": "models",
        "TrainConfig": "config", "TrainOptions": "config", "load_model": "checkpoint", "read_state": "state",
        "Swapper": "swapper", "load_swapper": "swapper", "TrainResult": "trainer"}
__all__ = sorted([*_API, "train"])


def _locked_train() -> Any:
    """``trainer.train`` holding the workspace's lock (see deepswap.lock); under torchrun only rank 0,
    the one that writes, takes it."""
    from ..workspace import writes_workspace
    from .trainer import train as unlocked

    locked = writes_workspace("train")(unlocked)

    @functools.wraps(unlocked)
    def train(*args: Any, **kwargs: Any) -> Any:
        return (locked if int(os.environ.get("RANK", "0")) == 0 else unlocked)(*args, **kwargs)

    return train


def __getattr__(name: str) -> Any:
    if name == "train":
        value = _locked_train()
    elif name in _API:
        value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value
