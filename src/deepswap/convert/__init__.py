"""Convert: swap faces through a video, photo or photo folder (``Converter``, ``convert``)."""

from .convert import Converter, ConvertOptions, ConvertReport, Direction, compose, convert, output_size, swap_frames
from .replace import FaceReplacer, Located, ReplaceSettings

__all__ = ["ConvertOptions", "ConvertReport", "Converter", "Direction", "FaceReplacer", "Located", "ReplaceSettings",
           "compose", "convert", "output_size", "swap_frames"]
