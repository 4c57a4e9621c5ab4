"""Training the learned face mask alone (``deepswap train WS --mask-steps N``, the Faces page's
"Train the mask further"): N more steps of the segmenter (``segmenter.py``) on both persons' faces,
with the faces whose mask the user corrected by hand (``deepswap.extract.masks``) drawn more often,
as DeepFaceLab's XSeg is trained on the faces labelled in its editor.

The samples are those the segmenter takes during the swap's training (``data.MaskSamples``): its
face region at the segmenter's resolution, colour jitter, a random turn, zoom, shift and flip, and a
synthetic occluder in front most of the time (``data.SEGMENTER_OCCLUSION``); its label is the
stored mask, restricted to skin as in the swap's training (``PersonFaces.segmenter_label``), minus
the occluder, and its loss counts fully around the landmark mask ∪ the stored one (a corrected mask
may leave out part of the landmark mask, which is where convert uses the learned mask). The rate
follows the training's schedule over the N steps (``trainer.scheduled_lr``: it falls to a tenth over
the last quarter), so the mask convert gets is a settled one. The swap model, its optimizer and its
iteration are left as they are: the segmenter goes into its own file of the checkpoint
(``checkpoint.replace_companion``), under the workspace's lock. Step ``s`` of the segmenter draws
the same faces whether or not a run stopped before it, so a stopped run, run again, goes on.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import DeepswapError
from ..extract.masks import corrected_faces
from ..faces import load_faceset
from ..progress import ProgressCallback, Reporter
from ..workspace import PERSON_KEYS, PersonKey, Workspace, WorkspaceLike, as_workspace
from ..writers import writes_workspace
from . import checkpoint
from .config import COVERAGE, TrainOptions
from .data import MaskSamples, PersonFaces
from .segmenter import SegmenterStep, build_segmenter, steps_taken
from .trainer import scheduled_lr, stop_on_signals

CORRECTED_SHARE = 0.5  # of the faces drawn, those corrected by hand (when a person has any, and fewer)
BATCH_SIZE = 16  # faces of each person per step, unless the options or the saved training say otherwise
LOG_EVERY = 10  # steps between progress reports


@dataclass
class MaskTrainResult:
    """What a ``train_mask`` call did: the segmenter's step count before and after, its mean loss
    over the last steps, and what stopped it ("steps", or "signal": a signal or a stop request)."""

    start_step: int
    step: int
    loss: float | None
    seconds: float
    stopped_by: str
    folder: Path
    corrected: dict[str, int]


def mask_faces(workspace: Workspace, key: PersonKey, skin_labels: bool = False) -> tuple[PersonFaces, int]:
    """The faces of ``key`` the mask trains on, with their drawing weights, and how many of them are
    corrected by hand: every face with a crop except those held out for ``evaluate``, corrected ones
    always; those are drawn ``CORRECTED_SHARE`` of the time in all (never less often than the rest)."""
    faceset = load_faceset(workspace.faces_dir(key))
    corrected = set(corrected_faces(faceset))
    held_out = set(faceset.holdout_ids()) - corrected
    ids = [face for face in faceset.ids() if face not in held_out and faceset.crop_path(face).is_file()]
    if not ids:
        raise DeepswapError(f"{faceset.folder}: no faces of person {key} to train the mask on; run `deepswap extract` first")
    flags = np.array([face in corrected for face in ids])
    boost = max(1.0, CORRECTED_SHARE * (len(ids) - flags.sum()) / ((1 - CORRECTED_SHARE) * max(flags.sum(), 1)))
    weights = np.where(flags, boost, 1.0)
    landmarks = np.stack([faceset.crop_landmarks(face) for face in ids]).astype(np.float32)
    return PersonFaces(faceset, ids, landmarks, weights, skin_labels), int(flags.sum())


@writes_workspace("train --mask-steps")
def train_mask(workspace: WorkspaceLike, options: TrainOptions, on_progress: ProgressCallback | None = None,
               stop: threading.Event | None = None) -> MaskTrainResult:
    """Train the learned face mask alone for ``options.mask_steps`` more steps (see the module
    docstring); ``options.batch_size`` faces of each person per step (default: the saved training's).

    Progress: one ``task`` counted in steps, ``progress`` events with the value ``mask_loss``, notes.
    Setting ``stop`` (or Ctrl-C, SIGTERM, SIGHUP) saves the steps taken and returns."""
    if options.mask_steps is None:
        raise DeepswapError("train_mask: give the number of mask steps (--mask-steps N)")
    workspace = as_workspace(workspace)
    folder = workspace.model_dir
    state = checkpoint.read_state(folder)
    if state is None:
        raise DeepswapError(f"{folder}: no trained model, and the learned mask is saved with it; run `deepswap train` first")
    saved = state["training"]
    loaded = {key: mask_faces(workspace, key, options.skin_mask) for key in PERSON_KEYS}
    people = {key: faces for key, (faces, _) in loaded.items()}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    segmenter, optimizer = build_segmenter(int(saved.get("seed") or 0), device)
    checkpoint.load_companion(folder, state, "segmenter", segmenter, optimizer)
    samples = MaskSamples(people, float(saved.get("coverage") or COVERAGE), int(saved.get("seed") or 0))
    batch_size = options.batch_size or int(saved.get("batch_size") or BATCH_SIZE)
    reporter = Reporter("train", on_progress)
    corrected = {key: count for key, (_, count) in loaded.items()}
    start = steps_taken(optimizer)
    reporter.note(f"training the learned mask alone from step {start}, {options.mask_steps} steps of {batch_size} faces "
                  f"of each person; corrected by hand: A {corrected['a']}, B {corrected['b']}")
    reporter.task("train the mask", total=options.mask_steps, unit="steps")
    step = SegmenterStep(segmenter.train(), optimizer)
    started, losses, recent, stopped_by = time.monotonic(), [], math.nan, "steps"
    with stop_on_signals(stop or threading.Event()) as interrupt:
        for done in range(1, options.mask_steps + 1):
            faces, labels, weights = (tensor.to(device) for tensor in samples.batch(start + done - 1, batch_size))
            rate_share = scheduled_lr(done - 1, 1.0, 0, (done - 1) / options.mask_steps)
            losses.append(float(step(faces, labels, weights, rate_share)))
            if done % LOG_EVERY == 0 or done == options.mask_steps or interrupt.is_set():
                recent = float(np.mean(losses[-LOG_EVERY:]))
                reporter.update(done, values={"mask_loss": recent})
            if interrupt.is_set():
                stopped_by = "signal"
                break
        if losses:
            checkpoint.replace_companion(folder, state, "segmenter", segmenter, optimizer,
                                         {"segmenter_steps": steps_taken(optimizer)})
            reporter.finish()
            reporter.note(f"saved the learned mask at step {steps_taken(optimizer)} in {folder} (the swap model is unchanged)")
    return MaskTrainResult(start, steps_taken(optimizer), recent if losses else None, time.monotonic() - started,
                           stopped_by, folder, corrected)
