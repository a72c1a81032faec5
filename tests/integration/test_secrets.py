"""Fetching secrets: AWS through moto over real HTTP, and the local TOML file backend."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Optional

import pytest

from cronsync.host.awsclients import AwsSettings, make_client
from cronsync.secrets import aws as secretaws
from cronsync.secrets.fetch import SecretFailure, SecretsUnavailable, fetch_secrets
from helpers import secretledger
from helpers.motoserver import moto_running

SM = "secretsmanager"
DB_SECRET = '{"password": "pw-Zq8v1x", "username": "app-user", "port": 5432}'
ALL_VALUES = ("tok-9f8e7d6c", "pw-Zq8v1x", "app-user", "partner-Kx71q", "plain-Hv2w")


def ref(env: str, name: str, key: Optional[str] = None, store: str = SM) -> dict[str, Any]:
    """Return a jobs.json secret reference."""
    return {"env": env, "store": store, "name": name, "key": key}


def assert_hides_values(exc: BaseException, values: Sequence[str] = ALL_VALUES) -> None:
    """No value in the exception's str or repr, its failures, or anything chained."""
    seen: Optional[BaseException] = exc
    while seen is not None:
        texts = [str(seen), repr(seen), repr(getattr(seen, "failures", ()))]
        for value in values:
            assert not any(value in text for text in texts), value
        seen = seen.__cause__ or seen.__context__


def failures_of(excinfo: pytest.ExceptionInfo[SecretsUnavailable]) -> dict[str, str]:
    """Return env -> reason of a SecretsUnavailable, after checking it hides values."""
    assert_hides_values(excinfo.value)
    return {failure.env: failure.reason for failure in excinfo.value.failures}


# --- AWS through moto --------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """One moto server for the module, stopped at teardown."""
    with moto_running() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials; no machine AWS config, no instance metadata lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws(moto_url: str, aws_env: None) -> AwsSettings:
    """Settings pointing at a freshly reset moto."""
    request = urllib.request.Request(f"{moto_url}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request, timeout=5):
        pass
    return AwsSettings(region="us-east-1", endpoint_url=moto_url)


@pytest.fixture
def seeded(aws: AwsSettings) -> AwsSettings:
    """moto holding a few secrets and parameters."""
    seed(aws)
    return aws


def seed(aws: AwsSettings) -> None:
    """Create the test secrets and parameters (one attempt each, a long wait: a retry
    after a slow answer on a loaded machine would find the item there and fail)."""
    aws = dataclasses.replace(aws, read_timeout=120.0, max_attempts=1)
    sm = make_client(SM, aws)
    sm.create_secret(Name="batch-prod/api-token", SecretString="tok-9f8e7d6c")
    sm.create_secret(Name="batch-prod/db", SecretString=DB_SECRET)
    sm.create_secret(Name="batch-prod/plain", SecretString="plain-Hv2w")
    ssm = make_client("ssm", aws)
    ssm.put_parameter(Name="/batch/prod/partner-key", Value="partner-Kx71q", Type="SecureString")
    ssm.put_parameter(Name="/batch/prod/region", Value="eu-west-1", Type="String")


def fetch_aws(refs: Sequence[Mapping[str, Any]], aws: AwsSettings) -> dict[str, str]:
    """fetch_secrets with the aws backend."""
    return fetch_secrets(refs, "aws", file_template="/nonexistent/{user}", user="u", aws=aws)


def count_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the name of every AWS operation fetch_secrets calls."""
    calls: list[str] = []

    def counting_client(service: str, settings: AwsSettings) -> Any:
        client = make_client(service, settings)
        client.meta.events.register(
            "before-call", lambda model, **_: calls.append(model.name), unique_id="count"
        )
        return client

    monkeypatch.setattr(secretaws, "make_client", counting_client)
    return calls


def test_whole_secret_string(seeded: AwsSettings) -> None:
    refs = [ref("API_TOKEN", "batch-prod/api-token")]
    assert fetch_aws(refs, seeded) == {"API_TOKEN": "tok-9f8e7d6c"}


def test_json_keys_of_one_secret_fetched_in_one_call(
    seeded: AwsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(monkeypatch)
    refs = [
        ref("DB_PASSWORD", "batch-prod/db", "password"),
        ref("DB_USER", "batch-prod/db", "username"),
        ref("DB_PORT", "batch-prod/db", "port"),
        ref("API_TOKEN", "batch-prod/api-token"),
    ]
    assert fetch_aws(refs, seeded) == {
        "DB_PASSWORD": "pw-Zq8v1x",
        "DB_USER": "app-user",
        "DB_PORT": "5432",
        "API_TOKEN": "tok-9f8e7d6c",
    }
    assert calls == ["BatchGetSecretValue"]


def test_every_failure_reported_together(seeded: AwsSettings) -> None:
    refs = [
        ref("API_TOKEN", "batch-prod/api-token"),
        ref("GONE", "batch-prod/missing"),
        ref("NO_KEY", "batch-prod/db", "nope"),
        ref("NOT_JSON", "batch-prod/plain", "field"),
        ref("DB_PASSWORD", "batch-prod/db", "password"),
    ]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, seeded)
    assert failures_of(excinfo) == {
        "GONE": "not found",
        "NO_KEY": "no key 'nope' in the secret",
        "NOT_JSON": "not JSON",
    }
    assert str(excinfo.value) == (
        "cannot fetch 3 secrets: GONE (batch-prod/missing): not found; "
        "NO_KEY (batch-prod/db#nope): no key 'nope' in the secret; "
        "NOT_JSON (batch-prod/plain#field): not JSON"
    )


def test_ssm_secure_string_decrypted(seeded: AwsSettings) -> None:
    refs = [
        ref("PARTNER_KEY", "/batch/prod/partner-key", store="ssm"),
        ref("REGION", "/batch/prod/region", store="ssm"),
        ref("API_TOKEN", "batch-prod/api-token"),
    ]
    assert fetch_aws(refs, seeded) == {
        "PARTNER_KEY": "partner-Kx71q",
        "REGION": "eu-west-1",
        "API_TOKEN": "tok-9f8e7d6c",
    }


def test_missing_parameter(seeded: AwsSettings) -> None:
    refs = [
        ref("PARTNER_KEY", "/batch/prod/partner-key", store="ssm"),
        ref("NOPE", "/batch/prod/nope", store="ssm"),
    ]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, seeded)
    assert excinfo.value.failures == (SecretFailure("NOPE", "ssm:/batch/prod/nope", "not found"),)


def test_many_ids_are_chunked(aws: AwsSettings, monkeypatch: pytest.MonkeyPatch) -> None:
    sm = make_client(SM, aws)
    for number in range(23):
        sm.create_secret(Name=f"bulk/{number}", SecretString=f"bulk-value-{number}")
    calls = count_calls(monkeypatch)
    refs = [ref(f"V{number}", f"bulk/{number}") for number in range(23)]
    refs.append(ref("MISSING", "bulk/missing"))
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, aws)
    assert failures_of(excinfo) == {"MISSING": "not found"}
    assert calls == ["BatchGetSecretValue", "BatchGetSecretValue"]


def deny_batch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make BatchGetSecretValue answer AccessDeniedException; record operations called."""
    from botocore.awsrequest import AWSResponse

    class Body:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield b'{"__type": "AccessDeniedException", "message": "not allowed"}'

    calls: list[str] = []

    def deny(request: Any, **_: Any) -> Optional[AWSResponse]:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        calls.append(target.rpartition(".")[2])
        if target.endswith("BatchGetSecretValue"):
            return AWSResponse(request.url, 400, {}, Body())
        return None

    def denying_client(service: str, settings: AwsSettings) -> Any:
        client = make_client(service, settings)
        client.meta.events.register("before-send", deny, unique_id="deny")
        return client

    monkeypatch.setattr(secretaws, "make_client", denying_client)
    return calls


def test_denied_batch_falls_back_to_one_call_per_id(
    seeded: AwsSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = deny_batch(monkeypatch)
    refs = [
        ref("API_TOKEN", "batch-prod/api-token"),
        ref("DB_PASSWORD", "batch-prod/db", "password"),
        ref("GONE", "batch-prod/missing"),
    ]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, seeded)
    assert failures_of(excinfo) == {"GONE": "not found"}
    assert calls[0] == "BatchGetSecretValue"
    assert sorted(calls[1:]) == ["GetSecretValue"] * 3


def test_stopped_server_is_unreachable(aws_env: None) -> None:
    # moto's state is per process, shared with the module's server: nothing to seed.
    with moto_running() as url:
        pass  # started and stopped: nothing listens there now
    settings = AwsSettings(region="us-east-1", endpoint_url=url, max_attempts=1)
    refs = [
        ref("API_TOKEN", "batch-prod/api-token"),
        ref("DB_PASSWORD", "batch-prod/db", "password"),
        ref("PARTNER_KEY", "/batch/prod/partner-key", store="ssm"),
    ]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, settings)
    assert failures_of(excinfo) == dict.fromkeys(
        ["API_TOKEN", "DB_PASSWORD", "PARTNER_KEY"], "unreachable"
    )


def test_no_region_and_no_credentials(
    aws_env: None, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = [ref("API_TOKEN", "batch-prod/api-token")]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, AwsSettings(endpoint_url=moto_url))
    assert failures_of(excinfo) == {"API_TOKEN": "no AWS region configured"}
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_aws(refs, AwsSettings(region="us-east-1", endpoint_url=moto_url))
    assert failures_of(excinfo) == {"API_TOKEN": "no AWS credentials"}


# --- the file backend --------------------------------------------------------------

SECRETS_TOML = """\
"batch-prod/api-token" = "tok-9f8e7d6c"
"batch-prod/db" = { password = "pw-Zq8v1x", username = "app-user", port = 5432 }
"batch-prod/json" = '{"inner": "plain-Hv2w"}'
"ssm:/batch/prod/partner-key" = "partner-Kx71q"
"""


def write_secrets(tmp_path: Path, text: str = SECRETS_TOML, mode: int = 0o600) -> str:
    """Write alice's secrets file with ``mode``; return the template naming it."""
    path = secretledger.secret_store(tmp_path / "alice.toml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    path.chmod(mode)
    return str(tmp_path / "{user}.toml")


def fetch_file(refs: Sequence[Mapping[str, Any]], template: str) -> dict[str, str]:
    """fetch_secrets with the file backend for user alice."""
    return fetch_secrets(refs, "file", file_template=template, user="alice", aws=AwsSettings())


FILE_REFS = [
    ref("API_TOKEN", "batch-prod/api-token"),
    ref("DB_PASSWORD", "batch-prod/db", "password"),
    ref("PARTNER_KEY", "/batch/prod/partner-key", store="ssm"),
]


def test_file_good(tmp_path: Path) -> None:
    refs = [
        *FILE_REFS,
        ref("DB_PORT", "batch-prod/db", "port"),
        ref("INNER", "batch-prod/json", "inner"),
    ]
    assert fetch_file(refs, write_secrets(tmp_path)) == {
        "API_TOKEN": "tok-9f8e7d6c",
        "DB_PASSWORD": "pw-Zq8v1x",
        "PARTNER_KEY": "partner-Kx71q",
        "DB_PORT": "5432",
        "INNER": "plain-Hv2w",
    }


def test_file_table_and_key_failures(tmp_path: Path) -> None:
    refs = [
        ref("NO_KEY", "batch-prod/db", "nope"),
        ref("NOT_JSON", "batch-prod/api-token", "field"),
        ref("GONE", "batch-prod/missing"),
        ref("DB_PASSWORD", "batch-prod/db", "password"),
    ]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(refs, write_secrets(tmp_path))
    assert failures_of(excinfo) == {
        "NO_KEY": "no key 'nope' in the secret",
        "NOT_JSON": "not JSON",
        "GONE": "not found",
    }


def test_file_readable_by_others_refused(tmp_path: Path) -> None:
    template = write_secrets(tmp_path, mode=0o644)
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(FILE_REFS, template)
    reason = f"secrets file {tmp_path / 'alice.toml'} is readable by group/others (chmod 600)"
    assert failures_of(excinfo) == dict.fromkeys(
        ["API_TOKEN", "DB_PASSWORD", "PARTNER_KEY"], reason
    )


def test_file_group_writable_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(FILE_REFS[:1], write_secrets(tmp_path, mode=0o620))
    assert "group/other permissions 0620 (chmod 600)" in failures_of(excinfo)["API_TOKEN"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_file_owned_by_someone_else_refused(tmp_path: Path) -> None:
    template = write_secrets(tmp_path)
    os.chown(tmp_path / "alice.toml", 54321, 54321)
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(FILE_REFS[:1], template)
    assert failures_of(excinfo) == {
        "API_TOKEN": f"secrets file {tmp_path / 'alice.toml'} is owned by uid 54321, "
        "not root or uid 0"
    }


def test_file_missing(tmp_path: Path) -> None:
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(FILE_REFS, str(tmp_path / "{user}.toml"))
    reason = f"secrets file {tmp_path / 'alice.toml'} does not exist"
    assert set(failures_of(excinfo).values()) == {reason}
    assert len(excinfo.value.failures) == 3


def test_file_invalid_toml_names_line_not_content(tmp_path: Path) -> None:
    template = write_secrets(tmp_path, text='"a" = "tok-9f8e7d6c"\n"b" = pw-Zq8v1x\n')
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_file(FILE_REFS[:1], template)
    assert failures_of(excinfo)["API_TOKEN"].endswith("is not valid TOML (line 2)")


def test_unknown_backend_and_store() -> None:
    refs = [ref("A", "x"), ref("B", "y", store="vault")]
    with pytest.raises(SecretsUnavailable) as excinfo:
        fetch_secrets(refs, "ldap", file_template="", user="u", aws=AwsSettings())
    assert failures_of(excinfo) == {
        "A": "unknown secrets backend 'ldap'",
        "B": "unknown secret store 'vault'",
    }


def test_no_secrets_imports_neither_boto3_nor_tomllib() -> None:
    code = (
        "import sys\n"
        "from cronsync.host.awsclients import AwsSettings\n"
        "from cronsync.secrets.fetch import fetch_secrets\n"
        "assert fetch_secrets([], 'aws', file_template='', user='u', aws=AwsSettings()) == {}\n"
        "assert fetch_secrets([], 'file', file_template='', user='u', aws=AwsSettings()) == {}\n"
        "loaded = {'boto3', 'botocore', 'tomllib', 'tomli'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
