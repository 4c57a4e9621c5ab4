"""What a workspace holds: sources and downloads, faces per person, model progress, outputs."""

from __future__ import annotations

from typing import Any

from .errors import DeepswapError
from .train import read_state
from .workspace import PERSON_KEYS, Workspace, WorkspaceLike, as_workspace


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


def workspace_status(workspace: WorkspaceLike) -> dict[str, Any]:
    """A JSON-ready summary of a workspace. A damaged model state or list of outputs does not stop
    it: ``problems`` holds one line about each."""
    workspace = as_workspace(workspace)
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

