"""Video and photo input/output."""

from .prefetch import in_background, prefetch
from .reader import Frame, VideoInfo, list_photos, probe_video, read_frames, read_photos
from .writer import VideoWriter, write_image, write_video

__all__ = ["Frame", "VideoInfo", "VideoWriter", "in_background", "list_photos", "prefetch", "probe_video", "read_frames", "read_photos",
           "write_image", "write_video"]
