#!/usr/bin/env bash
# Run a recipe on Slurm: plan it, then one job array per stage, each waiting for the one before.
#   deploy/slurm/submit.sh RECIPE OUTPUT [sbatch options...]
# OUTPUT must be on storage every node sees (a shared file system or an s3://, gs://, az:// URL).
# Each array task runs `corpusforge run-task` with its index from $SLURM_ARRAY_TASK_ID; a task that
# already finished is a no-op, so an array can be resubmitted after a failure as it is.
set -euo pipefail
recipe=$1; output=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
cf=${CORPUSFORGE:-corpusforge}
schedule=$("$cf" plan "$recipe" --output "$output" --json)
after=""
while read -r stage tasks; do
  id=$(sbatch --parsable --job-name="cf-$stage" --array="0-$((tasks - 1))" ${after:+--dependency=afterok:$after} \
       "$@" "$here/run-task.sbatch" "$recipe" "$output" "$stage")
  echo "$stage: job $id ($tasks tasks)"
  after=$id
done < <(python3 -c 'import json, sys; [print(s["name"], s["tasks"]) for s in json.load(sys.stdin)["stages"]]' \
         <<< "$schedule")
