"""Extract: every source of a person → aligned crops, masks and alignments of that person only
(``extract``), and looking at and curating the result (``contact_sheet``, ``remove_faces``).

The face pipeline it runs (detect, landmarks, identity, align) is in ``deepswap.faces``; the
files it writes are described there.
"""

from .extract import ExtractOptions, PersonReport, extract, reference_identity
from .sheet import SheetOrder, contact_sheet, faces_summary, parse_selection, pick_faces, remove_faces

__all__ = ["ExtractOptions", "PersonReport", "SheetOrder", "contact_sheet", "extract", "faces_summary",
           "parse_selection", "pick_faces", "reference_identity", "remove_faces"]
