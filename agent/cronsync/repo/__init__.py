"""The jobs repository: from a git remote to a checked tree of job files.

Owns running git (``gitrun``: no prompts, timeouts, credentials only in the environment),
fetching a branch into a local checkout (``gitsource``; ``checkoutmark`` knows which
directory cronsync cloned, so a broken one is replaced and nothing else), exporting one
commit as a release tree (``gitexport``, through ``tarsafe``'s safe extraction), reading the
repository's files (``files``), checking the signature of the commit to install
(``signature``), checking its scripts with ``sh -n`` and shellcheck
(``scriptcheck``; many strings and scripts per process: ``shellsyntax``, ``shellcheck``),
and the gate that loads and validates a tree (``gate``). Every
program (git, ``sh -n``, shellcheck) is started by ``process``: its own session, dying
with cronsync, stopped in order by the agent's SIGTERM.

May import: ``files``, ``core`` and the standard library; GitPython and subprocesses live here.
"""
