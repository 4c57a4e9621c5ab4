"""What a training run is told (``TrainOptions``) and what it settles on (``TrainConfig``).

``TrainOptions`` holds what the caller asks for and checks every value when it is built.
``TrainConfig`` is resolved once per run from the options, the saved checkpoint and the model's
defaults, saved whole in ``state.json`` (``"training"``) and read back by the swapper, as nanoGPT
saves its config with the checkpoint. Neither imports torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Mapping, get_args

from ..errors import DeepswapError

Precision = Literal["auto", "bf16", "fp32"]
COVERAGE = 0.8  # of the aligned crop that the models see (see data.face_region)
MAX_BATCH = 4096


@dataclass(frozen=True)
class TrainOptions:
    """How to train: each field is optional and falls back to the saved model's, then the model's default.

    ``model`` names a new model (original, lite, hd; default hd on a GPU, lite on a CPU);
    ``iterations`` is the iteration count to reach (a resumed run continues toward it); ``minutes``
    limits this run's time (with neither, training runs until stopped); ``architecture`` overrides
    the model's architecture options (a new model only, e.g. ``{"resolution": 32, "width": 8}``);
    ``precision`` "auto" uses bf16 on GPUs and on CPUs with native bf16; ``learning_rate`` replaces
    the model's default and is kept when resuming; a checkpoint is saved every
    ``save_every_minutes`` and when the run stops.
    """

    model: str | None = None
    iterations: int | None = None
    minutes: float | None = None
    batch_size: int | None = None
    compile: bool = False
    precision: Precision = "auto"
    learning_rate: float | None = None
    architecture: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0
    workers: int | None = None
    log_every: int | None = None
    preview_every: int | None = None
    save_every_minutes: float = 10.0

    def __post_init__(self) -> None:
        if self.model is not None:
            from .models import model_spec

            model_spec(self.model)
        if self.iterations is not None and self.minutes is not None:
            raise DeepswapError("give --iterations or --minutes, not both")
        if self.iterations is not None and self.iterations < 1:
            raise DeepswapError(f"--iterations must be ≥ 1, not {self.iterations}")
        _check_positive("--minutes", self.minutes)
        if self.batch_size is not None and not 1 <= self.batch_size <= MAX_BATCH:
            raise DeepswapError(f"--batch-size must be 1..{MAX_BATCH}, not {self.batch_size}")
        if self.precision not in get_args(Precision):
            raise DeepswapError(f"--precision must be auto, bf16 or fp32, not {self.precision!r}")
        _check_positive("--learning-rate", self.learning_rate)
        _check_positive("--save-every", self.save_every_minutes)
        for name in ("workers", "log_every", "preview_every"):
            value = getattr(self, name)
            if value is not None and value < (0 if name == "workers" else 1):
                raise DeepswapError(f"{name} must be ≥ {0 if name == 'workers' else 1}, not {value}")


def _check_positive(flag: str, value: float | None) -> None:
    if value is not None and not 0 < value < math.inf:
        raise DeepswapError(f"{flag} must be a number > 0, not {value}")


@dataclass(frozen=True)
class TrainConfig:
    """The settings a model is trained with, fixed when it is created (``learning_rate`` and
    ``batch_size`` may be changed by a later run's options)."""

    batch_size: int
    learning_rate: float
    seed: int
    coverage: float = COVERAGE
    precision: str = "fp32"

    @classmethod
    def from_saved(cls, training: Mapping[str, Any]) -> "TrainConfig":
        """The config saved in a checkpoint's ``training`` record (older records lack some fields)."""
        names = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in training.items() if key in names})

    def to_saved(self) -> dict[str, Any]:
        return asdict(self)
