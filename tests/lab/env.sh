# shellcheck shell=bash
# Sourced by the Makefile's recipes and .ci/run: the environment every lab and test command shares.
# Renders the repo's containers.conf template with this host's hard limits and selects it.
_jfh_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$_jfh_root/.cache"
_jfh_nofile=$(ulimit -Hn); [ "$_jfh_nofile" = unlimited ] && _jfh_nofile=1048576
_jfh_nproc=$(ulimit -Hu); { [ "$_jfh_nproc" = unlimited ] || [ "$_jfh_nproc" -gt 4096 ]; } && _jfh_nproc=4096
# Written aside and renamed, and the link below made only when missing: lanes of tests/suite.sh
# source this file while podman and ansible of other lanes read both.
sed -e "s/@NOFILE@/$_jfh_nofile/g" -e "s/@NPROC@/$_jfh_nproc/g" \
  "$_jfh_root/tests/lab/containers.conf.in" >"$_jfh_root/.cache/containers.conf.$$"
if cmp -s "$_jfh_root/.cache/containers.conf.$$" "$_jfh_root/.cache/containers.conf"; then
  rm -f "$_jfh_root/.cache/containers.conf.$$"
else
  mv -f "$_jfh_root/.cache/containers.conf.$$" "$_jfh_root/.cache/containers.conf"
fi
export CONTAINERS_CONF="$_jfh_root/.cache/containers.conf"
# Molecule and ansible find this checkout as homelab.jellyfin_hardening through a symlinked tree.
mkdir -p "$_jfh_root/.cache/collections/ansible_collections/homelab"
[ "$(readlink "$_jfh_root/.cache/collections/ansible_collections/homelab/jellyfin_hardening")" = "$_jfh_root" ] ||
  ln -sfn "$_jfh_root" "$_jfh_root/.cache/collections/ansible_collections/homelab/jellyfin_hardening"
export ANSIBLE_COLLECTIONS_PATH="$_jfh_root/.cache/collections"
export PATH="$_jfh_root/.venv/bin:$PATH"
unset _jfh_nofile _jfh_nproc
