"""``cronsync completion`` and ``cronsync manpage`` follow the parser; bash completes for real."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronsync.cli.main import build_parser
from cronsync.cli.shellhelp import completion_script, manual_page


def verbs_and_options() -> dict[str, list[str]]:
    parser = build_parser()
    found: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, verb in action.choices.items():
                found[name] = [
                    option
                    for sub in verb._actions
                    for option in sub.option_strings
                    if option.startswith("--")
                ]
    return found


def complete(script: Path, words: list[str], env: dict[str, str]) -> list[str]:
    """What bash offers after ``words`` (the last one being completed)."""
    code = (
        f"source {script}\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        'COMP_LINE="${COMP_WORDS[*]}"\nCOMP_POINT=${#COMP_LINE}\n'
        f"_shtab_cronsync cronsync {words[-1]!r} {words[-2]!r}\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    return done.stdout.split()


def test_completion_and_manual_name_every_verb_and_option() -> None:
    bash = completion_script("bash", build_parser)
    zsh = completion_script("zsh", build_parser)
    page = manual_page(build_parser)
    assert page.startswith('.TH CRONSYNC "1"')
    for verb, options in verbs_and_options().items():
        assert verb in bash and verb in zsh, verb
        assert verb.replace("-", "\\-") in page, verb
        for option in options:
            assert option in bash and option in zsh, (verb, option)
    with pytest.raises(ValueError, match="no completion for 'fish'"):
        completion_script("fish", build_parser)


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_bash_completes_verbs_options_and_installed_job_names(tmp_path: Path) -> None:
    script = tmp_path / "cronsync.bash"
    script.write_text(completion_script("bash", build_parser))
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=60)
    release = tmp_path / "root/var/lib/cronsync/current"
    release.mkdir(parents=True)
    (release / "jobs.json").write_text(json.dumps({"jobs": {"nightly": {}, "hourly": {}}}))
    env = {"PATH": "/usr/bin:/bin", "CRONSYNC_ROOT": str(tmp_path / "root")}
    assert complete(script, ["cronsync", "hist"], env) == ["history"]
    assert complete(script, ["cronsync", "install-shim", "--ch"], env) == ["--check"]
    assert sorted(complete(script, ["cronsync", "run", ""], env)) == ["hourly", "nightly"]
    assert complete(script, ["cronsync", "logs", "n"], env) == ["nightly"]
    # no installed release: nothing offered, nothing printed on the terminal
    assert complete(script, ["cronsync", "run", ""], {**env, "CRONSYNC_ROOT": "/nonexistent"}) == []


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_the_zsh_script_parses(tmp_path: Path) -> None:
    script = tmp_path / "_cronsync"
    script.write_text(completion_script("zsh", build_parser))
    subprocess.run(["zsh", "-n", str(script)], check=True, timeout=60)


def test_the_verbs_print_them() -> None:
    for args, start in ((["completion", "bash"], "# AUTOMATICALLY"), (["manpage"], ".TH")):
        done = subprocess.run(
            [sys.executable, "-m", "cronsync.cli.main", *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0 and done.stdout.startswith(start), done.stderr
