"""Turning a cron command into what a job runs (cronsync.migrate.command) and naming the job
(cronsync.migrate.names). Running the results for real is in tests/integration/test_import.py."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronsync.core.manifest import JOB_NAME
from cronsync.migrate.command import SecretSpan, plain_words, quote_state, shell_features, translate
from cronsync.migrate.names import MAX_NAME, clean_name, derive_name, unique_name

NAMES = [
    ("/usr/local/bin/backup-db.sh --full", "backup-db"),
    ("php /var/www/app/artisan schedule:run", "artisan-schedule-run"),
    ("php /var/www/app/artisan schedule:run >> /dev/null 2>&1", "artisan-schedule-run"),
    ("cd /x && ./run.sh", "run"),
    ("cd / && run-parts --report /etc/cron.hourly", "cron-hourly"),
    ("test -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }", "cron-daily"),
    ("PGPASSWORD=*** pg_dump -h db app > /backup/app.sql", "pg_dump"),
    ("nice -n 10 flock -n /tmp/x.lock /opt/jobs/Sync_Data.py --all", "sync_data"),
    ("timeout 30m /opt/bin/Report.PY", "report"),
    ("sudo -u www-data /usr/bin/php /var/www/cron.php", "cron"),
    ("sh -c 'cd /srv && ./deploy.sh'", "deploy"),
    ("python3 -m myapp.cleanup", "myapp-cleanup"),
    ("python3 manage.py clearsessions", "manage-clearsessions"),
    ("java -jar /opt/app/batch.jar --x", "batch"),
    ('mail -s "Daily report" team@example.com', "mail"),
    ("echo hello | mail -s hi root", "mail"),
    ("2024 /home/app/bin/yearly.sh", "yearly"),
    ("/opt/jobs/0-start.sh", "start"),
    ("", "job"),
    ("***", "job"),
    ("'unclosed quote /opt/x.sh", "x"),
]


@pytest.mark.parametrize(("command", "name"), NAMES)
def test_names_come_from_the_script_or_program(command: str, name: str) -> None:
    assert derive_name(command) == name


def test_unique_names_get_suffixes_in_order_and_stay_short() -> None:
    taken: set[str] = set()
    assert [unique_name("curl", taken) for _ in range(3)] == ["curl", "curl-2", "curl-3"]
    long = "a" * MAX_NAME
    assert unique_name(long, taken) == long
    second = unique_name(long, taken)
    assert second.endswith("-2") and len(second) == MAX_NAME


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_every_derived_name_is_a_valid_job_name(command: str) -> None:
    name = derive_name(command)
    assert JOB_NAME.fullmatch(name), name
    assert JOB_NAME.fullmatch(unique_name(name, {name}))
    assert clean_name(name) == name


PLAIN = [
    "ssh -p 2222 backup@nas uptime",
    "curl -p -x proxy:8080 https://example.com/",
    'mail -s "Daily report" team@example.com',
    "printf 'a b' 'c\"d' x\\ y",
    "tool --opt=val a#b 100 é",
]
SHELLY = [
    ("a | b", "pipe"),
    ("a && b", "list"),
    ("a; b", "list"),
    ("a &", "list"),
    ("a > out 2>&1", "redirect"),
    ("a < in", "redirect"),
    ("echo $HOME", "expansion"),
    ('echo "$HOME"', "expansion"),
    ("echo `date`", "backticks"),
    ("rm /tmp/*.log", "glob"),
    ("ls ~/x", "tilde"),
    ("a # comment", "comment"),
    ("(a)", "subshell"),
    ("{ a; }", "braces"),
    ("A=1 prog", "assignment"),
    ("cd /srv", "builtin"),
    ("if", "keyword"),
    ("echo 'unclosed", "unbalanced"),
]


@pytest.mark.parametrize("command", PLAIN)
def test_plain_commands_need_no_shell(command: str) -> None:
    assert shell_features(command) == ()
    form = translate(command)
    assert form.argv == tuple(shlex.split(command))
    assert form.shell_line() == command


@pytest.mark.parametrize(("command", "tag"), SHELLY)
def test_shell_syntax_keeps_a_shell_line(command: str, tag: str) -> None:
    assert tag in shell_features(command)
    form = translate(command)
    assert form.argv is None
    assert form.shell_line() == command


def test_quotes_hide_shell_syntax() -> None:
    assert shell_features("echo 'a | b; $x' \"c > d\"") == ()
    assert shell_features("echo a\\;b") == ()


def test_quote_state() -> None:
    text = """a 'b "c' "d 'e" f"""
    assert quote_state(text, text.index("b")) == "'"
    assert quote_state(text, text.index("d")) == '"'
    assert quote_state(text, text.index("f")) == ""
    assert quote_state('x\\"y', 3) == ""


def test_percent_starts_stdin_and_escaped_percent_is_literal() -> None:
    form = translate(
        'mail -s "Daily report" team@example.com%Good morning,%the report is at '
        "/srv/report-\\%Y.html%"
    )
    assert form.shell_line() == (
        "printf '%s\\n' 'Good morning,' 'the report is at /srv/report-%Y.html' | "
        'mail -s "Daily report" team@example.com'
    )
    assert any("\\% became %" in note for note in form.notes)
    assert translate("date +\\%Y").argv == ("date", "+%Y")


def test_stdin_with_a_command_list_is_fed_to_the_whole_list() -> None:
    assert translate("read a; echo $a%x").shell_line() == "printf '%s\\n' x | { read a; echo $a; }"
    assert translate("sleep 1 &%x").shell_line() == "printf '%s\\n' x | { sleep 1 & }"
    assert translate("cat # c%x").shell_line() == "printf '%s\\n' x | sh -c 'cat # c'"
    assert translate("cat # c%x").shell_line("bash").endswith("| bash -c 'cat # c'")


def test_an_empty_trailing_stdin_is_dropped() -> None:
    form = translate("cat%")
    assert form.stdin is None and form.argv == ("cat",)


def test_secrets_become_references_quoted_for_where_they_stand() -> None:
    command = "mysql --password \"a b\" -pSEC && echo 'tok=TT' x"
    spans = [
        SecretSpan(command.index("a b"), command.index("a b") + 3, "P1"),
        SecretSpan(command.index("SEC"), command.index("SEC") + 3, "P2"),
        SecretSpan(command.index("TT"), command.index("TT") + 2, "P3"),
    ]
    form = translate(command, spans)
    assert form.argv is None
    assert form.shell_line() == ('mysql --password "${P1}" -p"$P2" && echo \'tok=\'"$P3"\'\' x')


def test_a_secret_in_stdin_is_a_reference_too() -> None:
    command = "mysql -u root%SET PASSWORD = 'pw9';%"
    start = command.index("pw9")
    form = translate(command, [SecretSpan(start, start + 3, "PW")])
    assert form.shell_line() == (
        "printf '%s\\n' 'SET PASSWORD = '\"'\"''\"$PW\"''\"'\"';' | mysql -u root"
    )


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")))
@settings(max_examples=300, deadline=None)
def test_translate_never_fails(command: str) -> None:
    form = translate(command)
    assert isinstance(form.shell_line(), str)
    if form.argv is not None:
        assert form.stdin is None and not form.features


SHELLISH = st.text(alphabet=" \t'\"\\abc$`#;|&<>()*?[]{}~!=%/-.é\u00a0", max_size=30)


@given(SHELLISH)
@settings(max_examples=1000, deadline=None)
def test_plain_words_read_a_plain_line_as_shlex_does(text: str) -> None:
    if shell_features(text):
        return
    assert plain_words(text) == tuple(shlex.split(text))
    if "%" not in text:  # cron's % is translate's business
        assert translate(text).argv == (tuple(shlex.split(text)) or None)


def test_a_backslash_before_dollar_in_double_quotes_needs_the_shell() -> None:
    assert "expansion" in shell_features('echo "\\$HOME"')
    assert translate("echo x\\").argv is None
    assert translate("echo x\\\\").argv == ("echo", "x\\")
