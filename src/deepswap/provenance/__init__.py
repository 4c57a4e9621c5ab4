"""Provenance: every deepswap output is labelled synthetic (metadata label, invisible watermark and
signed C2PA Content Credentials, :mod:`.credentials`)."""

from .metadata import LABEL, ProvenanceLabel, parse_label, provenance_label, provenance_metadata, read_label
from .watermark import Watermarker, WatermarkDetector, WatermarkResult, detect_watermark, new_output_id

__all__ = [
    "LABEL",
    "ProvenanceLabel",
    "Watermarker",
    "WatermarkDetector",
    "WatermarkResult",
    "detect_watermark",
    "new_output_id",
    "parse_label",
    "provenance_label",
    "provenance_metadata",
    "read_label",
]
