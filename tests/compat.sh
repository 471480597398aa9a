#!/usr/bin/env bash
# The older ansible-core releases meta/runtime.yml supports: unit tests and ansible-test sanity under each.
# .venv runs the newest (2.19, the last on Python 3.11); this covers the rest of the range.
# Usage: tests/compat.sh [VERSION ...]   (default: 2.16 2.17 2.18). Each venv is cached in .cache/compat/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# shellcheck source=tests/lab/env.sh
source tests/lab/env.sh
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(2.16 2.17 2.18)
hypothesis=$(grep -oP '^hypothesis==\K\S+' requirements-dev.txt)
pytest=$(grep -oP '^pytest==\K\S+' requirements-dev.txt)
status=0
for version in "${versions[@]}"; do
  [[ $version =~ ^2\.[0-9]+$ ]] || { echo "compat.sh: '$version' is not an ansible-core release line like 2.16" >&2; exit 2; }
  venv=$root/.cache/compat/$version
  if [ ! -f "$venv/.installed" ]; then
    rm -rf "$venv" && python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "ansible-core~=$version.0" "pytest==$pytest" "hypothesis==$hypothesis"
    touch "$venv/.installed"
  fi
  core=$("$venv/bin/python" -c 'import ansible; print(ansible.__version__)')
  echo "=== ansible-core $core: unit tests"
  PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/unit || status=1
  echo "=== ansible-core $core: sanity"
  # ansible-test bootstraps pip from a script it would download: give it the offline one, named for its pip.
  # Older releases also name pins for old Pythons after the current one: the first is the one used here.
  pipver=$(grep -m1 -oP "pip='\K[0-9.]+" "$venv"/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py)
  mkdir -p ~/.ansible/test/cache && cp tests/sanity/get_pip_offline.py ~/.ansible/test/cache/get_pip_"${pipver//./_}".py
  tree=/var/tmp/jfh-compat-$version/ansible_collections/homelab/jellyfin_hardening
  rm -rf "/var/tmp/jfh-compat-$version" && mkdir -p "$tree"
  git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -C "$tree" -xf -
  (cd "$tree" && PATH="$venv/bin:$PATH" ansible-test sanity --venv --python 3.11 --color no) || status=1
done
exit $status
