#!/usr/bin/env bash
# Build one partner's monthly ranking feed and deliver it.
#
# The feed is a gzipped TSV of the month's top-rated businesses in the partner's
# country (id, name, city, category, score, reviews in the month, URL). It is PUT
# to the partner's API as <period>.tsv.gz (the same period always overwrites the
# same object, so a rerun is safe) and archived to S3 when FEED_ARCHIVE_S3_URI is set.
#
# "last-month" and the month boundaries are computed in $TZ (the job sets it to the
# partner's zone), then converted to UTC for the database, which stores UTC.
#
# Usage: partner-feed.sh --partner NAME [--period last-month|YYYY-MM] [--limit N] [--dry-run]
#
# Environment:
#   PARTNER_API_URL      base URL of the partner's feed API        (required)
#   PARTNER_API_TOKEN    bearer token, from Secrets Manager         (required)
#   DB_HOST, DB_PASSWORD read replica and its password              (required)
#   DB_PORT, DB_USER, DB_NAME   defaults 3306, batch_readonly, reviews_production
#   FEED_COUNTRY         ISO 3166-1 alpha-2 country code            (required)
#   FEED_ARCHIVE_S3_URI  s3://bucket/prefix/ for an archive copy    (optional)
#   TZ                   zone the partner's months are counted in
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
    printf 'Usage: %s --partner NAME [--period last-month|YYYY-MM] [--limit N] [--dry-run]\n' "$PROG"
}

partner=''
period_spec=last-month
limit=1000
dry_run=false
while (($#)); do
    case $1 in
        --partner | --period | --limit)
            (($# >= 2)) || die "$1 needs a value"
            case $1 in
                --partner) partner=$2 ;;
                --period) period_spec=$2 ;;
                --limit) limit=$2 ;;
            esac
            shift 2
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

[[ $partner =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "--partner must be a lowercase slug, got: '${partner}'"
[[ $limit =~ ^[1-9][0-9]*$ ]] || die "--limit must be a positive integer, got: $limit"
country=${FEED_COUNTRY:?FEED_COUNTRY is not set (e.g. JP)}
[[ $country =~ ^[A-Z]{2}$ ]] || die "FEED_COUNTRY must be a two-letter code, got: $country"

zone=${TZ:-UTC}
case $period_spec in
    last-month) period=$(date -d "$(date +%Y-%m-01) -1 month" +%Y-%m) ;;
    [0-9][0-9][0-9][0-9]-[0-1][0-9])
        period=$(date -d "${period_spec}-01" +%Y-%m 2>/dev/null) || die "invalid month: $period_spec"
        [[ $period == "$period_spec" ]] || die "invalid month: $period_spec"
        ;;
    *) die "--period must be last-month or YYYY-MM, got: $period_spec" ;;
esac

# Month boundaries as local midnight in $zone, expressed in UTC for the database.
local_start="${period}-01"
local_end=$(date -d "${local_start} +1 month" +%F)
utc_start=$(date -u -d "TZ=\"${zone}\" ${local_start} 00:00" '+%F %T')
utc_end=$(date -u -d "TZ=\"${zone}\" ${local_end} 00:00" '+%F %T')
db_name=${DB_NAME:-reviews_production}
[[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "DB_NAME has unexpected characters: $db_name"

sql=$(
    cat <<SQL
SELECT b.id, b.name, b.city, c.slug, ROUND(s.score, 3), COUNT(r.id),
       CONCAT('https://www.example.com/biz/', b.slug)
  FROM businesses b
  JOIN categories c ON c.id = b.primary_category_id
  JOIN ranking_scores s ON s.business_id = b.id
       AND s.computed_for = (SELECT MAX(computed_for) FROM ranking_scores WHERE computed_for < DATE('${utc_end}'))
  JOIN reviews r ON r.business_id = b.id
       AND r.status = 'published'
       AND r.published_at >= '${utc_start}' AND r.published_at < '${utc_end}'
 WHERE b.country_code = '${country}'
   AND b.status = 'active'
 GROUP BY b.id, b.name, b.city, c.slug, s.score, b.slug
HAVING COUNT(r.id) >= 3
 ORDER BY s.score DESC, COUNT(r.id) DESC, b.id
 LIMIT ${limit};
SQL
)

log "partner=$partner period=$period ($zone) utc=[$utc_start, $utc_end) country=$country"
if [[ $dry_run == true ]]; then
    log "dry run; query that would run:"
    printf '%s\n' "$sql"
    exit 0
fi

: "${DB_HOST:?DB_HOST is not set}"
: "${DB_PASSWORD:?DB_PASSWORD is not set (cronsync loads it from Secrets Manager)}"
: "${PARTNER_API_URL:?PARTNER_API_URL is not set}"
: "${PARTNER_API_TOKEN:?PARTNER_API_TOKEN is not set (cronsync loads it from Secrets Manager)}"
for tool in mysql curl gzip; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/${PROG%.sh}.XXXXXX")
trap 'rm -rf -- "$work"' EXIT

# Option-file values are double-quoted; escape backslashes and quotes.
password=${DB_PASSWORD//\\/\\\\}
password=${password//\"/\\\"}
cat >"$work/client.cnf" <<CNF
[client]
host=${DB_HOST}
port=${DB_PORT:-3306}
user=${DB_USER:-batch_readonly}
password="${password}"
CNF
# The token goes to curl through a header file, not argv (visible in ps).
printf 'Authorization: Bearer %s\n' "$PARTNER_API_TOKEN" >"$work/auth.header"

feed="$work/${partner}-${period}.tsv"
printf 'business_id\tname\tcity\tcategory\tscore\treviews\turl\n' >"$feed"
mysql --defaults-extra-file="$work/client.cnf" --batch --skip-column-names "$db_name" <<<"$sql" >>"$feed"
rows=$(($(wc -l <"$feed") - 1))
((rows > 0)) || die "feed for $period is empty; refusing to send an empty feed to $partner"
gzip -9 -n "$feed"
log "built feed: $rows businesses, $(wc -c <"$feed.gz") bytes gzipped"

target="${PARTNER_API_URL%/}/partners/${partner}/feeds/${period}.tsv.gz"
curl --fail --silent --show-error \
    --retry 4 --retry-delay 30 --retry-connrefused \
    --connect-timeout 20 --max-time 600 \
    -H @"$work/auth.header" \
    -H 'Content-Type: application/gzip' \
    -X PUT --data-binary @"$feed.gz" \
    --output "$work/response" \
    "$target"
log "delivered to $target"

if [[ -n ${FEED_ARCHIVE_S3_URI:-} ]]; then
    command -v aws >/dev/null 2>&1 || die "aws CLI not found; cannot archive to $FEED_ARCHIVE_S3_URI"
    archive="${FEED_ARCHIVE_S3_URI%/}/${partner}/${period}.tsv.gz"
    aws s3 cp --only-show-errors "$feed.gz" "$archive"
    log "archived to $archive"
fi
