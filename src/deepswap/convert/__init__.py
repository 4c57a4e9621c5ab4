"""Convert: swap faces through a video, photo or photo folder (see ``convert.convert``)."""

from .convert import ConvertOptions, ConvertReport, convert

__all__ = ["ConvertOptions", "ConvertReport", "convert"]
