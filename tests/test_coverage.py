"""The coverage check: face descriptors from real GRID landmarks, and which of A's faces B's cover."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

import deepswap
from deepswap.coverage import (MOST_BOOST, TOLERANCES, coverage_between, describe_faces, expression_weights,
                               faceset_landmarks)
from deepswap.faces import load_faceset
from deepswap.faces.expression import GENERIC_HEAD, POSE_POINTS, eye_openness, head_pose, mouth_open
from deepswap.train import TrainOptions, train
from deepswap.train.data import PersonFaces, TrainingStream
from deepswap.workspace import Workspace


@pytest.fixture(scope="module")
def faces(extracted_workspace) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Frame landmarks and ids of the extracted faces of A (two s1 clips) and B (lrwp9a)."""
    workspace = Workspace.open(extracted_workspace)
    return {key: faceset_landmarks(load_faceset(workspace.faces_dir(key))) for key in ("a", "b")}


def projected_head(yaw: float, pitch: float) -> np.ndarray:
    """68 landmarks (only the pose points set) of the generic head turned by ``yaw`` (towards the
    picture's right) and tilted up by ``pitch``, seen from far away."""
    turn, tilt = math.radians(yaw), math.radians(-pitch)
    turned = np.array([[math.cos(turn), 0, math.sin(turn)], [0, 1, 0], [-math.sin(turn), 0, math.cos(turn)]])
    tilted = np.array([[1, 0, 0], [0, math.cos(tilt), math.sin(tilt)], [0, -math.sin(tilt), math.cos(tilt)]])
    face = np.zeros((68, 2))
    face[list(POSE_POINTS)] = (GENERIC_HEAD @ (tilted @ turned).T)[:, :2] * 60 + 200
    return face


@pytest.mark.parametrize(("yaw", "pitch"), [(0, 0), (25, 0), (-35, 0), (0, 15), (0, -20), (20, 10)])
def test_head_pose_recovers_a_known_turn_and_tilt(yaw, pitch):
    found_yaw, found_pitch, _ = head_pose(projected_head(yaw, pitch))
    assert found_yaw == pytest.approx(yaw, abs=3) and found_pitch == pytest.approx(pitch, abs=3)


def test_descriptors_of_real_faces_ignore_size_place_and_roll(faces):
    landmarks, _ = faces["a"]
    descriptors = describe_faces(landmarks)
    assert np.isfinite(descriptors).all()
    assert (np.abs(descriptors[:, 0]) < TOLERANCES["yaw"]).all()  # GRID speakers face the camera
    assert np.median(descriptors[:, 3]) == pytest.approx(1.0) and np.median(descriptors[:, 4]) == pytest.approx(0.0)
    angle = math.radians(30)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = describe_faces(landmarks @ rotation.T * 0.5 + 40)
    assert np.allclose(moved[:, 2:], descriptors[:, 2:], atol=1e-9)
    assert np.allclose(moved[:, :2], descriptors[:, :2], atol=1.5)  # the pose fit's pinhole is not quite orthographic


def test_identical_footage_covers_everything(faces):
    landmarks, ids = faces["a"]
    coverage = coverage_between(landmarks, ids, landmarks, ids)
    assert coverage.uncovered == 0 and coverage.groups == [] and coverage.lines() == []
    assert "cover" in coverage.summary()


def test_b_with_closed_mouths_only_leaves_a_s_open_mouths_uncovered(faces):
    landmarks, ids = faces["a"]
    openness = mouth_open(landmarks)
    closed = openness < 0.025
    assert closed.sum() >= 5 and (openness > openness[closed].max() + TOLERANCES["mouth"]).sum() >= 3
    b_ids = [face for face, shut in zip(ids, closed) if shut]
    coverage = coverage_between(landmarks, ids, landmarks[closed], b_ids, "lrwp9a")
    groups = {group.label: group for group in coverage.groups}
    assert "mouth wide open" in groups
    wide = {face for face, value in zip(ids, openness) if value > openness[closed].max() + TOLERANCES["mouth"]}
    assert wide <= set(groups["mouth wide open"].faces)
    assert not set(b_ids) & {face for group in coverage.groups for face in group.faces}  # B's own faces are covered
    group = groups["mouth wide open"]
    assert set(group.nearest) <= set(b_ids) and group.b_extreme == pytest.approx(openness[closed].max())
    assert any("mouth wide open" in line and "add footage of lrwp9a with the mouth wide open" in line
               for line in coverage.lines())
    report = coverage.to_dict()
    assert report["uncovered"] == coverage.uncovered and report["groups"][0]["examples"][0]["b"] in b_ids


def test_b_that_never_blinks_leaves_a_s_closed_eyes_uncovered(faces):
    landmarks, ids = faces["a"]
    relative = eye_openness(landmarks) / np.median(eye_openness(landmarks))
    shut, open_ = relative < 0.6, relative > 0.9
    assert shut.sum() >= 2
    coverage = coverage_between(landmarks, ids, landmarks[open_], [face for face, o in zip(ids, open_) if o])
    flagged = {face for group in coverage.groups if group.label == "eyes closed" for face in group.faces}
    assert {face for face, s in zip(ids, shut) if s} <= flagged


def test_s1_is_mostly_covered_by_lrwp9a(extracted_workspace):
    coverage = deepswap.check_coverage(extracted_workspace)
    assert coverage.faces_a > 40 and coverage.faces_b > 20
    assert coverage.uncovered <= 0.05 * coverage.faces_a


def test_train_says_before_training_what_b_s_faces_do_not_cover(extracted_workspace, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(extracted_workspace, root)
    faceset = load_faceset(root / "b" / "faces")
    landmarks, ids = faceset_landmarks(faceset)
    faceset.remove([face for face, value in zip(ids, mouth_open(landmarks)) if value >= 0.03])
    faceset.save()
    notes: list[str] = []
    train(root, TrainOptions(model="lite", iterations=1, batch_size=2, workers=0, balance_expressions=True,
                             architecture={"resolution": 32, "width": 8, "latent": 32}),
          on_progress=lambda event: notes.append(event.message) if event.kind == "note" else None)
    coverage_notes = [note for note in notes if note.startswith("coverage:")]
    assert len(coverage_notes) == 1 and "mouth wide open" in coverage_notes[0]
    assert notes.index(coverage_notes[0]) < next(i for i, note in enumerate(notes) if note.startswith("training "))


def test_balanced_sampling_weights_rare_expressions_up(faces):
    landmarks, _ = faces["a"]
    weights = expression_weights(landmarks)
    assert weights.mean() == pytest.approx(1.0) and (weights > 0).all()
    assert weights.max() <= MOST_BOOST * np.median(weights) + 1e-9
    openness = eye_openness(landmarks) / np.median(eye_openness(landmarks))
    shut, usual = openness < 0.6, np.abs(openness - 1) < 0.1
    assert weights[shut].mean() > 1.5 * weights[usual].mean()
    assert np.allclose(expression_weights(np.repeat(landmarks[:1], 10, axis=0)), 1.0)  # all alike: all as often


def test_a_balanced_stream_draws_closed_eyes_more_often_and_stays_reproducible(extracted_workspace):
    workspace = Workspace.open(extracted_workspace)
    plain = {key: PersonFaces.load(workspace, key) for key in ("a", "b")}
    balanced = {key: people.balanced() for key, people in plain.items()}
    openness = eye_openness(plain["a"].landmarks)
    shut = openness < 0.6 * np.median(openness)
    assert shut.any()

    def drawn(faces: dict[str, PersonFaces]) -> np.ndarray:
        stream = TrainingStream(faces, 32, 0.8, seed=3)
        return np.array([stream.face_index("a", n) for n in range(40 * len(faces["a"]))])

    uniform, weighted = drawn(plain), drawn(balanced)
    assert np.bincount(uniform, minlength=len(shut)).min() == 40  # every face once a pass
    assert shut[weighted].mean() > 1.5 * shut[uniform].mean()
    assert (drawn(balanced) == weighted).all()
