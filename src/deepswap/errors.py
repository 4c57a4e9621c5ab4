"""The one exception type users see: a one-line message naming the file and the problem."""


class DeepswapError(Exception):
    """A problem with the user's input or workspace, reported as one line without a traceback."""
