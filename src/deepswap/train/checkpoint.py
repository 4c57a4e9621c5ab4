"""Checkpoints in ``WS/model/``: no pickle, written so that a crash at any moment leaves one whole one.

Layout::

    model-<iteration>.safetensors      weights (encoder.*, decoders.a.*, decoders.b.*)
    optimizer-<iteration>.safetensors  Adam moments and step per parameter ("<param>.exp_avg", ...)
    critic-<iteration>.safetensors     the swap critic, once a finishing stage has trained it ("weights.<param>",
                                        "adam.<param>.exp_avg", ...; see critic.py)
    segmenter-<iteration>.safetensors  the learned face mask (segmenter.py), laid out as the critic; a
                                        checkpoint from before it has none; ``segmenter-<iteration><NNNN>``
                                        once ``train --mask-steps`` trained it alone (``replace_companion``)
    state.json                         {"format", "model", "options", "iteration", "files": {role: {name,
                                        sha256, bytes}}, "optimizer": {hyper-parameters}, "training": {...}}
    best/                              copies of the same files, for the checkpoint of lowest loss so far

Files are named by iteration and never rewritten: a save writes the new tensor files, then replaces
``state.json`` (atomically) to point at them, then deletes the old ones. Loading checks every file
against the sizes and SHA-256 sums in ``state.json``: a damaged or mismatching checkpoint is an error
naming the file, and training does not start (so it is never overwritten).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from .. import __version__, _io
from ..errors import DeepswapError
from .models import SwapModel, build_saved_model
from .state import BEST, FORMAT, ROLES, STATE, file_path, read_state
from .state import advice as _advice

OPTIMIZER_HYPERPARAMETERS = ("lr", "betas", "eps", "weight_decay", "amsgrad")
LOAD_ATTEMPTS = 3


def _load_tensors(folder: Path, state: dict[str, Any], role: str, device: torch.device | str) -> dict[str, torch.Tensor]:
    record = state["files"][role]
    path = file_path(folder, state, role)
    try:
        intact = path.stat().st_size == record["bytes"] and _io.sha256_file(path) == record["sha256"]
    except FileNotFoundError:
        raise DeepswapError(f"{path}: checkpoint file missing; {_advice(folder)}") from None
    if not intact:
        raise DeepswapError(f"{path}: checkpoint file is damaged (size or checksum differs from {STATE}); "
                            f"{_advice(folder)}")
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, RuntimeError) as exc:  # RuntimeError: the file went away
        raise DeepswapError(f"{path}: unreadable checkpoint file ({exc}); {_advice(folder)}") from None


def load_model(folder: str | Path, device: torch.device | str = "cpu") -> tuple[SwapModel, dict[str, Any]]:
    """Build the model a checkpoint holds and load its weights: (model, state).

    Readers take no lock: when a training run saves a newer checkpoint (and deletes the files of
    this one) while they load, they load the newer one instead.
    """
    folder = Path(folder)
    for attempt in range(LOAD_ATTEMPTS):
        state = read_state(folder)
        if state is None:
            raise DeepswapError(f"{folder}: no trained model; run `deepswap train` first")
        try:
            model = build_saved_model(state["model"], state["options"])
        except (DeepswapError, TypeError, KeyError) as exc:
            raise DeepswapError(f"{folder / STATE}: checkpoint describes a model this deepswap cannot build ({exc})") from None
        try:
            weights = _load_tensors(folder, state, "model", "cpu")
            break
        except DeepswapError:
            if attempt + 1 == LOAD_ATTEMPTS or read_state(folder) == state:
                raise
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[-1].strip()
        raise DeepswapError(f"{folder / state['files']['model']['name']}: weights do not fit model "
                            f"{state['model']!r} with {state['options']} ({first}); {_advice(folder)}") from None
    return model.to(device), state


def load_optimizer(folder: str | Path, state: dict[str, Any], model: SwapModel, optimizer: torch.optim.Optimizer) -> None:
    """Restore Adam's moments, step counts and hyper-parameters saved with ``state``."""
    folder = Path(folder)
    tensors = _load_tensors(folder, state, "optimizer", next(model.parameters()).device)
    try:
        _restore_adam(model, optimizer, tensors, state["optimizer"]["param_groups"])
    except (KeyError, ValueError, RuntimeError) as exc:
        raise DeepswapError(f"{folder / state['files']['optimizer']['name']}: optimizer state does not fit the model "
                            f"({exc}); {_advice(folder)}") from None


def load_companion(folder: str | Path, state: dict[str, Any], role: str, module: nn.Module,
                   optimizer: torch.optim.Optimizer | None = None) -> bool:
    """Restore a module saved beside the model under ``role`` ("critic": the swap critic, "segmenter":
    the learned face mask) and, when given, its Adam state. False when the checkpoint holds none (one
    from before the finishing stage or the learned mask)."""
    folder = Path(folder)
    if state["files"].get(role) is None:
        return False
    tensors = _load_tensors(folder, state, role, next(module.parameters()).device)
    try:
        module.load_state_dict({name.removeprefix("weights."): value for name, value in tensors.items()
                                if name.startswith("weights.")})
        if optimizer is not None:
            _restore_adam(module, optimizer, {name.removeprefix("adam."): value for name, value in tensors.items()
                                              if name.startswith("adam.")})
    except (KeyError, ValueError, RuntimeError) as exc:
        raise DeepswapError(f"{folder / state['files'][role]['name']}: the saved {role} does not fit ({exc}); "
                            f"{_advice(folder)}") from None
    return True


def _restore_adam(module: nn.Module, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                  param_groups: list[dict[str, Any]] | None = None) -> None:
    """Load Adam moments and steps saved by ``_optimizer_tensors`` (and, when given, the saved
    hyper-parameters of each parameter group) into ``optimizer``."""
    moments = {index: {"step": tensors[f"{name}.step"],
                       **{key: _laid_out_like(param, tensors[f"{name}.{key}"]) for key in ("exp_avg", "exp_avg_sq")}}
               for index, (name, param) in enumerate(module.named_parameters()) if f"{name}.step" in tensors}
    groups = optimizer.state_dict()["param_groups"]
    for group, saved in zip(groups, param_groups or [{}] * len(groups), strict=True):
        group.update({key: (tuple(value) if isinstance(value, list) else value) for key, value in saved.items()})
    optimizer.load_state_dict({"state": moments, "param_groups": groups})


def _laid_out_like(param: torch.Tensor, moment: torch.Tensor) -> torch.Tensor:
    """A saved (contiguous) Adam moment in its parameter's memory layout: fused Adam walks moments
    and parameters through memory together, so a channels_last parameter needs channels_last moments."""
    if moment.shape != param.shape:
        raise ValueError(f"a moment of shape {tuple(moment.shape)} for a parameter of shape {tuple(param.shape)}")
    return torch.empty_like(param, dtype=moment.dtype).copy_(moment)


def _cpu_tensors(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: value.detach().to("cpu").contiguous() for name, value in tensors.items()}


def _optimizer_tensors(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    by_param = {param: name for name, param in model.named_parameters()}
    return _cpu_tensors({f"{by_param[param]}.{key}": value
                         for param, moments in optimizer.state.items() for key, value in moments.items()})


def _companion_tensors(module: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """A companion's file: its weights ("weights.<param>") and its Adam state ("adam.<param>.exp_avg"…)."""
    return {**{f"weights.{name}": value for name, value in _cpu_tensors(module.state_dict()).items()},
            **{f"adam.{name}": value for name, value in _optimizer_tensors(module, optimizer).items()}}


def _record(path: Path) -> dict[str, Any]:
    return {"name": path.name, "sha256": _io.sha256_file(path), "bytes": path.stat().st_size}


def save_checkpoint(folder: str | Path, model: SwapModel, optimizer: torch.optim.Optimizer, iteration: int,
                    training: dict[str, Any],
                    companions: dict[str, tuple[nn.Module, torch.optim.Optimizer]] | None = None) -> dict[str, Any]:
    """Write a checkpoint of ``model`` and ``optimizer`` at ``iteration`` (see the module docstring),
    and of the ``companions`` ({role: (module, its optimizer)}: the swap critic, the segmenter) given;
    ``training`` is free JSON (losses, seed, batch size...). Returns the new state."""
    folder = Path(folder)
    old = read_state(folder)
    if old is not None and old["iteration"] == iteration:
        return old
    weights = _cpu_tensors(model.state_dict())
    metadata = {"model": model.name, "options": json.dumps(model.options)}
    files = {}
    roles = [("model", weights), ("optimizer", _optimizer_tensors(model, optimizer))]
    for role, (module, adam) in (companions or {}).items():
        roles.append((role, _companion_tensors(module, adam)))
    for role, tensors in roles:
        path = folder / f"{role}-{iteration:08d}.safetensors"
        _io.write_bytes(path, save(tensors, metadata=metadata))
        files[role] = _record(path)
    groups = [{key: group[key] for key in OPTIMIZER_HYPERPARAMETERS if key in group}
              for group in optimizer.state_dict()["param_groups"]]
    state = {"format": FORMAT, "model": model.name, "options": model.options, "iteration": iteration,
             "files": files, "optimizer": {"name": type(optimizer).__name__, "param_groups": groups},
             "training": training, "versions": {"deepswap": __version__, "torch": torch.__version__}}
    _io.write_json(folder / STATE, state)
    _remove_unlisted(folder, state)
    return state


def save_best(folder: str | Path, state: dict[str, Any]) -> None:
    """Keep the checkpoint described by ``state`` (the current one) as ``best/``: real copies (not
    links), so that damage to the latest checkpoint leaves the backup whole."""
    folder = Path(folder)
    best = folder / BEST
    best.mkdir(parents=True, exist_ok=True)
    for record in state["files"].values():
        target = best / record["name"]
        if not (target.is_file() and target.stat().st_nlink == 1 and _record(target) == record):
            with _io.atomic_path(target) as tmp:
                shutil.copyfile(folder / record["name"], tmp)
    _io.write_json(best / STATE, state)
    _remove_unlisted(best, state)


def _remove_unlisted(folder: Path, state: dict[str, Any]) -> None:
    keep = {record["name"] for record in state["files"].values()}
    for role in ROLES:
        for path in folder.glob(f"{role}-*.safetensors"):
            if path.name not in keep:
                path.unlink(missing_ok=True)


def replace_companion(folder: str | Path, state: dict[str, Any], role: str, module: nn.Module,
                      optimizer: torch.optim.Optimizer, training: dict[str, Any]) -> dict[str, Any]:
    """Save ``module`` and its Adam as the ``role`` of the checkpoint ``state`` describes, leaving
    every other file of it as it is (the mask trained alone, the swap untouched): a new file
    ``<role>-<iteration><NNNN>.safetensors`` (NNNN: the first number whose file is not the one the
    state names, which is never rewritten), then ``state.json`` naming it, with ``training`` merged
    into its training record, then the old file deleted. Returns the new state."""
    folder = Path(folder)
    listed = (state["files"].get(role) or {}).get("name")
    number = 1
    while (path := folder / f"{role}-{state['iteration']:08d}{number:04d}.safetensors").name == listed:
        number += 1
    metadata = {"model": state["model"], "options": json.dumps(state["options"])}
    _io.write_bytes(path, save(_companion_tensors(module, optimizer), metadata=metadata))
    new_state = {**state, "files": {**state["files"], role: _record(path)},
                 "training": {**state["training"], **training}}
    _io.write_json(folder / STATE, new_state)
    _remove_unlisted(folder, new_state)
    return new_state
