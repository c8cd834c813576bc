"""Error types shown to users as one clear line (no traceback) by the CLI and the desktop app."""


class UserFacingError(Exception):
    """An error whose message tells the user what went wrong and what to do."""


class MediaError(UserFacingError):
    """A media file could not be read: corrupt, unsupported, empty, or missing a needed stream."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class WeightsUnavailableError(UserFacingError):
    """Pretrained weights could not be loaded; the message says how to supply a local file."""
