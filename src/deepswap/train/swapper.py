"""Swapping with a trained model: what convert uses (``load_swapper(WS).swap(faces, to="b")``)."""

from __future__ import annotations

import copy

import cv2
import numpy as np
import torch

from ..errors import DeepswapError
from ..faces import face_region
from ..workspace import WorkspaceLike, as_workspace, parse_person
from . import checkpoint
from .config import TrainConfig
from .models import SwapModel
from .runtime import native_bf16
from .segmenter import MIN_STEPS, Segmenter, face_probabilities


class Swapper:
    """A trained model ready to swap aligned face crops.

    ``swap`` takes N×S×S×3 uint8 RGB crops as ``extract`` writes them (any S; the workspace's
    face_size in practice), cuts the model's face region out of each, resizes it to the model's
    resolution, decodes it as the other person and pastes the result back: pixels outside the
    region are the input's. The mask (N×S×S float32 in 0..1, zero outside the region) comes from
    the model's mask head; models without one (``original``, ``lite``) return None, meaning "use
    the landmark mask" (``deepswap.faces.face_mask``). ``face_masks`` gives the learned face mask
    (``segmenter.py``) of models trained with one long enough (``segmenter.MIN_STEPS``).
    """

    def __init__(self, model: SwapModel, coverage: float, device: torch.device, iteration: int = 0,
                 batch_size: int = 32, segmenter: Segmenter | None = None) -> None:
        self.model = model.eval().to(device)
        self.segmenter = segmenter.eval().to(device) if segmenter is not None else None
        self.coverage = coverage
        self.device = device
        self.iteration = iteration
        self.batch_size = batch_size
        self.bf16 = native_bf16(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)

    def on(self, device: torch.device) -> Swapper:
        """This swapper with its model (and learned mask) on ``device``: itself when already there, else copies."""
        if device == self.device:
            return self
        segmenter = copy.deepcopy(self.segmenter) if self.segmenter is not None else None
        return Swapper(copy.deepcopy(self.model), self.coverage, device, self.iteration, self.batch_size, segmenter)

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def resolution(self) -> int:
        return self.model.resolution

    @property
    def has_mask(self) -> bool:
        return self.model.has_mask

    @torch.no_grad()
    def swap(self, faces: np.ndarray, to: str) -> tuple[np.ndarray, np.ndarray | None]:
        """Decode ``faces`` as person ``to`` ("a" or "b"): (N×S×S×3 uint8 faces, N×S×S float32 mask or None)."""
        to = parse_person(to)
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[3] != 3 or faces.shape[1] != faces.shape[2] or faces.dtype != np.uint8:
            raise ValueError(f"faces must be N×S×S×3 uint8, not {faces.shape} {faces.dtype}")
        size = faces.shape[1]
        x, y, side = face_region(size, self.coverage)
        resolution = self.resolution
        out = faces.copy()
        masks = np.zeros(faces.shape[:3], np.float32) if self.has_mask else None
        shrink = cv2.INTER_AREA if side > resolution else cv2.INTER_CUBIC
        for start in range(0, len(faces), self.batch_size):
            chunk = faces[start:start + self.batch_size, y:y + side, x:x + side]
            small = np.stack([cv2.resize(face, (resolution, resolution), interpolation=shrink) for face in chunk])
            inputs = torch.from_numpy(small).to(self.device).permute(0, 3, 1, 2).float().div_(255)
            if self.device.type == "cuda":
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                rgb, mask = self.model.swap(inputs, to)
            rgb = (rgb.float().clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
            grow = cv2.INTER_CUBIC if side >= rgb.shape[1] else cv2.INTER_AREA
            for index, face in enumerate(rgb, start):
                out[index, y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=grow)
            if masks is not None and mask is not None:
                for index, face_mask in enumerate(mask.float()[:, 0].cpu().numpy(), start):
                    resized = cv2.resize(face_mask, (side, side), interpolation=cv2.INTER_LINEAR)
                    masks[index, y:y + side, x:x + side] = np.clip(resized, 0, 1)
        return out, masks

    @torch.no_grad()
    def face_masks(self, faces: np.ndarray) -> np.ndarray | None:
        """The learned face mask of aligned crops (N×S×S×3 uint8): N×S×S float32, the probability
        of face in the model's face region and 1 outside it (no say there); None for a model trained
        without one."""
        if self.segmenter is None:
            return None
        x, y, side = face_region(faces.shape[1], self.coverage)
        masks = np.ones(faces.shape[:3], np.float32)
        for start in range(0, len(faces), self.batch_size):
            regions = faces[start:start + self.batch_size, y:y + side, x:x + side]
            masks[start:start + len(regions), y:y + side, x:x + side] = face_probabilities(self.segmenter, regions,
                                                                                          self.device)
        return masks


def load_swapper(workspace: WorkspaceLike, device: str | torch.device | None = None) -> Swapper:
    """The workspace's trained model as a ``Swapper`` (on CUDA when present), or a one-line error
    if the workspace has no model yet or its checkpoint is damaged."""
    workspace = as_workspace(workspace)
    folder = workspace.model_dir
    if checkpoint.read_state(folder) is None:
        raise DeepswapError(f"{folder}: no trained model; run `deepswap train {workspace.root}` first")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, state = checkpoint.load_model(folder, device)
    config = TrainConfig.from_saved(state["training"])
    segmenter = Segmenter().to(device)
    trained = state["training"].get("segmenter_steps", 0) >= MIN_STEPS
    if not (trained and checkpoint.load_companion(folder, state, "segmenter", segmenter)):
        segmenter = None  # none yet, or too young to trust: the landmark mask alone, as before it
    return Swapper(model, config.coverage, device, iteration=int(state["iteration"]), segmenter=segmenter)
