#!/usr/bin/env bash
# Aggregate one day of published reviews into the ranking tables.
#
#   ranking_daily   one row per (day, business): review count and rating sum/avg
#   ranking_scores  one row per (business, computed_for day): Bayesian average over
#                   the last 90 days; the site reads the newest computed_for, and
#                   generations older than a week are pruned
#
# Idempotent: the day's rows are replaced inside one transaction, so a rerun (or a
# backfill of an older day) converges to the same result.
#
# Usage: nightly-aggregate.sh [--date yesterday|today|YYYY-MM-DD] [--dry-run]
#
# Environment (set by cronsync from jobs/nightly-aggregate.toml):
#   DB_HOST               MySQL primary                      (required)
#   DB_PASSWORD           from Secrets Manager               (required)
#   DB_PORT               default 3306
#   DB_USER               default batch_aggregate
#   DB_NAME               default reviews_${RAILS_ENV}
#   RAILS_ENV             default production
#   RANKING_PRIOR_WEIGHT  Bayesian prior weight, default 10
#   RANKING_PRIOR_MEAN    Bayesian prior mean rating, default 3.5
#   RANKING_WINDOW_DAYS   score window, default 90
set -euo pipefail

readonly PROG=${0##*/}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

log() {
    printf '%s: %s\n' "$PROG" "$*"
}

usage() {
    printf 'Usage: %s [--date yesterday|today|YYYY-MM-DD] [--dry-run]\n' "$PROG"
}

# Resolve "yesterday", "today" or an ISO date to YYYY-MM-DD (in $TZ, host zone if unset).
resolve_date() {
    local spec=$1 day
    case $spec in
        yesterday | today) day=$(date -d "$spec" +%F) ;;
        [0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9])
            day=$(date -d "$spec" +%F 2>/dev/null) || die "invalid date: $spec"
            [[ $day == "$spec" ]] || die "invalid date: $spec"
            ;;
        *) die "--date must be yesterday, today or YYYY-MM-DD, got: $spec" ;;
    esac
    printf '%s\n' "$day"
}

is_number() {
    [[ $1 =~ ^[0-9]+([.][0-9]+)?$ ]]
}

date_spec=yesterday
dry_run=false
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
        --dry-run)
            dry_run=true
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage >&2
            die "unknown argument: $1"
            ;;
    esac
done

day=$(resolve_date "$date_spec")
rails_env=${RAILS_ENV:-production}
db_name=${DB_NAME:-reviews_${rails_env}}
prior_weight=${RANKING_PRIOR_WEIGHT:-10}
prior_mean=${RANKING_PRIOR_MEAN:-3.5}
window_days=${RANKING_WINDOW_DAYS:-90}

is_number "$prior_weight" || die "RANKING_PRIOR_WEIGHT must be a number, got: $prior_weight"
is_number "$prior_mean" || die "RANKING_PRIOR_MEAN must be a number, got: $prior_mean"
[[ $window_days =~ ^[1-9][0-9]*$ ]] || die "RANKING_WINDOW_DAYS must be a positive integer, got: $window_days"
[[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "DB_NAME has unexpected characters: $db_name"

# Every interpolated value above is validated; the SQL takes no free text.
sql=$(
    cat <<SQL
SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED;
START TRANSACTION;

DELETE FROM ranking_daily WHERE day = '${day}';

INSERT INTO ranking_daily (day, business_id, review_count, rating_sum, rating_avg, computed_at)
SELECT '${day}', r.business_id, COUNT(*), SUM(r.rating), AVG(r.rating), UTC_TIMESTAMP()
  FROM reviews r
 WHERE r.status = 'published'
   AND r.published_at >= '${day}'
   AND r.published_at <  '${day}' + INTERVAL 1 DAY
 GROUP BY r.business_id;

DELETE FROM ranking_scores WHERE computed_for = '${day}';

INSERT INTO ranking_scores (business_id, score, review_count_window, computed_for, computed_at)
SELECT d.business_id,
       (SUM(d.rating_sum) + ${prior_weight} * ${prior_mean}) / (SUM(d.review_count) + ${prior_weight}),
       SUM(d.review_count),
       '${day}',
       UTC_TIMESTAMP()
  FROM ranking_daily d
 WHERE d.day >  '${day}' - INTERVAL ${window_days} DAY
   AND d.day <= '${day}'
 GROUP BY d.business_id;

DELETE FROM ranking_scores WHERE computed_for < '${day}' - INTERVAL 7 DAY;

COMMIT;

SELECT CONCAT('ranking_daily rows for ${day}: ', COUNT(*)) FROM ranking_daily WHERE day = '${day}';
SELECT CONCAT('ranking_scores rows: ', COUNT(*)) FROM ranking_scores WHERE computed_for = '${day}';
SQL
)

if [[ $dry_run == true ]]; then
    log "dry run for $day on $db_name; SQL that would run:"
    printf '%s\n' "$sql"
    exit 0
fi

: "${DB_HOST:?DB_HOST is not set (see jobs/nightly-aggregate.toml)}"
: "${DB_PASSWORD:?DB_PASSWORD is not set (cronsync loads it from Secrets Manager)}"
command -v mysql >/dev/null 2>&1 || die "mysql client not found in PATH (apt-get install default-mysql-client)"

# Credentials go through a private option file, never on the command line
# where any user could read them in ps.
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

log "aggregating reviews for $day into $db_name on $DB_HOST"
start=$SECONDS
mysql --defaults-extra-file="$cnf" --batch --skip-column-names "$db_name" <<<"$sql"
log "done for $day in $((SECONDS - start))s"
