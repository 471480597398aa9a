#!/usr/bin/env bash
# Fetch Debian's fail2ban package with apt and unpack it under .cache/fail2ban, without installing it: the filter
# tests run the real fail2ban-regex from there on machines that have no fail2ban. Safe to run again (it then only
# prints the path). Prints the unpacked tree, whose usr/bin/fail2ban-regex runs as
#   PYTHONPATH=TREE/usr/lib/python3/dist-packages python3 TREE/usr/bin/fail2ban-regex ...
# The package version is recorded in .cache/fail2ban/VERSION.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=$root/.cache/fail2ban
tree=$dest/root

if [ -s "$dest/VERSION" ] && [ -f "$tree/usr/bin/fail2ban-regex" ]; then
  echo "$tree"
  exit 0
fi

mkdir -p "$root/.cache"
# Unpack beside the final place and move it there at the end: an interrupted run leaves no half tree behind.
work=$(mktemp -d "$root/.cache/fail2ban.tmp.XXXXXX")
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

# apt's _apt user cannot write into our directory; as root, apt would download unsandboxed anyway (with a warning).
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
download() { (cd "$work" && apt-get download -q "${sandbox[@]}" fail2ban >&2); }
# A fresh machine may have no package lists yet: update them once, as root, and try again.
if ! download && ! { [ "$(id -u)" -eq 0 ] && apt-get update -qq >&2 && download; }; then
  echo "get-fail2ban: 'apt-get download fail2ban' failed; are apt's package lists there (apt-get update)?" >&2
  exit 1
fi
deb=$(find "$work" -maxdepth 1 -name 'fail2ban_*.deb' -print -quit)
[ -n "$deb" ] || { echo "get-fail2ban: apt-get download left no fail2ban_*.deb" >&2; exit 1; }

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -f "$deb" Version >"$work/VERSION"
rm -f "$deb"
[ -f "$work/root/usr/bin/fail2ban-regex" ] || { echo "get-fail2ban: no usr/bin/fail2ban-regex in $deb" >&2; exit 1; }

rm -rf "$dest"
mv "$work" "$dest"
trap - EXIT
echo "get-fail2ban: unpacked fail2ban $(cat "$dest/VERSION") into $tree" >&2
echo "$tree"
