"""What `deepswap convert` can be told (``ConvertOptions``) and how a generated face is fitted into
the frame (``ReplaceSettings``): each option declared once (see ``deepswap.options``). Imports
nothing heavy, so the command line and the web form are built from it without OpenCV or torch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from ..options import OptionError, check, declaration, option
from ..workspace import PersonKey

Direction = Literal["a2b", "b2a"]
ColorMode = Literal["reinhard", "hist", "none"]
BlendMode = Literal["feather", "seamless"]
MouthInterior = Literal["off", "wide", "always"]
Eyelids = Literal["follow", "off"]
Lips = Literal["follow", "off"]
MAX_BATCH = 1024


def replaced_person(direction: Direction) -> PersonKey:
    """The person whose face a conversion replaces: a for a2b, b for b2a."""
    return "a" if direction == "a2b" else "b"


@dataclass(frozen=True)
class ReplaceSettings:
    """How a generated face is fitted into the frame.

    ``detail`` is how much of the footage's own finest detail — grain, skin texture, the crisp edge
    of a lid or a lip: what is finer than ``replace.DETAIL_RESOLUTION`` pixels across the face, and on a
    large face only the frame's finest octave — is laid over the generated face inside the mask, so
    that it is as crisp as the picture around it; 0 keeps the model's face as drawn. Coarser detail,
    where a face's identity lies, is always the model's. ``learned_mask`` cuts the mask down to what
    the model's learned face mask sees as face (``train.segmenter``), and ``drawn_face_only`` to what
    it sees as face in the face the model drew (hair drawn beside the cheeks stays off the face).
    ``keep_fringe`` leaves the replaced person's own hair above the brows in front of the new face.
    ``mouth_interior`` leaves the replaced person's own mouth interior inside the new lips
    (``convert.mouth``). ``eyelids`` closes the new face's eyes as far as the replaced person's are
    closed (``convert.eyelids``), and ``lips`` opens its mouth as far as theirs (``convert.mouth``).
    ``smooth`` steadies the landmarks and the learned mask over time.
    """

    color: ColorMode = option("reinhard", choices=get_args(ColorMode), label="Colour matching",
                              help="Colour matching of the new face to the frame: reinhard, hist or none.")
    blend: BlendMode = option("feather", choices=get_args(BlendMode), label="Blending",
                              help="Blending into the frame: feather or seamless (Poisson).")
    mask_erode: float = option(-0.015, minimum=-0.3, maximum=0.3, meaning="a fraction of the face",
                               help="Shrink (or, negative, grow) the mask, as a fraction of the face.")
    mask_blur: float = option(0.05, minimum=0, maximum=0.5, meaning="a fraction of the face",
                              help="Feather width of the mask edge, as a fraction of the face.")
    detail: float = option(1.0, minimum=0, maximum=1, label="Fine detail kept",
                           meaning="the share of the footage's fine detail kept",
                           help="Share (0..1) of the footage's finest detail (grain, skin texture) laid over the new face; "
                                "0: the model's face as drawn.")
    learned_mask: bool = option(True, label="Learned mask (keeps what is in front of the face)",
                                help="Keep the face only where the model's learned mask sees face, so a hand or a microphone "
                                     "in front of it stays in front (models trained before it have none).")
    drawn_face_only: bool = option(True, label="Paste only the new face, not its hair",
                                   help="Paste the new face only where the learned mask sees face in it too, and above the "
                                        "brows only where it looks like skin, so hair the model draws beside the cheeks or over "
                                        "the forehead stays off the face (the footage's own cheek or fringe shows there, its skin "
                                        "toned to meet the new face).")
    keep_fringe: bool = option(False, label="Keep the footage's fringe in front",
                               help="Above the brows, leave the replaced person's own hair (a fringe, a hairline lower "
                                    "than the other person's) in front of the new forehead, as filmed, instead of painting "
                                    "the new forehead over it. The identity judge then reads a little more of the replaced "
                                    "person.")
    mouth_interior: MouthInterior = option(
        "wide", choices=get_args(MouthInterior), label="A's own mouth interior",
        help="Show the replaced person's own teeth and tongue inside the new lips: wide (only where the mouth opens "
             "wider than any face of the other person, which the model never saw), always, or off.")
    eyelids: Eyelids = option(
        "follow", choices=get_args(Eyelids), label="Eyelids follow the footage's",
        help="Close the new face's eyes as far as the replaced person's are closed (blinks, winks), where the model "
             "draws them more open: follow, or off (the eyes as the model draws them).")
    lips: Lips = option(
        "follow", choices=get_args(Lips), label="Mouth opens with the footage's",
        help="Open the new face's mouth as far as the replaced person's opens, where the model draws it more closed "
             "(a wide-open mouth the other person's footage never shows): follow, or off (the mouth as the model draws it).")
    smooth: bool = True

    def __post_init__(self) -> None:
        check(self)


@dataclass(frozen=True)
class ConvertOptions:
    """Everything `deepswap convert` can be told (defaults: replace A with B, whole video); checked when built."""

    direction: Direction = option("a2b", choices=get_args(Direction),
                                  help="a2b replaces A with B; b2a the reverse.")
    side_by_side: bool = option(False, label="side by side (original | swapped)",
                                help="Original | swapped, each labelled.")
    start: float | None = option(None, minimum=0, meaning="seconds", label="Start (s)", help="Start time in seconds.")
    duration: float | None = option(None, minimum=0, above=True, meaning="seconds", label="Duration (s)",
                                    help="Duration in seconds.")
    scale: float | None = option(None, minimum=0, maximum=8, above=True, help="Resize the output by this factor.")
    width: int | None = option(None, minimum=16, maximum=16384, meaning="pixels", label="Width (px)",
                               help="Output width in pixels (height follows).")
    replace: ReplaceSettings = ReplaceSettings()
    crf: int = option(18, minimum=0, maximum=51, label="Quality (crf)", help="H.264 quality (0 lossless … 51 worst).")
    gif: bool = option(False, label="animated GIF", help="Write an animated GIF instead of an mp4.")
    preview: int | None = option(None, minimum=1, form=False,
                                 help="Write only N frames' before/after PNGs into the OUTPUT folder.")
    batch_size: int = option(16, minimum=1, maximum=MAX_BATCH, help="Faces per model call.")
    chunk_seconds: float = option(60.0, minimum=0, meaning="seconds", label="Chunk length (s)",
                                  help="Convert a video longer than twice this in chunks of about this many seconds, cut at "
                                       "keyframes and kept until joined: a stopped run redoes only unfinished chunks. "
                                       "0: always in one pass.")
    workers: int | None = option(None, minimum=1, maximum=256, form=False,
                                 help="Local processes converting the chunks of a long video, or a batch's inputs, side by "
                                      "side; each takes about 2 GiB at 720p. Default: one per core, as memory allows.")
    ray: str | None = option(None, form=False, bare="auto", meaning="a Ray cluster address",
                             help="Convert the chunks of a long video, or a batch's inputs, on the Ray cluster at this "
                                  "address ('auto', or the option alone: the cluster this machine belongs to, else a new "
                                  "one here; 'local': a new one here). Needs the cluster extra.")
    sign_cert: Path | None = option(None, form=False,
                                    help="Sign the Content Credentials with this certificate chain (PEM, signing certificate "
                                         "first). Default: settings sign_cert, else your self-made one.")
    sign_key: Path | None = option(None, form=False, help="The private key (PEM) of --sign-cert.")
    tsa_url: str | None = option(None, form=False,
                                 help="Time-stamp the signature at this RFC 3161 authority (needs the network). Default: none.")
    force: bool = option(False, form=False, help="Replace an existing output (never the input).")

    def __post_init__(self) -> None:
        check(self)
        if self.scale is not None and self.width is not None:
            raise OptionError("give {} or {}, not both", declaration(ConvertOptions, "scale"),
                              declaration(ConvertOptions, "width"))
        if (self.sign_cert is None) != (self.sign_key is None):
            raise OptionError("give {} and {} together", declaration(ConvertOptions, "sign_cert"),
                              declaration(ConvertOptions, "sign_key"))

    @property
    def replaced(self) -> PersonKey:
        """The person whose face is replaced."""
        return replaced_person(self.direction)
