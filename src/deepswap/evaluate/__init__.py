"""Evaluate: a trained workspace's swap quality in numbers, on footage it did not train on.

    deepswap.evaluate("ws", EvaluateOptions(clips="more_of_alice/"))   # or: deepswap evaluate ws --clips more_of_alice/ [--json]

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
- eyes (``eye_openness``, ``closed_eyes``, ``blinks_followed``): whether the eyes open and close with
  the input's (correlation) and the share of the input's closed-eye faces closed in the output too;
  ``widest_mouth_ratio``: how wide the output's widest mouths open against the input's, each from
  its own resting gap;
- occluders (``occluder_kept``): on footage with a sidecar ``<clip>.occluder.npz`` (``masks``, T×H×W
  bool: what is in front of the face), the share of those pixels the output keeps, mean and worst frame;
  there the mouth's and the eyes' figures leave out the faces whose lips or eyes the occluder covers
  (``hidden_behind``), and count them;
- hair (``jaw_band``, ``hair_added``; ``forehead_band``, ``forehead_hair_added``): the share of the
  input face's band along the jaw, inside its outline, and of its forehead above the brows that the
  output made dark (strands or a fringe of B's hair), mean and worst frame of each;
- coverage (``deepswap.check_coverage``): which kinds of A's extracted faces B's do not cover;
- sharpness (``faces.inner_face_box``, ``sharpness``): variance of the Laplacian inside the inner face
  box of the output frame over that of the input frame, per frame, averaged (1: as crisp as the footage);
- watermark visibility (``watermark_visibility``): the std the watermark adds on the flat picture of
  the swapped frames (goal ≤ 0.3 grey levels).

Modules: ``metrics`` (the metrics), ``run`` (``evaluate``: swapping, measuring, scoring), ``result``
(``Evaluation``, the typed result, and its goals, ``TARGETS``), ``report`` (the report as rows of text).
"""

from __future__ import annotations

from .._lazy import export_lazily

_API = {"EDGE_MARGIN": "metrics", "PSNR_CAP": "metrics", "correlation": "metrics", "eye_distance": "metrics",
        "identity_transfer": "metrics", "inside_picture": "metrics", "landmark_distance": "metrics",
        "landmark_jitter": "metrics", "masked_psnr": "metrics", "masked_ssim": "metrics", "mouth_open": "metrics",
        "sharpness": "metrics", "watermark_visibility": "metrics", "EvaluateOptions": "options",
        "ReportRow": "report", "coverage_lines": "report", "blinks_followed": "metrics", "closed_eyes": "metrics",
        "eye_openness": "metrics", "hair_added": "metrics", "jaw_band": "metrics", "forehead_band": "metrics",
        "forehead_hair_added": "metrics", "occluder_kept": "metrics", "hidden_behind": "metrics",
        "widest_mouth_ratio": "metrics", "occluder_masks": "run",
        "report_rows": "report", "report_text": "report", "report_title": "report",
        "Evaluation": "result", "TARGETS": "result", "HELD_OUT_FOOTAGE": "run", "MIXED_FOOTAGE": "run",
        "TRAINING_FOOTAGE": "run", "Clip": "run", "FaceMeasures": "run", "evaluate": "run", "find_footage": "run",
        "measure_face": "run", "measure_faces": "run", "reconstruction_scores": "run", "swap_and_measure": "run"}
__all__ = sorted(_API)

export_lazily(__name__, _API)
