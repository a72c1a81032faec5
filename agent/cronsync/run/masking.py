"""Replace secret values with ``***`` in a job's output (pure: no I/O).

The shim builds one :class:`Masker` from the values of the secrets it fetched and runs
everything it writes or forwards through it. Output arrives in reads that may split a
secret in two, so streaming callers use :meth:`Masker.mask_partial`, which masks what is
settled and hands back at most :attr:`Masker.overlap` raw bytes to put in front of the
next read.

What is masked: each value, each line of a multi-line value, and the forms a job
commonly makes of a value before printing it: base64 at the three alignments,
URL-encoded, JSON-escaped (:mod:`cronsync.run.secretforms`, imported only when there
is a value: a job without secrets imports and computes nothing here). Other
transformations (upper-casing, hashing, a value split across lines, a part of it) are
not caught, by us or by any CI runner.

Semantics: one left-to-right pass; at each position the longest secret that starts
there is replaced, and scanning resumes after it (so a secret that is a prefix of
another never leaves the longer one's tail visible). Two *different* secrets that only
partly overlap in the output ("abcd" and "cdef" in "abcdef") mask the first and leave
the rest of the second ("***ef"); real secrets do not share fragments like that.

Streaming callers must not mask each read and keep the last ``overlap`` bytes of the
*masked* result: a shorter secret completed early ("abcd" of "abcdefgh") gets masked
and the longer one's tail ("efgh") then leaks. :meth:`Masker.mask_partial` decides a
match only once no later byte can make a longer one.

Speed (measured on a 2-core machine, Python 3.11, 64 KiB of log lines holding no
secret, 24-36 character secrets; min of 5 runs):

====================  ========  ========  ========
patterns              1         5         50
====================  ========  ========  ========
``bytes.replace`` ×k  10 µs     49 µs     486 µs
one compiled regex    30 µs     260 µs    2096 µs
====================  ========  ========  ========

``re`` has no multi-literal search (no Aho-Corasick): an alternation is tried at every
position whose byte can start any pattern, so it loses at every count. We therefore
look for each pattern with ``in`` (CPython's fastsearch); a chunk holding one of them
gets ``bytes.replace`` (same result as the regex for one pattern), a chunk holding
several gets a regex of just those (the one-pass semantics above). A pattern holding a
shorter one of the same value (the padded base64 holds its unpadded run, a multi-line
value its lines) is looked for only in a chunk holding the shorter one: a value costs
a chunk without secrets about four searches (its text and three base64 runs), plus
its URL and JSON forms where they differ from its text.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: the shim does not import typing
if TYPE_CHECKING:
    import re
    from collections.abc import Iterable

MASK = b"***"


def _value_patterns(value: str, min_length: int) -> set[bytes]:
    """Return the byte patterns to mask for one secret value.

    The value, and each line of a multi-line value with any ``\\r`` stripped (a job may
    print it line by line, or with CRLF endings); the encoded forms of the value
    (:mod:`cronsync.run.secretforms`), and of the value without its final line break
    (a value read from a file often ends in one, which the job strips before encoding).
    A value or line shorter than ``min_length`` characters, and a form shorter than
    ``min_length`` bytes, is left out (see :class:`Masker`).

    Raises:
        UnicodeEncodeError: the value holds a lone surrogate.
    """
    found = {value.encode("utf-8")} if len(value) >= min_length else set()
    if "\n" in value or "\r" in value:
        lines = (line.strip("\r") for line in value.split("\n"))
        found.update(line.encode("utf-8") for line in lines if len(line) >= min_length)
    texts = {text for text in (value, value.rstrip("\r\n")) if len(text) >= min_length}
    if texts:
        from cronsync.run.secretforms import encoded_forms  # only a job with secrets

        for text in texts:
            found.update(form for form in encoded_forms(text) if len(form) >= min_length)
    return found


def _longest_first(pattern: bytes) -> tuple[int, bytes]:
    """Sort key: longest first, then by bytes (one fixed order for the regex)."""
    return -len(pattern), pattern


def _searches(groups: Iterable[set[bytes]]) -> list[tuple[bytes, tuple[bytes, ...]]]:
    """Return which patterns to look for in every chunk, and which only after another.

    A pattern that holds another pattern of the same value (the whole of a multi-line
    value holds its lines, a padded base64 holds its run) can only occur where that one
    does: it is looked for only in a chunk holding the shorter one, so each value costs
    a chunk a search per pattern that holds no other (typically four).

    Args:
        groups: the patterns of each value.

    Returns:
        ``(pattern, longer patterns holding it)`` for every pattern holding no other.
    """
    anchors: dict[bytes, bytes] = {}
    roots: set[bytes] = set()
    for group in groups:
        shortest_first = sorted(group, key=len)
        for index, pattern in enumerate(shortest_first):
            # the shortest pattern inside it holds no other pattern of the group itself
            inner = (other for other in shortest_first[:index] if other in pattern)
            anchor = next(inner, None)
            if anchor is None:
                roots.add(pattern)
            else:
                anchors[pattern] = anchor
    longer: dict[bytes, list[bytes]] = {root: [] for root in roots}
    for pattern, anchor in anchors.items():
        if pattern not in roots:  # the root of another value's group: searched anyway
            longer[anchor].append(pattern)
    return [(root, tuple(longer[root])) for root in sorted(roots, key=_longest_first)]


class Masker:
    """Masks every occurrence of a set of secret values.

    Args:
        values: the secret values (as the job receives them in its environment);
            their encoded forms are masked too (see the module's docstring).
        min_length: values and lines shorter than this many characters are not
            masked, in no form (nor is an encoded form shorter than this many
            bytes). Masking a one- or two-character secret ("a", "42", "no") would
            replace that text everywhere it occurs and destroy the output while
            hiding nothing: a value that short is guessable anyway.

    The repr never shows a value, only how many patterns there are.
    """

    def __init__(self, values: Iterable[str], min_length: int = 4) -> None:
        groups = [_value_patterns(value, min_length) for value in values]
        self._patterns = sorted(set().union(*groups), key=_longest_first)
        self._searches = _searches(groups)

    def __repr__(self) -> str:
        return f"Masker(<{len(self._patterns)} patterns hidden>)"

    def __bool__(self) -> bool:
        """Return whether there is anything to mask at all."""
        return bool(self._patterns)

    @property
    def overlap(self) -> int:
        """Return the longest pattern's length minus one (0 with no patterns).

        A streaming caller never needs to hold back more raw bytes than this: any
        secret that starts earlier ends inside the data already seen.
        """
        return len(self._patterns[0]) - 1 if self._patterns else 0

    def mask(self, data: bytes) -> bytes:
        """Return ``data`` with every secret replaced by ``***``.

        Args:
            data: complete output (nothing more follows that could finish a secret).

        Returns:
            The masked bytes (``data`` itself when no secret occurs in it).
        """
        present = self._present(data)
        if not present:
            return data
        if len(present) == 1:
            return data.replace(present[0], MASK)
        return _alternation(tuple(present)).sub(MASK, data)

    def mask_partial(self, data: bytes) -> tuple[bytes, bytes]:
        """Mask the settled part of streamed output.

        Call with the raw rest of the previous call followed by the new read; flush
        the first result; at end of stream flush ``mask(rest)``.

        Args:
            data: raw output not yet flushed.

        Returns:
            ``(masked, rest)``: masked bytes safe to flush (no later byte can change
            them) and at most :attr:`overlap` raw bytes to keep for the next call.
            Streaming a whole output this way gives exactly ``mask(whole)``.
        """
        cut = len(data) - self.overlap
        if cut <= 0:
            return b"", data
        present = self._present(data)
        if not present:
            return data[:cut], data[cut:]
        pieces = []
        done = 0
        for match in _alternation(tuple(present)).finditer(data):
            start, end = match.span()
            if start >= cut:  # may still grow into a longer secret: decide next time
                break
            pieces += [data[done:start], MASK]
            done = end
        settled = max(cut, done)
        pieces.append(data[done:settled])
        return b"".join(pieces), data[settled:]

    def mask_text(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``***``.

        Any str round-trips, even one holding lone surrogates: a secret's UTF-8 bytes
        can only match on character boundaries.
        """
        if not self._patterns:
            return text
        data = text.encode("utf-8", "surrogatepass")
        return self.mask(data).decode("utf-8", "surrogatepass")

    def _present(self, data: bytes) -> list[bytes]:
        """Return the patterns that occur in ``data``, longest first."""
        present = []
        for pattern, longer in self._searches:
            if pattern in data:
                present.append(pattern)
                present += [holder for holder in longer if holder in data]
        if len(present) > 1:
            present.sort(key=_longest_first)
        return present


_ALTERNATIONS: dict[tuple[bytes, ...], re.Pattern[bytes]] = {}
_MAX_ALTERNATIONS = 64


def _alternation(patterns: tuple[bytes, ...]) -> re.Pattern[bytes]:
    """Return a regex matching any of ``patterns``, tried in the order given.

    Only the patterns present in a chunk are passed: the absent ones could not match,
    and every alternative costs time at every candidate position. Kept for the next
    chunks in a small cache of our own (functools costs the shim's start-up more than
    it saves).
    """
    found = _ALTERNATIONS.get(patterns)
    if found is None:
        import re  # only output holding two or more secrets needs it

        if len(_ALTERNATIONS) >= _MAX_ALTERNATIONS:
            _ALTERNATIONS.clear()
        found = _ALTERNATIONS[patterns] = re.compile(
            b"|".join(re.escape(pattern) for pattern in patterns)
        )
    return found
