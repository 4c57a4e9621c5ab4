"""The face-swap models: one shared encoder, one decoder per person, chosen by name.

Every model is a ``SwapModel``; a ``ModelSpec`` holds how to build it (architecture options such as
``resolution`` and ``width``, all overridable so tests can build tiny versions) and its training
defaults. ``MODELS`` maps ``--model`` names to specs::

    original  the 2017 DeepFakes autoencoder, 64 px, ~82 M parameters (Adam 5e-5, β1 0.5, batch 64, MAE)
    lite      the same shape at quarter width (~5 M), 64-px input, 128-px faces, batch 8, Adam 4e-4: the default on CPUs
    hd        128 px, residual blocks, pixel-shuffle upsampling and a mask head: the default on GPUs
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ...errors import DeepswapError
from ..loss import LossWeights


class SwapModel(nn.Module):
    """A shared encoder and one decoder per person ("a", "b").

    Decoders output 3 channels (RGB, through a sigmoid here) or 4 when the model has a mask head
    (the 4th are mask logits). Inputs are N×3×R×R RGB in 0..1 (R = ``resolution``); outputs are
    ``output_resolution`` square: R, or R × the ``output_scale`` option for models whose decoders
    draw more detail than their encoder sees.
    """

    def __init__(self, name: str, options: dict[str, Any], encoder: nn.Module, decoder_a: nn.Module,
                 decoder_b: nn.Module, has_mask: bool) -> None:
        super().__init__()
        self.name = name
        self.options = dict(options)
        self.resolution = int(options["resolution"])
        self.output_resolution = self.resolution * int(options.get("output_scale", 1))
        self.has_mask = has_mask
        self.encoder = encoder
        self.decoders = nn.ModuleDict({"a": decoder_a, "b": decoder_b})

    def forward(self, faces_a: torch.Tensor, faces_b: torch.Tensor, swap: bool = False) -> tuple[torch.Tensor, ...]:
        """The training pass: both people through the shared encoder in one batch, each decoded by
        its own decoder. Returns the raw decoder outputs (see ``split_output``); with ``swap`` a
        third, A's faces drawn by B's decoder from A's latent detached (for the swap critic, which
        trains B's decoder only)."""
        latent = self.encoder(torch.cat([faces_a, faces_b]))
        latent_a, latent_b = latent.split([len(faces_a), len(faces_b)])
        outputs = self.decoders["a"](latent_a), self.decoders["b"](latent_b)
        return (*outputs, self.decoders["b"](latent_a.detach())) if swap else outputs

    def swap(self, faces: torch.Tensor, to: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encode faces and decode them as person ``to``: (RGB in 0..1, mask in 0..1 or None)."""
        rgb, mask_logits = self.split_output(self.decoders[to](self.encoder(faces)))
        return rgb, None if mask_logits is None else torch.sigmoid(mask_logits)

    def split_output(self, output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Decoder output → (RGB in 0..1, mask logits N×1×R×R or None)."""
        rgb = torch.sigmoid(output[:, :3])
        return rgb, (output[:, 3:4] if self.has_mask else None)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass(frozen=True)
class ModelSpec:
    """How to build a model and how to train it by default."""

    name: str
    summary: str
    build: Callable[..., SwapModel]
    options: dict[str, Any]
    batch_size: int
    learning_rate: float
    betas: tuple[float, float] = (0.5, 0.999)
    warmup: int = 0
    ssim_weight: float = 0.0
    frequency_weight: float = 0.0
    critic_weight: float = 0.0  # of the swap critic's adversarial loss in the finishing stage (0: no critic)
    background_weight: float = LossWeights.background  # of the loss on pixels outside the face mask
    extra: dict[str, Any] = field(default_factory=dict)


def _registry() -> dict[str, ModelSpec]:
    from . import hd, lite, original

    return {spec.name: spec for spec in (original.SPEC, lite.SPEC, hd.SPEC)}


MODELS: dict[str, ModelSpec] = _registry()


def model_spec(name: str) -> ModelSpec:
    """The spec of a model name, or a one-line error listing the names."""
    if name not in MODELS:
        raise DeepswapError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name]


# Options a model gained after checkpoints of it were first written, with the value those were trained with.
OPTIONS_BEFORE_SAVED = {"output_scale": 1}


def build_saved_model(name: str, options: dict[str, Any]) -> SwapModel:
    """Build the model a checkpoint describes: its saved ``options``, and for an option it predates,
    the value it was trained with (``OPTIONS_BEFORE_SAVED``), not today's default."""
    spec = model_spec(name)
    earlier = {key: value for key, value in OPTIONS_BEFORE_SAVED.items() if key in spec.options}
    return build_model(name, **{**earlier, **options})


def build_model(name: str, **options: Any) -> SwapModel:
    """Build a model by name; ``options`` override its architecture defaults (e.g. resolution=32, width=8)."""
    spec = model_spec(name)
    unknown = set(options) - set(spec.options)
    if unknown:
        raise DeepswapError(f"model {name!r} has no option {', '.join(sorted(unknown))} "
                            f"(it has {', '.join(spec.options)})")
    merged = {**spec.options, **options}
    if merged["resolution"] % 16 or merged["resolution"] < 16:
        raise DeepswapError(f"model resolution must be a multiple of 16, not {merged['resolution']}")
    if merged.get("output_scale", 1) not in (1, 2):
        raise DeepswapError(f"model output_scale must be 1 or 2, not {merged['output_scale']}")
    return spec.build(**merged)


__all__ = ["MODELS", "ModelSpec", "SwapModel", "build_model", "build_saved_model", "model_spec"]
