#!/usr/bin/env bash
# Success check for nightly-aggregate: cronsync runs it after the job exits 0, and a
# non-zero exit here marks the run failed.
#
# Passes when, for the given day,
#   * every business with a published review that day has a ranking_daily row,
#   * the review counts in ranking_daily add up to the reviews table, and
#   * ranking_scores was recomputed for that day.
#
# Usage: check-aggregate.sh [--date yesterday|today|YYYY-MM-DD]
#
# Environment: the same DB_* variables as scripts/nightly-aggregate.sh.
set -euo pipefail

readonly PROG=${0##*/}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

fail() {
    printf '%s: CHECK FAILED: %s\n' "$PROG" "$*" >&2
    exit 2
}

date_spec=yesterday
while (($#)); do
    case $1 in
        --date)
            (($# >= 2)) || die "--date needs a value"
            date_spec=$2
            shift 2
            ;;
        --date=*)
            date_spec=${1#--date=}
            shift
            ;;
        *) die "unknown argument: $1 (usage: $PROG [--date yesterday|today|YYYY-MM-DD])" ;;
    esac
done

case $date_spec in
    yesterday | today) day=$(date -d "$date_spec" +%F) ;;
    [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9])
        day=$(date -d "$date_spec" +%F 2>/dev/null) || die "invalid date: $date_spec"
        [[ $day == "$date_spec" ]] || die "invalid date: $date_spec"
        ;;
    *) die "--date must be yesterday, today or YYYY-MM-DD, got: $date_spec" ;;
esac

: "${DB_HOST:?DB_HOST is not set}"
: "${DB_PASSWORD:?DB_PASSWORD is not set (cronsync loads it from Secrets Manager)}"
db_name=${DB_NAME:-reviews_${RAILS_ENV:-production}}
[[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "DB_NAME has unexpected characters: $db_name"
command -v mysql >/dev/null 2>&1 || die "mysql client not found in PATH"

umask 077
cnf=$(mktemp "${TMPDIR:-/tmp}/${PROG%.sh}.XXXXXX.cnf")
trap 'rm -f -- "$cnf"' EXIT
# Option-file values are double-quoted; escape backslashes and quotes.
password=${DB_PASSWORD//\\/\\\\}
password=${password//\"/\\\"}
cat >"$cnf" <<CNF
[client]
host=${DB_HOST}
port=${DB_PORT:-3306}
user=${DB_USER:-batch_aggregate}
password="${password}"
CNF

# One row, tab-separated:
#   businesses_reviewed  businesses_ranked  reviews  reviews_counted  scores
result=$(
    mysql --defaults-extra-file="$cnf" --batch --skip-column-names "$db_name" <<SQL
SELECT
  (SELECT COUNT(DISTINCT business_id) FROM reviews
    WHERE status = 'published' AND published_at >= '${day}' AND published_at < '${day}' + INTERVAL 1 DAY),
  (SELECT COUNT(*) FROM ranking_daily WHERE day = '${day}'),
  (SELECT COUNT(*) FROM reviews
    WHERE status = 'published' AND published_at >= '${day}' AND published_at < '${day}' + INTERVAL 1 DAY),
  (SELECT COALESCE(SUM(review_count), 0) FROM ranking_daily WHERE day = '${day}'),
  (SELECT COUNT(*) FROM ranking_scores WHERE computed_for = '${day}');
SQL
)
read -r reviewed ranked reviews counted scores <<<"$result"

printf '%s: %s: %s businesses reviewed, %s ranked; %s reviews, %s counted; %s scores\n' \
    "$PROG" "$day" "$reviewed" "$ranked" "$reviews" "$counted" "$scores"

[[ $reviewed =~ ^[0-9]+$ ]] || fail "unexpected query result: $reviewed"
((reviewed > 0)) || fail "no published reviews on $day: moderation batch or ingestion is broken"
((ranked == reviewed)) || fail "$ranked of $reviewed reviewed businesses have a ranking_daily row for $day"
((counted == reviews)) || fail "ranking_daily counts $counted reviews for $day, reviews table has $reviews"
((scores > 0)) || fail "ranking_scores was not recomputed for $day"
printf '%s: ok\n' "$PROG"
