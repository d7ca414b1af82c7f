#!/usr/bin/env bash
# Creates the resources Moonlink Serverless uses, with the names and keys that
# localstack/emulators.ts and infra/moonlink-stack.ts use:
#   S3 bucket        moonlink-data
#   DynamoDB table   moonlink-catalog  (pk S HASH, sk S RANGE, on-demand, TTL on `ttl`)
#   Kinesis stream   moonlink-log      (2 provisioned shards)
# LocalStack runs it from /etc/localstack/init/ready.d (see docker-compose.yml); against a
# running LocalStack you can also run it by hand (it needs `awslocal`: pip install awscli-local).
# NOT exercised by the test suite.
set -euo pipefail

BUCKET="${MOONLINK_BUCKET:-moonlink-data}"
TABLE="${MOONLINK_CATALOG_TABLE:-moonlink-catalog}"
STREAM="${MOONLINK_STREAM:-moonlink-log}"
SHARDS="${MOONLINK_SHARDS:-2}"

awslocal s3api head-bucket --bucket "$BUCKET" 2>/dev/null || awslocal s3 mb "s3://$BUCKET"

if ! awslocal dynamodb describe-table --table-name "$TABLE" >/dev/null 2>&1; then
  awslocal dynamodb create-table \
    --table-name "$TABLE" \
    --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \
    --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \
    --billing-mode PAY_PER_REQUEST
  awslocal dynamodb wait table-exists --table-name "$TABLE"
  awslocal dynamodb update-time-to-live \
    --table-name "$TABLE" \
    --time-to-live-specification Enabled=true,AttributeName=ttl
fi

if ! awslocal kinesis describe-stream-summary --stream-name "$STREAM" >/dev/null 2>&1; then
  awslocal kinesis create-stream --stream-name "$STREAM" --shard-count "$SHARDS"
  awslocal kinesis wait stream-exists --stream-name "$STREAM"
fi

echo "moonlink: bucket=$BUCKET table=$TABLE stream=$STREAM ready"
