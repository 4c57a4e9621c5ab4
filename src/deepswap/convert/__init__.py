"""Convert: swap faces through a video, photo or photo folder (``Converter``, ``convert``).

The names below are imported when first used, so the options (``options``) need neither OpenCV nor torch.
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"ConvertOptions": "options", "ReplaceSettings": "options", "Direction": "options", "ConvertReport": "convert",
        "Converter": "convert", "compose": "convert", "convert": "convert", "output_size": "convert",
        "swap_frames": "convert", "FaceReplacer": "replace", "Located": "replace", "BatchItem": "batch",
        "BatchReport": "batch", "convert_batch": "batch", "expand_inputs": "batch"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
