"""``cronsync completion bash|zsh`` and ``cronsync manpage``: generated from the parser.

Both are made from the ``cronsync`` parser (``cronsync.cli.main.build_parser``, handed in)
when asked, so they list every
verb and option of the cronsync that prints them (``scripts/install-host`` writes them
where bash-completion, zsh and man look). Job names (``run``, ``history``, ``logs``)
complete from the installed release's ``jobs.json``: ``/var/lib/cronsync/current`` below
``$CRONSYNC_ROOT`` (default ``/``, the ``paths.root`` of almost every host).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from cronsync import __version__

ParserFactory = Callable[[], argparse.ArgumentParser]

SHELLS = ("bash", "zsh")
JOBS_FUNCTION = "_cronsync_installed_jobs"
# Reads the installed job names with the system's Python (isolated, no site): nothing
# is printed when there is no release or it cannot be read.
_LIST_JOBS = (
    "python3 -I -S -c 'import json, os, sys\n"
    'root = os.environ.get("CRONSYNC_ROOT", "/")\n'
    'path = os.path.join(root, "var/lib/cronsync/current/jobs.json")\n'
    "try:\n"
    '    print("\\n".join(sorted(json.load(open(path))["jobs"])))\n'
    "except Exception:\n"
    "    pass' 2>/dev/null"
)
PREAMBLE = {
    "bash": f'{JOBS_FUNCTION}() {{\n  compgen -W "$({_LIST_JOBS})" -- "$1"\n}}\n',
    "zsh": (
        f'{JOBS_FUNCTION}() {{\n  local -a jobs\n  jobs=(${{(f)"$({_LIST_JOBS})"}})\n'
        "  compadd -a jobs\n}\n"
    ),
}


def _mark_job_arguments(parser: argparse.ArgumentParser) -> None:
    """Give every positional ``job`` argument of every verb the job-name completer."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb in dict.fromkeys(action.choices.values()):
                _mark_job_arguments(verb)
        elif action.dest == "job" and not action.option_strings:
            action.complete = {shell: JOBS_FUNCTION for shell in SHELLS}  # type: ignore[attr-defined]


def completion_script(shell: str, build_parser: ParserFactory) -> str:
    """Return the ``shell`` completion script of the parser ``build_parser`` makes (the
    ``cronsync`` command's).

    Raises:
        ValueError: ``shell`` is not one of :data:`SHELLS`.
    """
    if shell not in SHELLS:
        raise ValueError(f"no completion for {shell!r}: choose one of {', '.join(SHELLS)}")
    import shtab

    parser = build_parser()
    _mark_job_arguments(parser)
    script: str = shtab.complete(parser, shell=shell, preamble=PREAMBLE[shell])
    return script


def manual_page(build_parser: ParserFactory) -> str:
    """Return the ``cronsync(1)`` manual page (roff) of every verb and option of the
    parser ``build_parser`` makes."""
    from argparse_manpage.manpage import Manpage

    page = Manpage(build_parser())
    page.source = f"cronsync {__version__}"
    page.manual = "cronsync manual"
    text: str = str(page)
    return text


def cmd_completion(args: argparse.Namespace) -> int:
    """``cronsync completion SHELL``: print the script."""
    sys.stdout.write(completion_script(args.shell, args.build_parser))
    return 0


def cmd_manpage(args: argparse.Namespace) -> int:
    """``cronsync manpage``: print the manual page."""
    sys.stdout.write(manual_page(args.build_parser))
    return 0


def add_shellhelp_verbs(verbs: Any, build_parser: ParserFactory) -> None:
    """Add ``completion`` and ``manpage`` to the ``cronsync`` parser; ``build_parser``
    makes that whole parser again (what they describe)."""
    completion = verbs.add_parser(
        "completion",
        help="print the shell completion script (bash or zsh)",
        description="Print the completion script of cronsync for bash or zsh, generated "
        "from this cronsync's own options; job names complete from the installed release. "
        "scripts/install-host installs both. By hand: "
        "`cronsync completion bash > /usr/share/bash-completion/completions/cronsync`, "
        "`cronsync completion zsh > /usr/local/share/zsh/site-functions/_cronsync`.",
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell")
    completion.set_defaults(func=cmd_completion, build_parser=build_parser)
    manpage = verbs.add_parser(
        "manpage",
        help="print the cronsync(1) manual page",
        description="Print the cronsync(1) manual page (roff), generated from this "
        "cronsync's own options. scripts/install-host installs it; by hand: "
        "`cronsync manpage > /usr/local/share/man/man1/cronsync.1`.",
    )
    manpage.set_defaults(func=cmd_manpage, build_parser=build_parser)
