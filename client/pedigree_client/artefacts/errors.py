"""The one error the artefact library raises, and the shortening of untrusted values in it."""

import reprlib

# Values echoed into messages come from untrusted files and requests, so they are shortened.
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlist = 8
_BRIEF.maxlong = 40
brief = _BRIEF.repr


class ArtefactError(ValueError):
    """An artefact was refused. The message says what was wrong and how to fix it."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
