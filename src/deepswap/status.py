"""What a workspace holds: sources and downloads, faces per person, model progress, outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .workspace import PERSON_KEYS, Workspace


def count_faces(workspace: Workspace, key: str) -> int:
    """Aligned face crops on disk for a person (deleted crops are not counted)."""
    faces_dir = workspace.faces_dir(key)  # type: ignore[arg-type]
    return sum(1 for _ in faces_dir.glob("*.png")) if faces_dir.is_dir() else 0


def model_state(workspace: Workspace) -> dict[str, Any]:
    """The saved training state (model name, iteration), or an empty model."""
    state_file = workspace.model_dir / "state.json"
    if not state_file.is_file():
        return {"model": None, "iterations": 0}
    state = json.loads(state_file.read_text("utf-8"))
    return {"model": state.get("model"), "iterations": int(state.get("iteration", 0))}


def workspace_status(root: str | Path) -> dict[str, Any]:
    """A JSON-ready summary of a workspace."""
    workspace = Workspace.open(root)
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
    return {"workspace": str(workspace.root), "persons": persons, "model": model_state(workspace),
            "outputs": workspace.outputs()}


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
