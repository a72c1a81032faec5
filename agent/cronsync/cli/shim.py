"""``cronsync-run [--root DIR] JOB``: the command every managed cron line calls.

Kept small and quick to start: it imports only what running a job needs (boto3 only
when the job has AWS secrets or the host forwards to CloudWatch).
"""

from __future__ import annotations

import os
import sys

from cronsync import __version__

TYPE_CHECKING = False  # not `typing.TYPE_CHECKING`: importing typing costs ms
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Optional

USAGE = """usage: cronsync-run [--root DIR] JOB

Run one job of the installed cronsync release, as cron does: time-zone gate,
concurrency lock, jitter, secrets in its environment only, output masked (each
secret value, and its base64, URL-encoded and JSON-escaped forms) into its local
log and forwarded to CloudWatch, a run record, metrics.

  --root DIR   the host's paths.root (default /); sync renders it into cron lines
  JOB          the job's name (its file name in jobs/, without .toml)

exit status: the job's own (128+N when signal N ended it); 125 cronsync could not
find or read the job; 126 its secrets were unavailable or its program is not
executable; 127 its program does not exist. `cronsync run JOB` runs a job by hand.
"""


def parse_args(argv: Sequence[str]) -> tuple[str, str]:
    """Return (root, job) from the command line (root as given: the runner builds its
    paths with :func:`cronsync.files.paths.path_str`, which normalises them as pathlib does).

    Raises:
        SystemExit: on --help, --version or a usage error (exit 2).
    """
    args = list(argv)
    if any(a in ("-h", "--help") for a in args):
        sys.stdout.write(USAGE)
        raise SystemExit(0)
    if "--version" in args:
        print(f"cronsync-run {__version__}")
        raise SystemExit(0)
    root = "/"
    if len(args) == 3 and args[0] == "--root":
        root, args = args[1], args[2:]
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write(USAGE)
        raise SystemExit(2)
    return root, args[0]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the job named on the command line; return its exit status."""
    root, job = parse_args(sys.argv[1:] if argv is None else argv)
    from cronsync.core.errors import CronsyncError
    from cronsync.run.context import RunOptions
    from cronsync.run.runner import run_job

    try:
        # absolute: the shim changes directory for a moment to start the job
        return run_job(job, RunOptions(root=os.path.abspath(root)))
    except CronsyncError as exc:
        print(f"cronsync-run: {job}: {exc.message}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # cron keeps no output: one line, exit 125
        print(f"cronsync-run: {job}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 125


def exit_now(code: int) -> None:
    """End the process with ``code`` at once, without the interpreter's teardown.

    Teardown frees every module and object one by one: about 4 ms of the shim's 25 ms
    start-to-end on the development machine (bench/bench_shim_startup.py), at every
    scheduled run of every job. Nothing the shim holds needs it: by the time
    :func:`main` returns, the run log and the records are written and closed and the job
    is reaped. stdout and stderr are flushed first (an error there is ignored: cron may
    have closed them).
    """
    from cronsync.core.suppress import suppress  # loaded already: the runner uses it

    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def launch() -> None:
    """The ``cronsync-run`` entry point (console script and ``cronsync install-shim``'s
    launcher): :func:`main`, then :func:`exit_now` with its status. ``--help``, ``--version``
    and usage errors end through ``SystemExit`` as usual."""
    exit_now(main())


if __name__ == "__main__":
    launch()
