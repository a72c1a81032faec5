#!/usr/bin/env bash
# Warm this region's CDN edge: fetch the region's most-visited URLs from the app
# and request each one through the CDN, a few in parallel, so the first visitors
# after the hourly purge get cache hits.
#
# Fails when more than WARM_MAX_FAILURE_PERCENT of the requests fail (a broken
# origin or edge is worth an alert; a handful of 404s for deleted pages is not).
#
# Usage: cdn-warm.sh --region eu|us|ap [--top N]
#
# Environment:
#   TOP_URLS_ENDPOINT         app endpoint listing top URLs, one per line (required)
#   INTERNAL_API_TOKEN        bearer token for it, from SSM              (required)
#   CDN_SITE_URL              only URLs under this are warmed (default https://www.example.com/)
#   WARM_PARALLELISM          concurrent requests (default 8)
#   WARM_MAX_FAILURE_PERCENT  default 5
set -euo pipefail

readonly PROG=${0##*/}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

region=''
top=500
while (($#)); do
    case $1 in
        --region | --top)
            (($# >= 2)) || die "$1 needs a value"
            if [[ $1 == --region ]]; then region=$2; else top=$2; fi
            shift 2
            ;;
        *) die "unknown argument: $1 (usage: $PROG --region eu|us|ap [--top N])" ;;
    esac
done
case $region in
    eu | us | ap) ;;
    *) die "--region must be eu, us or ap, got: '${region}'" ;;
esac
[[ $top =~ ^[1-9][0-9]*$ ]] || die "--top must be a positive integer, got: $top"
parallel=${WARM_PARALLELISM:-8}
max_fail=${WARM_MAX_FAILURE_PERCENT:-5}
site=${CDN_SITE_URL:-https://www.example.com/}
[[ $parallel =~ ^[1-9][0-9]*$ ]] || die "WARM_PARALLELISM must be a positive integer, got: $parallel"
[[ $max_fail =~ ^[0-9]+$ ]] || die "WARM_MAX_FAILURE_PERCENT must be an integer, got: $max_fail"

: "${TOP_URLS_ENDPOINT:?TOP_URLS_ENDPOINT is not set}"
: "${INTERNAL_API_TOKEN:?INTERNAL_API_TOKEN is not set (cronsync loads it from SSM)}"
command -v curl >/dev/null 2>&1 || die "curl not found in PATH"

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/${PROG%.sh}.XXXXXX")
trap 'rm -rf -- "$work"' EXIT
printf 'Authorization: Bearer %s\n' "$INTERNAL_API_TOKEN" >"$work/auth.header"

curl --fail --silent --show-error --retry 2 --max-time 60 \
    -H @"$work/auth.header" \
    --get --data-urlencode "region=$region" --data-urlencode "limit=$top" \
    --output "$work/top.txt" \
    "$TOP_URLS_ENDPOINT"

# Only our own pages, no duplicates, at most --top of them.
tr -d '\r' <"$work/top.txt" |
    awk -v site="$site" 'index($0, site) == 1 && !/[[:space:]]/ && !seen[$0]++' |
    head -n "$top" >"$work/urls.txt" || true
count=$(wc -l <"$work/urls.txt")
((count > 0)) || die "the top-URL list for $region is empty"

# One status code per URL ("000" when the request itself failed). xargs exits
# non-zero when any curl does; the failure count below decides instead.
xargs -d '\n' -P "$parallel" -n 1 \
    curl --silent --output /dev/null --max-time 20 --write-out '%{http_code}\n' \
    -H 'X-Cache-Warm: 1' -H 'User-Agent: example-cdn-warm/1.0' \
    <"$work/urls.txt" >"$work/codes.txt" || true

ok=$(grep -c '^[23]' "$work/codes.txt" || true)
failed=$((count - ok))
printf '%s: region %s: %d URLs warmed, %d failed\n' "$PROG" "$region" "$ok" "$failed"
((failed * 100 <= count * max_fail)) || die "$failed of $count requests failed (limit ${max_fail}%)"
