"""VideoWriter: H.264 output with the source's audio in sync, labelled, never left half-written."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from deepswap.errors import DeepswapError
from deepswap.provenance import read_label
from deepswap.video import VideoWriter, probe_video, read_frames, write_video

START, DURATION, FPS = 0.8, 1.2, 25


def decode_audio(path: Path) -> tuple[np.ndarray, float, int]:
    """Mono samples, the time of the first one relative to the first video frame, and the rate."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        origin = float(video.start_time * video.time_base) if video.start_time else 0.0
        stream = container.streams.audio[0]
        chunks, first = [], None
        for frame in container.decode(stream):
            if first is None:
                first = float(frame.pts * frame.time_base)
            samples = frame.to_ndarray().astype(np.float64)
            if not frame.format.is_planar:
                samples = samples.reshape(-1, len(frame.layout.channels)).T
            chunks.append(samples.mean(axis=0))
        rate = stream.codec_context.sample_rate
    samples = np.concatenate(chunks)
    return samples / max(np.abs(samples).max(), 1e-9), first - origin, rate


def audio_lag_ms(source: Path, output: Path) -> tuple[float, float]:
    """Lag of the output's audio against the source's [START, START + DURATION) (cross-correlation
    over ±25 ms), and the relative RMS difference once aligned."""
    x, x_start, rate = decode_audio(source)
    y, y_start, out_rate = decode_audio(output)
    assert out_rate == rate
    count = round((DURATION - 0.1) * rate)
    reference = x[round((START - x_start) * rate):][:count]
    produced = y[round(-y_start * rate):][:count + 2000]
    search = round(0.025 * rate)
    scores = [np.dot(reference[search:-search], produced[search + k: search + k + count - 2 * search])
              for k in range(-search, search + 1)]
    lag = int(np.argmax(scores)) - search
    aligned = produced[search + lag: search + lag + count - 2 * search]
    difference = np.sqrt(np.mean((reference[search:-search] - aligned) ** 2) / np.mean(reference[search:-search] ** 2))
    return 1000 * lag / rate, float(difference)


def write_range(source: Path, path: Path, **options: object) -> Path:
    frames = [frame.image for frame in read_frames(source, start=START, duration=DURATION)]
    with VideoWriter(path, FPS, replaced_person="s1", audio_source=source, audio_start=START,
                     audio_duration=DURATION, **options) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@pytest.fixture(scope="module")
def copied(s1_clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1.2 s range of a GRID mp4: its AAC audio is copied."""
    return write_range(s1_clips[0], tmp_path_factory.mktemp("copied") / "out.mp4")


@pytest.fixture(scope="module")
def reencoded(raw_mpg: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1.2 s range of a GRID MPEG-PS file: its MP2 audio is re-encoded to AAC."""
    return write_range(raw_mpg, tmp_path_factory.mktemp("reencoded") / "out.mp4")


def test_frames_rate_and_duration(copied: Path) -> None:
    info = probe_video(copied)
    assert (info.width, info.height, info.fps) == (360, 288, FPS)
    assert info.frames == round(DURATION * FPS) and info.duration == pytest.approx(DURATION, abs=0.001)
    with av.open(str(copied)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize("kind", ["copied", "reencoded"])
def test_audio_present_same_length_and_in_sync(kind: str, request: pytest.FixtureRequest, s1_clips: list[Path],
                                               raw_mpg: Path) -> None:
    output = request.getfixturevalue(kind)
    source = s1_clips[0] if kind == "copied" else raw_mpg
    with av.open(str(output)) as container:
        audio = container.streams.audio[0]
        assert audio.codec_context.name == "aac"
        audio_seconds = float(audio.duration * audio.time_base)
    assert abs(audio_seconds - DURATION) < 1 / FPS
    lag, difference = audio_lag_ms(source, output)
    assert abs(lag) <= 1.0
    assert difference < 0.2


def test_audio_of_the_wrong_range_would_be_caught(s1_clips: list[Path], copied: Path, tmp_path: Path) -> None:
    shifted = write_range(s1_clips[0], tmp_path / "shifted.mp4")
    frames = [frame.image for frame in read_frames(s1_clips[0], start=START, duration=DURATION)]
    with VideoWriter(tmp_path / "late.mp4", FPS, audio_source=s1_clips[0], audio_start=START + 0.1) as writer:
        for frame in frames:
            writer.write(frame)
    assert abs(audio_lag_ms(s1_clips[0], shifted)[0]) <= 1.0
    lag, difference = audio_lag_ms(s1_clips[0], tmp_path / "late.mp4")
    assert abs(lag) > 1.0 or difference > 0.5


def test_output_is_labelled(copied: Path) -> None:
    label = read_label(copied)
    assert label is not None and label.replaced_person == "s1" and len(label.output_id) == 8


def test_error_inside_with_leaves_no_file(s1_clips: list[Path], tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    frame = next(read_frames(s1_clips[0])).image
    with pytest.raises(RuntimeError):
        with VideoWriter(target, FPS, audio_source=s1_clips[0]) as writer:
            writer.write(frame)
            raise RuntimeError("model crashed")
    assert list(tmp_path.iterdir()) == []


def test_error_keeps_an_existing_output(s1_clips: list[Path], tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"earlier output")
    with pytest.raises(KeyboardInterrupt):
        with VideoWriter(target, FPS) as writer:
            writer.write(next(read_frames(s1_clips[0])).image)
            raise KeyboardInterrupt
    assert target.read_bytes() == b"earlier output" and len(list(tmp_path.iterdir())) == 1


def test_unwritable_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(DeepswapError, match="not_a_folder/out.mp4: cannot write here"):
        VideoWriter(blocker / "out.mp4", FPS)


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(DeepswapError, match="out.avi"):
        VideoWriter(tmp_path / "out.avi", FPS)
    with pytest.raises(DeepswapError, match="no frames"):
        with VideoWriter(tmp_path / "empty.mp4", FPS):
            pass
    silent = write_video(tmp_path / "silent.mp4", [np.zeros((64, 64, 3), np.uint8)] * 3, FPS)
    assert len(silent) == 8
    for source, problem in ((tmp_path / "missing.mp4", "no such file"), (tmp_path / "silent.mp4", "no audio")):
        with pytest.raises(DeepswapError, match=problem):
            VideoWriter(tmp_path / "with_audio.mp4", FPS, audio_source=source)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["silent.mp4"]


def test_odd_sizes_are_cropped_even_and_size_resizes(tmp_path: Path) -> None:
    frames = [np.full((75, 101, 3), 128, np.uint8)] * 5
    write_video(tmp_path / "odd.mp4", frames, 30000 / 1001)
    info = probe_video(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.frames) == (100, 74, 5)
    assert float(info.fps) == pytest.approx(29.97, abs=0.01)
    write_video(tmp_path / "sized.mp4", frames, FPS, size=(64, 48))
    assert (probe_video(tmp_path / "sized.mp4").width, probe_video(tmp_path / "sized.mp4").height) == (64, 48)


def test_gif_output(s1_clips: list[Path], tmp_path: Path) -> None:
    frames = [frame.image for frame in read_frames(s1_clips[0], duration=0.4)]
    output_id = write_video(tmp_path / "clip.gif", frames, FPS, replaced_person="s1")
    label = read_label(tmp_path / "clip.gif")
    assert label is not None and label.output_id == output_id
