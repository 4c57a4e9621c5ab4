"""Downloading URL sources with yt-dlp: best ≤ 1080p video with audio, resumable, never half a file.

Each source downloads into a hidden staging folder beside its final name
(``a/downloads/.<id>.partial/``). yt-dlp writes ``.part`` files there and resumes them when
``fetch`` runs again after an interruption. Only a finished download that PyAV can open and
decode is renamed to ``a/downloads/<id>.mp4``, so the final name always holds a complete video.

A source added with ``--start``/``--duration`` downloads only that section (FFmpeg reads just
that part of the remote file, from the keyframe before ``start``, without re-encoding) into
``<id>.section.mp4``, which begins at ``start`` (``Workspace.local_span``). No download may grow
past ``[settings] max_download_mb``: a larger one stops, is deleted and is reported.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import imageio_ffmpeg
import yt_dlp
from yt_dlp.postprocessor.ffmpeg import FFmpegPostProcessor

from ..errors import DeepswapError
from ..progress import ProgressCallback, Reporter
from ..video import probe_video, read_frames
from ..workspace import PERSON_KEYS, PersonKey, Source, WorkspaceLike, as_workspace, staging_path
from ..writers import writes_workspace

# Best video up to 1080p merged with the best audio; else the best single file up to 1080p;
# else (only larger or unsized formats exist) the best there is. `?` keeps formats of unknown height.
FORMAT = "bv*[height<=?1080]+ba/b[height<=?1080]/bv*+ba/b"


@dataclass(frozen=True)
class FetchResult:
    """One URL source after ``fetch``: where its video is and whether this run downloaded it."""

    person: PersonKey
    source: Source
    path: Path
    downloaded: bool


@writes_workspace("fetch")
def fetch_sources(workspace: WorkspaceLike, on_progress: ProgressCallback | None = None) -> list[FetchResult]:
    """Download every URL source of both persons that is not downloaded yet.

    Each download is a ``task`` counted in bytes. A failing URL does not stop the others; after
    trying them all, one ``DeepswapError`` lists every failure. Finished downloads are kept either way.
    """
    workspace = as_workspace(workspace)
    reporter = Reporter("fetch", on_progress)
    pending = [(key, source) for key in PERSON_KEYS for source in workspace.persons[key].sources
               if source.kind == "url"]
    results: list[FetchResult] = []
    failures: list[str] = []
    for key, source in pending:
        if workspace.is_available(key, source):
            path = workspace.local_path(key, source)
            results.append(FetchResult(key, source, path, downloaded=False))
            reporter.note(f"{key}: already downloaded {source.uri}")
            continue
        target = workspace.download_path(key, source)
        reporter.task(f"{key}: {_shorten(source.uri)}", unit="bytes")
        try:
            download_video(source.uri, target, _byte_counter(reporter), start=source.start, duration=source.duration,
                           max_bytes=workspace.max_download_bytes)
        except DeepswapError as error:
            failures.append(str(error))
            reporter.note(f"{key}: failed {source.uri}")
            continue
        reporter.finish()
        results.append(FetchResult(key, source, target, downloaded=True))
        reporter.file(target, f"{key}: downloaded {source.uri}")  # the CLI shows it as "… → path"
    if failures:
        summary = "" if len(failures) == 1 else f"{len(failures)} of {len(pending)} downloads failed: "
        raise DeepswapError(summary + "; ".join(failures))
    return results


def _byte_counter(reporter: Reporter) -> Callable[[dict[str, Any]], None]:
    """A yt-dlp progress hook that reports downloaded bytes of the current task."""

    def on_progress(report: dict[str, Any]) -> None:
        total = report.get("total_bytes") or report.get("total_bytes_estimate")
        reporter.update(report.get("downloaded_bytes") or 0, total=total)

    return on_progress


class _TooLarge(Exception):
    """Raised from yt-dlp's progress hook when a download grows past its limit."""


def download_video(url: str, target: Path, on_progress: Callable[[dict[str, Any]], None] | None = None,
                   start: float | None = None, duration: float | None = None, max_bytes: int | None = None) -> None:
    """Download one video to ``target`` (an .mp4 path), via a staging folder that makes it resumable.

    ``start``/``duration`` (seconds) download only that section; ``max_bytes`` caps the download.
    """
    staging = staging_path(target)
    staging.mkdir(parents=True, exist_ok=True)
    limit = f"larger than the {(max_bytes or 0) / 1e6:g} MB limit ([settings] max_download_mb in deepswap.toml)"
    section = (start or 0.0, start + duration if start is not None and duration is not None else duration) \
        if start is not None or duration is not None else None
    hooks = [hook for hook in (on_progress, _size_guard(max_bytes)) if hook is not None]
    try:
        with _bundled_ffmpeg(), yt_dlp.YoutubeDL(_options(staging, target.stem, hooks, section, max_bytes)) as ydl:
            info = ydl.extract_info(url, download=False, process=False)
            if info.get("_type") in ("playlist", "multi_video"):
                raise DeepswapError(f"{url}: is a playlist, not one video; add its videos one by one")
            info = ydl.process_ie_result(info, download=True)
    except _TooLarge:
        shutil.rmtree(staging)
        raise DeepswapError(f"{url}: download failed: {limit}") from None
    except yt_dlp.utils.YoutubeDLError as error:  # DownloadError, and errors of yt-dlp's networking
        raise DeepswapError(f"{url}: download failed: {_reason(error, url)}") from None
    finally:
        if staging.is_dir() and not any(staging.iterdir()):
            staging.rmdir()
    filepath = (info.get("requested_downloads") or [{}])[0].get("filepath")
    downloaded = Path(filepath) if filepath else staging / "nothing"
    if not downloaded.is_file() or (max_bytes is not None and downloaded.stat().st_size >= max_bytes):
        # yt-dlp skips a file whose stated size is over max_filesize; ffmpeg stops a section at -fs
        shutil.rmtree(staging, ignore_errors=True)
        raise DeepswapError(f"{url}: download failed: {limit if max_bytes is not None else 'nothing was downloaded'}")
    try:
        probe_video(downloaded)
        with closing(read_frames(downloaded)) as frames:
            next(frames)
    except DeepswapError as error:
        shutil.rmtree(staging)
        problem = str(error).removeprefix(f"{downloaded}: ")
        raise DeepswapError(f"{url}: downloaded, but {problem}") from None
    os.replace(downloaded, target)
    shutil.rmtree(staging)


def _size_guard(max_bytes: int | None) -> Callable[[dict[str, Any]], None] | None:
    """A progress hook that stops a download (all its files together) once past ``max_bytes``."""
    if max_bytes is None:
        return None
    sizes: dict[str, int] = {}

    def check(report: dict[str, Any]) -> None:
        sizes[report.get("filename") or ""] = report.get("downloaded_bytes") or 0
        if sum(sizes.values()) > max_bytes:
            raise _TooLarge()

    return check


@contextmanager
def _bundled_ffmpeg() -> Iterator[None]:
    """Let yt-dlp's section downloader find the bundled ffmpeg (it looks only on the PATH and at
    this setting, which yt-dlp's own command line sets from --ffmpeg-location)."""
    token = FFmpegPostProcessor._ffmpeg_location.set(imageio_ffmpeg.get_ffmpeg_exe())
    try:
        yield
    finally:
        FFmpegPostProcessor._ffmpeg_location.reset(token)


def _options(folder: Path, name: str, hooks: list[Callable[[dict[str, Any]], None]],
             section: tuple[float, float | None] | None, max_bytes: int | None) -> dict[str, Any]:
    """yt-dlp settings: quiet, one video, ≤ 1080p with audio as mp4, bundled ffmpeg, no side requests;
    only ``section`` (start, end seconds) of the video when given; no file over ``max_bytes``."""
    ranged = {}
    if section is not None:
        ranged = {"download_ranges": yt_dlp.utils.download_range_func(None, [(section[0], section[1] or math.inf)]),
                  "force_keyframes_at_cuts": False}  # cut at keyframes: no re-encoding, exact frames
    if max_bytes is not None:
        ranged["max_filesize"] = max_bytes
        ranged["external_downloader_args"] = {"ffmpeg_o": ["-fs", str(max_bytes)]}
    return {
        **ranged,
        "format": FORMAT,
        "format_sort": ["res:1080", "ext:mp4:m4a"],
        "merge_output_format": "mp4",
        "postprocessors": [{"key": "FFmpegVideoRemuxer", "preferedformat": "mp4"}],
        "ffmpeg_location": imageio_ffmpeg.get_ffmpeg_exe(),
        "paths": {"home": str(folder)},
        "outtmpl": f"{name}.%(ext)s",
        "noplaylist": True,
        "js_runtimes": {runtime: {} for runtime in ("deno", "node", "bun", "quickjs")},  # any installed one
        "continuedl": True,
        "updatetime": False,
        "cachedir": False,
        "socket_timeout": 30,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _SilentLogger(),
        "progress_hooks": hooks,
    }


class _SilentLogger:
    """Swallows yt-dlp's messages; its errors reach us as DownloadError instead."""

    def debug(self, message: str) -> None:
        pass

    info = warning = error = debug


def _reason(error: yt_dlp.utils.YoutubeDLError, url: str) -> str:
    """yt-dlp's error message as one short line, without its prefixes, the URL and bug-report advice."""
    message = yt_dlp.utils.remove_terminal_sequences(str(error)).replace(f": {url}", "")
    elsewhere = re.search(r"No connection adapters were found for '([^']*)'", message)
    if elsewhere:
        return f"it leads to {elsewhere.group(1)[:80]!r}, which is not an http(s) address"
    message = message.removeprefix("ERROR: ").split("; please report this issue")[0]
    message = re.sub(r"^\[[\w:-]+\] (?:[^:\s]+: )?", "", message)
    message = re.sub(r" \(caused by .*\)$", "", message, flags=re.S)
    message = " ".join(message.split())
    return "no video found there (Unsupported URL)" if message == "Unsupported URL" else message


def _shorten(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
