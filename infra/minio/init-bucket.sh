#!/bin/sh
# Sets up MinIO for a Stele log; run by the bucket-init service of
# docker-compose.yml (or by hand with the same variables and `mc` on PATH).
# Safe to run again: every step leaves what is already right as it is.
#
#   MINIO_URL (default http://minio:9000), MINIO_ROOT_USER,
#   MINIO_ROOT_PASSWORD, STELE_BUCKET, STELE_S3_ACCESS_KEY,
#   STELE_S3_SECRET_KEY, and STELE_SHARDS: the shards' names, separated by
#   spaces or commas (each shard's objects are under its name), or empty
#   for a single log at the root of the bucket.
#
# 1. The bucket.
# 2. Anonymous GET of the log's public objects only: for each shard,
#    checkpoint, final-checkpoint, tile/... and index/... Not .stele/ (the
#    sequencer's lock and staging objects), and no listing, so a missing
#    key is not even confirmed to exist.
# 3. A user for the sequencer whose policy allows reading, writing,
#    deleting and listing this bucket and nothing else.
set -eu
# Shard names are split on spaces and commas, and must not be globbed.
set -f

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}" "${STELE_BUCKET:?}"
: "${STELE_S3_ACCESS_KEY:?}" "${STELE_S3_SECRET_KEY:?}"
url="${MINIO_URL:-http://minio:9000}"
bucket="arn:aws:s3:::${STELE_BUCKET}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# MinIO takes a moment to start; wait for it up to a minute.
tries=0
until mc alias set stele "$url" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "init-bucket: MinIO at $url did not answer within a minute" >&2
        exit 1
    fi
    sleep 1
done

mc mb --ignore-existing "stele/${STELE_BUCKET}"

# The public objects' resources, one prefix a shard ("" for a single log).
prefixes=""
for name in $(printf '%s' "${STELE_SHARDS:-}" | tr ',' ' '); do
    case "$name" in
        [a-z0-9]*) ;;
        *) echo "init-bucket: STELE_SHARDS: $name is not a shard name" >&2; exit 1 ;;
    esac
    if printf '%s' "$name" | grep -q '[^a-z0-9._-]'; then
        echo "init-bucket: STELE_SHARDS: $name is not a shard name" >&2
        exit 1
    fi
    prefixes="$prefixes $name/"
done
# "/" stands for the root of the bucket: no shard is named so.
[ -n "$prefixes" ] || prefixes="/"
resources=""
for prefix in $prefixes; do
    [ "$prefix" = / ] && prefix=""
    for object in checkpoint final-checkpoint 'tile/*' 'index/*'; do
        resources="${resources:+$resources,
}        \"${bucket}/${prefix}${object}\""
    done
done

cat >"$work/anonymous.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ReadThePublicLog",
      "Effect": "Allow",
      "Principal": {"AWS": ["*"]},
      "Action": ["s3:GetObject"],
      "Resource": [
${resources}
      ]
    }
  ]
}
JSON
mc anonymous set-json "$work/anonymous.json" "stele/${STELE_BUCKET}"

cat >"$work/sequencer.json" <<JSON
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
      "Resource": ["${bucket}/*"]
    },
    {
      "Effect": "Allow",
      "Action": ["s3:ListBucket"],
      "Resource": ["${bucket}"]
    }
  ]
}
JSON
mc admin policy create stele stele-sequencer "$work/sequencer.json"
mc admin user add stele "$STELE_S3_ACCESS_KEY" "$STELE_S3_SECRET_KEY"
if ! mc admin user info stele "$STELE_S3_ACCESS_KEY" | grep -q stele-sequencer; then
    mc admin policy attach stele stele-sequencer --user "$STELE_S3_ACCESS_KEY"
fi

echo "init-bucket: bucket ${STELE_BUCKET} ready; public:${prefixes} (checkpoint, final-checkpoint, tile/, index/)"
