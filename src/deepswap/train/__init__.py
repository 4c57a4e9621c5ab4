"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", model="lite", minutes=30)   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``checkpoint`` (safetensors + JSON, atomic, best backup), ``report``
(preview grid, loss log and curve), ``trainer`` (the loop), ``swapper`` (inference for convert).
"""

from .checkpoint import load_model, read_state
from .models import MODELS, ModelSpec, SwapModel, build_model
from .swapper import Swapper, load_swapper
from .trainer import TrainResult, train

__all__ = ["MODELS", "ModelSpec", "SwapModel", "Swapper", "TrainResult", "build_model", "load_model", "load_swapper",
           "read_state", "train"]
