"""MkDocs hook (see mkdocs.yml) that gives the CLI reference page its source: the click command typer
builds from deepswap's own app, so docs/cli.md is generated from the same option declarations as
``deepswap --help``.

MkDocs loads this file before it reads the pages; it is registered below under the module name that
the page's ``::: mkdocs-click`` block imports. Only the docs build imports it, so the command line
itself pays nothing for it.
"""

from __future__ import annotations

import sys

import typer.main

from deepswap.cli import app

command = typer.main.get_command(app)

sys.modules["deepswap_cli_reference"] = sys.modules[__name__]
