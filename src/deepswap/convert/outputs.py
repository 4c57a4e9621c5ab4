"""Where a convert run writes, settled and checked before any work is done.

Convert never writes onto its input (not even with ``force``), replaces an existing output only
with ``force``, gives photos that share a stem distinct names (``x.jpg``, ``x.png`` →
``x_jpg.png``, ``x_png.png``), and writes ``--preview`` PNGs only into a new or empty folder, or
one holding nothing but earlier previews, which ``force`` replaces (so two runs never mix). What a
killed earlier run left beside the outputs (temp files of a process that has ended) is removed.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from .. import _io
from ..errors import DeepswapError
from ..filetypes import PHOTO_OUTPUT_SUFFIXES, PHOTO_SUFFIXES
from ..video import list_photos

PREVIEW_NAME = re.compile(r"preview_\d{6}\.png")


@dataclass(frozen=True)
class OutputPlan:
    """The files one convert run writes: a video or GIF (``target``), preview PNGs in the folder
    ``target``, or one output per input photo (``photos``: photo file name → output path)."""

    kind: Literal["video", "preview", "photos"]
    target: Path
    photos: dict[str, Path] = field(default_factory=dict)
    replaced_previews: tuple[Path, ...] = ()

    def preview_path(self, frame_index: int) -> Path:
        return self.target / f"preview_{frame_index:06d}.png"

    def remove_replaced_previews(self) -> None:
        """Delete the earlier previews that ``force`` replaces (call it once the run is ready to write)."""
        for path in self.replaced_previews:
            path.unlink(missing_ok=True)


def default_output(folder: Path, input_path: Path, *, gif: bool, preview: bool, stem: str | None = None) -> Path:
    """Where a convert of ``input_path`` writes into ``folder`` when no output is named, never onto
    an existing file: ``previews/STEM`` for a preview, else ``STEM_swapped`` with ``output_suffix``
    (``stem``: the input's own unless given). Its folder is made."""
    stem = stem or input_path.stem
    if preview:
        (folder / "previews").mkdir(parents=True, exist_ok=True)
        return _io.unused_path(folder / "previews", stem)
    folder.mkdir(parents=True, exist_ok=True)
    return _io.unused_path(folder, f"{stem}_swapped{output_suffix(input_path, gif=gif, preview=False)}")


def output_suffix(input_path: Path, *, gif: bool, preview: bool) -> str:
    """The suffix of what a convert of ``input_path`` writes: none for a photo folder or preview
    PNGs (a folder), the photo's own for a photo, else ``.gif`` or ``.mp4``."""
    if preview or input_path.is_dir():
        return ""
    if input_path.suffix.lower() in PHOTO_SUFFIXES:
        return input_path.suffix.lower()
    return ".gif" if gif else ".mp4"


def plan_outputs(input_path: Path, output: Path, *, gif: bool, preview: bool, force: bool) -> OutputPlan:
    """Decide and check every path a convert of ``input_path`` to ``output`` will write; a bad one
    is a DeepswapError naming it. Stale temporaries of killed runs beside them are removed."""
    if input_path.is_dir() or input_path.suffix.lower() in PHOTO_SUFFIXES:
        return _plan_photos(input_path, output, force)
    if preview:
        return _plan_preview(input_path, output, force)
    target = output.with_suffix(".gif") if gif else output
    _check_file(target, input_path, force)
    return OutputPlan("video", target)


def distinct_names(paths: Sequence[Path], shared_stem: Callable[[Path], str],
                   name: Callable[[str, int | None], str]) -> list[str]:
    """A different name for each of ``paths``: ``name(stem, None)`` from its stem, or from
    ``shared_stem(path)`` where several paths share a stem, then numbered (``name(stem, 2)``, …)
    while that name is taken."""
    stems = Counter(path.stem for path in paths)
    taken: set[str] = set()
    names = []
    for path in paths:
        stem = path.stem if stems[path.stem] == 1 else shared_stem(path)
        candidate, number = name(stem, None), 1
        while candidate in taken:
            number += 1
            candidate = name(stem, number)
        taken.add(candidate)
        names.append(candidate)
    return names


def _plan_photos(input_path: Path, output: Path, force: bool) -> OutputPlan:
    photos = list_photos(input_path)
    if not photos:
        raise DeepswapError(f"{input_path}: no photos to convert")
    if input_path.is_file():
        if output.suffix.lower() not in PHOTO_OUTPUT_SUFFIXES:
            raise DeepswapError(f"{output}: a photo is converted to a .png or .jpg file")
        _check_file(output, input_path, force)
        return OutputPlan("photos", output, {input_path.name: output})
    if output.is_file():
        raise DeepswapError(f"{output}: is a file; a photo folder converts into a folder")
    if output.is_dir() and os.path.samefile(output, input_path):
        raise DeepswapError(f"{output}: is the input folder; write the photos to another folder")
    distinct = distinct_names(photos, lambda photo: f"{photo.stem}_{photo.suffix.lstrip('.').lower()}",
                              lambda stem, number: f"{stem}_{number}.png" if number else f"{stem}.png")
    names = {photo.name: output / name for photo, name in zip(photos, distinct)}
    for target in names.values():
        _check_file(target, input_path, force)
    return OutputPlan("photos", output, names)


def _plan_preview(input_path: Path, output: Path, force: bool) -> OutputPlan:
    if output.is_file():
        raise DeepswapError(f"{output}: is a file; --preview writes PNGs into a folder")
    if not output.is_dir():
        return OutputPlan("preview", output)
    for path in _io.stale_temporaries(output.iterdir()):
        path.unlink(missing_ok=True)
    entries = sorted(output.iterdir())
    others = [path.name for path in entries if not (PREVIEW_NAME.fullmatch(path.name) and path.is_file())]
    if others:
        shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise DeepswapError(f"{output}: holds files that are not previews ({shown}); "
                            "choose a new or empty folder for --preview")
    if entries and not force:
        raise DeepswapError(f"{output}: holds earlier previews; pass --force to replace them")
    return OutputPlan("preview", output, replaced_previews=tuple(entries))


def _check_file(target: Path, input_path: Path, force: bool) -> None:
    """``target`` may be written: not the input, not a folder, and new unless ``force``."""
    if _same_file(target, input_path):
        raise DeepswapError(f"{target}: is the input; write the output to another file")
    if target.is_dir():
        raise DeepswapError(f"{target}: is a folder; name an output file")
    if target.exists() and not force:
        raise DeepswapError(f"{target}: exists; pass --force to replace it")
    _io.remove_stale_temporaries(target)


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
