#!/bin/sh
# Sets up MinIO for a Stele log; run by the bucket-init service of
# docker-compose.yml (or by hand with the same variables and `mc` on PATH).
# Safe to run again: every step leaves what is already right as it is.
#
#   MINIO_URL (default http://minio:9000), MINIO_ROOT_USER,
#   MINIO_ROOT_PASSWORD, STELE_BUCKET, STELE_S3_ACCESS_KEY,
#   STELE_S3_SECRET_KEY
#
# 1. The bucket.
# 2. Anonymous GET of the log's public objects only: checkpoint, tile/...
#    and index/... Not .stele/ (the sequencer's lock and staging objects),
#    and no listing, so a missing key is not even confirmed to exist.
# 3. A user for the sequencer whose policy allows reading, writing,
#    deleting and listing this bucket and nothing else.
set -eu

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
        "${bucket}/checkpoint",
        "${bucket}/tile/*",
        "${bucket}/index/*"
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

echo "init-bucket: bucket ${STELE_BUCKET} ready; public: checkpoint, tile/, index/"
