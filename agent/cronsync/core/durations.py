"""Human duration strings ("90s", "45m", "26h", "1h30m", "2d") <-> seconds."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"([0-9]+)([smhdw])")
_WHOLE = re.compile(r"(?:[0-9]{1,9}[smhdw])+")
MAX_SECONDS = 10 * 366 * 86400  # ten years: anything longer is a typo


def parse_duration(text: str) -> int:
    """Turn a duration string into whole seconds.

    Args:
        text: one or more ``<number><unit>`` parts, units s, m, h, d, w, e.g. ``"1h30m"``;
            a bare ``"0"`` means zero.

    Returns:
        The number of seconds.

    Raises:
        ValueError: the text is not a duration; the message says what is expected.
    """
    compact = text.strip().lower().replace(" ", "")
    if compact == "0":
        return 0
    if not _WHOLE.fullmatch(compact):
        raise ValueError(
            f"{text!r} is not a duration: write a number and a unit (s, m, h, d, w), "
            'e.g. "90s", "45m", "26h", "1h30m"'
        )
    seconds = sum(int(number) * _UNITS[unit] for number, unit in _PART.findall(compact))
    if seconds > MAX_SECONDS:
        raise ValueError(f"{text!r} is longer than ten years")
    return seconds


def format_duration(seconds: int) -> str:
    """Write seconds back as the shortest human duration string (``5400`` -> ``"1h30m"``)."""
    if seconds <= 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)
