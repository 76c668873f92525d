"""User-facing errors.

A :class:`FeatlabError` is a mistake the user can fix (a wrong path, an unknown name, a
malformed condition string). The CLI prints its message as one line and exits with code 2;
nothing already written to disk is touched. Anything else is a bug and keeps its traceback.
It subclasses ``ValueError`` so that Python callers can catch bad input the usual way.
"""


class FeatlabError(ValueError):
    """An error caused by user input, with a message that says what to do."""

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class DamagedData(FeatlabError):
    """Data a store records but that cannot be read as recorded: a damaged part or head, a
    condition with parts missing. ``featlab store verify`` names each problem and its repair;
    callers that treat a missing input as "not computed" (the report) must not treat this so."""


class CannotWrite(FeatlabError):
    """An output file or folder that cannot be written (read-only, full disk, a file in the
    way): the command stops; what it wrote before is kept."""
