"""What a workspace holds: sources and downloads, faces per person, model progress, outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import DeepswapError
from .train.state import read_state
from .workspace import PERSON_KEYS, Workspace


def count_faces(workspace: Workspace, key: str) -> int:
    """Aligned face crops on disk for a person (deleted crops are not counted)."""
    faces_dir = workspace.faces_dir(key)  # type: ignore[arg-type]
    return sum(1 for _ in faces_dir.glob("*.png")) if faces_dir.is_dir() else 0


def model_state(workspace: Workspace) -> dict[str, Any]:
    """The saved training state (model name, iteration), or an empty model; damaged → error."""
    state = read_state(workspace.model_dir)
    if state is None:
        return {"model": None, "iterations": 0}
    return {"model": state["model"], "iterations": state["iteration"]}


def workspace_status(root: str | Path) -> dict[str, Any]:
    """A JSON-ready summary of a workspace. A damaged model state or list of outputs does not stop
    it: ``problems`` holds one line about each."""
    workspace = Workspace.open(root)
    problems: list[str] = []
    persons = {}
    for key in PERSON_KEYS:
        person = workspace.persons[key]
        persons[key] = {
            "name": person.name,
            "reference": str(workspace.reference_path(key)) if person.reference else None,
            "sources": [
                {**source.to_toml(), "id": source.id, "available": workspace.is_available(key, source),
                 "path": str(workspace.local_path(key, source))}
                for source in person.sources
            ],
            "faces": count_faces(workspace, key),
        }
    try:
        model = model_state(workspace)
    except DeepswapError as error:
        model = {"model": None, "iterations": 0}
        problems.append(str(error))
    try:
        outputs = workspace.outputs()
    except DeepswapError as error:
        outputs = []
        problems.append(str(error))
    return {"workspace": str(workspace.root), "persons": persons, "model": model, "outputs": outputs,
            "problems": problems}


def print_status(report: dict[str, Any], console: Console) -> None:
    """Render a status report as rich tables."""
    sources = Table(title=f"workspace {escape(report['workspace'])}")
    for column in ("person", "kind", "source", "range", "available"):
        sources.add_column(column, overflow="fold")
    for key, person in report["persons"].items():
        label = f"{key}: {escape(person['name'])}"
        if not person["sources"]:
            sources.add_row(label, "", "(no sources yet)", "", "")
        for source in person["sources"]:
            span = ""
            if "start" in source or "duration" in source:
                span = f"{source.get('start', 0):g}s +{source['duration']:g}s" if "duration" in source else f"{source['start']:g}s →"
            ready = "yes" if source["available"] else ("no — run fetch" if source["kind"] == "url" else "missing!")
            sources.add_row(label, source["kind"], escape(source["uri"]), span, ready)
    console.print(sources)
    summary = Table(show_header=False)
    for key, person in report["persons"].items():
        summary.add_row(f"faces {key} ({escape(person['name'])})", str(person["faces"]))
    model = report["model"]
    summary.add_row("model", f"{model['model'] or 'not trained'}, {model['iterations']} iterations")
    for output in report["outputs"]:
        summary.add_row("output", escape(output["path"]))
    console.print(summary)
    for problem in report["problems"]:
        console.print(f"[red]problem:[/] {escape(problem)}", highlight=False, soft_wrap=True)
