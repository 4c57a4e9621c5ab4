"""Video and photo input/output."""

from .cuts import CutDetector
from .prefetch import in_background, prefetch
from .reader import Frame, VideoInfo, keyframe_times, list_photos, probe_video, read_frames, read_photos
from .writer import VideoWriter, join_videos, write_image, write_video

__all__ = ["CutDetector", "Frame", "VideoInfo", "VideoWriter", "in_background", "join_videos", "keyframe_times",
           "list_photos", "prefetch", "probe_video", "read_frames", "read_photos", "write_image", "write_video"]
