"""Training: tiny versions of every model on real GRID faces, augmentation, resume, checkpoints, DDP, CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from deepswap import _io
from deepswap.errors import DeepswapError
from deepswap.faces import canonical_landmarks, face_region
from deepswap.progress import ProgressEvent
from deepswap.train import MODELS, TrainOptions, build_model, load_swapper, read_state, train
from deepswap.train.config import COVERAGE
from deepswap.train.critic import PatchCritic, critic_loss, generator_loss, inner_face_slices
from deepswap.train.data import (FINISHING_AUGMENT, Augment, PersonFaces, TrainingStream, augment_face, feature_map,
                                 make_loader)
from deepswap.train.loss import LossWeights, focal_frequency_loss, pixel_weights, reconstruction_loss, ssim_map
from deepswap.train.trainer import FINAL_LR, FINISHING_SHARE, finishing, scheduled_lr
from deepswap.workspace import Workspace, init_workspace

TINY = {"resolution": 32, "width": 8, "latent": 32}


def tiny_train(root: Path, model: str | None = "lite", iterations: int = 4, on_progress=None, **kwargs):
    kwargs = {"batch_size": 4, "workers": 0, "log_every": 1, "architecture": TINY, "precision": "fp32", **kwargs}
    return train(root, TrainOptions(model=model, iterations=iterations, **kwargs), on_progress)


@pytest.fixture
def workspace(extracted_workspace: Path, tmp_path: Path) -> Path:
    """A private copy of the extracted GRID faces (A: s1, B: lrwp9a), without any model."""
    root = tmp_path / "ws"
    shutil.copytree(extracted_workspace, root, ignore=shutil.ignore_patterns("model"))
    return root


@pytest.fixture(scope="module")
def frame_faces(tmp_path_factory: pytest.TempPathFactory, s1_clips: list[Path], speaker_clips: list[Path]) -> Path:
    """A workspace in the extract format built straight from GRID frames (a fixed crop around the
    speaker's head, the mean face's landmarks and mask): no face models needed, so it also works
    where those are not installed (the GPU machine)."""
    from deepswap.faces.align import canonical_landmarks, invert, transform_points
    from deepswap.faces.mask import face_mask

    root = tmp_path_factory.mktemp("frames") / "ws"
    init_workspace(root, "s1", "speaker")
    size = 128
    crop_landmarks = canonical_landmarks(size)
    for key, clip in (("a", s1_clips[0]), ("b", speaker_clips[0])):
        folder = root / key / "faces"
        faces = {}
        capture = cv2.VideoCapture(str(clip))
        for index in range(12):
            ok, frame = capture.read()
            assert ok, clip
            matrix = np.array([[size / 150, 0, -105 * size / 150], [0, size / 150, -20 * size / 150]])
            crop = cv2.warpAffine(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), matrix, (size, size))
            _io.write_image(folder / f"f_{index:06d}.png", crop)
            _io.write_image(folder / "masks" / f"f_{index:06d}.png", face_mask(crop_landmarks, size))
            faces[f"f_{index:06d}"] = {"source": "f", "frame": index, "time": index / 25, "box": [105, 20, 150, 150],
                                       "score": 1.0, "landmarks": transform_points(crop_landmarks, invert(matrix)).tolist(),
                                       "matrix": matrix.tolist(), "identity_distance": 0.0, "blur": 100.0}
        capture.release()
        _io.write_json(folder / "alignments.json", {"version": 1, "face_size": size, "sources": {}, "removed": [],
                                                    "faces": faces})
    workspace = Workspace.open(root)
    workspace.settings["face_size"] = size
    workspace.save()
    return root


# models


@pytest.mark.parametrize("name", list(MODELS))
def test_tiny_models_forward_and_swap_shapes(name):
    model = build_model(name, **({"blocks": 1} if name == "hd" else {}), **TINY)
    faces = torch.rand(3, 3, 32, 32)
    out_a, out_b = model(faces[:2], faces[2:])
    channels = 4 if name == "hd" else 3
    side = 64 if name == "lite" else 32  # lite draws faces twice the size its encoder sees
    assert model.output_resolution == side
    assert out_a.shape == (2, channels, side, side) and out_b.shape == (1, channels, side, side)
    rgb, mask = model.swap(faces, "b")
    assert rgb.shape == (3, 3, side, side) and 0 <= rgb.min() and rgb.max() <= 1
    assert (mask is not None) == (name == "hd")
    if mask is not None:
        assert mask.shape == (3, 1, side, side)


@pytest.mark.parametrize("name", ["original", "lite"])
def test_output_scale_2_draws_faces_twice_the_input_size(name):
    model = build_model(name, **TINY, output_scale=2)
    assert (model.resolution, model.output_resolution) == (32, 64)
    out_a, out_b = model(torch.rand(2, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert out_a.shape == (2, 3, 64, 64) and out_b.shape == (1, 3, 64, 64)
    assert model.swap(torch.rand(3, 3, 32, 32), "a")[0].shape == (3, 3, 64, 64)
    assert build_model(name, **TINY, output_scale=1).output_resolution == 32
    with pytest.raises(DeepswapError, match="output_scale must be 1 or 2, not 3"):
        build_model(name, **TINY, output_scale=3)


@pytest.mark.parametrize("name,output_scale", [("lite", 2), ("original", 1), ("original", 2), ("hd", None)])
def test_decoders_draw_and_learn_as_their_layers_one_after_another(name, output_scale):
    """The DeepFakes decoders run their last 5×5 convolution at half resolution (``Decoder``): the
    faces, the gradients and the checkpoint's keys are those of the layers run in order."""
    torch.manual_seed(0)
    options = {**TINY, **({"blocks": 1} if output_scale is None else {"output_scale": output_scale})}
    model = build_model(name, **options)
    decoder = model.decoders["b"]
    assert decoder.halved == (name != "hd")
    latent = model.encoder(torch.rand(3, 3, 32, 32)).detach()
    drawn, in_order = decoder(latent), torch.nn.Sequential.forward(decoder, latent)
    assert torch.allclose(drawn, in_order, atol=1e-5)
    weight = decoder[-1].weight
    upstream = decoder[0][0].weight if name != "hd" else decoder[1][0].weight
    gradients = [torch.autograd.grad((output * torch.linspace(-1, 1, output.numel()).view_as(output)).sum(),
                                     (weight, upstream)) for output in (drawn, in_order)]
    for fast, plain in zip(*gradients):
        assert torch.allclose(fast, plain, rtol=1e-4, atol=1e-5 * plain.abs().max().item())
    assert decoder.state_dict().keys() == torch.nn.Sequential(*decoder).state_dict().keys()


@given(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5), st.booleans())
@settings(max_examples=25, deadline=None)
def test_pixel_shuffle_moves_the_same_values_as_torchs(batch, channels, height, width, channels_last):
    from deepswap.train.models.layers import pixel_shuffle

    images = torch.randn(batch, 4 * channels, height, width)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    assert torch.equal(pixel_shuffle(images, 2), torch.nn.functional.pixel_shuffle(images, 2))


def test_original_is_the_2017_model_at_full_size():
    with torch.device("meta"):
        original = build_model("original")
        hd = build_model("hd")
    assert original.parameter_count() == 82_062_470
    convs = [m for m in original.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs[:4]] == [
        (128, (5, 5), (2, 2)), (256, (5, 5), (2, 2)), (512, (5, 5), (2, 2)), (1024, (5, 5), (2, 2))]
    assert [m.out_features for m in original.encoder.modules() if isinstance(m, torch.nn.Linear)] == [1024, 4 * 4 * 1024]
    assert MODELS["original"].learning_rate == 5e-5 and MODELS["original"].betas[0] == 0.5
    assert MODELS["original"].batch_size == 64 and MODELS["original"].ssim_weight == 0
    assert hd.resolution >= 128 and hd.has_mask


def test_unknown_model_and_option_are_clear_errors(workspace):
    with pytest.raises(DeepswapError, match="unknown model 'big'"):
        tiny_train(workspace, model="big")
    with pytest.raises(DeepswapError, match="no option depth"):
        build_model("lite", depth=3)


# augmentation


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2 ** 32 - 1), x=st.integers(12, 52), y=st.integers(12, 52))
def test_random_warp_keeps_input_and_target_aligned(seed, x, y):
    """A dot lands on the same spot in the warped input and the target, up to the warp's few-pixel
    wobble; mask and feature map follow the target exactly; colour jitter is shared."""
    size = 64
    image = np.full((size, size, 3), 40, np.uint8)
    cv2.circle(image, (x, y), 3, (255, 255, 255), -1)
    dot = (image[..., 0] > 128).astype(np.uint8) * 255
    rng = np.random.default_rng(seed)
    augment = Augment(lightness=0, color=0)
    sample = augment_face(image, dot, dot, rng, augment)
    target_dot, warped_dot = sample["target"][..., 0] > 128, sample["warped"][..., 0] > 128
    target_level = (sample["target"][..., 0].astype(float) - 40) * 255 / 215
    assert np.abs(sample["mask"] - target_level).max() <= 2 and np.abs(sample["features"] - target_level).max() <= 2
    if target_dot.sum() > 20 and warped_dot.sum() > 20:  # not pushed off the edge by the shift
        centre = lambda m: np.argwhere(m).mean(axis=0)  # noqa: E731
        assert np.linalg.norm(centre(target_dot) - centre(warped_dot)) < 4 * augment.warp * size + 1

    still = augment_face(image, dot, dot, np.random.default_rng(seed), Augment.none())
    assert np.abs(still["warped"].astype(int) - image).max() <= 1
    assert np.abs(still["target"].astype(int) - image).max() <= 1
    lit = augment_face(image, dot, dot, np.random.default_rng(seed), Augment(warp=0, rotation=0, zoom=0, shift=0, flip=0))
    assert np.abs(lit["warped"].astype(int) - lit["target"]).max() <= 1
    mirrored = augment_face(image, dot, dot, np.random.default_rng(seed), Augment(warp=0, rotation=0, zoom=0, shift=0,
                                                                                   flip=1, lightness=0, color=0))
    assert np.array_equal(mirrored["target"], image[:, ::-1]), "a flip is an exact mirror image, not shifted a pixel"

    finishing = augment_face(image, dot, dot, np.random.default_rng(seed), replace(FINISHING_AUGMENT, lightness=0, color=0))
    assert np.array_equal(finishing["warped"], finishing["target"]), "finishing stage: the input is the target"
    as_aligned = ((image, dot), (image[:, ::-1], dot[:, ::-1]))
    assert any(np.array_equal(finishing["target"], face) and np.array_equal(finishing["mask"], mask) for face, mask in as_aligned), \
        "... the face region as extract aligned it, or its mirror image: not moved, turned or zoomed"


def test_the_eye_weight_covers_the_lids_of_a_real_blink_as_of_open_eyes_and_apart_from_the_mouth(s1_clips):
    """On s1's blink (bbaf2n, frames 43–45 and 50–55) the eyes' loss region stays as large as with his
    eyes open, so the lids that close are weighted (a hull of the eye's landmarks shrinks to a line);
    eyes and mouth carry their own weights."""
    from itertools import islice

    from deepswap.faces import FaceAnalyzer
    from deepswap.faces.expression import eye_openness
    from deepswap.video import read_frames

    analyzer = FaceAnalyzer(face_size=128)
    frames = [frame.image for frame in islice(read_frames(s1_clips[0]), 53)]
    faces = [analyzer.describe(frames[i], analyzer.detect(frames[i])[0]).landmarks for i in (20, 52)]
    openness = eye_openness(np.stack(faces))
    assert openness[1] < 0.6 * openness[0]  # frame 52: eyes shut
    side = max(frames[0].shape[:2])
    (open_eyes, open_mouth), (shut_eyes, _) = ((m[..., 0] > 127, m[..., 1] > 127) for m in (feature_map(f, side) for f in faces))
    assert 0.75 < shut_eyes.sum() / open_eyes.sum() < 1.33  # the lid gap fell by over 40 %
    upper_lid = np.round(faces[0][[37, 38, 43, 44]]).astype(int)
    assert shut_eyes[upper_lid[:, 1], upper_lid[:, 0]].all()  # where the open lids were, the shut eyes are weighted
    assert not (open_eyes & open_mouth).any()
    maps = torch.from_numpy(np.stack([open_eyes, open_mouth]).astype(np.float32))[None]
    weight = pixel_weights(torch.ones(1, side, side), maps, LossWeights(eyes=3.0, mouth=2.0))[0, 0]
    assert weight[open_eyes].min() == 4.0 and weight[open_mouth].min() == 3.0
    assert weight[~open_eyes & ~open_mouth].max() == 1.0


def test_an_error_outside_the_face_costs_lite_its_background_weight_times_the_same_error_on_it():
    """B's hair and backdrop, which convert never pastes, weigh little in lite's loss: its small
    decoders spend their capacity on the face (docs/training.md)."""
    background = MODELS["lite"].background_weight
    assert background < MODELS["hd"].background_weight
    torch.manual_seed(0)
    target = torch.rand(1, 3, 32, 32)
    mask = torch.zeros(1, 32, 32)
    mask[:, :, :16] = 1  # the left half is face
    features = torch.zeros(1, 2, 32, 32)

    def cost(columns: slice) -> float:
        output = target.clone()
        output[..., columns] = (output[..., columns] + 0.25).clamp(max=1)
        return reconstruction_loss(output, None, target, mask, features, LossWeights(ssim=0, background=background)).item()

    on_face, outside = cost(slice(4, 12)), cost(slice(20, 28))
    assert outside == pytest.approx(background * on_face, rel=0.1)


def test_learning_rate_warms_up_holds_then_falls_over_the_last_share_of_the_budget():
    base = 4e-4
    assert scheduled_lr(0, base, 0) == scheduled_lr(10 ** 6, base, 0) == base, "no budget: constant"
    assert scheduled_lr(0, base, 100) == pytest.approx(base / 100) and scheduled_lr(99, base, 100) == base
    held = [scheduled_lr(5, base, 0, progress) for progress in np.linspace(0, 1 - FINISHING_SHARE, 10)]
    assert held == [base] * 10
    falling = [scheduled_lr(5, base, 0, progress) for progress in np.linspace(1 - FINISHING_SHARE, 1, 20)]
    assert all(a > b for a, b in zip(falling, falling[1:]))
    assert falling[-1] == pytest.approx(FINAL_LR * base) and scheduled_lr(5, base, 0, 1.5) == pytest.approx(FINAL_LR * base)
    assert scheduled_lr(5, base, 100, 1.0) == pytest.approx(FINAL_LR * base * 6 / 100), "warm-up and fall multiply"
    assert [finishing(progress) for progress in (None, 0.0, 1 - FINISHING_SHARE - 1e-9, 1 - FINISHING_SHARE, 1.0)] == \
        [False, False, False, True, True], "the finishing stage (warp off) is where the rate falls"


def test_face_region_covers_the_face_and_stays_in_the_crop():
    for size in (64, 128, 256):
        x, y, side = face_region(size, 0.8)
        assert side == round(0.8 * size) and 0 <= x and 0 <= y and x + side <= size and y + side <= size


def test_ssim_map_matches_pytorch_msssim_away_from_the_border():
    from pytorch_msssim import ssim

    image = torch.rand(2, 3, 48, 48)
    noisy = (image + 0.2 * torch.randn_like(image)).clamp(0, 1)
    reference = ssim(image, noisy, data_range=1.0, size_average=False)
    assert torch.allclose(ssim_map(image, noisy)[..., 5:-5, 5:-5].mean(dim=(1, 2, 3)), reference, atol=1e-5)
    assert torch.allclose(ssim_map(image, image), torch.ones(1), atol=1e-4)


def test_ssim_map_reflects_the_border_on_images_of_any_shape():
    """Every pixel, borders included, against SSIM with the reflect-padded Gaussian as a convolution."""
    image = torch.rand(2, 3, 40, 56)
    noisy = (image + 0.2 * torch.randn_like(image)).clamp(0, 1)
    taps = torch.exp(-(torch.arange(11.0) - 5) ** 2 / (2 * 1.5 ** 2))
    kernel = (taps[:, None] * taps[None, :] / taps.sum() ** 2).expand(15, 1, 11, 11)
    stacked = torch.cat([image, noisy, image * image, noisy * noisy, image * noisy], dim=1)
    mu_x, mu_y, xx, yy, xy = torch.nn.functional.conv2d(
        torch.nn.functional.pad(stacked, (5, 5, 5, 5), mode="reflect"), kernel, groups=15).split(3, dim=1)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    reference = (((2 * mu_x * mu_y + c1) * (2 * (xy - mu_x * mu_y) + c2))
                 / ((mu_x ** 2 + mu_y ** 2 + c1) * (xx - mu_x ** 2 + yy - mu_y ** 2 + c2)))
    assert torch.allclose(ssim_map(image, noisy), reference, atol=1e-5)


# training


def test_focal_frequency_loss_is_zero_for_the_target_and_grows_with_blur(extracted_workspace):
    crops = [_io.read_image(path) for path in sorted((extracted_workspace / "a" / "faces").glob("*.png"))[:4]]
    target = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    weight = torch.ones(len(crops), 1, *target.shape[2:])

    def blurred(sigma: float) -> torch.Tensor:
        images = [cv2.GaussianBlur(crop, (0, 0), sigma) for crop in crops]
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255

    assert focal_frequency_loss(target, target, weight).abs().max() == 0
    losses = [focal_frequency_loss(blurred(sigma), target, weight).mean().item() for sigma in (0.7, 1.5, 3.0)]
    assert 0 < losses[0] < losses[1] < losses[2]
    outside = weight.clone()
    outside[..., 40:90, 40:90] = 0  # an error where the weight is 0 does not count
    changed = target.clone()
    changed[..., 40:90, 40:90] = 1 - changed[..., 40:90, 40:90]
    assert focal_frequency_loss(changed, target, outside).abs().max() < 1e-10
    # In the training loss it adds to L1 + DSSIM, and its gradient reaches the output.
    output = blurred(1.5).requires_grad_()
    mask, features = torch.ones(len(crops), *target.shape[2:]), torch.zeros(len(crops), 2, *target.shape[2:])
    plain = reconstruction_loss(output, None, target, mask, features, LossWeights())
    with_frequency = reconstruction_loss(output, None, target, mask, features, LossWeights(frequency=10.0))
    assert with_frequency > plain
    with_frequency.backward()
    assert output.grad.abs().sum() > 0


# the swap critic


def test_the_inner_face_box_holds_the_mean_faces_brows_eyes_and_mouth_and_little_background():
    x, y, side = face_region(256, COVERAGE)
    for resolution in (32, 64, 128):
        rows, columns = inner_face_slices(resolution, COVERAGE)
        points = (canonical_landmarks(256)[17:68] - (x, y)) * resolution / side
        assert 0 <= columns.start < points[:, 0].min() and points[:, 0].max() < columns.stop <= resolution
        assert 0 <= rows.start < points[:, 1].min() and points[:, 1].max() < rows.stop <= resolution
        assert (rows.stop - rows.start) * (columns.stop - columns.start) < 0.6 * resolution ** 2


def test_the_swap_critic_learns_to_tell_real_faces_from_soft_ones(extracted_workspace):
    """On real lrwp9a faces, a few dozen steps teach the critic what a soft face looks like: its loss
    falls well below chance (2 ln 2) and it scores each real face above its blurred copy."""
    crops = [_io.read_image(path) for path in sorted((extracted_workspace / "b" / "faces").glob("*.png"))[:16]]
    x, y, side = face_region(crops[0].shape[0], COVERAGE)
    rows, columns = inner_face_slices(64, COVERAGE)

    def faces(sigma: float) -> torch.Tensor:
        regions = [cv2.resize(crop[y:y + side, x:x + side], (64, 64), interpolation=cv2.INTER_AREA) for crop in crops]
        if sigma:
            regions = [cv2.GaussianBlur(region, (0, 0), sigma) for region in regions]
        return torch.from_numpy(np.stack(regions)).permute(0, 3, 1, 2).float()[:, :, rows, columns] / 255

    real, soft = faces(0), faces(1.2)
    torch.manual_seed(0)
    critic = PatchCritic(width=16)
    adam = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
    first = critic_loss(critic, real, soft).item()
    for _ in range(160):
        loss = critic_loss(critic, real, soft)
        adam.zero_grad()
        loss.backward()
        adam.step()
    assert first == pytest.approx(2 * np.log(2), abs=0.1)
    assert critic_loss(critic, real, soft).item() < 0.4 * first
    with torch.no_grad():
        assert (critic(real).mean(dim=(1, 2, 3)) > critic(soft).mean(dim=(1, 2, 3))).all()
    # The decoder's side of the game: softer faces cost it more.
    assert generator_loss(critic, soft) > generator_loss(critic, real)


def test_the_critics_loss_trains_bs_decoder_only():
    """The swap output of the training pass is A drawn by B's decoder from A's detached latent: the
    adversarial loss on it reaches B's decoder and neither the encoder nor A's decoder."""
    torch.manual_seed(0)
    net = build_model("lite", **TINY)
    faces_a, faces_b = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    assert len(net(faces_a, faces_b)) == 2
    *_, swapped = net(faces_a, faces_b, swap=True)
    drawn = net.split_output(swapped)[0]
    assert torch.allclose(drawn, net.swap(faces_a, "b")[0])
    generator_loss(PatchCritic(width=8), drawn).backward()
    for name, parameter in net.named_parameters():
        if name.startswith("decoders.b."):
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name


def test_the_critic_trains_in_the_finishing_stage_and_resumes_with_the_checkpoint(workspace, tmp_path):
    """lite has a swap critic. A run stopped before its finishing stage saves none; stopped inside
    it, the checkpoint holds the critic and its Adam state; resumed to the end, the weights of the
    model and of the critic are those of a run that never stopped (the critic's step at iteration 7
    shapes B's decoder at iteration 8)."""
    from safetensors.torch import load_file

    other = tmp_path / "other"
    shutil.copytree(workspace, other)
    tiny_train(workspace, iterations=8)  # finishing stage from iteration 6

    def run_until(iteration: int) -> dict:
        """Train toward 8 iterations, asking to stop after ``iteration - 1`` (a stop request is seen
        at the next iteration's log step, so the run saves at ``iteration``)."""
        stop = threading.Event()

        def halt(event: ProgressEvent) -> None:
            if event.kind == "progress" and event.done >= iteration - 1:
                stop.set()

        options = TrainOptions(model="lite", iterations=8, batch_size=4, workers=0, log_every=1, architecture=TINY,
                               precision="fp32")
        assert train(other, options, halt, stop).stopped_by == "signal"
        state = read_state(other / "model")
        assert state["iteration"] == iteration
        return state

    assert "critic" not in run_until(5)["files"]
    assert run_until(7)["files"]["critic"]["name"] == "critic-00000007.safetensors"
    assert tiny_train(other, model=None, iterations=8, architecture={}).iteration == 8

    def tensors(root: Path, role: str) -> dict[str, torch.Tensor]:
        state = read_state(root / "model")
        return load_file(root / "model" / state["files"][role]["name"])

    for role in ("model", "critic", "segmenter"):
        whole, resumed = tensors(workspace, role), tensors(other, role)
        assert whole.keys() == resumed.keys()
        assert all(torch.allclose(whole[key], resumed[key], rtol=1e-4, atol=1e-6) for key in whole), role
    assert float(tensors(other, "critic")["adam.layers.0.weight.step"]) == 2
    assert len(list((other / "model").glob("critic-*.safetensors"))) == 1, "the old critic file is removed"


def test_training_on_grid_faces_lowers_the_loss_and_writes_previews(workspace):
    events = []
    result = tiny_train(workspace, iterations=20, preview_every=10, learning_rate=1e-3, on_progress=events.append)
    losses = [row["loss_a"] + row["loss_b"] for row in result.history]
    assert len(losses) == 20 and all(np.isfinite(losses))
    rates = [row["learning_rate"] for row in result.history]
    assert rates[:16] == [1e-3] * 16 and all(a > b for a, b in zip(rates[15:], rates[16:])), "the last quarter falls"
    notes = [event.message for event in events if event.kind == "note"]
    assert sum("finishing stage from iteration 15: random warp off" in note for note in notes) == 1
    # at least a tenth lower in 20 iterations: with the eyes and mouth weighted 3× and 2× the early loss
    # falls more slowly, and which faces are held out (so trained on) depends on the workspace's path
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:5])
    model = workspace / "model"
    state = json.loads((model / "state.json").read_text())
    assert state["model"] == "lite" and state["iteration"] == 20 and state["options"]["resolution"] == 32
    preview = _io.read_image(model / "preview.png")
    assert preview.shape[0] == 6 * 128 and preview.shape[1] > 8 * 128
    rows = (model / "loss.csv").read_text().splitlines()
    assert rows[0].startswith("iteration,loss_a,loss_b") and len(rows) == 21
    assert _io.read_image(model / "loss.png") is not None
    assert (model / "best" / "state.json").is_file()
    assert __import__("deepswap").workspace_status(workspace)["model"] == {"model": "lite", "iterations": 20}


def test_resume_continues_exactly_like_an_uninterrupted_run(workspace, tmp_path):
    """Same seed: 2 + 2 iterations (stopped, then resumed) give the same losses, learning rate
    (hd warms up), Adam state and learned face mask as 4 in one go."""
    other = tmp_path / "other"
    shutil.copytree(workspace, other)
    whole = tiny_train(workspace, model="hd")
    first = tiny_train(other, model="hd", iterations=2)
    assert first.iteration == 2 and read_state(other / "model")["iteration"] == 2
    resumed = tiny_train(other, model=None, iterations=4, architecture={})
    assert resumed.start_iteration == 2 and resumed.iteration == 4
    assert [row["iteration"] for row in resumed.history] == [1, 2, 3, 4], "the loss log continues"
    for a, b in zip(whole.history[2:], resumed.history[2:]):
        assert a["iteration"] == b["iteration"] and a["learning_rate"] == b["learning_rate"]
        assert a["loss_a"] == pytest.approx(b["loss_a"], rel=1e-5) and a["loss_b"] == pytest.approx(b["loss_b"], rel=1e-5)
    from safetensors.torch import load_file

    def moments(root):
        state = read_state(root / "model")
        return load_file(root / "model" / state["files"]["optimizer"]["name"])

    a, b = moments(workspace), moments(other)
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-7) for k in a)
    assert float(a["encoder.0.0.weight.step"]) == 4
    a, b = (load_file(root / "model" / read_state(root / "model")["files"]["segmenter"]["name"]) for root in (workspace, other))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=1e-4, atol=1e-7) for k in a)
    assert float(a["adam.head.weight.step"]) == 1, "the learned mask steps every 4th iteration"
    assert read_state(other / "model")["training"]["segmenter_steps"] == 1
    assert len(list((other / "model").glob("*.safetensors"))) == 3, "old checkpoint files are removed"
    done = tiny_train(other, model=None, iterations=3)
    assert done.iteration == 4 and done.stopped_by == "iterations"


def test_a_channels_last_model_resumes_with_its_adam_moments_laid_out_like_its_weights(tmp_path):
    """GPU training keeps the model channels_last; fused Adam walks moments and weights through
    memory together, so the restored moments must share the weights' layout: a checkpointed and
    reloaded model then takes the same step as the one that never stopped."""
    from deepswap.train import checkpoint

    faces = torch.rand(2, 3, 32, 32).contiguous(memory_format=torch.channels_last)

    def adam(net):
        return torch.optim.Adam(net.parameters(), lr=1e-2, fused=True)

    def step(net, optimizer):
        optimizer.zero_grad()
        out_a, out_b = net(faces, faces)
        (out_a.mean() - out_b.mean()).backward()
        optimizer.step()

    torch.manual_seed(0)
    net = build_model("lite", **TINY).to(memory_format=torch.channels_last)
    optimizer = adam(net)
    step(net, optimizer)
    state = checkpoint.save_checkpoint(tmp_path, net, optimizer, 1, {})
    resumed = checkpoint.load_model(tmp_path)[0].to(memory_format=torch.channels_last)
    resumed_optimizer = adam(resumed)
    checkpoint.load_optimizer(tmp_path, state, resumed, resumed_optimizer)
    step(net, optimizer)
    step(resumed, resumed_optimizer)
    for (name, weight), again in zip(net.named_parameters(), resumed.parameters()):
        assert torch.allclose(weight, again, atol=1e-6), name


def test_damaged_or_mismatching_checkpoint_is_a_clear_error_and_kept(workspace):
    tiny_train(workspace, iterations=1)
    model = workspace / "model"
    weights = next(model.glob("model-*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(DeepswapError, match=rf"{weights.name}: checkpoint file is damaged"):
        tiny_train(workspace, iterations=2)
    with pytest.raises(DeepswapError, match="damaged"):
        load_swapper(workspace)
    assert weights.read_bytes() == bytes(data), "never overwritten"
    with pytest.raises(DeepswapError, match=r"holds a 'lite' model at iteration 1; train it with --model lite"):
        tiny_train(workspace, model="original", iterations=2)
    (model / "state.json").write_text("{not json")
    with pytest.raises(DeepswapError, match="state.json: damaged checkpoint state"):
        tiny_train(workspace, iterations=2)
    assert (model / "state.json").read_text() == "{not json"


def test_best_is_a_real_copy_that_restores_a_damaged_latest_checkpoint(workspace):
    from deepswap.train import load_model

    tiny_train(workspace, iterations=2)
    model = workspace / "model"
    state = read_state(model)
    assert read_state(model / "best")["iteration"] == state["iteration"], "the latest checkpoint is the best one"
    weights = model / state["files"]["model"]["name"]
    with open(weights, "r+b") as file:  # damaged in place, as a full disk or a bad copy would
        file.truncate(weights.stat().st_size // 2)
    with pytest.raises(DeepswapError, match=rf"checkpoint file is damaged .*; copy {model / 'best'}/\* into {model} or"):
        load_model(model)
    for path in (model / "best").iterdir():
        shutil.copy(path, model / path.name)
    net, restored = load_model(model)
    assert restored["iteration"] == state["iteration"]


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(workspace):
    tiny_train(workspace, iterations=2)
    state_before = (workspace / "model" / "state.json").read_text()
    from deepswap.train import checkpoint

    model, state = checkpoint.load_model(workspace / "model")
    files = {role: (workspace / "model" / record["name"]).read_bytes() for role, record in state["files"].items()}
    poisoned = workspace / "poisoned"
    shutil.copytree(workspace, poisoned)
    with torch.no_grad():
        model.encoder[0][0].weight.fill_(float("nan"))
    optimizer = torch.optim.Adam(model.parameters())
    checkpoint.save_checkpoint(poisoned / "model", model, optimizer, 3, state["training"])
    poisoned_state = (poisoned / "model" / "state.json").read_text()
    events: list[ProgressEvent] = []
    result = tiny_train(poisoned, iterations=6, on_progress=events.append)
    assert result.stopped_by == "nan" and result.iteration == 4
    assert any("the loss became NaN at iteration 4; the last good checkpoint (iteration 3) is kept" in e.message
               for e in events if e.kind == "note")
    assert (poisoned / "model" / "state.json").read_text() == poisoned_state, "nothing saved after the NaN"
    assert (workspace / "model" / "state.json").read_text() == state_before
    assert all((workspace / "model" / state["files"][role]["name"]).read_bytes() == data for role, data in files.items())


def test_no_faces_is_a_clear_error(tmp_path):
    root = tmp_path / "empty"
    init_workspace(root, "alice", "bob")
    with pytest.raises(DeepswapError, match=r"no faces of person a \(alice\) to train on; run `deepswap extract` first"):
        tiny_train(root)
    assert not (root / "model" / "state.json").exists()
    with pytest.raises(DeepswapError, match="no trained model; run `deepswap train"):
        load_swapper(root)


def test_stream_keeps_face_regions_in_memory_within_its_budget_and_streams_the_same_samples(extracted_workspace):
    """Two epochs of B (and as many faces of A) through a stream that keeps what it reads, one that
    keeps a few faces and one that keeps none: the same samples; the kept regions are read-only."""
    people = {key: PersonFaces.load(Workspace.open(extracted_workspace), key) for key in ("a", "b")}
    region_bytes = 64 * 64 * 4  # an RGB region and its mask at 64 px
    streams = [TrainingStream(people, resolution=32, coverage=0.8, seed=3, output_resolution=64, cache_bytes=budget)
               for budget in (1 << 30, 5 * region_bytes, 0)]
    for n in range(2 * len(people["b"])):
        samples = [stream[n] for stream in streams]
        for name, value in samples[0].items():
            assert all(torch.equal(value, other[name]) for other in samples[1:]), (n, name)
    everything, few, none = streams
    in_order = {(key, everything.face_index(key, n)) for key in people for n in range(2 * len(people["b"]))}
    # each face read is kept once: those drawn in order and those occluders were cut from
    assert set(everything._regions) >= in_order
    assert everything._cached_bytes == len(everything._regions) * region_bytes
    assert len(everything._regions) <= sum(map(len, people.values()))
    assert few._cached_bytes == 5 * region_bytes and none._cached_bytes == 0
    image, mask = everything.region("b", 0)
    assert everything.region("b", 0)[0] is image
    with pytest.raises(ValueError, match="read-only"):
        image[0, 0] = 0


class WorkerPriority(torch.utils.data.Dataset):
    """Samples that say which process made them and at what scheduling priority."""

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        return {"pid": torch.tensor(os.getpid()), "nice": torch.tensor(os.nice(0))}


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_a_cpu_runs_data_worker_prepares_batches_at_the_lowest_priority():
    here = os.nice(0)
    for low_priority, expected in ((True, 19), (False, here)):
        batch = next(make_loader(WorkerPriority(), 2, 0, workers=1, low_priority=low_priority))
        assert (batch["pid"] != os.getpid()).all() and batch["nice"].tolist() == [expected, expected]
    assert os.nice(0) == here


def test_unreadable_face_crop_is_one_clear_line_from_a_worker(workspace):
    faces = PersonFaces.load(Workspace.open(workspace), "b")
    crop = faces.faceset.crop_path(faces.ids[0])
    crop.write_bytes(b"not a png")
    with pytest.raises(DeepswapError) as error:
        tiny_train(workspace, iterations=40, workers=1, batch_size=8)
    assert str(error.value) == f"{crop}: unreadable face crop; delete it or run `deepswap extract` again"


def test_a_model_drawing_twice_its_input_size_trains_resumes_and_swaps(workspace):
    """lite with output_scale 2 (a 32-px encoder, 64-px faces): trains on targets at 64 px, writes
    previews, resumes, and its swapper pastes the larger face into crops of any size."""
    architecture = {**TINY, "output_scale": 2}
    first = tiny_train(workspace, iterations=2, architecture=architecture)
    assert first.iteration == 2 and all(np.isfinite([row["loss_a"] for row in first.history]))
    state = read_state(workspace / "model")
    assert state["options"]["output_scale"] == 2 and state["options"]["resolution"] == 32
    assert _io.read_image(workspace / "model" / "preview.png").shape[0] == 6 * 128
    resumed = tiny_train(workspace, model=None, iterations=4, architecture={})
    assert (resumed.start_iteration, resumed.iteration) == (2, 4)
    swapper = load_swapper(workspace, device="cpu")
    assert (swapper.resolution, swapper.model.output_resolution) == (32, 64)
    crops = np.stack([_io.read_image(p) for p in sorted((workspace / "a" / "faces").glob("*.png"))[:2]])
    faces, mask = swapper.swap(crops, to="b")
    assert faces.shape == crops.shape and mask is None


def test_lite_draws_twice_its_input_size_but_a_model_saved_before_that_option_loads_as_trained(workspace):
    assert build_model("lite", **TINY).output_resolution == 64 and build_model("original", **TINY).output_resolution == 32
    tiny_train(workspace, iterations=2, architecture={**TINY, "output_scale": 1})
    state_file = workspace / "model" / "state.json"
    state = json.loads(state_file.read_text())
    del state["options"]["output_scale"]  # what a checkpoint written before the option existed holds
    state_file.write_text(json.dumps(state))
    swapper = load_swapper(workspace, device="cpu")
    assert (swapper.resolution, swapper.model.output_resolution) == (32, 32)
    resumed = tiny_train(workspace, model=None, iterations=3, architecture={})
    assert resumed.iteration == 3 and read_state(workspace / "model")["options"]["output_scale"] == 1


def test_swapper_returns_faces_at_crop_size_and_a_mask_only_with_a_mask_head(workspace, tmp_path):
    crops = np.stack([_io.read_image(p) for p in sorted((workspace / "a" / "faces").glob("*.png"))[:3]])
    other = tmp_path / "other"
    shutil.copytree(workspace, other)
    tiny_train(workspace, model="hd", iterations=1, precision="bf16")
    tiny_train(other, model="lite", iterations=1)
    swapper = load_swapper(workspace, device="cpu")
    assert (swapper.name, swapper.resolution, swapper.has_mask, swapper.iteration) == ("hd", 32, True, 1)
    faces, mask = swapper.swap(crops, to="b")
    assert faces.shape == crops.shape and faces.dtype == np.uint8
    assert mask.shape == crops.shape[:3] and mask.dtype == np.float32 and 0 <= mask.min() and mask.max() <= 1
    x, y, side = face_region(crops.shape[1], swapper.coverage)
    assert np.array_equal(faces[:, :y], crops[:, :y]) and mask[:, :y].max() == 0, "outside the face region: untouched"
    assert not np.array_equal(faces[:, y:y + side, x:x + side], crops[:, y:y + side, x:x + side])
    lite_faces, lite_mask = load_swapper(other).swap(crops, to="a")
    assert lite_faces.shape == crops.shape and lite_mask is None


# processes


def _ddp_worker(rank: int, root: str, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), LOCAL_RANK=str(rank),
                      WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
    tiny_train(Path(root), iterations=3, batch_size=2)
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_ddp_with_two_gloo_processes_trains_and_writes_one_checkpoint(frame_faces, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(frame_faces, root)
    torch.multiprocessing.spawn(_ddp_worker, args=(str(root), _free_port()), nprocs=2, join=True)
    state = read_state(root / "model")
    assert state["iteration"] == 3 and state["training"]["world_size"] == 2
    assert len(list((root / "model").glob("model-*.safetensors"))) == 1
    rows = (root / "model" / "loss.csv").read_text().splitlines()
    assert len(rows) == 4, "rank 0 alone writes the log"


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from deepswap.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.mark.slow
def test_cli_sigterm_saves_and_exits_then_resumes(workspace):
    with _cli("train", str(workspace), "--iterations", "2", "--minutes", "1") as both:
        assert both.wait(60) == 1 and "give --iterations or --minutes, not both" in both.stderr.read()
    process = _cli("train", str(workspace), "--model", "lite", "--batch-size", "2")
    deadline = time.monotonic() + 120
    line = ""
    while "loss A" not in line and time.monotonic() < deadline:  # the first progress line
        line = process.stderr.readline()
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    iteration = read_state(workspace / "model")["iteration"]
    assert iteration >= 1 and f"saved lite at iteration {iteration}" in line + err
    with _cli("train", str(workspace), "--iterations", str(iteration + 1), "--batch-size", "2") as again:
        assert again.wait(120) == 0
        assert f"from iteration {iteration}" in again.stderr.read()
    assert read_state(workspace / "model")["iteration"] == iteration + 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_steps_in_bf16_channels_last(frame_faces, tmp_path):
    root = tmp_path / "ws"
    shutil.copytree(frame_faces, root)
    result = train(root, TrainOptions(model="hd", iterations=6, batch_size=8, workers=2, log_every=2,
                                      architecture={"resolution": 128, "width": 32, "latent": 64}))
    assert result.stopped_by == "iterations" and np.isfinite([result.loss_a, result.loss_b]).all()
    state = read_state(root / "model")
    assert state["training"]["precision"] == "bf16" and state["iteration"] == 6
    faces = np.stack([_io.read_image(p) for p in sorted((root / "a" / "faces").glob("*.png"))[:4]])
    swapped, mask = load_swapper(root).swap(faces, to="b")
    assert swapped.shape == faces.shape and mask.shape == faces.shape[:3]
