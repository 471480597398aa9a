#!/usr/bin/env bash
# Build a lab base image (systemd as PID 1) from Debian's archive and import it into podman.
# Images cannot be pulled here, so every Molecule scenario runs on images this script makes.
# Usage: build-image.sh SUITE   (bookworm or trixie)
# Cached: the image carries a label with the hash of this recipe; an image with the same hash is reused.
set -euo pipefail

suite=${1:?usage: build-image.sh bookworm|trixie}
case "$suite" in
  bookworm) tag=debian12 ;;
  trixie) tag=debian13 ;;
  *) echo "build-image.sh: unsupported suite '$suite' (bookworm or trixie)" >&2; exit 2 ;;
esac

image="localhost/jfh-lab:${tag}"
packages="systemd,systemd-sysv,python3,python3-apt,sudo,iproute2,procps,ca-certificates"
recipe_hash=$( { cat "$0"; echo "$suite $packages"; } | sha256sum | cut -c1-16)

current=$(podman image inspect --format '{{ index .Labels "jfh.recipe" }}' "$image" 2>/dev/null || true)
if [ "$current" = "$recipe_hash" ]; then
  echo "lab image $image is current (recipe $recipe_hash)"
  exit 0
fi

workdir=$(mktemp -d /var/tmp/jfh-rootfs.XXXXXX)
trap 'rm -rf "$workdir"' EXIT
rootfs="$workdir/rootfs"

echo "building $image from Debian $suite (recipe $recipe_hash)"
# No mirror argument: debootstrap uses Debian's default archive.
debootstrap --variant=minbase --include="$packages" "$suite" "$rootfs" >"$workdir/debootstrap.log" 2>&1 || {
  tail -n 30 "$workdir/debootstrap.log" >&2
  exit 1
}

# Trim what a container never needs, and keep units that fight a container runtime from starting.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
# Empty package lists must look stale, or apt tasks with cache_valid_time would skip the update.
touch -d "2000-01-01" "$rootfs/var/lib/apt/lists"
for unit in systemd-remount-fs.service systemd-udevd.service systemd-udev-trigger.service \
            getty@tty1.service console-getty.service systemd-firstboot.service \
            systemd-modules-load.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
# Apt keeps Debian's defaults (recommends on), as on a real host; only retries are added for a flaky network.
echo 'Acquire::Retries "3";' >"$rootfs/etc/apt/apt.conf.d/01-lab-retries"

tar -C "$rootfs" -c . | podman import --quiet \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'STOPSIGNAL SIGRTMIN+3' \
  --change "LABEL jfh.recipe=$recipe_hash" \
  - "$image" >/dev/null
echo "imported $image"
