#!/usr/bin/env bash
# The whole test suite, stage by stage: every stage runs even when an earlier one failed,
# each is timed, and the last line is the summary CI reads ("suite: N passed, N failed").
#
# SUITE_JOBS=N runs the Molecule scenarios in N lanes at once (default 1). Scenarios that share a
# podman network also share container names, so they always run one after another in one lane.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
[ "${CI:-}" = true ] && export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0
jobs=${SUITE_JOBS:-1}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "SUITE_JOBS must be a positive number, got '$jobs'" >&2; exit 2; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Run one stage and append its line to the report. Output streams as it comes; with two lanes each
# line carries the scenario's name, so interleaved lines stay readable.
run_stage() {
  local stage=$1 tag=${2:-} start result
  start=$(date +%s)
  echo "=== stage: $stage"
  # shellcheck disable=SC2086  # the stage may carry a variable assignment for make
  if make --no-print-directory $stage 2>&1 | sed -u "s/^/$tag/" | tee "$work/${stage//[^A-Za-z0-9_]/_}.log"; then
    result=passed
  else
    result=FAILED
  fi
  echo "=== stage: $stage: $result"
  {
    flock 9
    printf '%-32s %-7s %5ss\n' "$stage" "$result" "$(( $(date +%s) - start ))" >>"$work/report"
  } 9>>"$work/lock"
}

for stage in yamllint ansible-lint sanity unit build; do
  run_stage "$stage"
done

# The older ansible-core releases' unit tests and sanity (make compat) queue with the scenarios: on 2 cores
# they fill the time the lanes spend waiting on containers. Seconds as the last run measured them.
COMPAT_SECONDS=345
# One queue entry per podman network: the scenarios using it, in name order. Entries go longest first
# (the sum of their "# suite-seconds: N" lines; a scenario without one counts as longest), so that the
# short ones fill the lanes' ends.
for config in molecule/*/molecule.yml; do
  [ -e "$config" ] || continue
  network=$(grep -m1 -oP '^\s+network:\s*\K\S+' "$config" || basename "$(dirname "$config")")
  seconds=$(grep -m1 -oP '^# suite-seconds:\s*\K[0-9]+' "$config" || echo 99999)
  echo "$network $(basename "$(dirname "$config")") $seconds"
done | { cat; echo "compat compat $COMPAT_SECONDS"; } | sort -k1,1 -k2,2 | awk '{a[$1] = a[$1] " " $2; w[$1] += $3} END {for (n in a) print w[n] a[n]}' \
  | sort -k1,1nr -k2 | cut -d' ' -f2- >"$work/queue"

lane() {
  local entry scenario
  while :; do
    # shellcheck disable=SC2016  # $1 is the inner shell's
    entry=$(flock "$work/queue.lock" sh -c 'head -n1 "$1" && sed -i 1d "$1"' _ "$work/queue")
    [ -n "$entry" ] || return 0
    for scenario in $entry; do
      stage="molecule SCENARIO=$scenario"
      [ "$scenario" = compat ] && stage=compat
      if [ "$jobs" -gt 1 ]; then run_stage "$stage" "[$scenario] "; else run_stage "$stage"; fi
    done
  done
}
for _ in $(seq "$jobs"); do lane & done
wait

# CI keeps only the end of the output: repeat why each failed stage failed just above the summary.
# pytest's failure lines and test names, Ansible's fatal tasks, molecule's errors; the last 40 per stage.
while read -r stage; do
  echo "=== why $stage failed"
  sed 's/\x1b\[[0-9;]*m//g' "$work/${stage//[^A-Za-z0-9_]/_}.log" \
    | grep -aE '(^|[^[:alnum:]])(E   |FAILED|ERROR )|::test_|\.py:[0-9]+: |fatal: \[|CRITICAL|Traceback' | cut -c1-400 | tail -n 40
done < <(awk '$NF ~ /s$/ && $(NF-1) == "FAILED" {NF -= 2; print}' "$work/report")

# The first cause per failed stage, on its summary line too (CI may show only the last lines): pytest's first
# failed test (not Ansible's "FAILED - RETRYING"), else the first fatal task not ignored, else molecule's first error.
first_cause() {
  sed 's/\x1b\[[0-9;]*m//g; s/^\[[^]]*\] //' "$work/${1//[^A-Za-z0-9_]/_}.log" | awk '
    /^(FAILED|ERROR) [^ ]+\.py/ && !test { test = $0 }
    pending && !/^\.\.\.ignoring/ && !fatal { fatal = pending }
    { pending = "" }
    /fatal: \[/ { pending = $0 }
    /^(CRITICAL|ERROR) / && !other { other = $0 }
    END { if (pending && !fatal) fatal = pending; print test ? test : fatal ? fatal : other }' | cut -c1-220
}
echo "=== summary"
while IFS= read -r line; do
  stage=$(awk '{NF -= 2; print}' <<<"$line")
  case "$line" in
    *" FAILED "*) printf '%s  %s\n' "$line" "$(first_cause "$stage")" ;;
    *) printf '%s\n' "$line" ;;
  esac
done <"$work/report"
passed=$(grep -c ' passed ' "$work/report")
failed=$(grep -c ' FAILED ' "$work/report")
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
