#!/usr/bin/env bash
# The whole test suite, stage by stage: every stage runs even when an earlier one failed,
# each is timed, and the last line is the summary CI reads ("suite: N passed, N failed").
#
# SUITE_JOBS=N runs the Molecule scenarios in N lanes at once (default 1). Scenarios that share a
# podman network also share container names, so they always run one after another in one lane.
# A lane's output is kept in a file and printed whole when its scenario ends.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
[ "${CI:-}" = true ] && export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
jobs=${SUITE_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "SUITE_JOBS must be a positive number, got '$jobs'" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Run one stage, print its output, and append its line to the report.
run_stage() {
  local stage=$1 log start result
  log=$work/$(echo "$stage" | tr -c 'A-Za-z0-9_\n' _).log
  start=$(date +%s)
  # shellcheck disable=SC2086  # the stage may carry a variable assignment for make
  if make --no-print-directory $stage >"$log" 2>&1; then result=passed; else result=FAILED; fi
  {
    flock 9
    echo "=== stage: $stage"
    cat "$log"
    printf '%-32s %-7s %5ss\n' "$stage" "$result" "$(( $(date +%s) - start ))" >>"$work/report"
  } 9>>"$work/lock"
}

for stage in yamllint ansible-lint sanity unit build; do
  run_stage "$stage"
done

# One queue entry per podman network: the scenarios using it, in name order.
for config in molecule/*/molecule.yml; do
  [ -e "$config" ] || continue
  network=$(grep -m1 -oP '^\s+network:\s*\K\S+' "$config" || basename "$(dirname "$config")")
  echo "$network $(basename "$(dirname "$config")")"
done | sort -k1,1 -k2,2 | awk '{a[$1] = a[$1] " " $2} END {for (n in a) print a[n]}' \
  | awk '{print NF, $0}' | sort -k1,1nr -k2 | cut -d' ' -f2- >"$work/queue"

lane() {
  local entry scenario
  while :; do
    # shellcheck disable=SC2016  # $1 is the inner shell's
    entry=$(flock "$work/queue.lock" sh -c 'head -n1 "$1" && sed -i 1d "$1"' _ "$work/queue")
    [ -n "$entry" ] || return 0
    for scenario in $entry; do run_stage "molecule SCENARIO=$scenario"; done
  done
}
for _ in $(seq "$jobs"); do lane & done
wait

echo "=== summary"
cat "$work/report"
passed=$(grep -c ' passed ' "$work/report")
failed=$(grep -c ' FAILED ' "$work/report")
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
