"""verify cannot be fooled: label, watermark and Content Credentials are reported apart, only the
watermark confirms a file, mismatched ids are flagged, damaged and hostile files give what could
be read or exit 2 (never 1), and frames are streamed."""

from __future__ import annotations

import json
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deepswap.cli import app
from deepswap.errors import DeepswapError
from deepswap.provenance import provenance_metadata
from deepswap.provenance.credentials import Claim, CredentialsReport, sign
from deepswap.provenance.metadata import ProvenanceLabel
from deepswap.provenance.watermark import WatermarkResult
from deepswap.userconfig import signing_identity
from deepswap.verify import LABEL_ONLY, MAX_PIXELS, VerifyReport, verify_file
from deepswap.video import VideoWriter, read_frames
from test_provenance import encode

OUTPUT_ID, OTHER_ID = "3fa2c1d9", "0badf00d"


def run_verify(*arguments: str | Path):
    return CliRunner().invoke(app, ["verify", *map(str, arguments)])


def top_level_boxes(data: bytes) -> dict[bytes, int]:
    """Offset of each top-level box of an mp4 (the first of each type)."""
    boxes, offset = {}, 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        boxes.setdefault(kind, offset)
        offset += size if size >= 8 else len(data)
    return boxes


def png_header(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge picture (what a decompression bomb looks like to a reader)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def clip_frames(s1_clips: list[Path]) -> list[np.ndarray]:
    return [frame.image for frame in read_frames(s1_clips[0])]


@pytest.fixture(scope="module")
def marked(clip_frames: list[np.ndarray], s1_clips: list[Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deepswap output of a whole 3-second GRID clip: watermark, label and manifest with one id."""
    path = tmp_path_factory.mktemp("verify") / "swapped.mp4"
    with VideoWriter(path, 25, replaced_person="s1", output_id=OUTPUT_ID, model="lite", source=s1_clips[0]) as writer:
        for frame in clip_frames:
            writer.write(frame)
    return path


def test_a_copied_label_on_a_real_clip_is_not_confirmation(s1_clips: list[Path], tmp_path: Path) -> None:
    real = [frame.image for frame in read_frames(s1_clips[1])]
    forged = encode(real, tmp_path / "forged.mp4", 18, metadata=provenance_metadata("s1", OUTPUT_ID))
    report = verify_file(forged)
    assert report.label is not None and not report.watermark.found and not report.synthetic
    result = run_verify(forged)
    assert result.exit_code == 1
    assert LABEL_ONLY in result.output and "SYNTHETIC" not in result.output


def test_a_label_id_that_differs_from_the_watermark_is_flagged(marked: Path, tmp_path: Path) -> None:
    frames = [frame.image for frame in read_frames(marked)]
    relabelled = encode(frames, tmp_path / "relabelled.mp4", 18, metadata=provenance_metadata("s1", OTHER_ID))
    report = verify_file(relabelled)
    assert report.synthetic and report.watermark.output_id == OUTPUT_ID and report.label.output_id == OTHER_ID
    assert report.id_mismatches == (f"label id {OTHER_ID} differs from the watermark's id {OUTPUT_ID}",)
    result = run_verify(relabelled)
    assert result.exit_code == 0 and "ids differ" in result.output and f"label id {OTHER_ID} differs" in result.output


def test_a_confirmed_mark_whose_id_is_not_read_clearly_says_so_and_names_no_id() -> None:
    """Issue 35: a heavily shrunk and re-encoded output is confirmed, but its id is not clearly read:
    verify says "id unreadable", never a guessed id, and does not call the label's id a mismatch."""
    mark = WatermarkResult(True, 9.4, None, np.zeros(48, np.uint8), 75, (0, 0, 1, 1), id_confidence=0.4)
    label = ProvenanceLabel(version="1", date="2026-01-01", replaced_person="s1", output_id=OTHER_ID)
    report = VerifyReport(Path("copy.mp4"), label, mark, CredentialsReport(present=False))
    assert report.synthetic and report.exit_code == 0 and report.id_mismatches == ()
    assert "watermark confirmed, id unreadable" in report.verdict
    assert "id unreadable" in report.summary() and OTHER_ID not in report.summary().split("label:")[0]
    assert report.to_dict()["watermark"]["output_id"] is None


def test_a_manifest_id_that_differs_from_the_watermark_is_flagged(marked: Path, tmp_path: Path) -> None:
    resigned = tmp_path / "resigned.mp4"
    frames = [frame.image for frame in read_frames(marked)]
    plain = encode(frames, tmp_path / "plain.mp4", 18)
    sign(plain, resigned, Claim(OTHER_ID, "resigned.mp4", "lite"), signing_identity())
    report = verify_file(resigned)
    assert report.credentials.binding_intact and report.credentials.output_id == OTHER_ID
    assert report.id_mismatches == (f"Content Credentials id {OTHER_ID} differs from the watermark's id {OUTPUT_ID}",)


def test_every_piece_of_evidence_agrees_on_a_real_output(marked: Path) -> None:
    report = verify_file(marked)
    assert report.synthetic and report.exit_code == 0 and report.id_mismatches == () and report.problems == ()
    assert report.label.output_id == report.watermark.output_id == report.credentials.output_id == OUTPUT_ID


def test_a_truncated_output_reports_what_it_still_carries(marked: Path, tmp_path: Path) -> None:
    data = marked.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 55 // 100])
    report = verify_file(cut)
    assert report.synthetic and report.label.output_id == OUTPUT_ID and 0 < report.watermark.frames < 75
    assert report.credentials.present and report.credentials.binding_intact is False
    assert report.problems and "truncated" in report.problems[0]
    result = run_verify(cut)
    assert result.exit_code == 0 and "problem: pictures stop after" in result.output


def test_an_output_cut_before_its_first_picture_exits_2_with_its_label(marked: Path, tmp_path: Path) -> None:
    data = marked.read_bytes()
    headers_only = tmp_path / "headers.mp4"
    headers_only.write_bytes(data[: top_level_boxes(data)[b"mdat"] + 16])
    report = verify_file(headers_only)
    assert report.watermark.frames == 0 and report.label.output_id == OUTPUT_ID and report.exit_code == 2
    result = run_verify(headers_only)
    assert result.exit_code == 2
    assert "could not be checked" in result.output and LABEL_ONLY in result.output and OUTPUT_ID in result.output


def test_json_carries_each_piece_of_evidence(marked: Path, s1_clips: list[Path], tmp_path: Path) -> None:
    result = run_verify("--json", marked, s1_clips[1], tmp_path / "missing.mp4")
    assert result.exit_code == 2
    ours, real, missing = json.loads(result.stdout)
    assert ours["exit_code"] == 0 and ours["synthetic"] is True
    assert ours["watermark"]["found"] and ours["watermark"]["output_id"] == OUTPUT_ID and ours["watermark"]["frames"] == 75
    assert ours["label"]["output_id"] == OUTPUT_ID and ours["label"]["replaced_person"] == "s1"
    credentials = ours["content_credentials"]
    assert credentials["present"] and credentials["binding_intact"] and credentials["output_id"] == OUTPUT_ID
    assert credentials["signer"].startswith("deepswap user") and credentials["model"] == "lite"
    assert credentials["digital_source_types"] == [
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"]
    assert ours["id_mismatches"] == [] and ours["problems"] == []
    assert real["exit_code"] == 1 and real["label"] is None and not real["content_credentials"]["present"]
    assert missing == {"path": str(tmp_path / "missing.mp4"), "error": f"{tmp_path / 'missing.mp4'}: no such file",
                       "exit_code": 2}


@pytest.mark.parametrize("size", [(20000, 20000), (9000, 9000)])
def test_a_decompression_bomb_exits_2_with_one_line(tmp_path: Path, size: tuple[int, int]) -> None:
    assert size[0] * size[1] > MAX_PIXELS
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(*size))
    with pytest.raises(DeepswapError, match="over verify's limit of 67 megapixels"):
        verify_file(bomb)
    result = run_verify(bomb)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 50, b"GIF89a" + b"\xff" * 300,
                                     b"\xff\xd8\xff\xe0" + b"\x13" * 400, b"\x00\x00\x00\x18ftypmp42" + b"\x01" * 500])
def test_unreadable_files_exit_2_never_1(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "damaged.bin"
    path.write_bytes(content)
    result = run_verify(path)
    assert result.exit_code == 2 and "Traceback" not in result.output


@pytest.mark.slow
def test_gif_frames_are_streamed_not_held(tmp_path: Path) -> None:
    """120 frames of 640×480 would take 110 MB decoded at once; streamed, verify holds a few."""
    ramp = np.add.outer(np.arange(480) // 2, np.arange(640) // 3).astype(np.uint8)
    frames = [Image.fromarray(np.roll(ramp, k, axis=1), "L").convert("P") for k in range(120)]
    path = tmp_path / "long.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=40)
    tracemalloc.start()
    try:
        report = verify_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.watermark.frames == 120
    assert peak < 40e6, f"verify held {peak / 1e6:.0f} MB"
