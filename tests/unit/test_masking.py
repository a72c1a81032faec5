"""Masking secret values in output: whole buffers, text, and streamed reads."""

from __future__ import annotations

import io
from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.logformat import CRONSYNC, OUT, plain_text
from cronsync.run.masking import Masker
from cronsync.run.pump import OutputPump


def stream(masker: Masker, chunks: Iterable[bytes]) -> bytes:
    """Mask output that arrives in ``chunks`` the way a streaming caller must."""
    out = []
    rest = b""
    for chunk in chunks:
        ready, rest = masker.mask_partial(rest + chunk)
        assert len(rest) <= masker.overlap
        out.append(ready)
    out.append(masker.mask(rest))
    return b"".join(out)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """Split ``data`` at the given offsets (clamped, sorted)."""
    bounds = sorted({min(max(cut, 0), len(data)) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def test_single_value_masked_everywhere() -> None:
    masker = Masker(["hunter22"])
    assert masker.mask(b"pw=hunter22 again hunter22.") == b"pw=*** again ***."
    assert masker.mask_text("pw=hunter22") == "pw=***"


def test_no_values_is_falsy_and_leaves_data_alone() -> None:
    masker = Masker([])
    assert not masker
    assert masker.overlap == 0
    assert masker.mask(b"anything") == b"anything"
    assert masker.mask_text("anything") == "anything"
    assert masker.mask_partial(b"abc") == (b"abc", b"")


def test_multi_line_value_masks_whole_and_each_line() -> None:
    key = "-----BEGIN KEY-----\nMIIEabcdef\n-----END KEY-----"
    masker = Masker([key])
    assert masker.mask(key.encode()) == b"***"
    assert masker.mask(b"line: MIIEabcdef\n") == b"line: ***\n"
    assert masker.mask(b"-----END KEY-----") == b"***"


def test_crlf_value_lines_are_masked_without_cr() -> None:
    masker = Masker(["first-line\r\nsecond-line\r\n"])
    assert masker.mask(b"first-line\nsecond-line\n") == b"***\n***\n"
    assert masker.mask(b"x first-line\r\n") == b"x ***\r\n"


def test_overlapping_values_one_prefix_of_another_mask_fully() -> None:
    masker = Masker(["abcd", "abcdefgh"])
    assert masker.mask(b"[abcdefgh] [abcd] [abcdefg]") == b"[***] [***] [***efg]"
    assert masker.overlap == 7


def test_value_inside_another_masks_the_longer_whole() -> None:
    masker = Masker(["xxsecretxx", "secret"])
    assert masker.mask(b"1 xxsecretxx 2 secret") == b"1 *** 2 ***"


def test_regex_metacharacters_are_literal() -> None:
    values = ["a.b*c+d?", "(x|y)[z]", "^$\\d{2}"]
    masker = Masker(values)
    assert masker.mask(b"aXbbbcd a.b*c+d? (x|y)[z] ^$\\d{2}") == b"aXbbbcd *** *** ***"
    assert masker.mask(b"xz yz 12") == b"xz yz 12"


def test_short_values_and_lines_are_not_masked() -> None:
    masker = Masker(["abc", "ok\nlonger-line"])
    assert masker.mask(b"abc ok longer-line") == b"abc ok ***"
    assert Masker(["abc"], min_length=3).mask(b"abc") == b"***"
    assert not Masker(["a", "bb", ""])


def test_utf8_values_and_text_with_surrogates() -> None:
    masker = Masker(["pässwörd"])
    assert masker.mask("x pässwörd y".encode()) == b"x *** y"
    assert masker.mask_text("\udcff pässwörd \ud800") == "\udcff *** \ud800"


def test_repr_hides_values() -> None:
    masker = Masker(["topsecretvalue"])
    assert "topsecretvalue" not in repr(masker)
    assert "topsecretvalue" not in str(masker)


def test_value_split_across_two_chunks_is_masked() -> None:
    masker = Masker(["SECRET-VALUE"])
    assert stream(masker, [b"head SECRET", b"-VALUE tail"]) == b"head *** tail"
    assert stream(masker, [b"S", b"ECRET-VALU", b"E"]) == b"***"


def test_stream_does_not_settle_a_shorter_secret_early() -> None:
    # "abcd" is complete in the first read but may be the start of "abcdefgh".
    masker = Masker(["abcd", "abcdefgh"])
    assert stream(masker, [b"xx abcd", b"efgh yy"]) == b"xx *** yy"
    assert stream(masker, [b"xx abcd", b"e yy"]) == b"xx ***e yy"


def test_stream_keeps_at_most_overlap_bytes() -> None:
    masker = Masker(["0123456789"])
    ready, rest = masker.mask_partial(b"a" * 100)
    assert ready == b"a" * 91
    assert rest == b"a" * 9


_ALPHABET = b"abcdXYZ\n\r*.-"
secrets_strategy = st.lists(
    st.text(alphabet="abcdXYZ.-\n", min_size=1, max_size=12), min_size=1, max_size=5
)


@st.composite
def streamed_output(draw: st.DrawFn) -> tuple[list[str], bytes, list[int]]:
    """Secrets, output with some of them inserted at random places, chunk boundaries."""
    values = draw(secrets_strategy)
    noise = draw(st.binary(max_size=200))
    data = bytearray(_ALPHABET[byte % len(_ALPHABET)] for byte in noise)
    for _ in range(draw(st.integers(0, 6))):
        value = draw(st.sampled_from(values)).encode()
        position = draw(st.integers(0, len(data)))
        data[position:position] = value
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=12))
    return values, bytes(data), cuts


@settings(max_examples=400, deadline=None)
@given(streamed_output())
def test_streamed_output_equals_whole_and_hides_every_secret(
    case: tuple[list[str], bytes, list[int]],
) -> None:
    values, data, cuts = case
    masker = Masker(values)
    whole = masker.mask(data)
    assert stream(masker, split_at(data, cuts)) == whole
    assert stream(masker, [bytes([b]) for b in data]) == whole
    for value in values:
        for line in [value, *value.split("\n")]:
            if len(line) >= 4:
                assert line.encode() not in whole


def test_cronsync_notes_in_the_log_are_masked_too() -> None:
    """cronsync's own lines in a run's log (start, errors, timeouts) go through the same
    masker as the job's output: an error that quotes a secret must not leak it."""
    log, terminal = io.BytesIO(), io.BytesIO()
    pump = OutputPump(log, Masker(["hunter22-secret"]), clock=lambda: 1, echo={CRONSYNC: terminal})
    pump.note("cannot start /opt/tool --password=hunter22-secret: No such file")
    pump.feed(OUT, b"job says hunter22-secret\n")
    pump.close()
    text = plain_text(log.getvalue(), with_streams=True)
    assert b"hunter22" not in text and b"hunter22" not in terminal.getvalue()
    assert b"--password=***: No such file" in text
    assert (
        terminal.getvalue() == b"[cronsync] cannot start /opt/tool --password=***: No such file\n"
    )
