"""The systemd units in ``systemd/``, judged by ``systemd-analyze verify`` and read back.

``systemd-analyze verify`` only prints a bad directive value ("Failed to parse ...,
ignoring") and still exits 0, so every output line about one of our units counts as a
failure, and a deliberately broken copy proves the check can fail. The units name
``/usr/local/bin/cronsync``, which verify requires to exist: the tests verify copies
that point at the ``cronsync`` command of this environment instead.

The second half parses the units and checks the sandbox and behaviour that issue 4
asks for (hardening, reload by SIGHUP, restart, timers), identical in every service,
and the broker's socket-activated pair and the IMDS guard of issue 9. The guard's
nftables file is judged by ``nft --check`` (the kernel validates the rules and nothing
is loaded), in a new user and network namespace when not root; see ``nft_check``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cronsync.cli.main import build_parser

UNIT_DIR = Path(__file__).resolve().parents[2] / "systemd"
AGENT = "cronsync-agent.service"
SYNC = "cronsync-sync.service"
FLUSH = "cronsync-flush.service"
BROKER = "cronsync-broker.service"
BROKER_SOCKET = "cronsync-broker.socket"
GUARD = "cronsync-imds-guard.service"
SERVICES = (AGENT, SYNC, FLUSH, BROKER)  # run cronsync, in the shared sandbox
TIMERS = ("cronsync-sync.timer", "cronsync-flush.timer")
SOCKETS = (BROKER_SOCKET,)
ALL_UNITS = (*SERVICES, GUARD, *TIMERS, *SOCKETS)
NFT_FILE = "cronsync-imds.nft"
NFT_INSTALLED_FILE = f"/etc/cronsync/{NFT_FILE}"
NFT_TABLE = ("inet", "cronsync_imds")
INSTALLED_COMMAND = "/usr/local/bin/cronsync"
INSTALLED_NFT = "/usr/sbin/nft"
ANALYZE = shutil.which("systemd-analyze")
# nft lives in /usr/sbin, often not on a user's PATH
NFT = shutil.which("nft") or next(
    (p for p in (INSTALLED_NFT, "/sbin/nft") if os.access(p, os.X_OK)), None
)

needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze not found: install the Debian package 'systemd' "
    "(scripts/test does, as root)",
)
needs_nft = pytest.mark.skipif(
    NFT is None,
    reason="nft not found: install the Debian package 'nftables' (scripts/test does, as root)",
)

# The sandbox every service shares (values compared as given, order-insensitive lists
# below). Comparing the full set keeps the services from drifting apart.
HARDENING = {
    "NoNewPrivileges": "yes",
    "LimitCORE": "0",
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
}
WORD_SETS = {
    "CapabilityBoundingSet": {
        "CAP_CHOWN",
        "CAP_FOWNER",
        "CAP_DAC_OVERRIDE",
        "CAP_DAC_READ_SEARCH",
    },
    "RestrictAddressFamilies": {"AF_UNIX", "AF_INET", "AF_INET6"},
}
# What each service may write: every key that opens a path for writing, with its values.
# The three that sync or flush write the state, the logs and the cron file; the agent
# also makes /run/cronsync for the broker it serves; the socket-activated broker writes
# only the runs' pending files (and must not own /run/cronsync: see its unit).
_SYNCING = {
    "StateDirectory": "cronsync",
    "StateDirectoryMode": "0755",
    "LogsDirectory": "cronsync",
    "LogsDirectoryMode": "0755",
    "ReadWritePaths": "/etc/cron.d",
}
WRITABLE = {
    AGENT: {**_SYNCING, "RuntimeDirectory": "cronsync", "RuntimeDirectoryMode": "0755"},
    SYNC: _SYNCING,
    FLUSH: _SYNCING,
    BROKER: {"ReadWritePaths": "-/var/lib/cronsync/runs"},
}
WRITE_KEYS = {
    "ReadWritePaths",
    "BindPaths",
    "StateDirectory",
    "StateDirectoryMode",
    "LogsDirectory",
    "LogsDirectoryMode",
    "RuntimeDirectory",
    "RuntimeDirectoryMode",
    "CacheDirectory",
    "ConfigurationDirectory",
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
    """Copy every unit to ``target`` with ExecStart pointing at ``command``.

    The guard's ``/usr/sbin/nft`` is kept when it exists; otherwise ``command`` stands in
    for it too (verify only asks that the binary exists).
    """
    copies = []
    for source in sorted(UNIT_DIR.glob("cronsync-*.*")):
        if source.suffix not in (".service", ".timer", ".socket"):
            continue
        text = source.read_text(encoding="utf-8").replace(INSTALLED_COMMAND, command)
        if not os.access(INSTALLED_NFT, os.X_OK):
            text = text.replace(INSTALLED_NFT, command)
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
    found = {path.name for path in UNIT_DIR.iterdir() if path.name != "README.md"}
    assert found == set(ALL_UNITS) | {NFT_FILE}
    assert (UNIT_DIR / "README.md").is_file()


# A file name of ours as the docs and comments write it (not a glob like cronsync-*).
_OUR_FILE_NAME = re.compile(r"\bcronsync-[a-z0-9-]*[a-z0-9]\.(?:service|timer|socket|nft)\b")


def test_the_readme_names_exactly_the_files_that_exist() -> None:
    readme = (UNIT_DIR / "README.md").read_text(encoding="utf-8")
    named = set(_OUR_FILE_NAME.findall(readme))
    shipped = {path.name for path in UNIT_DIR.iterdir() if path.name != "README.md"}
    assert named - shipped == set(), "systemd/README.md names files that do not exist"
    assert shipped - named == set(), "systemd/README.md does not mention these files"


@pytest.mark.parametrize("name", (*ALL_UNITS, NFT_FILE))
def test_every_file_named_in_a_unit_exists(name: str) -> None:
    text = (UNIT_DIR / name).read_text(encoding="utf-8")
    shipped = {path.name for path in UNIT_DIR.iterdir()}
    assert set(_OUR_FILE_NAME.findall(text)) - shipped == set()


# --- systemd-analyze verify --------------------------------------------------------------


@needs_analyze
@pytest.mark.parametrize("name", ALL_UNITS)
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
def test_verify_check_catches_a_bad_socket_mode(unit_copies: dict[str, Path]) -> None:
    broken = unit_copies[BROKER_SOCKET]
    text = broken.read_text(encoding="utf-8")
    assert "SocketMode=0666" in text
    broken.write_text(text.replace("SocketMode=0666", "SocketMode=rw-all"), "utf-8")
    _, complaints = verify(broken)
    assert any("rw-all" in line for line in complaints), complaints


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
def test_each_service_writes_only_what_it_needs(name: str) -> None:
    # ConfigurationDirectory= is bind-mounted read-write by systemd < 257 even under
    # ProtectSystem=strict; /etc/cronsync must stay read-only.
    unit = load(name)
    assert "ConfigurationDirectory" not in unit["Service"]
    opened = {key: one(unit, "Service", key) for key in unit["Service"] if key in WRITE_KEYS}
    assert opened == WRITABLE[name]


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_runs_as_root_unbuffered(name: str) -> None:
    service = load(name)["Service"]
    assert "User" not in service and "DynamicUser" not in service  # chown needs root
    assert "PYTHONUNBUFFERED=1" in service["Environment"]


@pytest.mark.parametrize("name", [AGENT, BROKER])
def test_the_agent_and_the_broker_log_to_the_journal_with_levels(name: str) -> None:
    """Their lines begin ``<N>`` under the journal (cronsync.host.logline): systemd must
    read that prefix as the priority (SyslogLevelPrefix=, said explicitly) and give
    both streams to the journal, whose $JOURNAL_STREAM is how cronsync knows."""
    service = load(name)["Service"]
    assert one(load(name), "Service", "SyslogLevelPrefix") == "yes"
    for stream in ("StandardOutput", "StandardError"):
        assert service.get(stream, ["journal"]) == ["journal"], f"{name}: {stream}"


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


# --- the broker: socket-activated pair, or served by the agent ---------------------------


def test_broker_socket() -> None:
    from cronsync.host.config import DEFAULT_BROKER_SOCKET

    socket_unit = load(BROKER_SOCKET)
    path = one(socket_unit, "Socket", "ListenStream")
    assert path == DEFAULT_BROKER_SOCKET == "/run/cronsync/broker.sock"
    # every job user connects; the broker checks the caller's uid itself (SO_PEERCRED)
    assert one(socket_unit, "Socket", "SocketMode") == "0666"
    assert one(socket_unit, "Socket", "SocketUser") == "root"
    assert one(socket_unit, "Socket", "SocketGroup") == "root"
    assert one(socket_unit, "Socket", "DirectoryMode") == "0755"
    assert one(socket_unit, "Socket", "Accept") == "no"  # one broker, fd 3, LISTEN_FDS
    assert one(socket_unit, "Socket", "RemoveOnStop") == "yes"
    assert "Service" not in socket_unit["Socket"]  # the default: cronsync-broker.service
    assert (UNIT_DIR / BROKER).is_file()
    assert one(socket_unit, "Install", "WantedBy") == "sockets.target"


def test_broker_service() -> None:
    broker = load(BROKER)
    assert one(broker, "Service", "Type") == "exec"
    assert one(broker, "Service", "ExecStart") == f"{INSTALLED_COMMAND} broker"
    assert "Install" not in broker  # started by its socket, never enabled itself
    assert "Restart" not in broker["Service"]  # the next connection starts it again
    assert BROKER_SOCKET in words(broker, "Unit", "Requires")
    assert BROKER_SOCKET in words(broker, "Unit", "After")
    assert "network-online.target" in words(broker, "Unit", "After")
    # A RuntimeDirectory= would be deleted, with the socket in it, whenever the broker
    # exits idle, and the socket unit would listen on a path nobody can reach.
    assert "RuntimeDirectory" not in broker["Service"]


def test_the_agent_makes_the_socket_directory_the_broker_socket_uses() -> None:
    agent, socket_unit = load(AGENT), load(BROKER_SOCKET)
    path = Path(one(socket_unit, "Socket", "ListenStream"))
    assert path.parent == Path("/run") / one(agent, "Service", "RuntimeDirectory")
    assert one(agent, "Service", "RuntimeDirectoryMode") == one(
        socket_unit, "Socket", "DirectoryMode"
    )


@pytest.mark.parametrize("name", (BROKER_SOCKET, BROKER))
def test_the_broker_units_and_the_agent_exclude_each_other(name: str) -> None:
    unit, agent = load(name), load(AGENT)
    assert AGENT in words(unit, "Unit", "Conflicts")
    assert name in words(agent, "Unit", "Conflicts")
    # Conflicts= alone runs the stop and the start in parallel: the agent could bind
    # the path while the socket is still there (or the broker still ships the spool).
    # Any ordering between the two puts the stop first, in both directions.
    ordered = words(unit, "Unit", "Before") | words(unit, "Unit", "After")
    ordered_by_agent = words(agent, "Unit", "Before") | words(agent, "Unit", "After")
    assert AGENT in ordered or name in ordered_by_agent


# --- the IMDS guard: its unit --------------------------------------------------------------


def _nft_table_command(argv: list[str]) -> str:
    """The nft command line of an ExecStop= (one argument after the binary)."""
    assert argv[0] == INSTALLED_NFT and len(argv) == 2, argv
    return argv[1]


def test_imds_guard_service() -> None:
    guard = load(GUARD)
    assert one(guard, "Service", "Type") == "oneshot"
    assert one(guard, "Service", "RemainAfterExit") == "yes"
    load_file = [INSTALLED_NFT, "-f", NFT_INSTALLED_FILE]
    assert shlex.split(one(guard, "Service", "ExecStart")) == load_file
    assert shlex.split(one(guard, "Service", "ExecReload")) == load_file
    # stop removes our table only (made first, so a table already gone is no error)
    family, table = NFT_TABLE
    stop = _nft_table_command(shlex.split(one(guard, "Service", "ExecStop")))
    assert stop == f"add table {family} {table}; delete table {family} {table}"
    assert one(guard, "Install", "WantedBy") == "sysinit.target"
    assert {"cron.service", "crond.service"} <= words(guard, "Unit", "Before")
    # Debian's nftables.service flushes the whole ruleset: load again after it
    assert "nftables.service" in words(guard, "Unit", "After")
    assert one(guard, "Unit", "PartOf") == "nftables.service"
    assert one(guard, "Unit", "ReloadPropagatedFrom") == "nftables.service"
    assert words(guard, "Service", "CapabilityBoundingSet") == {"CAP_NET_ADMIN"}
    assert "User" not in guard["Service"]


# --- the IMDS guard: its nftables file -------------------------------------------------


def _ruleset_lines() -> list[str]:
    """The nft file without comments and blank lines."""
    text = (UNIT_DIR / NFT_FILE).read_text(encoding="utf-8")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


def test_nft_file_touches_only_its_own_table() -> None:
    lines = _ruleset_lines()
    assert not any("flush" in line for line in lines), "never flush the host's ruleset"
    statements = [re.match(r"((?:add |delete )?table) (\S+) (\w+)", line) for line in lines]
    tables = [match.groups() for match in statements if match]
    assert {(family, name) for _, family, name in tables} == {NFT_TABLE}
    # the atomic replace: created if missing, deleted, declared again (with its body)
    assert [verb for verb, _, _ in tables] == ["table", "delete table", "table"]
    assert lines.index(f"table {NFT_TABLE[0]} {NFT_TABLE[1]} {{") > 0


def test_nft_file_lists_the_allowed_uids_at_the_top_with_root() -> None:
    first = _ruleset_lines()[0]
    match = re.fullmatch(r"define imds_uids = \{ (.+) \}", first)
    assert match, f"the uid list is not the first statement: {first!r}"
    assert "0" in [uid.strip() for uid in match.group(1).split(",")]
    text = "\n".join(_ruleset_lines())
    assert re.search(r"set imds_uids \{\s*type uid\s*elements = \$imds_uids\s*\}", text)


def test_nft_file_rejects_both_metadata_addresses_for_other_uids() -> None:
    lines = _ruleset_lines()
    assert "type filter hook output priority filter; policy accept;" in lines
    for match in ("ip daddr 169.254.169.254", "ip6 daddr fd00:ec2::254"):
        (rule,) = [line for line in lines if line.startswith(match)]
        assert rule == f"{match} meta skuid != @imds_uids counter jump refuse"
    assert "meta l4proto tcp reject with tcp reset" in lines
    assert "reject with icmpx admin-prohibited" in lines


def _try_nft_check(prefix: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    assert NFT is not None
    return subprocess.run(
        [*prefix, NFT, "--check", "--file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _cannot_get_the_privilege(prefix: list[str], said: str) -> bool:
    """Whether a failed check of an empty table failed for want of CAP_NET_ADMIN.

    nft without it: "netlink: Error: cache initialization failed: Operation not
    permitted". unshare that cannot make the namespaces says so first ("unshare:
    unshare failed: ..."): EPERM where unprivileged user namespaces are off, ENOSPC
    ("No space left on device") where user.max_user_namespaces is 0.
    """
    return "Operation not permitted" in said or (bool(prefix) and said.startswith("unshare:"))


@pytest.fixture(scope="module")
def nft_check(tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path], tuple[int, str]]:
    """``nft --check --file`` as this process can run it: returns (exit code, output).

    The check parses the file and sends the whole batch to the kernel, which validates
    it and throws it away (nothing is loaded). That needs CAP_NET_ADMIN in the network
    namespace: as root it runs directly; otherwise (or as a root without CAP_NET_ADMIN,
    as in Docker's default set) in a new user and network namespace
    (``unshare --user --map-root-user --net``), where the caller holds it. The tests
    skip, quoting what nft and unshare said, only when neither way is open; any other
    failure of the check of an empty table fails them.
    """
    if NFT is None:
        pytest.skip("nft not found: install the Debian package 'nftables' (scripts/test does)")
    probe = tmp_path_factory.mktemp("nft") / "probe.nft"
    probe.write_text("table inet cronsync_probe {\n}\n", encoding="utf-8")
    routes: list[list[str]] = [[]]
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    if os.access(unshare, os.X_OK):
        routes.append([unshare, "--user", "--map-root-user", "--net"])
    refused = []
    for prefix in routes:
        done = _try_nft_check(prefix, probe)
        said = (done.stdout + done.stderr).strip()
        if done.returncode == 0:
            break
        if not _cannot_get_the_privilege(prefix, said):
            pytest.fail(f"nft --check of an empty table failed ({shlex.join(prefix)}): {said}")
        refused.append(f"{shlex.join([*prefix, 'nft', '--check'])}: {said}")
    else:
        pytest.skip(
            "nft --check needs CAP_NET_ADMIN (the kernel validates the batch over netlink), "
            f"which this process (uid {os.getuid()}) cannot get: " + " | ".join(refused)
        )

    def check(path: Path) -> tuple[int, str]:
        result = _try_nft_check(prefix, path)
        return result.returncode, result.stdout + result.stderr

    return check


@needs_nft
def test_nft_check_accepts_the_guard_file(nft_check: Callable[[Path], tuple[int, str]]) -> None:
    code, output = nft_check(UNIT_DIR / NFT_FILE)
    assert (code, output.strip()) == (0, "")


@needs_nft
@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        # the parser: a mistyped address
        ("ip daddr 169.254.169.254 ", "ip daddr 169.254.169.2540 ", "syntax error"),
        # nft resolves user names while it reads the file: an unknown one fails the load
        (
            "define imds_uids = { 0 }",
            "define imds_uids = { 0, no-such-user-cronsync }",
            "User does not exist",
        ),
        # the kernel: a jump to a chain that does not exist (only the kernel says so)
        ("counter jump refuse\n", "counter jump refused\n", "Could not process rule"),
    ],
    ids=["syntax", "unknown-user", "kernel"],
)
def test_nft_check_catches_a_broken_copy(
    nft_check: Callable[[Path], tuple[int, str]],
    tmp_path: Path,
    old: str,
    new: str,
    needle: str,
) -> None:
    text = (UNIT_DIR / NFT_FILE).read_text(encoding="utf-8")
    assert old in text, f"the nft file changed: fix this test's edit {old!r}"
    broken = tmp_path / NFT_FILE
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    code, output = nft_check(broken)
    assert code != 0
    assert needle in output, output


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
