#!/bin/sh
# The benchmark host by hand: what an AWS Batch fleet child does, on a plain EC2 instance (or any host).
#
#   git clone <this repository> nwb-cloud && cd nwb-cloud
#   scripts/benchmark-host.sh --bucket s3://my-bucket/nwb-cloud --region us-east-2 [--size quick|full]
#                             [--source generated|dandi] [other `nwb-cloud fleet submit` options]
#
# 1. set-up: the environment `make bench` and `make test` build (.venv, every version from constraints.txt);
# 2. one fleet child on this host (`nwb-cloud fleet submit --executor local`): it writes the run folder under
#    the bucket, then runs `nwb-cloud fleet run-child`, the Batch job's command: the study prepared in the
#    bucket (or the DANDI assets found), the real network measured, `asv run` on the real profile as the asv
#    machine <instance type>-<region> (this host's name off EC2), its asv results, run info and log pushed
#    to the run folder in S3. The run folder's address is the last line printed; on your own machine,
#    `nwb-cloud fleet collect <it> --report` merges the results and builds the report.
#
# Credentials: the instance's IAM role (or AWS_* variables, or a profile): write access to the bucket's
# prefix. With --endpoint-url the bucket is on any S3-compatible endpoint (the embedded cloud: the tests).
# Needs python3.11 (or PYTHON=...), git and make:
#   Amazon Linux 2023: sudo dnf install -y python3.11 git make
#   Ubuntu 24.04:      sudo apt-get install -y python3.11-venv git make   (deadsnakes PPA on older releases)
set -eu

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
for tool in "$PYTHON" git make; do
    command -v "$tool" > /dev/null || { echo "benchmark-host: $tool is missing (see the top of $0)" >&2; exit 2; }
done
git rev-parse HEAD > /dev/null 2>&1 || { echo "benchmark-host: not a git checkout: asv records results against a commit" >&2; exit 2; }

make env PYTHON="$PYTHON" > /dev/null
exec .venv/bin/nwb-cloud fleet submit --executor local "$@"
