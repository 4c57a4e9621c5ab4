"""Convert on real GRID footage with a tiny trained model: timing, audio, sizes, pass-through, bystanders, errors."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from deepswap import _io
from deepswap.convert import Converter, ConvertOptions, FaceReplacer, ReplaceSettings, compose, convert
from deepswap.evaluate import sharpness
from deepswap.faces import inner_face_box
from deepswap.errors import DeepswapError
from deepswap.verify import verify_file
from deepswap.video import probe_video, read_frames


def audio_samples(path: Path, start: float = 0.0, duration: float | None = None) -> tuple[np.ndarray, int]:
    """Mono float audio of a file from ``start`` (seconds after its first video frame), resampled to 16 kHz."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        origin = float(video.start_time * video.time_base) if video.start_time is not None else 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)
        chunks, first = [], None
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                if first is None:
                    first = float(out.pts * out.time_base) if out.pts is not None else 0.0
                chunks.append(out.to_ndarray().ravel())
    samples = np.concatenate(chunks)
    offset = int(round((start + origin - first) * 16000))
    samples = samples[max(offset, 0):]
    if duration is not None:
        samples = samples[: int(duration * 16000)]
    return samples, 16000


def lag_seconds(reference: np.ndarray, signal: np.ndarray, rate: int, search: float = 0.2) -> float:
    """The shift of ``signal`` against ``reference`` that best lines them up (positive: signal late)."""
    span = int(search * rate)
    core = reference[span: len(reference) - span]
    scores = [float(np.dot(core, signal[span + k: span + k + len(core)])) for k in range(-span, span + 1)
              if span + k + len(core) <= len(signal) and span + k >= 0]
    return (int(np.argmax(scores)) - span) / rate


@pytest.fixture(scope="module")
def converted(trained_workspace: Path, s1_clips: list[Path], tmp_path_factory) -> tuple[Path, Path]:
    """A held-back s1 clip converted A→B with a trimmed range: 0.6 s … 2.2 s."""
    out = tmp_path_factory.mktemp("convert") / "out.mp4"
    report = convert(trained_workspace, s1_clips[3], out, ConvertOptions(start=0.6, duration=1.6))
    assert report.frames == 40
    return s1_clips[3], out


def test_trimmed_output_has_the_input_range_frame_rate_and_audio_in_sync(converted):
    source, out = converted
    info, original = probe_video(out), probe_video(source)
    assert info.fps == original.fps
    assert len(list(read_frames(out))) == 40
    assert (info.width, info.height) == (original.width, original.height)
    assert info.has_audio
    reference, rate = audio_samples(source, 0.6, 1.6)
    produced, _ = audio_samples(out)
    assert abs(len(produced) / rate - 1.6) <= 1 / 25
    assert abs(lag_seconds(reference, produced, rate)) <= 1 / 25


def test_output_faces_are_swapped_labelled_and_recorded(converted, trained_workspace):
    source, out = converted
    frames = [frame.image.astype(int) for frame in read_frames(out)]
    inputs = [frame.image.astype(int) for frame in read_frames(source, start=0.6, duration=1.6)]
    changed = [np.abs(a - b).sum(-1) > 24 for a, b in zip(frames, inputs)]
    assert all(0.01 < c.mean() < 0.5 for c in changed), "the face, and only around it, is replaced"
    report = verify_file(out)
    assert report.label is not None and report.watermark.found
    assert report.label.output_id == report.watermark.output_id
    status_outputs = [o["path"] for o in __import__("deepswap").workspace_status(trained_workspace)["outputs"]]
    assert str(out.resolve()) in status_outputs


@pytest.mark.parametrize("options, size", [
    (ConvertOptions(side_by_side=True, duration=0.4), (720, 288)),
    (ConvertOptions(scale=0.5, duration=0.4), (180, 144)),
    (ConvertOptions(width=240, side_by_side=True, duration=0.4), (240, 96)),
])
def test_resize_and_side_by_side(trained_workspace, s1_clips, tmp_path, options, size):
    out = tmp_path / "out.mp4"
    convert(trained_workspace, s1_clips[4], out, options)
    info = probe_video(out)
    assert (info.width, info.height) == size
    assert len(list(read_frames(out))) == 10


def test_preview_writes_before_after_pngs_only(trained_workspace, s1_clips, tmp_path):
    report = convert(trained_workspace, s1_clips[4], tmp_path / "preview", ConvertOptions(preview=3))
    pngs = sorted((tmp_path / "preview").glob("*.png"))
    assert len(pngs) == 3 == len(report.files)
    image = _io.read_image(pngs[0])
    assert image.shape == (288, 720, 3)
    assert verify_file(pngs[0]).label is not None


def test_gif_output(trained_workspace, s1_clips, tmp_path):
    report = convert(trained_workspace, s1_clips[4], tmp_path / "out.mp4", ConvertOptions(gif=True, duration=0.4))
    assert report.files == [tmp_path / "out.gif"] and (tmp_path / "out.gif").stat().st_size > 0
    assert not (tmp_path / "out.mp4").exists()


@pytest.fixture(scope="module")
def replacer(trained_workspace) -> FaceReplacer:
    return Converter(trained_workspace).replacer("a2b")


def test_frames_without_the_face_pass_through_byte_identical(replacer, s1_clips):
    frame = next(read_frames(s1_clips[0]))
    blank = np.full_like(frame.image, 90)
    assert replacer.render([blank, frame.image], [None, None]) == [blank, frame.image]
    located = replacer.locate(frame)
    rendered = replacer.render([blank, frame.image], [None, located])
    assert rendered[0] is blank and not np.array_equal(rendered[1], frame.image)


def test_fine_detail_of_the_footage_sharpens_only_the_replaced_face(trained_workspace, s1_clips):
    """--detail lays the footage's band finer than the model draws over the new face: the inner face
    is crisper with it than without, and nothing outside the replaced face changes."""
    converter = Converter(trained_workspace)
    frame = next(read_frames(s1_clips[3]))
    rendered = {}
    for detail in (0.0, 0.5, 1.0):
        replacer = converter.replacer("a2b", ReplaceSettings(detail=detail))
        located = replacer.locate(frame)
        rendered[detail] = replacer.render([frame.image], [located])[0]
    box = inner_face_box(located.landmarks)
    assert sharpness(rendered[0.0], box) < sharpness(rendered[0.5], box) < sharpness(rendered[1.0], box)
    replaced = np.any(rendered[0.0] != frame.image, axis=2)
    changed = np.any(rendered[1.0] != rendered[0.0], axis=2)
    assert changed.any() and not (changed & ~_grown(replaced)).any()


def test_detail_scale_follows_the_face_size_in_the_frame():
    """The footage's detail finer than 112 px across the face region (a 204-px region of a 256-px
    crop): half the resolution of a face 224 px across; only the finest octave of a larger one;
    none (scale ≥ 1) for a face under 112 px, whose detail the model draws itself."""
    from deepswap.convert.replace import detail_scale

    def matrix(crop_pixels_per_frame_pixel: float) -> np.ndarray:
        return np.array([[crop_pixels_per_frame_pixel, 0, 0], [0, crop_pixels_per_frame_pixel, 0]])

    assert detail_scale(matrix(204 / 224), 204) == pytest.approx(0.5)
    assert detail_scale(matrix(204 / 160), 204) == pytest.approx(112 / 160)
    assert detail_scale(matrix(204 / 600), 204) == 0.5
    assert detail_scale(matrix(204 / 90), 204) > 1


def _grown(mask: np.ndarray) -> np.ndarray:
    """A boolean mask grown by 2 pixels (where the feathered edge rounds to no change at detail 0)."""
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)


def test_a_photo_without_a_face_is_written_unchanged(trained_workspace, tmp_path):
    plain = np.random.default_rng(0).integers(0, 255, (200, 240, 3), dtype=np.uint8)
    _io.write_image(tmp_path / "plain.png", plain)
    report = convert(trained_workspace, tmp_path / "plain.png", tmp_path / "out.png")
    assert report.passed_through == 1
    assert np.array_equal(_io.read_image(tmp_path / "out.png"), plain)
    assert verify_file(tmp_path / "out.png").label is not None


def test_only_the_target_person_changes_in_a_frame_with_two_people(trained_workspace, s1_clips, speaker_clips, tmp_path):
    person_a = next(read_frames(s1_clips[5])).image
    bystander = next(read_frames(next(c for c in speaker_clips if c.stem == "swiz3n"))).image
    group = np.hstack([bystander, person_a])
    _io.write_image(tmp_path / "group.png", group)
    convert(trained_workspace, tmp_path / "group.png", tmp_path / "out.png")
    out = _io.read_image(tmp_path / "out.png").astype(int)
    half = group.shape[1] // 2
    change = np.abs(out - group).sum(-1)
    assert change[:, :half].max() <= 24, "the bystander gets only the faint watermark"
    assert (change[:, half:] > 24).mean() > 0.01


def test_landmark_smoothing_makes_the_face_steadier_than_detection(replacer, s1_clips):
    def jitter(points: list[np.ndarray]) -> float:
        return float(np.mean([np.linalg.norm(b - a, axis=1).mean() for a, b in zip(points, points[1:])]))

    replacer.reset()
    raw, smoothed = [], []
    for frame in read_frames(s1_clips[6]):
        where = replacer.locate(frame)
        raw.append(where.face.landmarks)
        smoothed.append(where.landmarks)
    print(f"landmark jitter: detected {jitter(raw):.3f} px/frame, smoothed {jitter(smoothed):.3f} px/frame")
    assert jitter(smoothed) < 0.8 * jitter(raw)


def test_a_jump_cut_between_two_takes_tracks_and_smooths_the_face_afresh(replacer, s1_clips):
    """The face sits in about the same place in both takes, so only the picture tells the cut; the
    smoothing would otherwise pull the new take's face towards the old take's for a few frames."""
    replacer.reset()
    takes = [list(read_frames(clip))[:12] for clip in (s1_clips[6], s1_clips[2])]
    located = [replacer.locate(frame) for frame in takes[0] + takes[1]]
    assert [k for k, where in enumerate(located) if where.cut] == [12]
    first = located[12]
    np.testing.assert_array_equal(first.landmarks, first.face.landmarks)
    assert not np.array_equal(located[13].landmarks, located[13].face.landmarks)  # smoothed again after it
    rendered = replacer.render([frame.image for frame in takes[1][:2]], located[12:14])
    assert all(not np.array_equal(image, frame.image) for image, frame in zip(rendered, takes[1]))


def test_compose_marks_nothing_in_frames_without_a_swap():
    original = np.zeros((10, 20, 3), np.uint8)
    image, region = compose(original, original, None, True)
    assert image.shape == (10, 40, 3) and region == (0.0, 0.0, 0.0, 0.0)


def test_workspace_without_a_model_is_a_clear_error(extracted_workspace, s1_clips, tmp_path):
    with pytest.raises(DeepswapError, match="train"):
        convert(extracted_workspace, s1_clips[0], tmp_path / "out.mp4")
    assert not list(tmp_path.iterdir())


def test_unreadable_input_leaves_no_partial_file(trained_workspace, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    with pytest.raises(DeepswapError, match="broken.mp4"):
        convert(trained_workspace, broken, tmp_path / "out.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4"]


def test_output_in_a_missing_or_unwritable_folder_is_a_clear_error(trained_workspace, s1_clips, tmp_path):
    with pytest.raises(DeepswapError, match="does not exist"):
        convert(trained_workspace, s1_clips[0], tmp_path / "missing" / "out.mp4")
    with pytest.raises(DeepswapError, match="cannot write"):  # /proc takes no new files, even from root
        convert(trained_workspace, s1_clips[0], Path("/proc/deepswap-out.mp4"), ConvertOptions(duration=0.2))


def test_cli_errors_are_one_line_without_traceback(trained_workspace, s1_clips, tmp_path):
    command = Path(sys.executable).parent / "deepswap"
    for extra in (["--direction", "sideways"], ["--scale", "0.5", "--width", "100"]):
        result = subprocess.run([str(command), "convert", str(trained_workspace), str(s1_clips[0]), "-o",
                                 str(tmp_path / "o.mp4"), *extra], capture_output=True, text=True)
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())


def test_b2a_direction_replaces_b(trained_workspace, speaker_clips, tmp_path):
    clip = next(c for c in speaker_clips if c.stem == "lrwp9a")
    report = convert(trained_workspace, clip, tmp_path / "out.mp4", ConvertOptions(direction="b2a", duration=0.4))
    assert report.swapped == 10
    shutil.rmtree(tmp_path)


# overwrites


def test_never_writes_onto_its_own_input_even_with_force(trained_workspace, s1_clips, photos, tmp_path):
    clip = Path(shutil.copy(s1_clips[4], tmp_path / "clip.mp4"))
    before = clip.read_bytes()
    for force in (False, True):
        with pytest.raises(DeepswapError, match=r"clip.mp4: is the input; write the output to another file"):
            convert(trained_workspace, clip, tmp_path / "." / "clip.mp4", ConvertOptions(duration=0.2, force=force))
    (tmp_path / "link.mp4").symlink_to(clip)
    with pytest.raises(DeepswapError, match="is the input"):
        convert(trained_workspace, clip, tmp_path / "link.mp4", ConvertOptions(duration=0.2, force=True))
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos[0], folder / "face.png")
    with pytest.raises(DeepswapError, match="is the input folder"):
        convert(trained_workspace, folder, folder, ConvertOptions(force=True))
    assert clip.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["face.png"]


def test_refuses_an_existing_output_unless_forced(trained_workspace, s1_clips, tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier video the user cares about")
    with pytest.raises(DeepswapError, match=r"out.mp4: exists; pass --force to replace it"):
        convert(trained_workspace, s1_clips[4], out, ConvertOptions(duration=0.2))
    assert out.read_bytes() == b"an earlier video the user cares about"
    convert(trained_workspace, s1_clips[4], out, ConvertOptions(duration=0.2, force=True))
    assert verify_file(out).synthetic
    gif = tmp_path / "out.gif"
    gif.write_bytes(b"GIF89a")
    with pytest.raises(DeepswapError, match="out.gif: exists"):
        convert(trained_workspace, s1_clips[4], out, ConvertOptions(duration=0.2, gif=True))


def test_photos_with_the_same_stem_get_distinct_outputs(trained_workspace, photos, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    png, jpg = next(p for p in photos if p.suffix == ".png"), next(p for p in photos if p.suffix == ".jpg")
    shutil.copy(png, folder / "x.png")
    shutil.copy(jpg, folder / "x.jpg")
    shutil.copy(jpg, folder / "y.jpg")
    report = convert(trained_workspace, folder, tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["x_jpg.png", "x_png.png", "y.png"] and len(report.files) == 3
    assert _io.read_image(tmp_path / "out" / "x_png.png").shape == _io.read_image(png).shape
    with pytest.raises(DeepswapError, match=r"x_jpg.png: exists; pass --force"):
        convert(trained_workspace, folder, tmp_path / "out")
    convert(trained_workspace, folder, tmp_path / "out", ConvertOptions(force=True))


def test_preview_goes_only_into_an_empty_folder_or_replaces_its_own_previews(trained_workspace, s1_clips, tmp_path):
    look = tmp_path / "look"
    look.mkdir()
    (look / "notes.txt").write_text("mine")
    for force in (False, True):
        with pytest.raises(DeepswapError, match=r"look: holds files that are not previews \(notes.txt\)"):
            convert(trained_workspace, s1_clips[4], look, ConvertOptions(preview=2, force=force))
    assert sorted(p.name for p in look.iterdir()) == ["notes.txt"]
    fresh = tmp_path / "fresh"
    convert(trained_workspace, s1_clips[4], fresh, ConvertOptions(preview=3))
    with pytest.raises(DeepswapError, match=r"fresh: holds earlier previews; pass --force to replace them"):
        convert(trained_workspace, s1_clips[4], fresh, ConvertOptions(preview=2))
    report = convert(trained_workspace, s1_clips[5], fresh, ConvertOptions(preview=2, force=True))
    assert sorted(fresh.iterdir()) == sorted(report.files) and len(report.files) == 2, "no mix of two runs"


@pytest.mark.slow
def test_cli_force_replaces_an_existing_output(trained_workspace, s1_clips, tmp_path):
    command = Path(sys.executable).parent / "deepswap"
    out = tmp_path / "o.mp4"
    out.write_bytes(b"keep")
    args = [str(command), "convert", str(trained_workspace), str(s1_clips[4]), "-o", str(out), "--duration", "0.2"]
    refused = subprocess.run(args, capture_output=True, text=True)
    assert refused.returncode == 1 and "exists; pass --force" in refused.stderr and out.read_bytes() == b"keep"
    assert subprocess.run([*args, "--force"], capture_output=True, text=True).returncode == 0
    assert verify_file(out).synthetic


def test_an_unnamed_output_gets_a_new_name_in_its_folder(tmp_path: Path, s1_clips: list[Path]) -> None:
    from deepswap.convert.outputs import default_output

    folder, clip = tmp_path / "outputs", s1_clips[0]
    first = default_output(folder, clip, gif=False, preview=False)
    assert first == folder / f"{clip.stem}_swapped.mp4" and folder.is_dir()
    first.write_bytes(b"taken")
    assert default_output(folder, clip, gif=False, preview=False).name == f"{clip.stem}_swapped-2.mp4"
    preview = default_output(folder, clip, gif=False, preview=True)
    assert preview == folder / "previews" / clip.stem and preview.parent.is_dir() and not preview.exists()
    assert default_output(folder, Path("face.png"), gif=False, preview=False).name == "face_swapped.png"
    assert default_output(folder, Path("face.png"), gif=True, preview=False, stem="x").name == "x_swapped.png"


def test_the_learned_mask_leaves_out_a_half_sure_palm_and_keeps_a_sure_face(trained_workspace):
    """The learned mask as convert uses it, on a face the segmenter is sure of (0.95) with a hand in
    front: its fingers read as no face (0.05), its palm, skin like the face, only half sure (0.45,
    as the 30-minute model reads a palm over the mouth). The palm must stay the footage's, not a
    blend of both faces, while the face away from the hand stays wholly the new one."""
    replacer = Converter(trained_workspace).replacer("a2b", ReplaceSettings(smooth=False))
    size = 128
    probabilities = np.full((size, size), 0.95, np.float32)
    probabilities[60:110, 30:70] = 0.45  # the palm
    probabilities[20:60, 30:70:10] = 0.05  # the fingers
    mask = replacer.learned_mask(probabilities)
    assert mask[70:100, 40:60].max() < 0.02, "the palm is left as filmed"
    assert mask[:, 85:].min() > 0.99 and mask[:15].min() > 0.99, "the face beside the hand is the new one"
    assert mask[60:110, 72:].min() > 0.98, "2 pixels beside the hand the new face is whole: little of A shows"
