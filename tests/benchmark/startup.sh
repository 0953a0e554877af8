#!/usr/bin/env bash
# The start-up of one task, as a whole process: `ansible localhost -m MODULE` for modules that
# do almost nothing, against `ansible localhost -m ping` in the same run. Prints the median of N
# alternating runs (default 9) and the difference to ping. Run it after scripts/lib.sh set up
# the environment, e.g.  bash -c 'source scripts/lib.sh && ensure_all && tests/benchmark/startup.sh'
set -euo pipefail
runs=${1:-9}
empty=$(mktemp -d /tmp/pt-startup.XXXXXX)
trap 'rm -rf "$empty"' EXIT
tasks=(
    "ping"
    "persist.docker.volume_info -a name=pt-startup-missing-volume"
    "persist.docker.backup_info -a path=$empty"
    "persist.docker.backup_prune -a 'path=$empty keep_last=1'"
)
declare -A times
for ((run = 0; run < runs; run++)); do
    for task in "${tasks[@]}"; do
        start=$(date +%s.%N)
        eval ansible localhost -m "$task" >/dev/null 2>&1 || { echo "failed: ansible localhost -m $task" >&2; exit 1; }
        end=$(date +%s.%N)
        times[$task]+="$(awk -v s="$start" -v e="$end" 'BEGIN { print e - s }') "
    done
done
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
ping=$(median "${times[ping]}")
printf '%-60s %8s %10s\n' "task ($runs runs each, median)" "s" "over ping"
for task in "${tasks[@]}"; do
    value=$(median "${times[$task]}")
    printf '%-60s %8.3f %+10.3f\n' "${task%% -a *}" "$value" "$(awk -v a="$value" -v b="$ping" 'BEGIN { print a - b }')"
done
