"""The command line reference (docs/reference/command-line.md), generated from the parser.

``command_line_markdown`` walks the ``cronsync`` parser (``cronsync.cli.main.build_parser``,
handed in) the way ``cronsync manpage`` does: each verb's usage, description and every
argument with its help, in the order the parser has them. ``scripts/update-docs`` writes
it between the page's ``cli`` markers (:mod:`cronsync.core.docblocks`) and a test keeps
the two equal, so the page lists exactly the options of the cronsync it was made from.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator

# Wide enough that most usage lines fit; fixed so the page does not depend on the
# terminal of whoever runs scripts/update-docs.
USAGE_WIDTH = 88


def _verbs(parser: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """Each verb of ``parser`` as (name, one-line help, its parser), aliases left out."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            seen: list[argparse.ArgumentParser] = []
            for name, verb in action.choices.items():
                if verb not in seen:
                    seen.append(verb)
                    yield name, helps.get(name, ""), verb


def _usage(parser: argparse.ArgumentParser) -> str:
    """``parser``'s usage as argparse prints it, at :data:`USAGE_WIDTH` columns."""
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def _cell(text: str) -> str:
    """``text`` as one markdown table cell: one line, ``|`` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _paragraphs(text: str) -> str:
    """A parser's description as markdown paragraphs: blank lines kept, other line
    breaks joined (argparse wraps them anyway)."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(block.split()) for block in blocks)


def _argument_name(action: argparse.Action) -> str:
    """How an argument is written: ``--limit N``, ``-v, --verbose``, ``JOB``."""
    metavar = action.metavar
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.choices is not None and metavar is None:
        metavar = "{" + ",".join(str(choice) for choice in action.choices) + "}"
    if not action.option_strings:
        return str(metavar or action.dest)
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    shown = metavar or action.dest.upper()
    return ", ".join(f"{option} {shown}" for option in action.option_strings)


def _argument_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """An argument's help with ``%(default)s`` and the like filled in, as ``--help``
    shows it."""
    if isinstance(action, argparse._SubParsersAction):
        return "one of the commands below"
    if not action.help:
        return ""
    formatter = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    return formatter._expand_help(action)


def _arguments_table(parser: argparse.ArgumentParser) -> list[str]:
    """The markdown table of ``parser``'s arguments (those ``--help`` shows)."""
    rows = [
        f"| `{_cell(_argument_name(action))}` | {_cell(_argument_help(parser, action))} |"
        for action in parser._actions
        if action.help != argparse.SUPPRESS
    ]
    if not rows:
        return []
    return ["| argument | meaning |", "|---|---|", *rows, ""]


def _verb_section(name: str, summary: str, verb: argparse.ArgumentParser) -> list[str]:
    """One verb's part of the page: heading, usage, description, arguments."""
    lines = [f"### `cronsync {name}`", ""]
    if summary:
        lines += [_cell(summary[:1].upper() + summary[1:]) + ".", ""]
    lines += ["```", _usage(verb), "```", ""]
    if verb.description:
        lines += [_paragraphs(verb.description), ""]
    lines += _arguments_table(verb)
    if verb.epilog:
        lines += [_paragraphs(verb.epilog), ""]
    return lines


def command_line_markdown(parser: argparse.ArgumentParser) -> str:
    """Return the markdown reference of ``parser`` (the ``cronsync`` parser): its own
    usage, description and options, then one section per verb.

    Args:
        parser: the parser to describe; it is only read.

    Returns:
        Markdown ending in a newline, the same for the same parser whatever the
        terminal's width.
    """
    lines = ["```", _usage(parser), "```", ""]
    if parser.description:
        lines += ["```text", parser.description.strip(), "```", ""]
    lines += _arguments_table(parser)
    for name, summary, verb in _verbs(parser):
        lines += _verb_section(name, summary, verb)
    return "\n".join(lines).rstrip("\n") + "\n"
