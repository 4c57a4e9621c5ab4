"""``model/state.json``: what a checkpoint holds, read and checked without torch.

``status`` (and the web UI) read it from here; ``checkpoint`` writes it and loads the tensor files
it names. The layout is described in :mod:`deepswap.train.checkpoint`. Every field is checked when
the file is read, and the tensor file names must be ``<role>-<iteration>.safetensors``, so a
damaged or hostile state never names a file outside the model folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from .._schema import Count, FiniteFloat, StrictModel, inside, validate
from ..errors import DeepswapError

FORMAT = 1
STATE = "state.json"
BEST = "best"
ROLES = ("model", "optimizer", "critic", "segmenter")
Scalar = bool | int | float | str | None


class _FileRecord(StrictModel):
    name: Annotated[str, Field(pattern=r"^(?:model|optimizer|critic|segmenter)-[0-9]{8,12}\.safetensors$")]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: Count


def _file_of(role: str) -> AfterValidator:
    def check(record: _FileRecord) -> _FileRecord:
        if not record.name.startswith(f"{role}-"):
            raise ValueError(f"{record.name!r} is not a {role} file")
        return record
    return AfterValidator(check)


class _Files(StrictModel):
    model: Annotated[_FileRecord, _file_of("model")]
    optimizer: Annotated[_FileRecord, _file_of("optimizer")]
    critic: Annotated[_FileRecord, _file_of("critic")] | None = None  # the swap critic and its Adam state
    segmenter: Annotated[_FileRecord, _file_of("segmenter")] | None = None  # the learned face mask and its Adam state


class _Optimizer(StrictModel):
    name: str
    param_groups: list[dict[str, Scalar | list[FiniteFloat]]]


class _Training(StrictModel, extra="allow"):
    """How the model was trained (fields a newer deepswap adds are kept as they are)."""

    batch_size: Annotated[int, Field(ge=1)] | None = None
    learning_rate: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    seed: int | None = None
    coverage: Annotated[float, Field(gt=0, le=1)] | None = None
    precision: Literal["bf16", "fp32"] | None = None
    world_size: Annotated[int, Field(ge=1)] | None = None
    elapsed_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    recent_loss: FiniteFloat | None = None
    best_loss: FiniteFloat | None = None
    segmenter_steps: Count | None = None


class _State(StrictModel):
    format: Literal[FORMAT]  # type: ignore[valid-type]
    model: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    options: dict[str, Scalar | list[Scalar]]
    iteration: Count
    files: _Files
    optimizer: _Optimizer | None = None
    training: _Training = _Training()
    versions: dict[str, str] = {}


def advice(folder: Path) -> str:
    """What to do about a damaged checkpoint in ``folder``."""
    best = folder / BEST
    restore = f"copy {best}/* into {folder} or " if (best / STATE).is_file() else ""
    return f"{restore}move {folder} away to start training again"


def read_state(folder: str | Path) -> dict[str, Any] | None:
    """The checkpoint state in ``folder`` (its ``state.json``), None if there is none; damaged → error."""
    folder = Path(folder)
    path = folder / STATE
    if not path.is_file():
        return None
    try:
        state = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise DeepswapError(f"{path}: damaged checkpoint state ({exc}); {advice(folder)}") from None
    validate(_State, state, path, "damaged checkpoint state", advice(folder))
    state.setdefault("training", {})
    return state


def file_path(folder: str | Path, state: dict[str, Any], role: str) -> Path:
    """Where the tensor file of ``role`` (one of ``ROLES``) that ``state`` names lies."""
    return inside(folder, state["files"][role]["name"])
