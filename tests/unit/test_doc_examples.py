"""Every example in README.md and docs/ is checked: each fenced block is either checked
here, run by another test or the demo (named), or listed in NOT_RUN with the reason.
A new block that is none of these fails the test."""

from __future__ import annotations

import json
import re
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from cronsync.host.config import parse_config
from cronsync.repo.gate import check_repository
from cronsync.secrets.file import fetch_file
from cronsync.secrets.resolve import resolve_secrets

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

TOP = Path(__file__).resolve().parents[2]
PAGES = [TOP / "README.md", *sorted((TOP / "docs").rglob("*.md"))]
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)

# (page, the block's first line starts with) -> the test that runs or compares it
RUN_ELSEWHERE = {
    ("README.md", "./scripts/demo"): "tests/integration/test_demo.py and CI (.ci/run)",
    ("docs/how-to/see-when-jobs-run.md", "scheduled runs"): "tests/integration/"
    "test_timeline_cli.py::test_the_documented_example_is_what_the_template_draws",
    ("docs/how-to/leave-the-host-export.md", "cronsync export"): "tests/integration/"
    "test_doc_commands.py (the cronsync lines; kubectl and aws are not run)",
    ("docs/how-to/check-jobs-in-your-editor.md", "repos:"): "here, and "
    "tests/integration/test_doc_commands.py (pre-commit validate-config)",
    ("docs/how-to/set-up-a-host.md", "[repo]"): "tests/unit/test_editorschema.py",
    ("docs/how-to/add-or-retire-a-job.md", "# jobs/"): "here, and tests/unit/test_editorschema.py",
    ("docs/how-to/add-or-rotate-a-secret.md", "[secrets]"): "here",
    ("docs/how-to/add-or-rotate-a-secret.md", '"batch-prod/api-token"'): "here",
    ("docs/how-to/add-or-rotate-a-secret.md", '{"Effect"'): "here (JSON syntax and shape "
    "only: no IAM policy simulator runs offline)",
    ("docs/how-to/set-up-a-host.md", "scripts/install-host"): "tests/integration/"
    "test_install_host.py (--root), tests/e2e/test_install_host_real.py",
    ("docs/how-to/sign-commits.md", "git config gpg.format ssh"): "tests/integration/"
    "test_doc_commands.py (signs a commit validate --require-signed accepts)",
    ("docs/how-to/sign-commits.md", "printf 'alice@example.com"): "tests/integration/"
    "test_doc_commands.py (with /etc/cronsync in the sandbox)",
    ("docs/how-to/migrate-a-legacy-host.md", "./scripts/demo-migration"): "tests/integration/"
    "test_demo_migration.py (runs it)",
    ("docs/how-to/migrate-a-legacy-host.md", "evidence from"): "tests/integration/"
    "test_demo_migration.py (the output shown is what the script prints)",
    ("docs/how-to/migrate-a-legacy-host.md", "$ cronsync"): "tests/integration/"
    "test_demo_migration.py (the output shown is what the script prints)",
    ("docs/how-to/migrate-a-legacy-host.md", "[migration]"): "scripts/demo-migration commits "
    "this sign-off; tests/integration/test_demo_migration.py checks the job is signed off",
    ("docs/how-to/run-more-than-one-host.md", "./scripts/demo-fleet"): "tests/integration/"
    "test_demo_fleet.py (runs it)",
    ("docs/how-to/run-more-than-one-host.md", "batch-1$ "): "tests/integration/"
    "test_demo_fleet.py (the output shown is what the script prints)",
    ("docs/how-to/run-more-than-one-host.md", "batch-2$ cronsync fleet"): "tests/integration/"
    "test_demo_fleet.py (the output shown is what the script prints)",
    ("docs/how-to/run-more-than-one-host.md", "$ cronsync export"): "tests/integration/"
    "test_demo_fleet.py (the output shown is what the script prints)",
    ("docs/how-to/run-more-than-one-host.md", "[host]"): "here (an agent config with it loads)",
    ("docs/how-to/run-more-than-one-host.md", 'schedule = "30 3'): "here (a job with it "
    "validates in the template)",
    ("docs/architecture.md", "cli "): "tests/unit/test_layout.py (the layers of pyproject)",
    ("docs/reference/command-line.md", "usage: cronsync"): "generated from the parser, kept "
    "equal by tests/unit/test_docs.py",
    ("docs/reference/command-line.md", "cronsync keeps a host"): "generated from the parser, "
    "kept equal by tests/unit/test_docs.py",
}
# Blocks no test runs, and why.
NOT_RUN = {
    ("README.md", "jobs repository (git)"): "a diagram",
    ("docs/architecture.md", "jobs repository (git)"): "a diagram",
    ("docs/development.md", "agent/cronsync/"): "the repository's layout, a picture",
    ("docs/how-to/add-or-retire-a-job.md", "cronsync.toml"): "a repository's layout",
    ("docs/how-it-works.md", "# managed by cronsync"): "an illustration of a cron file "
    "(its commit and jobs are made up; the rendering is tested in tests/unit)",
    ("README.md", "jobs  first sync ms"): "benchmark output (bench/bench_sync.py prints it)",
    ("docs/how-to/set-up-a-host.md", "cp systemd/"): "changes /etc/systemd and starts "
    "services on the host; the units are checked by tests/integration/test_systemd_units.py",
    ("docs/how-to/sign-commits.md", "install -d -m 700 /etc/cronsync/gnupg"): "writes the "
    "host's /etc/cronsync; gpg keyrings are tested in test_signed_commits.py",
    ("docs/how-to/migrate-a-legacy-host.md", "cronsync import --into"): "the import on a "
    "real host (root, its crontabs); scripts/demo-migration runs import in a sandbox",
    ("docs/how-to/watch-a-host.md", "aws ssm send-command"): "needs AWS (moto executes no "
    "SSM command); the documents are checked by tests/integration/test_aws_templates.py",
}


def blocks() -> list[tuple[str, str, str, str]]:
    """Every fenced block of the pages: (page, language, text, first line)."""
    found = []
    for page in PAGES:
        for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
            text = "\n".join(line[len(match.group(1)) :] for line in match.group(3).splitlines())
            first = text.strip().splitlines()[0] if text.strip() else ""
            found.append((str(page.relative_to(TOP)), match.group(2), text, first))
    return found


def listed(page: str, first: str, table: dict[tuple[str, str], str]) -> bool:
    return any(page == where and first.startswith(start) for where, start in table)


def the_block(page: str, start: str) -> str:
    (text,) = [t for p, _lang, t, first in blocks() if p == page and first.startswith(start)]
    return text


def test_every_block_is_checked_or_listed_with_a_reason() -> None:
    unaccounted = [
        f"{page}: {first}"
        for page, _lang, _text, first in blocks()
        if not listed(page, first, RUN_ELSEWHERE) and not listed(page, first, NOT_RUN)
    ]
    assert unaccounted == [], "add a check for these examples, or list them in NOT_RUN"


def test_every_listed_block_still_exists() -> None:
    present = {(page, first) for page, _lang, _text, first in blocks()}
    stale = [
        key
        for key in [*RUN_ELSEWHERE, *NOT_RUN]
        if not any(page == key[0] and first.startswith(key[1]) for page, first in present)
    ]
    assert stale == []


def template_copy(tmp_path: Path) -> Path:
    repo = tmp_path / "jobs-repo"
    shutil.copytree(TOP / "repo-template", repo, ignore=shutil.ignore_patterns("aws"))
    return repo


def test_the_job_example_validates_in_the_template(tmp_path: Path) -> None:
    text = the_block("docs/how-to/add-or-retire-a-job.md", "# jobs/")
    name = re.match(r"# jobs/([\w-]+)\.toml", text)
    assert name is not None
    repo = template_copy(tmp_path)
    (repo / "jobs" / f"{name.group(1)}.toml").write_text(text, encoding="utf-8")

    report = check_repository(repo)

    assert [p.format() for p in report.problems] == []
    (job,) = [job for job in report.repo.jobs if job.name == name.group(1)]
    assert job.timezone == "Asia/Tokyo"


def test_the_fleet_agent_fragment_loads_as_an_agent_config(tmp_path: Path) -> None:
    fragment = the_block("docs/how-to/run-more-than-one-host.md", "[host]")
    path = tmp_path / "agent.toml"
    base = f'[repo]\nurl = "https://git.example.com/jobs.git"\n[paths]\nroot = "{tmp_path}"\n'

    config = parse_config(path, base + fragment)

    assert (config.host.name, config.run.aws.region) == ("batch-1", "eu-west-1")
    assert (config.fleet.table, config.fleet.lease_ttl) == ("cronsync-fleet", 300)


def test_the_one_host_job_fragment_validates_in_the_template(tmp_path: Path) -> None:
    fragment = the_block("docs/how-to/run-more-than-one-host.md", 'schedule = "30 3')
    repo = template_copy(tmp_path)
    head = 'description = "d"\nowner = "o@example.com"\ncommand = ["true"]\n'
    (repo / "jobs" / "one-host.toml").write_text(head + fragment, encoding="utf-8")

    report = check_repository(repo)

    assert [p.format() for p in report.problems] == []
    (job,) = [job for job in report.repo.jobs if job.name == "one-host"]
    assert (job.run_on, job.fleet_unreachable, job.concurrency) == ("one-host", "skip", "forbid")


def test_the_secrets_example_resolves_from_the_file_backend_example(tmp_path: Path) -> None:
    page = "docs/how-to/add-or-rotate-a-secret.md"
    fragment = the_block(page, "[secrets]")
    repo = template_copy(tmp_path)
    job = 'description = "d"\nowner = "o@example.com"\nschedule = "0 1 * * *"\n'
    (repo / "jobs" / "with-secrets.toml").write_text(
        job + 'command = ["true"]\n' + fragment, encoding="utf-8"
    )
    report = check_repository(repo)
    assert [p.format() for p in report.problems] == []
    secrets_file = tmp_path / "batch.toml"
    secrets_file.write_text(the_block(page, '"batch-prod/api-token"'), encoding="utf-8")
    secrets_file.chmod(0o600)
    (job,) = [job for job in report.repo.jobs if job.name == "with-secrets"]
    refs = [asdict(ref) for ref in job.secrets]

    values = resolve_secrets(refs, lambda wanted: fetch_file(wanted, str(secrets_file)))

    assert sorted(values) == ["API_TOKEN", "DB_PASSWORD", "PARTNER_KEY"]


def test_the_instance_role_statements_are_json_iam_statements() -> None:
    text = the_block("docs/how-to/add-or-rotate-a-secret.md", '{"Effect"')
    statements = json.loads(f"[{text}]")

    assert [sorted(s) for s in statements] == [["Action", "Effect", "Resource"]] * 3
    actions: list[str] = []
    for statement in statements:
        action = statement["Action"]
        actions += [action] if isinstance(action, str) else action
    assert "secretsmanager:BatchGetSecretValue" in actions and "kms:Decrypt" in actions


def test_the_pre_commit_example_uses_the_shipped_hook() -> None:
    config = yaml.safe_load(the_block("docs/how-to/check-jobs-in-your-editor.md", "repos:"))
    hooks = yaml.safe_load((TOP / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))

    (repo,) = config["repos"]
    assert {hook["id"] for hook in repo["hooks"]} <= {hook["id"] for hook in hooks}


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(TOP)) for p in PAGES])
def test_every_toml_example_parses(page: Path) -> None:
    for match in BLOCK.finditer(page.read_text(encoding="utf-8")):
        if match.group(2) == "toml":
            tomllib.loads("\n".join(line.strip() for line in match.group(3).splitlines()))
