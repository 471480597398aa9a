#!/usr/bin/env bash
# The lab's signed Jellyfin apt repository: stand-in packages built with dpkg-deb, indexed by apt-ftparchive,
# InRelease signed by a key made here. Served over HTTP by the lab (tests/lab/tasks/aptrepo.yml).
#
#   aptrepo.sh init                       make the signing key, export it as the repository key
#   aptrepo.sh build VERSION [broken]     build jellyfin-server and jellyfin VERSION+debNN (broken: a service that fails)
#   aptrepo.sh publish VERSION ...        publish exactly these versions (and sign the index again)
#
# SUITE (the codename, default bookworm) and DEBSUFFIX (default +deb12) name the target distribution.
set -euo pipefail
ROOT=${APTREPO_ROOT:-/srv/aptrepo}
SUITE=${SUITE:-bookworm}
DEBSUFFIX=${DEBSUFFIX:-+deb12}
STANDIN=${STANDIN:-/usr/local/share/jellyfin-standin/jellyfin_standin.py}
export GNUPGHOME=$ROOT/gnupg

init() {
  mkdir -p "$ROOT/debs" "$ROOT/www" && install -d -m 0700 "$GNUPGHOME"
  if ! gpg --batch --list-secret-keys lab@jellyfin-hardening.invalid >/dev/null 2>&1; then
    gpg --batch --passphrase '' --quick-gen-key 'Jellyfin hardening lab repository <lab@jellyfin-hardening.invalid>' ed25519 sign never
  fi
  gpg --batch --yes --armor --export lab@jellyfin-hardening.invalid >"$ROOT/www/jellyfin_team.gpg.key"
}

build() {
  local version=$1 broken=${2:-} full=$1$DEBSUFFIX work
  work=$(mktemp -d)
  # jellyfin-server: the stand-in, its unit, and its settings outside /etc (not a conffile, so the version follows
  # the package). The broken build's settings are not JSON: the service dies at start, as a bad release would.
  mkdir -p "$work/server/DEBIAN" "$work/server/usr/lib/jellyfin/standin" "$work/server/lib/systemd/system"
  install -m 0644 "$STANDIN" "$work/server/usr/lib/jellyfin/standin/jellyfin_standin.py"
  if [ "$broken" = broken ]; then
    echo "{ this release does not start" >"$work/server/usr/lib/jellyfin/standin/settings.json"
  else
    cat >"$work/server/usr/lib/jellyfin/standin/settings.json" <<EOF
{"log_format": "debian", "log_dir": "/var/log/jellyfin", "network_xml": "/etc/jellyfin/network.xml",
 "state_file": "/var/lib/jellyfin/standin-state.json", "version": "$version",
 "users": [{"name": "alice", "password": "alice-lab-password"}],
 "api_keys": ["${LAB_API_KEY:-0123456789abcdef0123456789abcdef}"]}
EOF
  fi
  cat >"$work/server/lib/systemd/system/jellyfin.service" <<'EOF'
[Unit]
Description=Jellyfin Media Server (lab stand-in package)
After=network-online.target

[Service]
Type=simple
User=jellyfin
Group=jellyfin
ExecStart=/usr/bin/python3 /usr/lib/jellyfin/standin/jellyfin_standin.py --config /usr/lib/jellyfin/standin/settings.json
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
EOF
  cat >"$work/server/DEBIAN/control" <<EOF
Package: jellyfin-server
Version: $full
Architecture: all
Maintainer: Jellyfin hardening lab <lab@jellyfin-hardening.invalid>
Depends: python3
Section: video
Priority: optional
Description: Jellyfin stand-in (lab package)
 The collection's Jellyfin stand-in, packaged as Jellyfin's repository packages jellyfin-server.
EOF
  # As Jellyfin's own package does: the system user, its directories, and a restart on every install or upgrade.
  cat >"$work/server/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
  getent passwd jellyfin >/dev/null || useradd --system --home-dir /var/lib/jellyfin --shell /usr/sbin/nologin --user-group jellyfin
  install -d -o jellyfin -g jellyfin /var/lib/jellyfin /var/log/jellyfin /etc/jellyfin
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable jellyfin.service >/dev/null 2>&1
    systemctl restart jellyfin.service || true
  fi
fi
EOF
  cat >"$work/server/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then systemctl stop jellyfin.service || true; fi
EOF
  chmod 0755 "$work/server/DEBIAN/postinst" "$work/server/DEBIAN/prerm"
  # jellyfin: the metapackage.
  mkdir -p "$work/meta/DEBIAN"
  cat >"$work/meta/DEBIAN/control" <<EOF
Package: jellyfin
Version: $full
Architecture: all
Maintainer: Jellyfin hardening lab <lab@jellyfin-hardening.invalid>
Depends: jellyfin-server (>= $version)
Section: video
Priority: optional
Description: Jellyfin stand-in metapackage (lab package)
 Depends on jellyfin-server, as Jellyfin's metapackage does.
EOF
  dpkg-deb --root-owner-group -Zgzip -b "$work/server" "$ROOT/debs/jellyfin-server_${full}_all.deb" >/dev/null
  dpkg-deb --root-owner-group -Zgzip -b "$work/meta" "$ROOT/debs/jellyfin_${full}_all.deb" >/dev/null
  rm -rf "$work"
}

publish() {
  local dist=$ROOT/www/dists/$SUITE
  rm -rf "$ROOT/www/pool" "$dist" && mkdir -p "$ROOT/www/pool/main" "$dist/main/binary-amd64"
  for version in "$@"; do
    cp "$ROOT/debs/"*"_$version${DEBSUFFIX}_all.deb" "$ROOT/www/pool/main/"
  done
  (cd "$ROOT/www" && apt-ftparchive packages pool >"dists/$SUITE/main/binary-amd64/Packages")
  gzip -9kf "$dist/main/binary-amd64/Packages"
  apt-ftparchive -o APT::FTPArchive::Release::Origin=jellyfin-hardening-lab -o APT::FTPArchive::Release::Suite="$SUITE" \
    -o APT::FTPArchive::Release::Codename="$SUITE" -o APT::FTPArchive::Release::Architectures=amd64 \
    -o APT::FTPArchive::Release::Components=main release "$dist" >"$dist/Release.new"
  mv "$dist/Release.new" "$dist/Release"
  gpg --batch --yes --local-user lab@jellyfin-hardening.invalid --clearsign -o "$dist/InRelease" "$dist/Release"
}

command=${1:-}
shift || true
case $command in
  init) init ;;
  build) build "$@" ;;
  publish) publish "$@" ;;
  *) sed -n '2,9p' "$0" >&2; exit 2 ;;
esac
