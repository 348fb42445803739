"""The one exception type users see: its message is a single sentence that says what to do."""


class MedSynthError(Exception):
    """A problem with the user's input or environment, reported as one clear sentence (CLI exit 2, HTTP 4xx)."""
