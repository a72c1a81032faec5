#!/usr/bin/env bash
# Post the sales team's morning digest to Slack: businesses that claimed their
# page and accounts that started an upgrade since the previous business day
# (on Monday that covers Friday to Sunday), from the analytics warehouse.
#
# The warehouse does the date arithmetic in the region's zone and builds the
# Slack payload itself (json_build_object), so no text is ever spliced into JSON
# by hand here.
#
# Usage: sales-digest.sh --region US [--dry-run]
#
# Environment:
#   PGHOST, PGDATABASE, PGUSER, PGPASSWORD   read by psql itself    (required)
#   SLACK_WEBHOOK_URL   incoming-webhook URL, from SSM              (required)
#   DIGEST_TIMEZONE     zone the business days are counted in (default America/New_York)
set -euo pipefail

readonly PROG=${0##*/}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

region=''
dry_run=false
while (($#)); do
    case $1 in
        --region)
            (($# >= 2)) || die "--region needs a value"
            region=$2
            shift 2
            ;;
        --dry-run)
            dry_run=true
            shift
            ;;
        *) die "unknown argument: $1 (usage: $PROG --region CC [--dry-run])" ;;
    esac
done
[[ $region =~ ^[A-Z]{2}$ ]] || die "--region must be a two-letter country code, got: '${region}'"
zone=${DIGEST_TIMEZONE:-America/New_York}
[[ $zone =~ ^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$ ]] || die "DIGEST_TIMEZONE looks wrong: $zone"

: "${PGHOST:?PGHOST is not set (see jobs/us-sales-digest.toml)}"
: "${PGPASSWORD:?PGPASSWORD is not set (cronsync loads it from Secrets Manager)}"
command -v psql >/dev/null 2>&1 || die "psql not found in PATH (apt-get install postgresql-client)"

# psql variables (:'name') are quoted by psql itself.
payload=$(
    psql --no-psqlrc --quiet --tuples-only --no-align --set ON_ERROR_STOP=1 \
        --set region="$region" --set zone="$zone" <<'SQL'
WITH bounds AS (
    SELECT (date_trunc('day', now() AT TIME ZONE :'zone')
            - CASE WHEN extract(isodow FROM now() AT TIME ZONE :'zone') = 1
                   THEN interval '3 days' ELSE interval '1 day' END) AT TIME ZONE :'zone' AS since,
           date_trunc('day', now() AT TIME ZONE :'zone') AT TIME ZONE :'zone' AS until
),
claims AS (
    SELECT c.business_name, c.city, c.claimed_at
      FROM sales.business_claims c, bounds b
     WHERE c.country_code = :'region' AND c.claimed_at >= b.since AND c.claimed_at < b.until
),
upgrades AS (
    SELECT u.business_name, u.plan, u.started_at
      FROM sales.upgrade_leads u, bounds b
     WHERE u.country_code = :'region' AND u.started_at >= b.since AND u.started_at < b.until
)
SELECT json_build_object(
    'text',
    format(E'*%s sales digest* (%s to %s)\n• %s new claims\n• %s upgrade leads',
           :'region',
           to_char((SELECT since FROM bounds) AT TIME ZONE :'zone', 'Dy Mon DD'),
           to_char((SELECT until FROM bounds) AT TIME ZONE :'zone' - interval '1 second', 'Dy Mon DD'),
           (SELECT count(*) FROM claims),
           (SELECT count(*) FROM upgrades))
    || coalesce(E'\n\n*Top upgrade leads*\n' || (
           SELECT string_agg(format('• %s (%s)', business_name, plan), E'\n' ORDER BY started_at)
             FROM (SELECT * FROM upgrades ORDER BY started_at LIMIT 10) top), '')
);
SQL
)
[[ -n $payload ]] || die "the warehouse query returned nothing"

if [[ $dry_run == true ]]; then
    printf '%s: dry run, payload:\n%s\n' "$PROG" "$payload"
    exit 0
fi

: "${SLACK_WEBHOOK_URL:?SLACK_WEBHOOK_URL is not set (cronsync loads it from SSM)}"
# The webhook URL is the credential: hand it to curl on stdin as a config line,
# not in argv where ps would show it.
printf 'url = "%s"\n' "$SLACK_WEBHOOK_URL" |
    curl --config - --fail --silent --show-error \
        --retry 3 --retry-connrefused --max-time 60 \
        -H 'Content-Type: application/json' \
        --data-binary "$payload" \
        --output /dev/null
printf '%s: posted %s digest\n' "$PROG" "$region"
