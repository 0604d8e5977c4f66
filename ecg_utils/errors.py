"""Errors a user can meet with their data; each message names the thing and the fix."""


class DataError(RuntimeError):
    """A problem with input data (missing, truncated or unexpected files) that the user can fix."""


class ChecksumError(DataError):
    """A file does not match the published SHA-256 of MIT-BIH 1.0.0."""


class DownloadError(DataError):
    """The download from PhysioNet failed part way; a re-run resumes it."""
