"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", TrainOptions(model="lite", minutes=30))   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``config`` (options and the saved training config), ``checkpoint`` (safetensors + JSON, atomic, best backup), ``report``
(preview grid, loss log and curve), ``trainer`` (the loop), ``swapper`` (inference for convert).
"""

import functools
import os
from typing import Any

from ..workspace import writes_workspace
from . import trainer
from .checkpoint import load_model, read_state
from .config import TrainConfig, TrainOptions
from .models import MODELS, ModelSpec, SwapModel, build_model
from .swapper import Swapper, load_swapper
from .trainer import TrainResult

_locked_train = writes_workspace("train")(trainer.train)


@functools.wraps(trainer.train)
def train(*args: Any, **kwargs: Any) -> TrainResult:
    # Holding the workspace's lock (see deepswap.lock); under torchrun only rank 0, the one that writes.
    return (_locked_train if int(os.environ.get("RANK", "0")) == 0 else trainer.train)(*args, **kwargs)


__all__ = ["MODELS", "ModelSpec", "SwapModel", "Swapper", "TrainConfig", "TrainOptions", "TrainResult", "build_model",
           "load_model", "load_swapper", "read_state", "train"]
