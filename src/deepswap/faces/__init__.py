"""Faces: find, identify and align faces — the pipeline extract runs over footage and convert per frame.

One image goes through ``FaceAnalyzer``: detect (YuNet) → 68 landmarks (dlib) → identity
embedding when needed (SFace) → similarity alignment onto a mean face (Umeyama) → crop + mask.
``IdentityTracker`` keeps only the target person across consecutive frames while embedding few
faces. ``deepswap.extract`` runs it over a workspace; ``FaceSet`` reads the result.

On disk, per person ``p`` (``a`` or ``b``) of a workspace ``WS``::

    WS/p/faces/<face_id>.png        aligned RGB crop, face_size × face_size
    WS/p/faces/masks/<face_id>.png  single-channel uint8 face mask (0..255), same size: from the
                                    landmarks, or the user's own where corrected by hand
    WS/p/faces/identity.npy         the kept person's SFace embedding centre (float32[128], plain .npy)
    WS/p/faces/alignments.json      everything else, written atomically

``face_id`` is ``f"{source.id}_{frame_index:06d}"`` (the frame's index in its video at the
video's own rate, or the photo's position in name order). ``alignments.json``::

    {"version": 1, "face_size": N,
     "identity": {"origin": "reference" | "footage", "reference_sha1": str | null, "threshold": f},
     "sources": {source_id: {"uri": str, "complete": bool, "frames": n, "faces": n,
                             "skipped_no_face": n, "skipped_other_person": n,
                             "fps": f | null, "last_frame": int}},
     "removed": [face_id, ...],
     "corrected": [face_id, ...]  (faces whose mask was corrected by hand; absent when none),
     "faces": {face_id: {"source": source_id, "frame": int, "time": seconds,
                         "box": [x, y, w, h], "score": f, "landmarks": 68×[x, y],
                         "matrix": 2×3, "identity_distance": f, "blur": f,
                         "name": photo file name (photo sources only)}}}

Box and landmarks are in frame pixels; ``matrix`` maps frame → crop, so crop-space landmarks are
``matrix[:, :2] @ p + matrix[:, 2]`` (``FaceSet.crop_landmarks``). ``identity_distance`` is the
cosine distance of the face's embedding (or of the last one checked on its track) to the
identity centre. ``blur`` is the variance of the Laplacian of the crop at 256 px (higher is
sharper). The face set is exactly the faces listed in ``faces``: a face whose crop the user
deletes moves to ``removed`` on the next run and is not extracted again (``--force`` redoes all).
A source with ``complete`` true is skipped on re-runs; an unfinished one resumes after
``last_frame``.

The names below are imported when first used, so the defaults the workspace reads
(``DEFAULT_FACE_SIZE``, ``DEFAULT_THRESHOLD``) need no OpenCV or dlib.
"""

from __future__ import annotations

from .._lazy import export_lazily

_EXPORTS = {
    "align": ("FIT_POINTS", "INNER_FACE", "MEAN_FACE", "alignment_matrix", "canonical_landmarks", "face_region",
              "inner_face_box", "invert", "transform_points", "umeyama", "unwarp_face", "warp_face"),
    "analyzer": ("Face", "FaceAnalyzer", "blur_score"),
    "defaults": ("DEFAULT_FACE_SIZE", "DEFAULT_THRESHOLD"),
    "detect": ("Detection", "FaceDetector"),
    "faceset": ("MASKS", "FaceSet", "face_id", "load_faceset"),
    "identity": ("Identity", "IdentityEncoder", "IdentityTracker", "cosine_distance", "dominant_identity"),
    "landmarks": ("LandmarkPredictor",),
    "mask": ("face_hull", "face_mask"),
    "skin": ("skin_mask",),
}
_API = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_API)

export_lazily(__name__, _API)
