"""Video and photo input/output."""

from .reader import Frame, VideoInfo, list_photos, probe_video, read_frames, read_photos

__all__ = ["Frame", "VideoInfo", "list_photos", "probe_video", "read_frames", "read_photos"]
