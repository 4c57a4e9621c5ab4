"""What `deepswap add` can be told, each option declared once (see ``deepswap.options``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..options import check, option


@dataclass(frozen=True)
class AddOptions:
    """The part of the videos named in one ``add`` to use (``start``, ``duration``: seconds) and a
    ``reference`` photo of the person, to keep only their face."""

    start: float | None = option(None, minimum=0, meaning="seconds", label="Start (s)",
                                 help="Start time in seconds of the videos named here.")
    duration: float | None = option(None, minimum=0, above=True, meaning="seconds", label="Duration (s)",
                                    help="Duration in seconds of the videos named here.")
    reference: Path | None = option(None, form=False, help="A photo of this person, to keep only their face.")

    def __post_init__(self) -> None:
        check(self)
