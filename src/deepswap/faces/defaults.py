"""The face pipeline's defaults that a workspace's ``[settings]`` may change. Imports nothing."""

DEFAULT_FACE_SIZE = 256  # side of the aligned crops extract writes (setting ``face_size``)
DEFAULT_THRESHOLD = 0.5  # the largest SFace cosine distance still the same person (``identity_threshold``)
