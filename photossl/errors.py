"""The one exception type that the CLI turns into a one-line error message."""


class PhotosslError(ValueError):
    """Bad input or a refused operation; the message names the problem in one line."""
