"""What `deepswap evaluate` can be told, each option declared once (see ``deepswap.options``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import check, option


@dataclass(frozen=True)
class EvaluateOptions:
    """What to score the swap on: ``clips`` of A kept out of training (a folder or one video; None:
    A's own footage, optimistic), up to ``max_frames`` of their frames."""

    clips: Path | None = option(None, form=False, help="Videos of A not used for training (a folder or one video). "
                                                       "Default: A's own footage (optimistic).")
    max_frames: int = option(150, minimum=3, label="Frames", help="Frames of the clips to swap and score.")

    def __post_init__(self) -> None:
        check(self)
