"""Evaluate: a trained workspace's swap quality in numbers, on footage it did not train on.

    deepswap.evaluate("ws", clips="more_of_alice/")   # or: deepswap evaluate ws --clips more_of_alice/ [--json]

The A→B swap runs through convert's own per-frame pipeline (``Converter.replacer``) on videos of A; the
face is then found again in each output frame (near the input face's box) and measured the same way
as the input face. Every metric is a pure function over arrays, usable on its own (``metrics``):

- identity transfer (``identity_transfer``): share of swapped faces whose SFace embedding is closer
  (cosine) to B's identity centre than to A's, and the mean cosine similarity to B;
- reconstruction (``masked_ssim``, ``masked_psnr``): A→A and B→B on faces held out of training
  (``FaceSet.holdout_ids``), over the stored face masks;
- temporal stability (``landmark_jitter``): landmark shake of the output face against the input's;
- expression and pose (``landmark_distance``, ``mouth_open``, ``correlation``): how far the output
  face's landmarks are from the input's after a similarity alignment, and whether the mouth opens
  and closes with the input's, over the frames where the input face lies wholly inside the picture
  (``inside_picture``: of a face cut by the frame's edge, the landmarks beyond it are guesses, and
  with the chin out of the picture the mouth-open ratio has no measure);
- sharpness (``faces.inner_face_box``, ``sharpness``): variance of the Laplacian inside the inner face
  box of the output frame over that of the input frame, per frame, averaged (1: as crisp as the footage);
- watermark visibility (``watermark_visibility``): the std the watermark adds on the flat picture of
  the swapped frames (goal ≤ 0.3 grey levels).

Modules: ``metrics`` (the metrics), ``run`` (``evaluate``: swapping, measuring, scoring), ``result``
(``Evaluation``, the typed result, and its goals, ``TARGETS``), ``report`` (the report as rows of text).
"""

from .metrics import (EDGE_MARGIN, PSNR_CAP, correlation, eye_distance, identity_transfer, inside_picture,
                      landmark_distance, landmark_jitter, masked_psnr, masked_ssim, mouth_open, sharpness,
                      watermark_visibility)
from .report import ReportRow, report_rows, report_text, report_title
from .result import TARGETS, Evaluation
from .run import (HELD_OUT_FOOTAGE, MIXED_FOOTAGE, TRAINING_FOOTAGE, Clip, FaceMeasures, evaluate, find_footage,
                  measure_face, measure_faces, reconstruction_scores, swap_and_measure)

__all__ = ["EDGE_MARGIN", "HELD_OUT_FOOTAGE", "MIXED_FOOTAGE", "PSNR_CAP", "TARGETS", "TRAINING_FOOTAGE", "Clip",
           "Evaluation", "FaceMeasures", "ReportRow", "correlation", "evaluate", "eye_distance", "find_footage",
           "identity_transfer", "inside_picture", "landmark_distance", "landmark_jitter", "masked_psnr", "masked_ssim",
           "measure_face", "measure_faces", "mouth_open", "reconstruction_scores", "report_rows", "report_text",
           "report_title", "sharpness", "swap_and_measure", "watermark_visibility"]
