"""Finding and masking inline secrets in cron commands (cronsync.secretscan.scan and the
detectors and kinds behind it)."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cronsync.secretscan import kinds as secretkinds
from cronsync.secretscan.kinds import (
    AUTH_HEADER,
    AWS_ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY,
    ENV_ASSIGNMENT,
    FORM_FIELD,
    KNOWN_TOKEN,
    PASSWORD_FLAG,
    TOKEN_FLAG,
    URL_CREDENTIALS,
    URL_PARAMETER,
    USER_PASSWORD,
    WEBHOOK_URL,
)
from cronsync.secretscan.names import is_secret_assignment, is_secret_name, is_secret_parameter
from cronsync.secretscan.scan import find_secrets, mask_env_value, mask_secrets

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
    # a name ending in KEY holds a secret unless its value is a path, file, URL, public key
    ("STRIPE_KEY=sk_live_4eC39HqLyjWDarjtT1zdp7dc ./charge.sh", ENV_ASSIGNMENT,
     "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "STRIPE_KEY=*** ./charge.sh", "STRIPE_KEY"),
    ("MAILGUN_KEY=key-3ax6xnjp29jd6fds4gc373sgvjxteol0 ./send", ENV_ASSIGNMENT,
     "key-3ax6xnjp29jd6fds4gc373sgvjxteol0", "MAILGUN_KEY=*** ./send", "MAILGUN_KEY"),
    ("LICENSE_KEY=ABCD-EFGH-1234 ./activate", ENV_ASSIGNMENT, "ABCD-EFGH-1234",
     "LICENSE_KEY=*** ./activate", "LICENSE_KEY"),
    ("ENCRYPTION_KEY=/9j4kLqPz8Xv2Rt7Wn5Mb3Hc1Ys6Fd0Ga== ./x", ENV_ASSIGNMENT,
     "/9j4kLqPz8Xv2Rt7Wn5Mb3Hc1Ys6Fd0Ga==", "ENCRYPTION_KEY=*** ./x", "ENCRYPTION_KEY"),
    ("php artisan x APP_KEY=base64:c2VjcmV0a2V5", ENV_ASSIGNMENT, "base64:c2VjcmV0a2V5",
     "php artisan x APP_KEY=***", "APP_KEY"),
    # a DSN with a key in it, a webhook URL in a webhook-named variable: the whole value
    ("SENTRY_DSN=https://k3y0@o1.ingest.sentry.io/5 ./x", ENV_ASSIGNMENT,
     "https://k3y0@o1.ingest.sentry.io/5", "SENTRY_DSN=*** ./x", "SENTRY_DSN"),
    ("SLACK_WEBHOOK=https://hooks.slack.com/services/T0/B0/Xy1 ./x", ENV_ASSIGNMENT,
     "https://hooks.slack.com/services/T0/B0/Xy1", "SLACK_WEBHOOK=*** ./x", "SLACK_WEBHOOK"),
    ("TEAMS_WEBHOOK_URL='https://example.com/hook/abc' ./x", ENV_ASSIGNMENT,
     "https://example.com/hook/abc", "TEAMS_WEBHOOK_URL='***' ./x", "TEAMS_WEBHOOK_URL"),
    ('docker run --rm -e "DB_PASSWORD=dockpw1" app', ENV_ASSIGNMENT, "dockpw1",
     'docker run --rm -e "DB_PASSWORD=***" app', "DB_PASSWORD"),
    # webhook and bot URLs carry their secret in the path
    ("curl -d x https://hooks.slack.com/services/T000/B000/XXXXXXXX", WEBHOOK_URL,
     "T000/B000/XXXXXXXX", "curl -d x https://hooks.slack.com/services/***",
     "SLACK_WEBHOOK_PATH"),
    ("curl 'https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJx/sendMessage?chat_id=1'",
     WEBHOOK_URL, "123456789:AAHdqTcvCH1vGWJx",
     "curl 'https://api.telegram.org/bot***/sendMessage?chat_id=1'", "TELEGRAM_BOT_TOKEN"),
    ("curl https://tg.example.com/proxy/bot42:AAsecretY/getMe", WEBHOOK_URL, "42:AAsecretY",
     "curl https://tg.example.com/proxy/bot***/getMe", "TELEGRAM_BOT_TOKEN"),
    ("curl -d '{}' https://discord.com/api/webhooks/1234567/tok-EN_x1", WEBHOOK_URL,
     "tok-EN_x1", "curl -d '{}' https://discord.com/api/webhooks/1234567/***",
     "DISCORD_WEBHOOK_TOKEN"),
    ("curl -X POST https://chat.example.org/hooks/xq8zk3n5f7a9b1c2d4e6g8h0ij/", WEBHOOK_URL,
     "xq8zk3n5f7a9b1c2d4e6g8h0ij", "curl -X POST https://chat.example.org/hooks/***/",
     "CHAT_WEBHOOK_PATH"),
    # request data and query parameters with a secret name
    ('curl -d "token=tokval1234" https://example.com/x', FORM_FIELD, "tokval1234",
     'curl -d "token=***" https://example.com/x', "TOKEN"),
    ("curl --data 'user=bob&api_key=apikeyval99&x=1' https://e/x", FORM_FIELD, "apikeyval99",
     "curl --data 'user=bob&api_key=***&x=1' https://e/x", "API_KEY"),
    ("curl -F password=formpw777 -F 'file=@/tmp/r.csv' https://e/x", FORM_FIELD, "formpw777",
     "curl -F password=*** -F 'file=@/tmp/r.csv' https://e/x", "PASSWORD"),
    ("curl -F 'secret=fs1;type=text/plain' https://e/x", FORM_FIELD, "fs1",
     "curl -F 'secret=***;type=text/plain' https://e/x", "SECRET"),
    ("wget -q --post-data='login=me&passwd=wgetpw1' https://e/x", FORM_FIELD, "wgetpw1",
     "wget -q --post-data='login=me&passwd=***' https://e/x", "PASSWD"),
    ("""curl -d '{"api_key": "jsonkey1", "n": 2}' https://e/x""", FORM_FIELD, "jsonkey1",
     """curl -d '{"api_key": "***", "n": 2}' https://e/x""", "API_KEY"),
    ('curl -d "{\\"token\\":\\"jsontok2\\"}" https://e/x', FORM_FIELD, "jsontok2",
     'curl -d "{\\"token\\":\\"***\\"}" https://e/x', "TOKEN"),
    ('wget -qO- "https://example.com/cron.php?cron_key=cronkeyval55"', URL_PARAMETER,
     "cronkeyval55", 'wget -qO- "https://example.com/cron.php?cron_key=***"', "CRON_KEY"),
    ("curl 'https://e/x?a=1&X-Amz-Signature=5ig9&b=2'", URL_PARAMETER, "5ig9",
     "curl 'https://e/x?a=1&X-Amz-Signature=***&b=2'", "X_AMZ_SIGNATURE"),
    ("curl 'https://e/x?apiKey=camel123'", URL_PARAMETER, "camel123",
     "curl 'https://e/x?apiKey=***'", "APIKEY"),
    # values shaped like a service's credential, wherever they stand
    ("/opt/bill.sh sk_live_4eC39HqLyjWDarjtT1zdp7dc", KNOWN_TOKEN,
     "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "/opt/bill.sh ***", "STRIPE_SECRET_KEY"),
    ("/opt/bill.sh --restricted rk_live_abcdefghijklmn", KNOWN_TOKEN, "rk_live_abcdefghijklmn",
     "/opt/bill.sh --restricted ***", "STRIPE_SECRET_KEY"),
    ("notify xoxb-1234567890-abcdefghij '#ops'", KNOWN_TOKEN, "xoxb-1234567890-abcdefghij",
     "notify *** '#ops'", "SLACK_TOKEN"),
    ("gh-sync ghp_abcdefghijklmnopqrstuvwxyz012345", KNOWN_TOKEN,
     "ghp_abcdefghijklmnopqrstuvwxyz012345", "gh-sync ***", "GITHUB_TOKEN"),
    ("sync.sh glpat-abcdefghij0123456789 main", KNOWN_TOKEN, "glpat-abcdefghij0123456789",
     "sync.sh *** main", "GITLAB_TOKEN"),
    ("geo.py AIzaSyA1234567890abcdefghijklmnopqrstuv", KNOWN_TOKEN,
     "AIzaSyA1234567890abcdefghijklmnopqrstuv", "geo.py ***", "GOOGLE_API_KEY"),
    ("mail.py SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
     KNOWN_TOKEN, "SG.abcdefghijklmnopqrstuv.abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
     "mail.py ***", "SENDGRID_API_KEY"),
    ("call eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", KNOWN_TOKEN,
     "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N", "call ***",
     "JWT"),
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
    # KEY-named paths, files, URLs and public keys; indexes and lookups named KEY
    "SSH_KEY=/root/.ssh/id_rsa rsync -e ssh /srv b:/c",
    "SSH_KEY=~/.ssh/id_ed25519 ./deploy.sh",
    "SSH_KEY=id_rsa ./deploy.sh",
    "TLS_KEY=server.key ./renew",
    "PRIVATE_KEY=/etc/ssl/private/site.key ./renew",
    "S3_KEY=backups/db.sql.gz ./upload",
    "GPG_KEY=https://example.com/release.asc ./verify",
    "KEY_FILE=/etc/app.key ./x",
    'PUBLIC_KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc user@host" ./x',
    "STRIPE_PUBLISHABLE_KEY=pk_live_abcdefghijklmnop ./x",
    "SORT_KEY=created_at ./report",
    "GPG_KEY_ID=ABCDEF0123456789 ./x",
    "php /var/www/cron.php --key-file=/etc/app.key",
    "ssh -o StrictHostKeyChecking=no -o PasswordAuthentication=no host uptime",
    "gpg --recv-keys 0xABCDEF0123456789",
    # URLs without credentials, and web paths that only look like hooks
    "DATABASE_URL=postgres://db/app ./x",
    "REPO_URL=https://deploy@github.com/org/repo.git ./x",
    "SENTRY_DSN=https://o1.ingest.sentry.io/1 ./x",
    "WEBHOOK_ENABLED=1 ./x",
    "curl -fsS -m 10 https://hc-ping.com/eb095278-f28d-448d-87fb-7b75c171a6aa",
    'curl -s "https://example.com/search?q=x&keyword=cron&author=bob&design=1"',
    'curl -s "https://example.com/api?token_type=bearer&key_id=12&public_key=abc"',
    "wget -q https://example.com/download/keys/release.asc",
    "curl https://api.github.com/repos/o/r/hooks/12345678",
    "curl -X POST https://example.com/webhooks/deployment-notifications",
    "git clone https://github.com/org/webhooks-demo.git",
    "/usr/share/git-core/templates/hooks/pre-commit",
    # request data without a secret, files, and look-alike words
    "curl -F 'file=@/var/backups/db.tar.gz' -F 'token=@/etc/token' https://e/upload",
    "curl -d @/etc/payload.json -d 'name=x&count=3' https://e/x",
    """curl -d '{"name": "job", "keys": "a", "token": "$TOKEN"}' https://e/x""",
    "cd /srv/sk_test_runner && ./run key-rotation",
    "openssl genrsa -out /etc/ssl/private/key.pem 2048",
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
        "spring.datasource.password", "api-key", "STRIPE_KEY", "MAILGUN_KEY", "APIKEY", "apiKey",
    ],
)  # fmt: skip
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "PWD", "OLDPWD", "PATH", "HOME", "MAILTO", "SHELL", "PASSWORD_FILE", "SECRET_NAME",
        "TOKEN_URL", "AWS_ACCESS_KEY_ID", "SSH_KEY_PATH", "TOKENIZERS_PARALLELISM", "BYPASS",
        "KEYBOARD", "COMPASS_DIR", "DB_USER", "PUBLIC_KEY", "STRIPE_PUBLISHABLE_KEY", "SORT_KEY",
        "KEY_FILE", "MONKEY", "KEYS",
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


# --- NAME=value: the value decides for KEY, DSN and webhook names ---------------------


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", True),
        ("MAILGUN_KEY", "key-3ax6xnjp29jd6fds4gc373sgvjxteol0", True),
        ("KEY", "abc123", True),
        ("SSH_KEY", "/root/.ssh/id_rsa", False),
        ("SSH_KEY", "~/.ssh/id_ed25519", False),
        ("SSH_KEY", "id_ecdsa", False),
        ("API_KEY", "./api.key", False),
        ("API_KEY", "keys/prod.json", False),
        ("API_KEY", "https://vault.example.com/v1/key", False),
        ("API_KEY", "/Kq8vZ2xPw9LmN4tRb7Yc", True),  # base64 starts with / too
        ("API_KEY", "$API_KEY_FROM_ENV", False),
        ("API_KEY", "", False),
        ("DEPLOY_KEY", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIabc ci@example", False),
        ("DEPLOY_KEY", "-----BEGIN OPENSSH PRIVATE KEY-----", True),
        ("PUBLIC_KEY", "anything", False),
        ("CACHE_KEY", "v2", False),
        ("SENTRY_DSN", "https://abc@o1.ingest.sentry.io/1", True),
        ("SENTRY_DSN", "https://o1.ingest.sentry.io/1", False),
        ("SLACK_WEBHOOK", "https://hooks.slack.com/services/T0/B0/X", True),
        ("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/X", True),
        ("ALERT_HOOK_URL", "https://example.com/h/1", True),
        ("WEBHOOK_ENABLED", "yes", False),
        ("STATUS_URL", "https://example.com/status", False),
        ("DB_PASSWORD", "/not/a/path/but/a/password", True),  # only KEY names look
    ],
)
def test_is_secret_assignment(name: str, value: str, secret: bool) -> None:
    assert is_secret_assignment(name, value) is secret


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("key", True), ("cron_key", True), ("apiKey", True), ("access_token", True),
        ("sig", True), ("X-Amz-Signature", True), ("auth", True), ("client_secret", True),
        ("pass", True), ("keyword", False), ("author", False), ("design", False),
        ("token_type", False), ("key_id", False), ("public_key", False), ("q", False),
        ("signed", False), ("monkey", False),
    ],
)  # fmt: skip
def test_is_secret_parameter(name: str, secret: bool) -> None:
    assert is_secret_parameter(name) is secret


def test_env_lines_with_the_probe_values_are_masked_whole() -> None:
    assert mask_env_value("STRIPE_KEY", "sk_live_4eC39HqLyjWDarjtT1zdp7dc") == "***"
    assert mask_env_value("MAILGUN_KEY", "key-3ax6xnjp29jd6fds4gc373sgvjxteol0") == "***"
    assert mask_env_value("SENTRY_DSN", "https://k3y@o1.ingest.sentry.io/1") == "***"
    hook = "https://hooks.slack.com/services/T0AAAA/B0BBBB/XXXXXXXX"
    assert mask_env_value("SLACK_WEBHOOK", hook) == "***"
    assert mask_env_value("SLACK_WEBHOOK_URL", hook) == "***"
    assert mask_env_value("NOTIFY", hook) == "https://hooks.slack.com/services/***"
    assert mask_env_value("BILLING", "sk_live_4eC39HqLyjWDarjtT1zdp7dc") == "***"
    assert mask_env_value("SSH_KEY", "/root/.ssh/id_rsa") == "/root/.ssh/id_rsa"
    assert mask_env_value("KEY_FILE", "/etc/k") == "/etc/k"
    assert mask_env_value("STATUS_URL", "https://e/s") == "https://e/s"


KNOWN_SHAPES = [
    ("sk_live_", string.ascii_letters + string.digits, 24),
    ("sk_test_", string.ascii_letters + string.digits, 24),
    ("rk_live_", string.ascii_letters + string.digits, 24),
    ("xoxb-", string.digits + "-" + string.ascii_letters, 40),
    ("xoxp-", string.digits + "-" + string.ascii_letters, 40),
    ("ghp_", string.ascii_letters + string.digits, 36),
    ("github_pat_", string.ascii_letters + string.digits + "_", 60),
    ("glpat-", string.ascii_letters + string.digits + "_-", 20),
    ("AKIA", string.ascii_uppercase + string.digits, 16),
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(KNOWN_SHAPES).flatmap(
        lambda shape: st.text(alphabet=shape[1], min_size=shape[2], max_size=shape[2]).map(
            lambda tail: shape[0] + tail
        )
    ),
    st.sampled_from(
        [
            "/opt/x.sh {}", "notify --channel ops {} -v", "X={} ./run", "curl -H 'X: {}' h",
            "echo {} | tee /tmp/t", "curl 'https://e/x?q={}'", "sh -c 'tool {}'",
            'curl -d "{{\\"v\\": \\"{}\\"}}" h', "curl https://{}@git.example.com/r",
        ]
    ),
)  # fmt: skip
def test_known_token_shapes_never_survive_masking_wherever_they_stand(
    token: str, template: str
) -> None:
    assume(not token.endswith("-"))
    command = template.format(token)
    assert token not in mask_secrets(command), command
