"""The file types deepswap reads and writes, by suffix (lower case, with the dot). Imports nothing."""

from __future__ import annotations

# Footage deepswap reads: videos (through PyAV) and photos (through OpenCV).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm", ".mpg", ".mpeg", ".m4v"})
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})

# What convert writes: a video in one of these containers (or an animated GIF), or photos.
VIDEO_OUTPUT_SUFFIXES = (".mp4", ".mov", ".gif")
PHOTO_OUTPUT_SUFFIXES = (".png", ".jpg", ".jpeg")
