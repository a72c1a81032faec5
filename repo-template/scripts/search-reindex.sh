#!/usr/bin/env bash
# Incremental search reindex: send every business changed since the checkpoint to
# the OpenSearch bulk API (index active ones, delete the rest), in chunks.
#
# The checkpoint means "every change strictly before this time is indexed". It is
# advanced after each chunk is accepted, so a run stopped half-way (timeout, or
# replaced by the next run under concurrency = "replace") loses nothing: the next
# run resumes from the last accepted chunk. Re-sending a document is harmless.
#
# Usage: search-reindex.sh [--since 'YYYY-MM-DD HH:MM:SS'] [--chunk N]
#   --since   seed or move the checkpoint (needed on the first run on a host)
#
# Environment:
#   DB_HOST, DB_PASSWORD      read replica and its password         (required)
#   DB_PORT, DB_USER, DB_NAME defaults 3306, batch_readonly, reviews_production
#   SEARCH_URL                https://host:9200                      (required)
#   SEARCH_API_KEY            OpenSearch API key, from Secrets Manager (required)
#   SEARCH_INDEX              default businesses
#   REINDEX_STATE_DIR         where the checkpoint lives (default /var/lib/batch/search-reindex)
set -euo pipefail

readonly PROG=${0##*/}
readonly TS_RE='^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,6})?$'

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

log() {
    printf '%s: %s\n' "$PROG" "$*"
}

since=''
chunk=1000
while (($#)); do
    case $1 in
        --since | --chunk)
            (($# >= 2)) || die "$1 needs a value"
            if [[ $1 == --since ]]; then since=$2; else chunk=$2; fi
            shift 2
            ;;
        *) die "unknown argument: $1 (usage: $PROG [--since 'YYYY-MM-DD HH:MM:SS'] [--chunk N])" ;;
    esac
done
[[ $chunk =~ ^[1-9][0-9]*$ ]] || die "--chunk must be a positive integer, got: $chunk"

state_dir=${REINDEX_STATE_DIR:-/var/lib/batch/search-reindex}
checkpoint_file="$state_dir/checkpoint"
index=${SEARCH_INDEX:-businesses}
db_name=${DB_NAME:-reviews_production}
[[ $index =~ ^[a-z0-9_-]+$ ]] || die "SEARCH_INDEX has unexpected characters: $index"
[[ $db_name =~ ^[A-Za-z0-9_]+$ ]] || die "DB_NAME has unexpected characters: $db_name"

save_checkpoint() {
    local tmp
    tmp=$(mktemp "$state_dir/.checkpoint.XXXXXX")
    printf '%s\n' "$1" >"$tmp"
    mv -f -- "$tmp" "$checkpoint_file"
}

mkdir -p -- "$state_dir"
if [[ -n $since ]]; then
    [[ $since =~ $TS_RE ]] || die "--since must look like 'YYYY-MM-DD HH:MM:SS', got: $since"
    save_checkpoint "$since"
    log "checkpoint set to $since"
fi
[[ -r $checkpoint_file ]] ||
    die "no checkpoint in $checkpoint_file; seed it once with --since 'YYYY-MM-DD HH:MM:SS' (after a full reindex)"
checkpoint=$(<"$checkpoint_file")
[[ $checkpoint =~ $TS_RE ]] || die "corrupt checkpoint in $checkpoint_file: $checkpoint"

: "${DB_HOST:?DB_HOST is not set}"
: "${DB_PASSWORD:?DB_PASSWORD is not set (cronsync loads it from Secrets Manager)}"
: "${SEARCH_URL:?SEARCH_URL is not set}"
: "${SEARCH_API_KEY:?SEARCH_API_KEY is not set (cronsync loads it from Secrets Manager)}"
for tool in mysql curl split; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found in PATH"
done

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
printf 'Authorization: ApiKey %s\n' "$SEARCH_API_KEY" >"$work/auth.header"

query() {
    mysql --defaults-extra-file="$work/client.cnf" --batch --raw --skip-column-names "$db_name"
}

# Upper bound a few seconds in the past, so rows from transactions still
# committing with an earlier timestamp are not skipped.
upper=$(query <<SQL
SELECT COALESCE(MAX(updated_at), '') FROM businesses
 WHERE updated_at > '${checkpoint}' AND updated_at <= UTC_TIMESTAMP(6) - INTERVAL 5 SECOND;
SQL
)
if [[ -z $upper ]]; then
    log "no changes since $checkpoint"
    exit 0
fi
[[ $upper =~ $TS_RE ]] || die "unexpected upper bound from the database: $upper"

# One line per business: updated_at <TAB> bulk action [<TAB> document].
# JSON_OBJECT escapes tabs and newlines inside values, so raw tabs only separate.
query >"$work/changes.tsv" <<SQL
SELECT CONCAT(DATE_FORMAT(b.updated_at, '%Y-%m-%d %H:%i:%s.%f'), '\t',
       IF(b.status = 'active',
          CONCAT(JSON_OBJECT('index', JSON_OBJECT('_index', '${index}', '_id', b.id)), '\t',
                 JSON_OBJECT('name', b.name, 'slug', b.slug, 'city', b.city,
                             'country', b.country_code, 'category', c.slug,
                             'rating', b.rating_avg, 'reviews', b.review_count,
                             'location', JSON_OBJECT('lat', b.latitude, 'lon', b.longitude))),
          JSON_OBJECT('delete', JSON_OBJECT('_index', '${index}', '_id', b.id))))
  FROM businesses b
  LEFT JOIN categories c ON c.id = b.primary_category_id
 WHERE b.updated_at >= '${checkpoint}' AND b.updated_at <= '${upper}'
 ORDER BY b.updated_at, b.id;
SQL
total=$(wc -l <"$work/changes.tsv")
log "$total change(s) in [$checkpoint, $upper]"

split --lines="$chunk" --numeric-suffixes --suffix-length=6 "$work/changes.tsv" "$work/chunk."
sent=0
for part in "$work"/chunk.*; do
    cut -f2- "$part" | tr '\t' '\n' >"$work/body.ndjson"
    curl --fail --silent --show-error --retry 3 --retry-connrefused \
        --connect-timeout 10 --max-time 120 \
        -H @"$work/auth.header" -H 'Content-Type: application/x-ndjson' \
        --data-binary @"$work/body.ndjson" \
        --output "$work/response.json" \
        "${SEARCH_URL%/}/_bulk"
    if ! grep -q '"errors"[[:space:]]*:[[:space:]]*false' "$work/response.json"; then
        head -c 2000 "$work/response.json" >&2
        echo >&2
        die "bulk request had item errors; checkpoint stays at $(<"$checkpoint_file")"
    fi
    sent=$((sent + $(wc -l <"$part")))
    # Everything before the chunk's last timestamp is now indexed.
    save_checkpoint "$(tail -n 1 "$part" | cut -f1)"
done
save_checkpoint "$upper"
log "indexed $sent change(s); checkpoint now $upper"
