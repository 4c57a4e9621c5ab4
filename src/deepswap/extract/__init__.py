"""Extract: every source of a person → aligned crops, masks and alignments of that person only
(``extract``), and looking at and curating the result (``contact_sheet``, ``remove_faces``,
``correct_mask``: a face's mask corrected by hand).

The face pipeline it runs (detect, landmarks, identity, align) is in ``deepswap.faces``; the
files it writes are described there. The names below are imported when first used.
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"ExtractOptions": "options", "PersonReport": "extract", "check_failed": "extract", "extract": "extract",
        "reference_identity": "extract", "SheetOrder": "sheet", "contact_sheet": "sheet", "faces_summary": "sheet",
        "parse_selection": "sheet", "pick_faces": "sheet", "remove_faces": "sheet",
        "correct_mask": "masks", "corrected_faces": "masks", "mask_from_png": "masks"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
