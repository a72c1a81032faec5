"""The systemd units in ``systemd/``, judged by ``systemd-analyze verify`` and read back.

``systemd-analyze verify`` only prints a bad directive value ("Failed to parse ...,
ignoring") and still exits 0, so every output line about one of our units counts as a
failure, and a deliberately broken copy proves the check can fail. The units name
``/usr/local/bin/cronsync``, which verify requires to exist: the tests verify copies
that point at the ``cronsync`` command of this environment instead.

The second half parses the units and checks the sandbox and behaviour that issue 4
asks for (hardening, reload by SIGHUP, restart, timers), identical in every service.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cronsync.cli.main import build_parser

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
AGENT = "cronsync-agent.service"
SYNC = "cronsync-sync.service"
FLUSH = "cronsync-flush.service"
SERVICES = (AGENT, SYNC, FLUSH)
TIMERS = ("cronsync-sync.timer", "cronsync-flush.timer")
INSTALLED_COMMAND = "/usr/local/bin/cronsync"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze not found: install the Debian package 'systemd' "
    "(scripts/test does, as root)",
)

# The sandbox every service shares (values compared as given, order-insensitive lists
# below). Comparing the full set keeps the three services from drifting apart.
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "read-only",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectProc": "invisible",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "SystemCallArchitectures": "native",
    "SystemCallFilter": "@system-service",
    "SystemCallErrorNumber": "EPERM",
    "UMask": "0022",
    "StateDirectory": "cronsync",
    "StateDirectoryMode": "0755",
    "LogsDirectory": "cronsync",
    "LogsDirectoryMode": "0755",
}
WORD_SETS = {
    "ReadWritePaths": {"/etc/cron.d"},
    "CapabilityBoundingSet": {
        "CAP_CHOWN",
        "CAP_FOWNER",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
    },
    "RestrictAddressFamilies": {"AF_UNIX", "AF_INET", "AF_INET6"},
}

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Parse unit-file text into ``{section: {key: [values in order]}}``.

    A key may repeat (``Environment=``), so each keeps every value. Comments and blank
    lines are skipped; a line continued with a backslash is refused (none of ours).

    Raises:
        ValueError: for a line that is neither a section, a comment nor ``key=value``.
    """
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        if section is None or not sep or line.endswith("\\"):
            raise ValueError(f"line {number}: cannot read {raw!r}")
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


def load(name: str) -> Unit:
    """Parse ``systemd/<name>`` of the checkout."""
    return parse_unit((UNIT_DIR / name).read_text(encoding="utf-8"))


def one(unit: Unit, section: str, key: str) -> str:
    """The single value of ``key`` in ``section`` (fails when absent or repeated)."""
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}= expected once, found {values}"
    return values[0]


def words(unit: Unit, section: str, key: str) -> set[str]:
    """Every whitespace-separated word of every ``key=`` line in ``section``."""
    return {word for value in unit.get(section, {}).get(key, []) for word in value.split()}


def local_command() -> str:
    """An existing executable to stand in for /usr/local/bin/cronsync in verify."""
    script = Path(sys.executable).parent / "cronsync"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    return shutil.which("cronsync") or sys.executable


def copy_units(target: Path, command: str) -> list[Path]:
    """Copy every unit to ``target`` with ExecStart pointing at ``command``."""
    copies = []
    for source in sorted(UNIT_DIR.glob("cronsync-*.*")):
        if source.suffix not in (".service", ".timer"):
            continue
        text = source.read_text(encoding="utf-8").replace(INSTALLED_COMMAND, command)
        copy = target / source.name
        copy.write_text(text, encoding="utf-8")
        copies.append(copy)
    return copies


def verify(unit: Path) -> tuple[int, list[str]]:
    """Run ``systemd-analyze verify`` on ``unit``; return its exit code and the output
    lines that are about any of our units (by file path or unit name).

    ``--recursive-errors=no`` judges the given unit only, so a broken unit elsewhere on
    the host cannot fail these tests; the exit code alone is not trusted either way.
    """
    assert ANALYZE is not None
    proc = subprocess.run(
        [ANALYZE, "verify", "--man=no", "--recursive-errors=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        # its own log settings, not whatever the caller's environment says
        env={**os.environ, "SYSTEMD_LOG_LEVEL": "info", "SYSTEMD_LOG_COLOR": "0"},
    )
    ours = (str(unit.parent), "cronsync")
    lines = (proc.stdout + proc.stderr).splitlines()
    return proc.returncode, [line for line in lines if any(mark in line for mark in ours)]


@pytest.fixture
def unit_copies(tmp_path: Path) -> dict[str, Path]:
    """All units copied to a temp dir with an ExecStart= that exists here."""
    return {copy.name: copy for copy in copy_units(tmp_path, local_command())}


def test_the_unit_directory_holds_exactly_the_known_units() -> None:
    found = {path.name for path in UNIT_DIR.iterdir() if path.suffix in (".service", ".timer")}
    assert found == set(SERVICES + TIMERS)
    assert (UNIT_DIR / "README.md").is_file()


# --- systemd-analyze verify --------------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("name", SERVICES + TIMERS)
def test_systemd_analyze_verify_reports_nothing(name: str, unit_copies: dict[str, Path]) -> None:
    code, complaints = verify(unit_copies[name])
    assert complaints == []
    assert code == 0


@needs_analyze
def test_verify_check_catches_a_bad_directive_value(unit_copies: dict[str, Path]) -> None:
    broken = unit_copies[AGENT]
    text = broken.read_text(encoding="utf-8")
    assert "ProtectSystem=strict" in text
    broken.write_text(text.replace("ProtectSystem=strict", "ProtectSystem=bogus"), "utf-8")
    _, complaints = verify(broken)
    assert any("bogus" in line for line in complaints), complaints


@needs_analyze
def test_verify_check_catches_a_misspelled_directive(unit_copies: dict[str, Path]) -> None:
    broken = unit_copies[SYNC]
    text = broken.read_text(encoding="utf-8")
    broken.write_text(text.replace("NoNewPrivileges=", "NoNewPrivilege="), "utf-8")
    _, complaints = verify(broken)
    assert any("NoNewPrivilege" in line for line in complaints), complaints


@needs_analyze
def test_verify_check_catches_a_missing_command(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-dir" / "cronsync")
    copies = {copy.name: copy for copy in copy_units(tmp_path, missing)}
    _, complaints = verify(copies[AGENT])
    assert any("no-such-dir" in line for line in complaints), complaints


# --- what the units say ----------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_the_same_sandbox(name: str) -> None:
    service = load(name)
    for key, value in HARDENING.items():
        assert one(service, "Service", key) == value, f"{name}: {key}"
    for key, expected in WORD_SETS.items():
        assert words(service, "Service", key) == expected, f"{name}: {key}"


@pytest.mark.parametrize("name", SERVICES)
def test_no_service_can_write_its_own_config(name: str) -> None:
    # ConfigurationDirectory= is bind-mounted read-write by systemd < 257 even under
    # ProtectSystem=strict; /etc/cronsync must stay read-only.
    service = load(name)["Service"]
    assert "ConfigurationDirectory" not in service
    writable = {"ReadWritePaths", "BindPaths", "RuntimeDirectory", "CacheDirectory"}
    assert {key for key in service if key in writable} == {"ReadWritePaths"}


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_as_root_unbuffered(name: str) -> None:
    service = load(name)["Service"]
    assert "User" not in service and "DynamicUser" not in service  # chown needs root
    assert "PYTHONUNBUFFERED=1" in service["Environment"]


def test_agent_service() -> None:
    agent = load(AGENT)
    assert one(agent, "Service", "Type") == "exec"
    assert one(agent, "Service", "ExecStart") == f"{INSTALLED_COMMAND} agent"
    assert one(agent, "Service", "Restart") == "on-failure"
    assert one(agent, "Service", "RestartSec") == "5s"
    assert one(agent, "Service", "TimeoutStopSec") == "60s"
    assert one(agent, "Service", "KillMode") == "mixed"
    reload_argv = shlex.split(one(agent, "Service", "ExecReload"))
    assert Path(reload_argv[0]).name == "kill"
    assert reload_argv[1:] == ["-HUP", "$MAINPID"]
    assert one(agent, "Install", "WantedBy") == "multi-user.target"
    assert words(agent, "Unit", "Conflicts") >= {SYNC, "cronsync-sync.timer"}
    assert "network-online.target" in words(agent, "Unit", "After")


def test_oneshot_services() -> None:
    sync, flush = load(SYNC), load(FLUSH)
    assert one(sync, "Service", "Type") == "oneshot"
    assert one(flush, "Service", "Type") == "oneshot"
    assert one(sync, "Service", "ExecStart") == f"{INSTALLED_COMMAND} sync"
    assert shlex.split(one(flush, "Service", "ExecStart"))[:2] == [INSTALLED_COMMAND, "flush"]
    for unit in (sync, flush):
        assert "Restart" not in unit["Service"]
        assert "Install" not in unit  # started by its timer, never enabled itself
        assert AGENT in words(unit, "Unit", "Conflicts")


def test_sync_timer() -> None:
    timer = load("cronsync-sync.timer")
    expected = {
        "OnBootSec": "2min",
        "OnUnitActiveSec": "1min",
        "RandomizedDelaySec": "20s",
        "AccuracySec": "5s",
        "Persistent": "true",
    }
    for key, value in expected.items():
        assert one(timer, "Timer", key) == value, key


@pytest.mark.parametrize("name", TIMERS)
def test_each_timer_starts_its_service_and_conflicts_with_the_agent(name: str) -> None:
    timer = load(name)
    assert "Unit" not in timer["Timer"]  # the default: the .service of the same name
    assert (UNIT_DIR / name.replace(".timer", ".service")).is_file()
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Install", "WantedBy") == "timers.target"
    assert AGENT in words(timer, "Unit", "Conflicts")


@pytest.mark.parametrize("name", SERVICES)
def test_exec_start_is_a_command_line_cronsync_accepts(name: str) -> None:
    argv = shlex.split(one(load(name), "Service", "ExecStart"))
    assert argv[0] == INSTALLED_COMMAND
    try:
        with contextlib.redirect_stderr(io.StringIO()) as err:
            args = build_parser().parse_args(argv[1:])
    except SystemExit:
        raise AssertionError(f"cronsync rejects {argv[1:]}: {err.getvalue()}") from None
    assert isinstance(args, argparse.Namespace)
