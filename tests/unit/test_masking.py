"""Masking secret values in output: whole buffers, text, and streamed reads."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.logformat import CRONSYNC, OUT, plain_text
from cronsync.run.masking import Masker
from cronsync.run.pump import OutputPump
from helpers.startup import modules_loaded


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
    assert masker.overlap == len(b"YWJjZGVmZ2g=") - 1  # the longest form: base64, padded


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
    assert masker.overlap == len(b"MDEyMzQ1Njc4OQ==") - 1  # the longest form: base64, padded
    ready, rest = masker.mask_partial(b"a" * 100)
    assert ready == b"a" * 85
    assert rest == b"a" * 15


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


# --- the forms a job commonly prints: base64, URL-encoded, JSON-escaped -------------

SEED = 20261207
# characters a password generator or a person uses, and what makes the encodings differ
_VALUE_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\t\x01éßü€日本😀"
)


def random_values(rng: random.Random, count: int, shortest: int = 4) -> list[str]:
    """``count`` secret values of ``shortest`` to 40 characters drawn from ``_VALUE_CHARS``."""
    return [
        "".join(rng.choice(_VALUE_CHARS) for _ in range(rng.randint(shortest, 40)))
        for _ in range(count)
    ]


def base64_secret_span(prefix: int, size: int) -> tuple[int, int]:
    """Return which characters of the base64 of ``prefix`` bytes + a ``size``-byte secret
    + anything hold only the secret's bits: each character is 6 bits of the stream, the
    secret is bits ``8 * prefix`` to ``8 * (prefix + size)``."""
    first = -(-8 * prefix // 6)  # the first character starting at or after the secret
    last = 8 * (prefix + size) // 6  # characters before this one end within it
    return first, last


def test_base64_of_the_value_at_every_alignment_is_masked() -> None:
    """``base64(prefix + secret + suffix)`` for random secrets and prefixes of 0 to 7
    bytes (every alignment, more than once): every character that holds only the
    secret's bits is masked, the characters of the prefix and suffix are kept."""
    rng = random.Random(SEED)
    for value in random_values(rng, 300):
        secret = value.encode()
        prefix = rng.randbytes(rng.randint(0, 7))
        suffix = rng.choice([b"", b"\n", b"\r\n", b":x", rng.randbytes(rng.randint(1, 5))])
        encoded = base64.b64encode(prefix + secret + suffix)
        masked = Masker([value]).mask(b"auth: " + encoded + b" end")
        first, last = base64_secret_span(len(prefix), len(secret))
        if suffix or len(prefix) % 3:
            assert masked == b"auth: " + encoded[:first] + b"***" + encoded[last:] + b" end"
        else:  # the encoding ends with the secret's own: its padding goes too
            assert masked == b"auth: " + encoded[:first] + b"*** end"


def test_base64_of_user_colon_secret_and_of_an_echoed_secret() -> None:
    masker = Masker(["hunter22-secret"])
    # "user:" is 5 bytes: the secret starts at the third byte of a group of three
    assert base64.b64encode(b"user:hunter22-secret") == b"dXNlcjpodW50ZXIyMi1zZWNyZXQ="
    assert masker.mask(b"Basic dXNlcjpodW50ZXIyMi1zZWNyZXQ=") == b"Basic dXNlcjp***Q="
    # `echo "$SECRET" | base64` encodes the value and a newline
    assert masker.mask(base64.b64encode(b"hunter22-secret\n")) == b"***Cg=="
    assert masker.mask(base64.b64encode(b"hunter22-secret")) == b"***"


def test_a_value_read_with_its_trailing_newline_masks_the_encodings_without_it() -> None:
    masker = Masker(["hunter22-secret\n"])
    assert masker.mask(b"Basic " + base64.b64encode(b"user:hunter22-secret")) == (
        b"Basic dXNlcjp***Q="
    )
    assert masker.mask(quote_plus("hunter22-secret\n").encode()) == b"***"
    assert masker.mask(b'{"pw": "hunter22-secret\\n"}') == b'{"pw": "***"}'


def test_url_encoded_forms_are_masked() -> None:
    rng = random.Random(SEED + 1)
    for value in random_values(rng, 300):
        masker = Masker([value])
        for form in (quote(value), quote(value, safe=""), quote_plus(value)):
            assert masker.mask(f"GET /login?pw={form}&next=1".encode()) == (
                b"GET /login?pw=***&next=1"
            ), (value, form)


def test_json_escaped_forms_are_masked() -> None:
    rng = random.Random(SEED + 2)
    for value in random_values(rng, 300):
        masker = Masker([value])
        for document in (json.dumps({"pw": value}), json.dumps({"pw": value}, ensure_ascii=False)):
            assert masker.mask(document.encode()) == b'{"pw": "***"}', (value, document)


def test_a_multi_line_value_in_json_is_masked_whole() -> None:
    key = "-----BEGIN KEY-----\nMIIEabcdef\n-----END KEY-----\n"
    masker = Masker([key])
    assert masker.mask(json.dumps({"key": key}).encode()) == b'{"key": "***"}'
    assert masker.mask(b"Basic " + base64.b64encode(key.encode())) == b"Basic ***"


def test_short_values_get_no_encoded_forms_either() -> None:
    masker = Masker(["a b", "x/y", "é"])
    assert not masker
    assert masker.mask(b"a%20b a+b x%2Fy \\u00e9 YSBi") == b"a%20b a+b x%2Fy \\u00e9 YSBi"


def reference_patterns(values: list[str]) -> list[bytes]:
    """Every form the README promises to mask, made with the standard library's encoders:
    each value of 4 characters or more (and the value without its final line break),
    each line of a multi-line value, base64 at the three alignments, URL- and
    JSON-escaped; longest first."""
    found: set[bytes] = set()
    for value in values:
        lines = [line.strip("\r") for line in value.split("\n")]
        found.update(line.encode() for line in lines if len(line) >= 4)
        for text in {t for t in (value, value.rstrip("\r\n")) if len(t) >= 4}:
            data = text.encode()
            found.add(data)
            found.add(base64.b64encode(data))
            for shift in range(3):
                first, last = base64_secret_span(shift, len(data))
                found.add(base64.b64encode(bytes(shift) + data)[first:last])
            found.update(
                form.encode() for form in (quote(text), quote(text, safe=""), quote_plus(text))
            )
            found.update(
                json.dumps(text, ensure_ascii=ascii)[1:-1].encode() for ascii in (True, False)
            )
    return sorted((p for p in found if len(p) >= 4), key=lambda p: (-len(p), p))


def reference_mask(values: list[str], data: bytes) -> bytes:
    """One left-to-right pass, the longest form starting at each position wins."""
    patterns = reference_patterns(values)
    if not patterns:
        return data
    return re.sub(b"|".join(re.escape(p) for p in patterns), b"***", data)


def test_every_form_masked_in_one_pass_streamed_or_whole() -> None:
    """Output holding random forms of random values, in random reads: the streamed
    result equals the whole one, and both equal a reference built on the standard
    library's encoders."""
    rng = random.Random(SEED + 3)
    for _ in range(150):
        values = random_values(rng, rng.randint(1, 3), shortest=1)
        if rng.random() < 0.3:
            values.append(rng.choice(values) + "\n" + "".join(random_values(rng, 1)))
        pieces = [rng.randbytes(rng.randint(0, 12)) for _ in range(6)]
        for value in values:
            text = rng.choice([value, "user:" + value, value + "\n", "ab" + value + "c"])
            pieces.append(
                rng.choice(
                    [
                        text.encode(),
                        base64.b64encode(text.encode()),
                        quote(text).encode(),
                        quote_plus(text).encode(),
                        json.dumps(text, ensure_ascii=rng.random() < 0.5).encode(),
                    ]
                )
            )
        rng.shuffle(pieces)
        data = b"".join(pieces)
        masker = Masker(values)
        whole = masker.mask(data)
        assert whole == reference_mask(values, data), (values, data)
        cuts = [rng.randint(0, len(data)) for _ in range(rng.randint(0, 8))]
        assert stream(masker, split_at(data, cuts)) == whole


def test_masking_imports_nothing_without_secrets_and_no_costly_module_with_them() -> None:
    """The shim's start-up: no module at all for a job without secrets; for one with
    secrets, C-level encoders only (not base64, urllib, json or re)."""
    costly = {"base64", "urllib", "urllib.parse", "json", "re", "binascii"}
    costly |= {"cronsync.run.secretforms"}
    code = "from cronsync.run.masking import Masker\nMasker([]).mask(b'x')"
    assert modules_loaded(code, costly) == []
    code = "from cronsync.run.masking import Masker\nMasker(['p@ss w/rd']).mask(b'p%40ss')"
    assert modules_loaded(code, costly - {"binascii", "cronsync.run.secretforms"}) == []
