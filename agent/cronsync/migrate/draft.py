"""The steps of planning one imported job that need none of the import-wide state (pure).

Each fills the :class:`~cronsync.migrate.importmodel.Draft` of one entry: the command cleaned
(:func:`clean_command`), ``SHELL=`` (:func:`apply_shell`), the argv or the shell line
the job runs (:func:`command_form`) and its working directory (:func:`set_workdir`).
``importplan.Planner`` keeps what spans the import (names, duplicates, shared secrets,
copied scripts) and calls them.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from typing import Callable, Optional

from cronsync.core.textshow import visible
from cronsync.core.validate import program_path_problem
from cronsync.migrate.command import SecretSpan, describe_features, translate
from cronsync.migrate.importmodel import Draft, HomeLookup, Unsupported
from cronsync.migrate.lines import BLANKS, CRON_PATH, shell_program

_SHELL_NAME = re.compile(r"[A-Za-z0-9._+-]+")
_SHELL_PATH = re.compile(r"[A-Za-z0-9._+/-]+")
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # a tab is fine in a shell line
"""The control characters a command or a variable cannot carry over."""
ScriptCopier = Callable[[Draft, str], Optional[str]]
"""Copies a host program into ``scripts/`` for a draft: its path there, or None."""


def clean_command(draft: Draft, command: str) -> str:
    """Return the command without the trailing ``\\r`` of a CRLF line (noted in the
    draft).

    Raises:
        Unsupported: the command holds control characters.
    """
    if command.endswith("\r"):
        command = command[:-1]
        draft.changes.append("the trailing \\r of the CRLF line was dropped")
        draft.todo.append(
            "cron passed a trailing \\r to the shell (CRLF line): check the job "
            "really worked before the migration"
        )
    if CONTROL.search(command):
        bad = sorted({visible(c) for c in CONTROL.findall(command)})
        raise Unsupported(f"the command contains control characters ({', '.join(bad)})")
    return command


def apply_shell(draft: Draft, value: str) -> None:
    """Make the draft run with the shell of ``SHELL=value`` (``/bin/sh`` changes nothing).

    Raises:
        Unsupported: the value is not a shell cronsync can name.
    """
    name = posixpath.basename(value)
    if value in ("/bin/sh", "/usr/bin/sh"):
        return
    if not _SHELL_NAME.fullmatch(name) or not _SHELL_PATH.fullmatch(value):
        raise Unsupported(f"SHELL={visible(value)} is not a shell cronsync can name")
    program = shell_program(value, draft.env.get("PATH", CRON_PATH))
    draft.shell = program
    draft.env["SHELL"] = value
    draft.changes.append(f"SHELL={value}: runs as {program} -c (cronsync's shell is /bin/sh)")
    if not value.startswith("/"):
        draft.todo.append(
            f"SHELL={value} is not an absolute path: cron execs it as written, from the "
            f"home directory, so the job probably never ran; it now runs {name} from PATH"
        )
    draft.todo.append(
        f"it runs with {program} as under cron; to make it a plain shell line, "
        "check it for bashisms first (shellcheck -s sh)"
    )


def command_form(
    draft: Draft, command: str, spans: list[SecretSpan], copy_script: Optional[ScriptCopier]
) -> tuple[tuple[str, ...], Optional[str]]:
    """Return what the job runs: ``(argv, None)``, or ``((), shell line)`` (or the
    shell's ``-c`` argv) when it must stay a shell line; the why goes in the draft.

    Args:
        spans: where the command's secrets were (read from the environment instead).
        copy_script: copies an absolute program into ``scripts/`` and returns its
            path there (None: not copied); None when not copying.
    Raises:
        Unsupported: nothing before the first ``%``.
    """
    form = translate(command, spans)
    draft.changes += form.notes
    if not form.text.strip(BLANKS):
        raise Unsupported("nothing before the first %: cron runs an empty command")
    argv = form.argv or ()
    program = argv[0] if argv else ""
    if program.strip() and "/" not in program and program_path_problem(program) is None:
        return argv, None
    if program.startswith("/") and copy_script is not None:
        copied = copy_script(draft, program)
        if copied is not None:
            return (copied, *argv[1:]), None
    if program.startswith("/"):
        draft.changes.append("an absolute program path: kept as a shell line")
    elif "/" in program:
        draft.changes.append("a program path relative to the home directory: a shell line")
    elif argv:
        draft.changes.append(f"kept as a shell line: {visible(program)!r} is no argv program")
    elif form.features:
        draft.changes.append(f"kept as a shell line: it uses {describe_features(form.features)}")
    elif spans:
        draft.changes.append("a shell line, to read the secret from the environment")
    line = form.shell_line(draft.shell)
    if draft.shell == "sh":
        return (), line
    if draft.shell.startswith("/"):  # validate wants no absolute program: sh execs it
        return (), f"exec {shlex.quote(draft.shell)} -c {shlex.quote(line)}"
    return (draft.shell, "-c", line), None


def set_workdir(draft: Draft, homes: HomeLookup) -> None:
    """Give the draft the user's home as its working directory unless ``HOME`` set one
    (cron starts jobs there); note when it is unknown."""
    user = draft.user
    if draft.workdir is None:
        draft.workdir = homes(user)
    if draft.workdir is None:
        draft.todo.append(
            f"cron started it in {user}'s home directory, which is unknown here: "
            "set workdir if it relies on that"
        )
