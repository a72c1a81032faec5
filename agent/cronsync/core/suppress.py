"""``contextlib.suppress`` without importing :mod:`contextlib`.

``contextlib`` pulls in ``functools``, ``collections`` and more: milliseconds of the
shim's start-up, for one context manager. On the shim's start-up path: imports nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    from types import TracebackType
    from typing import Optional


class suppress:
    """Swallow the given exceptions (and their subclasses) raised in the with-block.

    Args:
        exceptions: the exception classes to swallow.
    """

    __slots__ = ("exceptions",)

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self.exceptions = exceptions

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: Optional[type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool:
        return kind is not None and issubclass(kind, self.exceptions)
