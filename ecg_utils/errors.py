"""Errors a user can meet with their data; each message names the thing and the fix."""


class DataError(RuntimeError):
    """A problem with input data (missing, truncated or unexpected files) that the user can fix."""


class ChecksumError(DataError):
    """A file does not match the published SHA-256 of MIT-BIH 1.0.0."""


class DownloadError(DataError):
    """The download from PhysioNet failed part way; a re-run resumes it."""


class LeadError(DataError):
    """The record has none of the leads asked for; `available` lists the ones it has.

    Callers add how to pick another lead in their own terms (`--lead` on the command line, the
    `lead` field of the web service, `leads=[...]` in Python).
    """

    def __init__(self, record: str, wanted: list[str], available: list[str]) -> None:
        self.record, self.wanted, self.available = record, list(wanted), list(available)
        super().__init__(f"record {record}: none of the leads {self.wanted} is in this record; it has {self.available}")
