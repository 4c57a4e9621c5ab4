"""Train: a shared encoder and one decoder per person, on the faces that ``extract`` wrote.

    deepswap.train("ws", TrainOptions(model="lite", minutes=30))   # or: deepswap train ws --model lite --minutes 30
    swapper = deepswap.load_swapper("ws")            # then swapper.swap(faces, to="b")

Modules: ``models`` (original, lite, hd), ``data`` (faces, augmentation, DataLoader), ``loss``
(masked SSIM + L1), ``critic`` (the swap critic of the finishing stage), ``segmenter`` (the learned
face mask) and ``occluders`` (what it learns to leave out), ``config`` (options and the
saved training config), ``checkpoint`` (safetensors + JSON, atomic, best backup), ``state`` (state.json, read and checked without torch), ``report``
(preview grid, loss log and curve), ``runtime`` (device, precision, torchrun rank), ``trainer`` (the loop),
``swapper`` (inference for convert), ``mask_training`` (the learned mask trained alone, on masks corrected by hand).
The names below are imported when first used, so ``deepswap.train.state`` (``status``) needs no torch.
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"MODELS": "models", "ModelSpec": "models", "SwapModel": "models", "build_model": "models",
        "TrainConfig": "config", "TrainOptions": "config", "load_model": "checkpoint", "read_state": "state",
        "Swapper": "swapper", "load_swapper": "swapper", "TrainResult": "trainer", "train": "trainer",
        "ssim_map": "loss", "train_mask": "mask_training", "MaskTrainResult": "mask_training"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
