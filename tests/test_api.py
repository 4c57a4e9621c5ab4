"""The library API: options check themselves when built, stages report progress and never print,
the stage packages keep their layers, and the public names stay the API's own objects."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import math
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import deepswap
from deepswap import ConvertOptions, DeepswapError, ExtractOptions, ProgressEvent, ReplaceSettings, TrainOptions

SOURCE = Path(deepswap.__file__).parent
RENDERERS = {"cli.py"}  # the only modules that may draw on the terminal (and, later, the web UI package)


@pytest.mark.parametrize("build, message", [
    (lambda: ConvertOptions(direction="b2c"), "direction must be a2b or b2a, not 'b2c'"),
    (lambda: ConvertOptions(start=-5), "start must be ≥ 0 (seconds), not -5"),
    (lambda: ConvertOptions(duration=-1), "duration must be > 0 (seconds), not -1"),
    (lambda: ConvertOptions(scale=0.5, width=100), "give scale or width, not both"),
    (lambda: ConvertOptions(batch_size=0), "batch_size must be 1..1024, not 0"),
    (lambda: ConvertOptions(crf=60), "crf must be 0..51, not 60"),
    (lambda: ConvertOptions(crf="18"), "crf must be a whole number, not '18'"),
    (lambda: ConvertOptions(gif=1), "gif must be true or false, not 1"),
    (lambda: ConvertOptions(preview=0), "preview must be ≥ 1, not 0"),
    (lambda: ReplaceSettings(color="sepia"), "color must be reinhard, hist or none, not 'sepia'"),
    (lambda: ReplaceSettings(blend="magic"), "blend must be feather or seamless, not 'magic'"),
    (lambda: ReplaceSettings(mask_erode=math.nan), "mask_erode must be -0.3..0.3 (a fraction of the face), not nan"),
    (lambda: ReplaceSettings(mask_blur=2), "mask_blur must be 0..0.5"),
    (lambda: ReplaceSettings(detail=math.nan), "detail must be 0..1"),
    (lambda: ReplaceSettings(detail=1.5), "detail must be 0..1"),
    (lambda: TrainOptions(precision="bf17"), "precision must be auto, bf16 or fp32, not 'bf17'"),
    (lambda: TrainOptions(iterations=10, minutes=1), "give iterations or minutes, not both"),
    (lambda: TrainOptions(iterations=0), "iterations must be ≥ 1, not 0"),
    (lambda: TrainOptions(batch_size=0), "batch_size must be 1..4096, not 0"),
    (lambda: TrainOptions(model="huge"), "unknown model 'huge'; choose one of original, lite, hd"),
    (lambda: TrainOptions(minutes=math.inf), "minutes must be > 0, not inf"),
    (lambda: TrainOptions(learning_rate=-1.0), "learning_rate must be > 0, not -1.0"),
    (lambda: TrainOptions(save_every_minutes=0), "save_every_minutes must be > 0, not 0"),
    (lambda: ExtractOptions(fps=0), "fps must be > 0, not 0"),
    (lambda: ExtractOptions(person="c"), "person must be a or b, not 'c'"),
    (lambda: ExtractOptions(identity_every=0), "identity_every must be ≥ 1, not 0"),
])
def test_options_refuse_bad_values_when_built(build, message):
    with pytest.raises(DeepswapError, match=re.escape(message)):
        build()


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_time_options_accept_exactly_finite_seconds(value):
    for field, valid in (("start", 0 <= value < math.inf), ("duration", 0 < value < math.inf),
                         ("scale", 0 < value <= 8)):
        try:
            options = ConvertOptions(**{field: value})
        except DeepswapError as error:
            assert not valid and str(error).startswith(f"{field} must")
        else:
            assert valid and getattr(options, field) == value


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_fps_and_minutes_accept_exactly_positive_finite_numbers(value):
    valid = 0 < value < math.inf
    for build in (lambda: ExtractOptions(fps=value), lambda: TrainOptions(minutes=value)):
        try:
            build()
        except DeepswapError:
            assert not valid
        else:
            assert valid


def test_options_are_frozen():
    for options in (ConvertOptions(), ReplaceSettings(), TrainOptions(), ExtractOptions()):
        with pytest.raises(dataclasses.FrozenInstanceError):
            options.batch_size = 3  # type: ignore[misc]


def test_cli_checks_options_before_touching_the_workspace(trained_workspace, s1_clips, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(trained_workspace, root)
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    command = Path(sys.executable).parent / "deepswap"
    for args in (["extract", str(root), "--force", "--fps", "0"], ["train", str(root), "--batch-size", "0"],
                 ["train", str(root), "--precision", "bf17"],
                 ["convert", str(root), str(s1_clips[0]), "-o", str(tmp_path / "o.mp4"), "--color", "sepia"],
                 ["convert", str(root), str(s1_clips[0]), "-o", str(tmp_path / "o.mp4"), "--duration", "-1"]):
        result = subprocess.run([str(command), *args], capture_output=True, text=True)
        assert result.returncode == 1 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, args
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before
    assert not (tmp_path / "o.mp4").exists()


def test_public_names_stay_the_api_objects_after_stage_packages_are_imported():
    script = ("import deepswap, deepswap.convert, deepswap.train, deepswap.extract, deepswap.evaluate\n"
              "print(all(callable(getattr(deepswap, n)) for n in ('convert', 'train', 'extract', 'evaluate')),"
              " deepswap.convert.__module__, deepswap.extract.__module__)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "deepswap.convert.convert", "deepswap.extract.extract"]


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text("utf-8"))) for path in sorted(SOURCE.rglob("*.py"))]


def _imports(path: Path, tree: ast.Module) -> set[str]:
    """The deepswap modules a file imports (absolute dotted names), deferred imports included."""
    module_path = ["deepswap", *path.relative_to(SOURCE).with_suffix("").parts]
    package = module_path[:-1]  # what a relative import starts from (an __init__'s own package)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + (node.module.split(".") if node.module else []))
            found.update(f"{module}.{alias.name}" if not node.module else module for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.startswith("deepswap")}


def test_no_library_module_prints_or_draws():
    for path, tree in _modules():
        if path.name in RENDERERS or "ui" in path.relative_to(SOURCE).parts[:1]:
            continue
        calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "print"]
        imports = {alias.name for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                   for alias in getattr(node, "names", [])} | {node.module or "" for node in ast.walk(tree)
                                                               if isinstance(node, ast.ImportFrom)}
        assert not calls, f"{path} prints"
        assert not any(name == "rich" or name.startswith("rich.") for name in imports), f"{path} imports rich"


def test_primitive_packages_import_nothing_above_them():
    leaves = ("deepswap.errors", "deepswap._io", "deepswap._schema", "deepswap._lazy")  # import nothing of deepswap but errors
    allowed = {"faces": ("deepswap.faces", *leaves),
               "provenance": ("deepswap.provenance", *leaves, "deepswap.__version__")}
    for path, tree in _modules():
        stage = path.relative_to(SOURCE).parts[0]
        if stage in allowed:
            above = {name for name in _imports(path, tree) if not name.startswith(allowed[stage])}
            assert not above, f"{path} imports {above}"


def test_evaluate_uses_only_public_names_of_convert():
    for path in sorted((SOURCE / "evaluate").glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("convert"):
                assert node.module == "convert" and all(not alias.name.startswith("_") for alias in node.names)
                assert {alias.name for alias in node.names} <= set(importlib.import_module("deepswap.convert").__all__)


def test_train_reports_progress_previews_and_stops_on_request(extracted_workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(extracted_workspace, root)
    stop = threading.Event()
    events: list[ProgressEvent] = []

    def collect(event: ProgressEvent) -> None:
        events.append(event)
        if event.kind == "progress" and event.done >= 3:
            stop.set()

    options = TrainOptions(model="lite", batch_size=2, workers=0, log_every=1, preview_every=2, precision="fp32",
                           architecture={"resolution": 32, "width": 8, "latent": 32})
    result = deepswap.train(root, options, collect, stop)
    assert result.stopped_by == "signal" and result.iteration == 4, "the request is seen at the next log step"
    steps = [e for e in events if e.kind == "progress"]
    assert [e.done for e in steps] == [1, 2, 3, 4] and all({"loss_a", "loss_b", "learning_rate"} <= set(e.values) for e in steps)
    assert events[[e.kind for e in events].index("task")].unit == "iterations"
    files = {e.path.name for e in events if e.kind == "file"}
    assert files == {"preview.png", "loss.png"} and all(e.path.is_file() for e in events if e.kind == "file")
    assert any(e.kind == "note" and e.message.startswith("saved lite at iteration 4") for e in events)
    assert deepswap.train(root, TrainOptions(iterations=5, workers=0, batch_size=2)).start_iteration == 4


def test_a_failing_convert_leaves_no_thread_behind(trained_workspace, s1_clips):
    with pytest.raises(DeepswapError, match="cannot write"):
        deepswap.convert(trained_workspace, s1_clips[0], Path("/proc/deepswap-out.mp4"), ConvertOptions(duration=0.4))
    assert not [thread.name for thread in threading.enumerate() if thread.name.startswith("deepswap-")]


def test_converter_serves_several_inputs_with_one_model(trained_workspace, s1_clips, tmp_path):
    converter = deepswap.Converter(trained_workspace)
    events: list[ProgressEvent] = []
    first = converter.convert(s1_clips[0], tmp_path / "one.mp4", ConvertOptions(duration=0.4), events.append)
    second = converter.convert(s1_clips[1], tmp_path / "two.mp4", ConvertOptions(duration=0.4))
    assert first.frames == second.frames == 10 and first.output_id != second.output_id
    assert [e.kind for e in events if e.kind != "progress"] == ["task", "done", "file"]
    assert [e.done for e in events if e.kind == "progress"] == list(range(1, 11))
