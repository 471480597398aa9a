#!/usr/bin/env bash
# The whole test suite, stage by stage: every stage runs even when an earlier one failed,
# each is timed, and the last line is the summary CI reads ("suite: N passed, N failed").
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
[ "${CI:-}" = true ] && export NO_COLOR=1 ANSIBLE_NOCOLOR=1 PY_COLORS=0

stages=(yamllint ansible-lint sanity unit build)
for config in molecule/*/molecule.yml; do
  [ -e "$config" ] && stages+=("molecule SCENARIO=$(basename "$(dirname "$config")")")
done

passed=0 failed=0 report=()
for stage in "${stages[@]}"; do
  echo "=== stage: $stage"
  start=$(date +%s)
  # shellcheck disable=SC2086  # the stage may carry a variable assignment for make
  if make --no-print-directory $stage; then
    result=passed; passed=$((passed + 1))
  else
    result=FAILED; failed=$((failed + 1))
  fi
  report+=("$(printf '%-32s %-7s %5ss' "$stage" "$result" "$(( $(date +%s) - start ))")")
done

echo "=== summary"
printf '%s\n' "${report[@]}"
echo "suite: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
