"""What a training run is told (``TrainOptions``) and what it settles on (``TrainConfig``).

``TrainOptions`` holds what the caller asks for and checks every value when it is built.
``TrainConfig`` is resolved once per run from the options, the saved checkpoint and the model's
defaults, saved whole in ``state.json`` (``"training"``) and read back by the swapper, as nanoGPT
saves its config with the checkpoint. Neither imports torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Mapping, get_args

from ..options import OptionError, check, declaration, option

Precision = Literal["auto", "bf16", "fp32"]
COVERAGE = 0.8  # of the aligned crop that the models see (see data.face_region)
MAX_BATCH = 4096
FINISHING_STAGE = " (over the last quarter the learning rate falls and the random warp is off)."  # of a budget


@dataclass(frozen=True)
class TrainOptions:
    """How to train: each field is optional and falls back to the saved model's, then the model's default.

    ``model`` names a new model (original, lite, hd; default hd on a GPU, lite on a CPU);
    ``iterations`` is the iteration count to reach (a resumed run continues toward it); ``minutes``
    limits this run's time (with neither, training runs until stopped); ``architecture`` overrides
    the model's architecture options (a new model only, e.g. ``{"resolution": 32, "width": 8}``);
    ``precision`` "auto" uses bf16 on GPUs and on CPUs with native bf16; ``learning_rate`` replaces
    the model's default and is kept when resuming; a checkpoint is saved every
    ``save_every_minutes`` and when the run stops. ``mask_steps`` trains the learned face mask alone
    (``mask_training.train_mask``), not the swap.
    """

    model: str | None = option(None, help="original, lite or hd. Default: the saved model; a new one is hd on a GPU, lite on a CPU.")
    iterations: int | None = option(None, minimum=1, help="Train until the model has done N iterations in all" + FINISHING_STAGE)
    minutes: float | None = option(None, minimum=0, above=True, help="Train for M minutes" + FINISHING_STAGE)
    batch_size: int | None = option(None, minimum=1, maximum=MAX_BATCH,
                                    help="Faces of each person per iteration (default: the model's).")
    compile: bool = option(False, form=False, help="torch.compile the model (faster on GPUs once compiled).")
    precision: Precision = option("auto", choices=get_args(Precision), form=False,
                                  help="auto (bf16 where the hardware has it), bf16 or fp32.")
    learning_rate: float | None = option(None, minimum=0, above=True,
                                         help="Adam's learning rate (default: the saved model's, else the model's).")
    architecture: Mapping[str, Any] = option(default_factory=dict, cli=False, label="Architecture (new model)",
                                             help="Architecture options of a new model, e.g. width=32 latent=256.")
    balance_expressions: bool = option(True, label="Balance expressions",
                                       help="Draw faces with rare poses and expressions (closed eyes, a wide-open mouth, "
                                            "raised brows) more often, up to 4× (see `deepswap.coverage`); on by default.")
    skin_mask: bool = option(False, label="Skin-only mask",
                             help="Train the learned face mask on face skin only: the replaced person's own fringe and "
                                  "hair over the forehead then stay in front of the new face (the identity reads a "
                                  "little more as theirs; docs/hair.md). Applies to the mask's steps from now on.")
    mask_steps: int | None = option(None, minimum=1, label="Mask steps",
                                    help="Train only the learned face mask, N steps more, drawing the faces whose mask "
                                         "was corrected by hand more often; the swap model is not changed.")
    seed: int = 0
    workers: int | None = option(None, minimum=0, cli=False, form=False, help="Data loader processes (default: by the cores).")
    log_every: int | None = option(None, minimum=1, cli=False, form=False, help="Iterations between loss log lines.")
    preview_every: int | None = option(None, minimum=1, label="Preview every N iterations",
                                       help="Iterations between preview grids (default: 100 on a CPU, 500 on a GPU).")
    save_every_minutes: float = option(10.0, minimum=0, above=True, flag="--save-every", form=False,
                                       help="Minutes between checkpoints (one is also saved when training stops).")

    def __post_init__(self) -> None:
        check(self)
        if self.model is not None:
            from .models import model_spec

            model_spec(self.model)
        if self.iterations is not None and self.minutes is not None:
            raise OptionError("give {} or {}, not both", declaration(TrainOptions, "iterations"),
                              declaration(TrainOptions, "minutes"))
        for budget in ("iterations", "minutes"):
            if self.mask_steps is not None and getattr(self, budget) is not None:
                raise OptionError("give {} or {}, not both", declaration(TrainOptions, "mask_steps"),
                                  declaration(TrainOptions, budget))


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
