"""Exceptions for expected faults, shown to the user as one line without a traceback."""


class UserError(Exception):
    """A fault the user can fix (bad file, bad flag, bad config): one line, exit status 2."""


class SourceError(UserError):
    """An IQ source cannot be opened or read (missing file, unknown format, ...)."""
