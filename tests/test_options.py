"""Each option is declared once, on its option dataclass: the command line's options and the web
form's fields are built from the declarations and agree with them (names, defaults, ranges, help),
and a bad value is named by each front end in its own words."""

from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from starlette.testclient import TestClient

from deepswap.cli import app
from deepswap.convert import ConvertOptions
from deepswap.demo import DemoOptions
from deepswap.evaluate import EvaluateOptions
from deepswap.extract import ExtractOptions
from deepswap.options import OptionError, declared
from deepswap.sources import AddOptions
from deepswap.train import TrainOptions
from deepswap.ui import create_app
from deepswap.ui.options import ServeOptions
from deepswap.workspace import init_workspace

COMMANDS = {"convert": ConvertOptions, "train": TrainOptions, "extract": ExtractOptions, "ui": ServeOptions,
            "demo": DemoOptions, "evaluate": EvaluateOptions, "add": AddOptions}
PAGES = {"convert": ConvertOptions, "train": TrainOptions, "faces": ExtractOptions, "evaluate": EvaluateOptions,
         "sources": AddOptions}
SETTLED_BY_THE_PAGE = {"minutes", "iterations", "clips"}  # train's "Train for" number and unit, evaluate's list of clips


@pytest.mark.parametrize("command, cls", COMMANDS.items())
def test_the_command_line_offers_each_declared_option_as_declared(command: str, cls: type) -> None:
    params = {param.name: param for param in typer.main.get_command(app).commands[command].params}  # type: ignore[attr-defined]
    for found in declared(cls):
        spec = found.declared
        if not spec.cli:
            assert found.name not in params, found.name
            continue
        param = params[found.name]
        assert param.opts == [spec.cli_name], found.name
        assert param.default == found.default and param.help == spec.help, found.name
        assert param.is_flag == (found.kind is bool), found.name


def test_an_option_given_alone_takes_its_declared_bare_value(tmp_path: Path) -> None:
    from deepswap.cli import with_bare_values

    bare = {found.declared.cli_name: found for cls in COMMANDS.values() for found in declared(cls) if found.declared.bare}
    assert set(bare) == {"--ray"} and all(found.kind is str and "alone" in found.declared.help for found in bare.values())
    assert with_bare_values(["extract", "ws", "--ray"]) == ["extract", "ws", "--ray=auto"]
    assert with_bare_values(["convert", "ws", "in.mp4", "--ray", "--workers", "2"])[3] == "--ray=auto"
    assert with_bare_values(["convert", "ws", "in.mp4", "--ray", "10.0.0.1:6379"])[3:] == ["--ray", "10.0.0.1:6379"]
    result = subprocess.run([str(Path(sys.executable).parent / "deepswap"), "extract", str(tmp_path / "none"), "--ray"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "requires an argument" not in result.stderr and str(tmp_path / "none") in result.stderr


def _form_controls(page: str) -> dict[str, str]:
    """The form controls of a page: name → the tag (input or select with its options)."""
    controls = {}
    for tag in re.findall(r"<input [^>]*>|<select [^>]*>.*?</select>", page, re.S):
        name = re.search(r'name="([^"]+)"', tag)
        if name:
            controls[name.group(1)] = tag
    return controls


@pytest.mark.parametrize("page, cls", PAGES.items())
def test_the_web_forms_offer_each_declared_option_as_declared(page: str, cls: type, tmp_path: Path) -> None:
    init_workspace(tmp_path / "ws", "alice", "bob")
    text = TestClient(create_app(tmp_path), base_url="http://127.0.0.1:7860").get(f"/w/ws/{page}").text
    controls = _form_controls(text)
    for found in declared(cls):
        spec = found.declared
        if not spec.form or found.name in SETTLED_BY_THE_PAGE:
            assert found.name not in controls or found.name in SETTLED_BY_THE_PAGE, found.name
            continue
        tag = controls[found.name]
        assert f'title="{spec.help}"' in html.unescape(text) and spec.form_label in html.unescape(text), found.name
        if found.kind is bool:
            assert 'type="checkbox"' in tag and (" checked" in tag) == bool(found.default), found.name
        elif spec.choices:
            values = re.findall(r'<option value="([^"]*)"', tag)
            assert set(spec.choices) <= set(values), found.name
            if found.default is not None:
                assert f'<option value="{found.default}" selected' in tag, found.name
        elif found.kind in (int, float):
            value = re.search(r'value="([^"]*)"', tag).group(1)  # type: ignore[union-attr]
            assert (float(value) if value else None) == found.default, found.name
            for attribute, bound in (("min", spec.minimum), ("max", spec.maximum)):
                shown = re.search(rf'{attribute}="([^"]*)"', tag)
                assert (float(shown.group(1)) if shown else None) == bound, (found.name, attribute)


def test_a_bad_value_is_named_in_each_front_ends_words(tmp_path: Path) -> None:
    with pytest.raises(OptionError) as refused:
        ConvertOptions(crf=60)
    assert str(refused.value) == "crf must be 0..51, not 60"  # the library: the option's own name
    assert refused.value.said(lambda option: option.cli_name) == "--crf must be 0..51, not 60"
    assert refused.value.said(lambda option: option.form_label) == "Quality (crf) must be 0..51, not 60"

    init_workspace(tmp_path / "ws", "alice", "bob")
    run = subprocess.run([sys.executable, "-c", "from deepswap.cli import main; main()", "convert", str(tmp_path / "ws"),
                          "in.mp4", "-o", str(tmp_path / "out.mp4"), "--scale", "2", "--width", "640"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.strip() == "error: give --scale or --width, not both"
    client = TestClient(create_app(tmp_path), base_url="http://127.0.0.1:7860")
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', client.get("/w/ws/convert").text).group(1)  # type: ignore[union-attr]
    answer = client.post("/w/ws/run/train", data={"budget": "", "batch_size": "0"}, headers={"X-CSRF-Token": token})
    assert answer.status_code == 422 and html.unescape(answer.text) == '<p class="error">“Batch size” must be 1..4096, not 0</p>'
