"""The jobs repository: from a git remote to a checked tree of job files.

Owns running git (``gitrun``: no prompts, timeouts, credentials only in the environment),
fetching a branch into a local checkout (``gitsource``), exporting one commit as a
release tree (``gitexport``, through ``tarsafe``'s safe extraction), reading the
repository's files (``files``), checking its scripts with ``sh -n`` and shellcheck
(``scriptcheck``, run through ``process``), and the gate that loads and validates a
tree (``gate``).

May import: ``files``, ``core`` and the standard library; GitPython and subprocesses live here.
"""
