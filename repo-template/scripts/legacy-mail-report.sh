#!/usr/bin/env bash
# RETIRED (see jobs/legacy-mail-report.toml): the Monday e-mail with last week's
# review volume per category. Kept only until the retention date in the job file.
#
# Usage: legacy-mail-report.sh --to ADDRESS [--dry-run]
#
# Environment: DB_HOST, DB_PASSWORD (required); DB_PORT, DB_USER, DB_NAME;
#              REPORT_FROM (default batch-reports@example.com)
set -euo pipefail

readonly PROG=${0##*/}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

to=''
dry_run=false
while (($#)); do
    case $1 in
        --to)
            (($# >= 2)) || die "--to needs a value"
            to=$2
            shift 2
            ;;
        --dry-run)
            dry_run=true
            shift
            ;;
        *) die "unknown argument: $1 (usage: $PROG --to ADDRESS [--dry-run])" ;;
    esac
done
[[ $to =~ ^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$ ]] || die "--to must be one e-mail address, got: '${to}'"
from=${REPORT_FROM:-batch-reports@example.com}

: "${DB_HOST:?DB_HOST is not set}"
: "${DB_PASSWORD:?DB_PASSWORD is not set (cronsync loads it from Secrets Manager)}"
db_name=${DB_NAME:-reviews_production}
[[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "DB_NAME has unexpected characters: $db_name"
command -v mysql >/dev/null 2>&1 || die "mysql client not found in PATH"

# The last complete Monday-to-Monday week before today.
week_end=$(date -d "-$(($(date +%u) - 1)) days" +%F)
week_start=$(date -d "${week_end} -7 days" +%F)

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/${PROG%.sh}.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
password=${DB_PASSWORD//\\/\\\\}
password=${password//\"/\\\"}
cat >"$work/client.cnf" <<CNF
[client]
host=${DB_HOST}
port=${DB_PORT:-3306}
user=${DB_USER:-batch_readonly}
password="${password}"
CNF

mysql --defaults-extra-file="$work/client.cnf" --table "$db_name" >"$work/table.txt" <<SQL
SELECT c.name AS category, COUNT(*) AS reviews, ROUND(AVG(r.rating), 2) AS avg_rating
  FROM reviews r
  JOIN businesses b ON b.id = r.business_id
  JOIN categories c ON c.id = b.primary_category_id
 WHERE r.status = 'published'
   AND r.published_at >= '${week_start}' AND r.published_at < '${week_end}'
 GROUP BY c.name
 ORDER BY reviews DESC;
SQL

{
    printf 'From: %s\nTo: %s\n' "$from" "$to"
    printf 'Subject: Review volume, week of %s\n' "$week_start"
    printf 'Content-Type: text/plain; charset=UTF-8\n\n'
    printf 'Published reviews per category, %s to %s (UTC):\n\n' "$week_start" "$week_end"
    cat "$work/table.txt"
} >"$work/mail.txt"

if [[ $dry_run == true ]]; then
    cat "$work/mail.txt"
    exit 0
fi
command -v sendmail >/dev/null 2>&1 || die "sendmail not found in PATH"
sendmail -oi -f "$from" -- "$to" <"$work/mail.txt"
printf '%s: sent report for week of %s to %s\n' "$PROG" "$week_start" "$to"
