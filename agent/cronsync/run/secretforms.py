"""The forms of a secret value a job commonly prints, as byte patterns to mask (pure).

Besides the value itself, GitHub's and Azure's runners mask what a job makes of it on
the way out, and so do we:

* **base64**, at each of the three alignments. Base64 turns every 3 bytes into 4
  characters of 6 bits, so the secret's characters depend on where it starts within a
  group of three: ``base64("user:" + secret)`` holds none of ``base64(secret)``. For
  each alignment the pattern is the run of characters whose 6 bits all come from the
  secret: the same whatever comes before or after it (a prefix, ``echo``'s newline).
  The one or two characters at either end that mix the secret's bits with a
  neighbour's stay visible (at most 4 bits of it each). The secret's own encoding,
  padding included, is a pattern too (a job that prints ``base64(secret)`` leaves
  nothing of it).
* **URL-encoded** (percent-encoding of the UTF-8 bytes, upper-case hex): as
  ``urllib.parse.quote`` (``/`` kept), ``quote(safe="")`` (JavaScript's
  ``encodeURIComponent``, .NET's ``EscapeDataString``) and ``quote_plus`` (form data:
  a space is ``+``).
* **JSON-escaped**: ``json.dumps(value)`` without its quotes, with and without
  ``ensure_ascii``.

On the shim's path, and only for a job with secrets (the masker imports this module
when it has a value to mask): ``binascii`` and ``_json`` are C modules; ``base64``,
``urllib`` and ``json`` would cost the start-up more than all of this.
"""

from __future__ import annotations

import binascii

try:
    from _json import encode_basestring, encode_basestring_ascii
except ImportError:  # pragma: no cover - CPython has it
    from json.encoder import py_encode_basestring as encode_basestring
    from json.encoder import py_encode_basestring_ascii as encode_basestring_ascii

# what percent-encoding never escapes (RFC 3986's unreserved characters)
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_PERCENT_TABLES: dict[bytes, list[bytes]] = {}  # safe characters -> byte -> its form
_JSON_ENCODERS = (encode_basestring_ascii, encode_basestring)  # json.dumps's, both ways


def encoded_forms(text: str) -> set[bytes]:
    """Return every encoded form of ``text`` listed above (its plain UTF-8 included).

    Args:
        text: a secret value, or one line of it.

    Returns:
        The byte patterns, duplicates removed. Some may be shorter than ``text`` (a
        base64 run of a very short value): the caller applies its minimum length.

    Raises:
        UnicodeEncodeError: ``text`` holds a lone surrogate (no job can receive it).
    """
    data = text.encode("utf-8")
    forms = {data, binascii.b2a_base64(data, newline=False)}
    forms.update(base64_runs(data))
    forms.update(percent_encoded(data, safe=safe) for safe in (b"/", b""))
    forms.add(percent_encoded(data, safe=b" ").replace(b" ", b"+"))
    forms.update(escaped(text)[1:-1].encode("utf-8") for escaped in _JSON_ENCODERS)
    return forms


def base64_runs(data: bytes) -> list[bytes]:
    """Return, for ``data`` starting at byte 0, 1 and 2 of a group of three, the base64
    characters that hold only ``data``'s bits (empty for too short a ``data``).

    Character ``j`` of an encoding holds bits ``6j`` to ``6j + 6`` of the stream; ``data``
    after ``shift`` bytes is bits ``8 * shift`` to ``8 * (shift + len(data))``. Zero bytes
    stand in for the prefix: the characters kept never hold any of its bits.
    """
    runs = []
    for shift in range(3):
        encoded = binascii.b2a_base64(bytes(shift) + data, newline=False)
        first = -(-8 * shift // 6)  # ceiling: the first character past the prefix
        last = 8 * (shift + len(data)) // 6  # floor: those before it end inside the value
        runs.append(encoded[first:last])
    return runs


def percent_encoded(data: bytes, safe: bytes) -> bytes:
    """Return ``data`` percent-encoded as ``urllib.parse.quote(data, safe)`` does."""
    table = _PERCENT_TABLES.get(safe)
    if table is None:
        keep = _UNRESERVED.union(safe)
        table = [bytes((byte,)) if byte in keep else b"%%%02X" % byte for byte in range(256)]
        _PERCENT_TABLES[safe] = table
    return b"".join(map(table.__getitem__, data))  # a PEM key: 0.1 ms, not 1 ms
