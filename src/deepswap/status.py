"""What a workspace holds: sources and downloads, faces per person, model progress, outputs."""

from __future__ import annotations

import json
from typing import Any

from .workspace import PERSON_KEYS, Workspace, WorkspaceLike, as_workspace


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


def workspace_status(workspace: WorkspaceLike) -> dict[str, Any]:
    """A JSON-ready summary of a workspace."""
    workspace = as_workspace(workspace)
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
