"""The exceptions xbar-sim raises for a user's mistake, one base class.

Every error a user can act on (a bad parameter, a damaged file, a network that cannot be
mapped, a request too large for the machine) is an :class:`XbarError`, and each is also a
``ValueError`` (``MissingFileError`` also a ``FileNotFoundError``) so existing ``except``
clauses keep working. The command line turns an ``XbarError`` into a one-line message and
exit status 2; any other exception is a bug and shows its traceback.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataError", "FileFormatError", "MissingFileError", "ModelError",
           "OutputError", "ResourceError", "XbarError"]


class XbarError(Exception):
    """Base of every user-facing xbar-sim error."""


class ConfigError(XbarError, ValueError):
    """A parameter value out of range, of the wrong type, or unknown (device, hardware,
    recovery method, command-line option)."""


class FileFormatError(XbarError, ValueError):
    """A file that cannot be read as what it should be: damaged, of another kind, of an
    unsupported format version, or with missing or invalid fields."""


class MissingFileError(FileFormatError, FileNotFoundError):
    """A file or directory that does not exist."""


class DataError(XbarError, ValueError):
    """A data set that is missing, damaged or inconsistent."""


class ModelError(XbarError, ValueError):
    """A network that cannot be mapped onto crossbars or gives unusable outputs."""


class OutputError(XbarError, ValueError):
    """An output path that cannot or must not be written."""


class ResourceError(XbarError, ValueError):
    """A request whose memory or size exceeds what this machine has."""
