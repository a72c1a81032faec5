"""Immutable value classes for the shim, without ``dataclasses``.

``import dataclasses`` costs the shim milliseconds at every start (it imports
``inspect``, ``ast``, ``dis``...), and building a dataclass costs more. A class here lists
its fields, in order, in ``__slots__`` and sets them in its ``__init__`` with
:meth:`Frozen._fill`; it then behaves like a ``@dataclass(frozen=True)``: field-wise
``==`` and ``hash``, a ``Name(field=value, ...)`` repr, assignment refused (an
``AttributeError``), and copy and pickle through ``__init__``'s positional order.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs the shim ms
if TYPE_CHECKING:
    from typing import Any


class Frozen:
    """Base of an immutable value class whose ``__slots__`` are its fields."""

    __slots__: tuple[str, ...] = ()

    def _fill(self, *values: Any) -> None:
        """Set every field, in ``__slots__`` order (from ``__init__`` only)."""
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frozen) and other.__class__ is self.__class__:
            return self._values() == other._values()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__qualname__}({fields})"

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._values())
