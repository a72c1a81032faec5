"""Finding and masking inline secrets in cron commands (cronsync.secretscan and the
detectors and kinds behind it)."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cronsync import secretkinds
from cronsync.secretkinds import (
    AUTH_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    ENV_ASSIGNMENT,
    PASSWORD_FLAG,
    TOKEN_FLAG,
    URL_CREDENTIALS,
    URL_PARAMETER,
    USER_PASSWORD,
    is_secret_name,
)
from cronsync.secretscan import find_secrets, mask_env_value, mask_secrets

# (command, kind, secret value, masked command, suggested env name)
CASES = [
    # env assignments with secret-like names
    ("PGPASSWORD=pgpw1 pg_dump -h db app", ENV_ASSIGNMENT, "pgpw1",
     "PGPASSWORD=*** pg_dump -h db app", "PGPASSWORD"),
    ("export DB_PASSWORD='s3 cret'; /opt/run.sh", ENV_ASSIGNMENT, "s3 cret",
     "export DB_PASSWORD='***'; /opt/run.sh", "DB_PASSWORD"),
    ("cd /srv && API_TOKEN=tok42 ./notify.sh", ENV_ASSIGNMENT, "tok42",
     "cd /srv && API_TOKEN=*** ./notify.sh", "API_TOKEN"),
    ("env MYSQL_PWD=mypw9 mysql shop", ENV_ASSIGNMENT, "mypw9",
     "env MYSQL_PWD=*** mysql shop", "MYSQL_PWD"),
    ("java -Dspring.datasource.password=jdbcpw -jar app.jar", ENV_ASSIGNMENT, "jdbcpw",
     "java -Dspring.datasource.password=*** -jar app.jar", "SPRING_DATASOURCE_PASSWORD"),
    ('sqlcmd -Q x -d "Server=db;Uid=sa;Pwd=odbcpw;"', ENV_ASSIGNMENT, "odbcpw",
     'sqlcmd -Q x -d "Server=db;Uid=sa;Pwd=***;"', "PWD"),
    ("mount -t cifs //nas/x /mnt -o username=bk,password=cifspw,uid=0", ENV_ASSIGNMENT, "cifspw",
     "mount -t cifs //nas/x /mnt -o username=bk,password=***,uid=0", "PASSWORD"),
    # password and token flags
    ("mysqldump -uroot -pmypass1 shop > /b/shop.sql", PASSWORD_FLAG, "mypass1",
     "mysqldump -uroot -p*** shop > /b/shop.sql", "MYSQL_PWD"),
    ("mysql -h db -p'quoted pw' -e 'select 1'", PASSWORD_FLAG, "quoted pw",
     "mysql -h db -p'***' -e 'select 1'", "MYSQL_PWD"),
    ("/usr/bin/mysqladmin --password=adm1n flush-logs", PASSWORD_FLAG, "adm1n",
     "/usr/bin/mysqladmin --password=*** flush-logs", "MYSQLADMIN_PASSWORD"),
    ("backup-tool --password hunter2 --verbose", PASSWORD_FLAG, "hunter2",
     "backup-tool --password *** --verbose", "BACKUP_TOOL_PASSWORD"),
    ("wget -q --ftp-password=ftppw ftp://files/x", PASSWORD_FLAG, "ftppw",
     "wget -q --ftp-password=*** ftp://files/x", "WGET_FTP_PASSWORD"),
    ("notify --token tok-123 --channel ops", TOKEN_FLAG, "tok-123",
     "notify --token *** --channel ops", "NOTIFY_TOKEN"),
    ("client --api-key=k3y --x", TOKEN_FLAG, "k3y", "client --api-key=*** --x", "CLIENT_API_KEY"),
    ("redis-cli -h cache -p 6380 -a redispw BGSAVE", PASSWORD_FLAG, "redispw",
     "redis-cli -h cache -p 6380 -a *** BGSAVE", "REDISCLI_AUTH"),
    ("sshpass -p sshpw ssh -p 2222 bk@nas 'df -h'", PASSWORD_FLAG, "sshpw",
     "sshpass -p *** ssh -p 2222 bk@nas 'df -h'", "SSHPASS"),
    ("mongodump -u admin -p mongopw --out /b", PASSWORD_FLAG, "mongopw",
     "mongodump -u admin -p *** --out /b", "MONGODUMP_PASSWORD"),
    ("ldapsearch -x -D cn=admin -w ldappw -b dc=x", PASSWORD_FLAG, "ldappw",
     "ldapsearch -x -D cn=admin -w *** -b dc=x", "LDAP_PASSWORD"),
    ("zip -P zippw -r /b/x.zip /srv", PASSWORD_FLAG, "zippw",
     "zip -P *** -r /b/x.zip /srv", "ZIP_PASSWORD"),
    ("openssl enc -aes-256-cbc -pass pass:sslpw -in a -out b", PASSWORD_FLAG, "sslpw",
     "openssl enc -aes-256-cbc -pass pass:*** -in a -out b", "OPENSSL_PASSPHRASE"),
    ("docker login -u ci -p regpw registry.example.com", PASSWORD_FLAG, "regpw",
     "docker login -u ci -p *** registry.example.com", "DOCKER_PASSWORD"),
    ("keytool -list -keystore ks.jks -storepass kspw", PASSWORD_FLAG, "kspw",
     "keytool -list -keystore ks.jks -storepass ***", "KEYTOOL_STOREPASS"),
    ("nice -n 10 sudo -u app mysqldump -pnested db", PASSWORD_FLAG, "nested",
     "nice -n 10 sudo -u app mysqldump -p*** db", "MYSQL_PWD"),
    ("/bin/sh -c 'mysql -pinner db'", PASSWORD_FLAG, "inner",
     "/bin/sh -c 'mysql -p*** db'", "MYSQL_PWD"),
    # user:password pairs
    ("curl -s -u admin:curlpw https://ci/api", USER_PASSWORD, "curlpw",
     "curl -s -u admin:*** https://ci/api", "CURL_PASSWORD"),
    ("curl --user=bot:botpw https://x", USER_PASSWORD, "botpw",
     "curl --user=bot:*** https://x", "CURL_PASSWORD"),
    ("lftp -u mirror,lftppw sftp://files", USER_PASSWORD, "lftppw",
     "lftp -u mirror,*** sftp://files", "LFTP_PASSWORD"),
    ("smbclient //nas/share -U backup\\%smbpw -c ls", USER_PASSWORD, "smbpw",
     "smbclient //nas/share -U backup\\%*** -c ls", "SMB_PASSWORD"),
    ("sqlplus -s scott/tiger@ORCL @/opt/sql/x.sql", USER_PASSWORD, "tiger",
     "sqlplus -s scott/***@ORCL @/opt/sql/x.sql", "ORACLE_PASSWORD"),
    # credentials in URLs
    ("git pull https://deploy:gitpw@git.example.com/app.git", URL_CREDENTIALS, "gitpw",
     "git pull https://deploy:***@git.example.com/app.git", "GIT_PASSWORD"),
    ("psql postgresql://app:pgurlpw@db1/app -c 'vacuum'", URL_CREDENTIALS, "pgurlpw",
     "psql postgresql://app:***@db1/app -c 'vacuum'", "PGPASSWORD"),
    ("git clone https://ghp_abcdefghijklmnopqrstuvwxyz0123@github.com/o/r", URL_CREDENTIALS,
     "ghp_abcdefghijklmnopqrstuvwxyz0123", "git clone https://***@github.com/o/r",
     "GITHUB_TOKEN"),
    ('curl "https://hooks.example.com/x?access_token=qtok&room=1"', URL_PARAMETER, "qtok",
     'curl "https://hooks.example.com/x?access_token=***&room=1"', "ACCESS_TOKEN"),
    ("curl 'https://maps.example.com/api?key=AIzaExample&q=x'", URL_PARAMETER, "AIzaExample",
     "curl 'https://maps.example.com/api?key=***&q=x'", "KEY"),
    # AWS
    ("aws configure set aws_access_key_id AKIAIOSFODNN7EXAMPLE", AWS_ACCESS_KEY_ID,
     "AKIAIOSFODNN7EXAMPLE", "aws configure set aws_access_key_id ***", "AWS_ACCESS_KEY_ID"),
    ("AWS_ACCESS_KEY_ID=ASIAIOSFODNN7EXAMPLE aws s3 ls", AWS_ACCESS_KEY_ID,
     "ASIAIOSFODNN7EXAMPLE", "AWS_ACCESS_KEY_ID=*** aws s3 ls", "AWS_ACCESS_KEY_ID"),
    ("aws configure set aws_secret_access_key wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     AWS_SECRET_ACCESS_KEY, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "aws configure set aws_secret_access_key ***", "AWS_SECRET_ACCESS_KEY"),
    ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY aws s3 sync a b",
     AWS_SECRET_ACCESS_KEY, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "AWS_SECRET_ACCESS_KEY=*** aws s3 sync a b", "AWS_SECRET_ACCESS_KEY"),
    # headers
    ('curl -H "Authorization: Bearer eyJhbGci.eyJzdWIi.sig" https://api/x', AUTH_HEADER,
     "eyJhbGci.eyJzdWIi.sig", 'curl -H "Authorization: Bearer ***" https://api/x', "API_TOKEN"),
    ("curl -H 'authorization: token ghtok1' https://api.github.com", AUTH_HEADER, "ghtok1",
     "curl -H 'authorization: token ***' https://api.github.com", "API_TOKEN"),
    ('curl -H "X-Api-Key: xkey1" https://api/x', AUTH_HEADER, "xkey1",
     'curl -H "X-Api-Key: ***" https://api/x', "X_API_KEY"),
]  # fmt: skip


@pytest.mark.parametrize(("command", "kind", "value", "masked", "env"), CASES)
def test_each_kind_is_found_with_its_value_span_and_env_name(
    command: str, kind: str, value: str, masked: str, env: str
) -> None:
    findings = find_secrets(command)
    assert [(f.kind, f.value, f.env_name) for f in findings] == [(kind, value, env)]
    assert mask_secrets(command) == masked
    assert value not in mask_secrets(command)
    assert value not in repr(findings)


NOT_SECRETS = [
    "ssh -p 2222 backup@nas uptime",
    "curl -p -x proxy:8080 https://example.com/",
    "pg_dump -p 5432 -h db app",
    "redis-cli -h cache -p 6380 ping",
    "docker run -p 8080:80 nginx",
    "scp -P 2222 a b:c",
    "cd $PWD && ls",
    "PWD=/srv/app ./run.sh",
    "OLDPWD=/tmp ./run.sh",
    "rsync --password-file=/etc/rsync.secret -a /src nas::backup",
    "rsync --password-file /etc/rsync.secret -a /src nas::backup",
    "docker login --password-stdin -u ci registry < /run/pw",
    "pg_dump --no-password -h db app",
    "mysql -p shop < /opt/sql/nightly.sql",
    "mysql --password shop",
    'mysql -p"$MYSQL_PASSWORD" shop',
    "mysqldump --password=$(cat /root/.pw) shop",
    'curl -u "$CI_USER:$CI_PASS" https://ci/api',
    "curl -u admin https://ci/api",
    'curl -H "Authorization: Bearer $TOKEN" https://api/x',
    "SECRET_FILE=/run/secrets/db ./run.sh",
    "DB_PASSWORD_FILE=/run/secrets/db ./run.sh",
    "AWS_SECRET_ARN=arn:aws:secretsmanager:x ./run.sh",
    "TOKENIZERS_PARALLELISM=false python x.py",
    "BYPASS_CACHE=1 ./build",
    "git clone git@github.com:org/repo.git",
    "git clone ssh://git@github.com/org/repo.git",
    "git clone https://user@github.com/org/repo.git",
    "sshpass -f /etc/nas.pw ssh nas uptime",
    "openssl enc -pass env:PASSPHRASE -in a",
    "sqlplus -s / as sysdba @/opt/sql/x.sql",
    "find /tmp -name '*.tmp' -mtime +7 -delete",
    "echo password=",
]


@pytest.mark.parametrize("command", NOT_SECRETS)
def test_look_alikes_are_not_secrets(command: str) -> None:
    assert find_secrets(command) == []
    assert mask_secrets(command) == command


def test_several_secrets_in_one_command_are_all_masked_in_order() -> None:
    command = (
        "PGPASSWORD=a1 pg_dump db | curl -u u:b2 -H 'Authorization: Bearer c3' "
        "https://x:d4@h/up?token=e5"
    )
    findings = find_secrets(command)
    assert [f.value for f in findings] == ["a1", "b2", "c3", "d4", "e5"]
    assert [command[f.start : f.end] for f in findings] == ["a1", "b2", "c3", "d4", "e5"]
    assert mask_secrets(command) == (
        "PGPASSWORD=*** pg_dump db | curl -u u:*** -H 'Authorization: Bearer ***' "
        "https://x:***@h/up?token=***"
    )


def test_secret_after_cron_percent_is_masked_too() -> None:
    command = "mysql -uroot -pab%cd shop"  # cron cuts at %; the mask covers the whole word
    assert mask_secrets(command) == "mysql -uroot -p*** shop"


def test_value_is_unquoted_for_import_and_the_span_keeps_quotes_outside() -> None:
    command = 'tool --password "with space" x'
    (finding,) = find_secrets(command)
    assert finding.value == "with space"
    assert command[finding.start - 1] == '"' and command[finding.end] == '"'


@pytest.mark.parametrize(
    "name",
    [
        "DB_PASSWORD", "PASSWORD", "MYSQL_PWD", "DB_PW", "SMTP_PASS", "SSHPASS", "GPG_PASSPHRASE",
        "API_TOKEN", "GITHUBTOKEN", "CLIENT_SECRET", "SECRET_KEY_BASE", "AWS_SECRET_ACCESS_KEY",
        "API_KEY", "STRIPE_PRIVATE_KEY", "GOOGLE_CREDENTIALS", "REDISCLI_AUTH",
        "spring.datasource.password", "api-key",
    ],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PWD", "OLDPWD", "PATH", "HOME", "MAILTO", "SHELL", "PASSWORD_FILE", "SECRET_NAME",
        "TOKEN_URL", "AWS_ACCESS_KEY_ID", "SSH_KEY_PATH", "TOKENIZERS_PARALLELISM", "BYPASS",
        "KEYBOARD", "COMPASS_DIR", "DB_USER",
    ],
)  # fmt: skip
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_mask_env_value_by_name_and_by_content() -> None:
    assert mask_env_value("DB_PASSWORD", "hunter2") == "***"
    assert mask_env_value("DB_PASSWORD", "") == ""
    assert mask_env_value("DB_PASSWORD", "$FROM_ELSEWHERE") == "$FROM_ELSEWHERE"
    assert mask_env_value("PWD", "/srv/app") == "/srv/app"
    assert (
        mask_env_value("DATABASE_URL", "postgres://app:pw9@db/app") == "postgres://app:***@db/app"
    )


def test_env_name_is_a_valid_variable_name() -> None:
    assert secretkinds.env_name("backup.sh", "password") == "BACKUP_SH_PASSWORD"
    assert secretkinds.env_name("7z", "password") == "X_7Z_PASSWORD"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes_and_spans_are_sane(text: str) -> None:
    findings = find_secrets(text)
    for finding in findings:
        assert 0 <= finding.start < finding.end <= len(text)
    for one, two in zip(findings, findings[1:]):
        assert one.end <= two.start
    masked = mask_secrets(text)
    assert all(f.value not in masked or f.value in "***" for f in findings if len(f.value) > 3)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["mysqldump -p", "--password=", "PGPASSWORD=", "curl -u u:", "-a "]),
    st.text(alphabet=string.ascii_letters + string.digits + "!@^*_+.", min_size=4, max_size=30),
)  # fmt: skip
def test_generated_secret_values_never_survive_masking(prefix: str, value: str) -> None:
    # a secret-named variable set to a switch (USE_TOKEN=true) is left alone on purpose
    assume(not (prefix.endswith("=") and value.lower() in ("true", "false", "none", "null")))
    program = "redis-cli " if prefix == "-a " else ("tool " if prefix.startswith("--") else "")
    command = f"{program}{prefix}{value} --verbose"
    assert value not in mask_secrets(command).replace("--verbose", "")
