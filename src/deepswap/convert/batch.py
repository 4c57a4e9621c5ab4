"""Batch convert: many inputs (files, folders, globs) into one folder, the model loaded once.

Each input's output has a fixed name in the folder (``STEM_swapped.mp4``; inputs sharing a stem
are told apart by their folder's name), so a second run finds what the first one finished: an
output listed in the workspace's outputs.json for the same input and direction, and whole (its
recorded SHA-256), is skipped; one so listed but damaged, or listed as begun (``pending``: the
run was stopped before it recorded the output finished, even just after the file appeared), is
converted again. One input that fails is reported with its one-line reason
and the batch goes on; the ``BatchReport`` says what was done, skipped and failed.
"""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass, field, replace
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Sequence

from .. import _io
from ..errors import DeepswapError
from ..filetypes import VIDEO_SUFFIXES
from ..progress import ProgressCallback, Reporter
from ..workspace import WorkspaceLike
from .options import ConvertOptions
from .outputs import distinct_names, output_suffix

if TYPE_CHECKING:
    from .convert import Converter, ConvertReport
    from .workers import InputTask

ItemState = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class BatchItem:
    """What became of one input: ``done`` (converted now), ``skipped`` (converted before) or
    ``failed`` (``reason``: the one-line error)."""

    input: Path
    output: Path
    state: ItemState
    frames: int = 0
    swapped: int = 0
    seconds: float = 0.0
    reason: str = ""


@dataclass
class BatchReport:
    """Every input of a batch and what became of it, in order; ``seconds``: the run's wall time."""

    items: list[BatchItem] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, state: ItemState) -> int:
        return sum(item.state == state for item in self.items)

    @property
    def failed(self) -> list[BatchItem]:
        return [item for item in self.items if item.state == "failed"]

    @property
    def frames(self) -> int:
        """Frames converted by this run (not those of skipped outputs)."""
        return sum(item.frames for item in self.items if item.state == "done")

    @property
    def fps(self) -> float:
        """Frames converted per second of the run (all workers together)."""
        return self.frames / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One line: done, skipped, failed and the rate."""
        return (f"{self.count('done')} done, {self.count('skipped')} skipped, {self.count('failed')} failed; "
                f"{self.frames} frames at {self.fps:.1f} frames/s")


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """The inputs a batch converts, in the order given, each once: a file as is, a glob pattern's
    matches (sorted), a folder holding videos its videos (sorted), any other folder as a photo folder.
    A name that matches nothing is kept, so that converting it fails with its own reason."""
    found: list[Path] = []
    for entry in inputs:
        text = str(entry)
        if glob.has_magic(text) and not Path(text).exists():
            found.extend(Path(match) for match in sorted(glob.glob(text, recursive=True)) or [text])
        elif Path(text).is_dir() and _videos_in(Path(text)):
            found.extend(_videos_in(Path(text)))
        else:
            found.append(Path(text))
    return list(dict.fromkeys(found))


def is_batch(inputs: Sequence[str | Path], output: str | Path) -> bool:
    """Whether a convert of ``inputs`` to ``output`` is a batch into the folder ``output``: several
    inputs, a glob or a folder of videos, or one file converted into an existing folder."""
    if len(inputs) != 1:
        return True
    only = Path(inputs[0])
    if glob.has_magic(str(only)) and not only.exists():
        return True
    if only.is_dir():
        return bool(_videos_in(only))
    return Path(output).is_dir()


def batch_outputs(inputs: Sequence[Path], folder: Path, options: ConvertOptions) -> dict[Path, Path]:
    """Each input's output in ``folder``: ``STEM_swapped`` with ``.mp4`` (``.gif``), the photo's
    suffix, or no suffix for a photo folder or ``--preview``; a stem shared by several inputs is
    prefixed with the input's folder name (then numbered, if that is shared too)."""
    distinct = distinct_names(inputs, lambda path: f"{path.parent.name}_{path.stem}",
                              lambda stem, number: f"{stem}_{number}_swapped" if number else f"{stem}_swapped")
    preview = options.preview is not None
    return {path: folder / (name + output_suffix(path, gif=options.gif, preview=preview))
            for path, name in zip(inputs, distinct)}


def converted_before(record: dict[str, Any] | None, input_path: Path, options: ConvertOptions) -> bool:
    """Whether an outputs.json ``record`` is of a convert of ``input_path`` in ``options``' direction."""
    return (record is not None and record.get("input") == str(input_path.resolve())
            and record.get("direction") == options.direction)


def is_whole(output: Path, record: dict[str, Any]) -> bool:
    """Whether ``output`` is still as its outputs.json ``record`` says: a file with the recorded
    SHA-256, a folder with a file per frame."""
    if output.is_dir():
        return sum(1 for path in output.iterdir() if path.is_file()) == record.get("frames")
    return output.is_file() and record.get("sha256") == _io.sha256_file(output)


def convert_batch(workspace: WorkspaceLike, inputs: Iterable[str | Path], folder: str | Path,
                  options: ConvertOptions | None = None, on_progress: ProgressCallback | None = None) -> BatchReport:
    """Convert every input (files, folders, globs: see ``expand_inputs``) into ``folder``, loading
    the model once per process (``options.workers`` processes convert inputs side by side, or the
    Ray cluster at ``options.ray`` its videos); finished outputs are skipped, a failed input is noted
    and the rest go on.
    Progress: each input's own events, and a ``note`` per input skipped or failed."""
    from .convert import Converter
    from .workers import InputTask, default_workers, run_inputs

    options = options or ConvertOptions()
    folder = Path(folder)
    expanded = expand_inputs(inputs)
    if not expanded:
        raise DeepswapError("no inputs to convert")
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    converter = Converter(workspace)  # here too: a workspace without a model is one error, before any worker starts
    recorded = {Path(entry["path"]): entry for entry in converter.workspace.outputs(unfinished=True)}
    reporter = Reporter("convert", on_progress)
    items: dict[Path, BatchItem] = {}
    todo: list[InputTask] = []
    for input_path, output in batch_outputs(expanded, folder, options).items():
        earlier = recorded.get(output.resolve())
        ours = converted_before(earlier, input_path, options)
        if ours and not options.force and is_whole(output, earlier):  # type: ignore[arg-type]
            items[input_path] = BatchItem(input_path, output, "skipped")
            reporter.note(f"{input_path}: converted before → {output}; skipped")
        else:  # an earlier, damaged output of this same convert is replaced; anything else only with force
            todo.append(InputTask(input_path, output, replace(options, force=True) if ours else options))

    def settle(task: InputTask, result: ConvertReport | DeepswapError) -> None:
        if isinstance(result, DeepswapError):
            items[task.input_path] = BatchItem(task.input_path, task.output, "failed", reason=str(result))
            reporter.note(f"failed: {result}")
        else:
            items[task.input_path] = BatchItem(task.input_path, task.output, "done", result.frames, result.swapped,
                                               result.seconds)

    if options.ray:  # the videos go to the cluster; the rest is converted here, one after another
        videos = [task for task in todo if _runs_on_ray(task.input_path, options)]
        _convert_on_ray(converter, videos, options.ray, on_progress, settle)
        todo = [task for task in todo if task not in videos]
    workers = 1 if options.ray else min(options.workers or default_workers(len(todo)), len(todo))
    if workers > 1:
        run_inputs(converter.workspace.root, todo, workers, on_progress, settle)
    for task in todo if workers <= 1 else ():
        try:
            settle(task, converter.convert(task.input_path, task.output, task.options, on_progress))
        except DeepswapError as error:
            settle(task, error)
    return BatchReport([items[path] for path in expanded], time.perf_counter() - started)


def _runs_on_ray(input_path: Path, options: ConvertOptions) -> bool:
    """Whether a batch input goes to the Ray cluster: a video converted to a video (``plan_chunks``)."""
    return input_path.suffix.lower() in VIDEO_SUFFIXES and not options.gif and options.preview is None


def _convert_on_ray(converter: Converter, tasks: list[InputTask], address: str, on_progress: ProgressCallback | None,
                    settle: Callable[[InputTask, Any], None]) -> None:
    """Convert a batch's videos on the Ray cluster at ``address``, as many at a time as it has CPUs:
    each is one Ray task (a long one, one per chunk) that gets the input's bytes and returns the
    converted video's; here it is joined with the audio, signed with the user's key and recorded
    (``Converter.convert`` with ``ray``), as a video converted here is."""
    from ..parallel import connect

    if not tasks:
        return
    at_once = max(1, int(connect(address).cluster_resources().get("CPU", 1)))

    def convert_one(task: InputTask) -> Any:
        try:
            return converter.convert(task.input_path, task.output, task.options, on_progress)
        except DeepswapError as error:
            return error

    with ThreadPoolExecutor(at_once, thread_name_prefix="deepswap-ray-input") as pool:
        for task, result in zip(tasks, pool.map(convert_one, tasks)):
            settle(task, result)


def _videos_in(folder: Path) -> list[Path]:
    return sorted(path for path in folder.iterdir() if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES)
