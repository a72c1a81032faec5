"""Path strings without pathlib, for the shim's start-up path.

:func:`path_str` builds the same string ``str(PurePosixPath(...))`` would, with ``os``
only; ``StrPath`` is the type of a path given as a str or a path object.
"""

from __future__ import annotations

import os

# Annotations only: importing typing costs the shim's every start milliseconds (not
# `typing.TYPE_CHECKING` for the same reason).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Union

    StrPath = Union[str, os.PathLike[str]]


def path_str(*parts: StrPath) -> str:
    """Return ``str(PurePosixPath(*parts))`` without importing pathlib.

    The same string: the parts joined (an absolute part starts over), empty and ``.``
    components dropped, ``..`` kept, a leading ``//`` kept as POSIX allows, and ``.``
    for nothing at all. The shim builds its paths with this and ``os`` only.
    """
    joined = os.path.join(*(os.fspath(part) for part in parts)) if parts else ""
    if joined.startswith("//") and not joined.startswith("///"):
        lead = "//"
    elif joined.startswith("/"):
        lead = "/"
    else:
        lead = ""
    return lead + "/".join(part for part in joined.split("/") if part and part != ".") or "."
