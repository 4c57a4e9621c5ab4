"""What `deepswap extract` can be told, each option declared once (see ``deepswap.options``).
Imports nothing heavy, so the command line and the web form are built from it without OpenCV."""

from __future__ import annotations

from dataclasses import dataclass

from ..options import check, option
from ..workspace import PERSON_KEYS, PersonKey


@dataclass(frozen=True)
class ExtractOptions:
    """What to extract: person ``a``, ``b`` or both (None); videos sampled at ``fps`` frames per second
    (None: every frame); ``force`` discards earlier results of the person(s) and redoes all.
    ``detect_size`` is the longest side frames are scaled to for detection; a face followed from
    frame to frame has its identity embedded every ``identity_every`` frames (1 = every frame).
    ``workers`` local processes, or the Ray cluster at ``ray``, extract the sources side by side."""

    person: PersonKey | None = option(None, choices=PERSON_KEYS, label="Who",
                                      help="Only this person: a or b (default both).")
    fps: float | None = option(None, minimum=0, above=True, label="Frames per second",
                               help="Sample videos at this many frames per second (default: every frame).")
    force: bool = option(False, label="redo from scratch",
                         help="Discard earlier faces of the person(s) and extract again.")
    detect_size: int = option(320, minimum=64, maximum=4096, meaning="pixels", cli=False, form=False,
                              help="The longest side frames are scaled to for detection.")
    identity_every: int = option(25, minimum=1, cli=False, form=False,
                                 help="Frames between identity embeddings of a face followed from frame to frame.")
    workers: int | None = option(None, minimum=1, maximum=256, form=False,
                                 help="Local processes extracting a person's sources side by side; each takes about 1 GiB. "
                                      "Default: one per core, as memory allows, when there is footage enough to pay "
                                      "for their start.")
    ray: str | None = option(None, form=False, bare="auto", meaning="a Ray cluster address",
                             help="Extract the sources on the Ray cluster at this address ('auto', or the option alone: "
                                  "the cluster this machine belongs to, else a new one here; 'local': a new one here). "
                                  "Needs the cluster extra.")

    def __post_init__(self) -> None:
        check(self)

    @property
    def persons(self) -> list[PersonKey]:
        return [self.person] if self.person else list(PERSON_KEYS)
