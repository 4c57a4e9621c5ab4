"""Footage in: recording sources (``add_sources``, with ``AddOptions``), downloading URL sources
(``fetch_sources``) and reading frames from any source kind (``source_frames``). The names below
are imported when first used.
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"AddOptions": "options", "add_sources": "add", "classify_source": "add", "FetchResult": "fetch",
        "fetch_sources": "fetch", "source_frames": "frames"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
