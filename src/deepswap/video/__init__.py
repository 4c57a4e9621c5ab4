"""Video and photo input/output."""

from .prefetch import prefetch
from .reader import Frame, VideoInfo, list_photos, probe_video, read_frames, read_photos
from .writer import VideoWriter, write_image, write_video

__all__ = ["Frame", "VideoInfo", "VideoWriter", "list_photos", "prefetch", "probe_video", "read_frames", "read_photos",
           "write_image", "write_video"]
