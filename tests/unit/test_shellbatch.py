"""Which shell strings may share one ``sh -n`` parse, and where each one's lines are
(``cronsync.core.shellbatch``, pure). The verdicts themselves are compared with
one-by-one parses in tests/integration/test_shell_batches.py."""

from __future__ import annotations

import pytest

from cronsync.core.shellbatch import batch_text, batchable, batches, string_at_line


@pytest.mark.parametrize(
    "text",
    [
        "cat <<EOF",  # a here-document reads the next function
        "echo \\",  # glues the next line on
        "}; {",  # closes the wrapper and opens a new one
        "{ echo; }",
        "e\\\nsac",  # the shell joins the lines into the word esac
        "case x in x) echo;; esac",
        "echo 'a",
        'echo "a',
        "echo $(ls",
        'echo "$(echo ")"',  # the quote inside $( ) opens a new one
        "echo ${x:-'a}'}",
        "echo `date`",
        "echo $((1+2))",
        "echo a # it's",
        "-x echo",
        "+e",
        "a\0b",
        "x" * 100_001,
    ],
)
def test_strings_that_could_reach_past_their_function_are_parsed_alone(text: str) -> None:
    assert not batchable(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "find /var/tmp -type f -mtime +14 -delete && echo done",
        'pg_dump "$DB" | gzip > "/b/$(date +%F).gz" 2>&1',
        "echo \"$(echo ')')\" ok",
        "echo ${HOME} ${#PATH} $# a#b",
        "find . -exec rm {} +",
        "echo 'it''s'; if true; then echo; fi",
        "x=1\ny=2",
    ],
)
def test_self_contained_strings_are_batched(text: str) -> None:
    assert batchable(text)


def test_each_string_starts_on_the_line_the_batch_says() -> None:
    strings = ["echo a", "echo b\necho c", "", "echo d"]
    text, starts = batch_text(strings)
    lines = text.splitlines()
    for index, start in enumerate(starts):
        assert lines[start - 1] == "_cronsync_check() {"
        assert lines[start] == ":"
        assert string_at_line(start, starts) == index
        assert string_at_line(start + 2, starts) == index
    assert string_at_line(len(lines), starts) == len(strings) - 1
    assert string_at_line(0, starts) == 0


def test_batches_stay_below_the_limit_and_keep_every_string_once() -> None:
    strings = ["x" * 30, "y" * 200, "z", "w" * 10]
    runs = batches(strings, limit=100)
    assert sorted(i for run in runs for i in run) == [0, 1, 2, 3]
    assert runs == [[0], [1], [2, 3]]
