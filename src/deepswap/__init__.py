"""deepswap: swap faces in video with a shared-encoder autoencoder; every output is labelled synthetic.

The public API, used by the CLI, scripts and the web UI::

    import deepswap
    deepswap.init_workspace("ws", a="alice", b="bob")
    deepswap.add_sources("ws", "a", ["alice.mp4"])
    deepswap.extract("ws")
    deepswap.train("ws", minutes=10)
    deepswap.convert("ws", "alice2.mp4", "out.mp4")
    deepswap.verify_file("out.mp4")
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "DeepswapError": "errors",
    "Workspace": "workspace",
    "init_workspace": "workspace",
    "add_sources": "workspace",
    "workspace_status": "status",
    "fetch_sources": "sources",
    "read_frames": "video",
    "read_photos": "video",
    "probe_video": "video",
    "VideoWriter": "video",
    "write_video": "video",
    "write_image": "video",
    "verify_file": "verify",
    "VerifyReport": "verify",
    "Watermarker": "provenance",
    "new_output_id": "provenance",
    "extract": "faces.extract",
    "FaceAnalyzer": "faces",
    "FaceSet": "faces",
    "contact_sheet": "faces.sheet",
    "remove_faces": "faces.sheet",
    "convert": "convert",
    "run_demo": "demo",
    "ConvertOptions": "convert",
    "train": "train",
    "load_swapper": "train",
    "Swapper": "train",
    "MODELS": "train",
    "evaluate": "evaluate",
}
__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    """Import the stage a name belongs to only when it is used (keeps the CLI quick to start)."""
    if name not in _API:
        raise AttributeError(f"module 'deepswap' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
