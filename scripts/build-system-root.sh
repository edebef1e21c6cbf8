#!/usr/bin/env bash
# Builds the system suite's Debian trixie root file system (test/system/) with debootstrap from
# Debian's own packages, once per machine: $CACHE/system/root-<key>, where <key> hashes the package
# list, the kernel version and this script's layout. Built in a temporary directory and renamed into
# place, so a half-built root is never used. Downloads are kept in $CACHE/system/debs.
# The mirror is the trixie one scripts/fetch-reference.sh derives from this machine's apt sources;
# the kernel (Debian's 6.12 cloud-amd64 image and modules) is the one it unpacks.
# Prints ROOT=<dir> on stdout, logs on stderr. Needs root and debootstrap.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "build-system-root: $*" >&2; }
[ "$(id -u)" = 0 ] || { log "must run as root (debootstrap, chroot)"; exit 1; }
command -v debootstrap >/dev/null || { log "debootstrap is missing (Debian package: debootstrap)"; exit 1; }

eval "$(bash "$here/scripts/fetch-reference.sh")"
CACHE=${KMODTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodts}
mirror=$(awk '$1=="deb" && $3=="trixie" {print $2; exit}' "$CACHE/apt-trixie/etc/sources.list")
[ -n "$mirror" ] || { log "no trixie mirror in $CACHE/apt-trixie/etc/sources.list"; exit 1; }

# bump LAYOUT when what happens to the root after debootstrap changes
LAYOUT=1
packages=(systemd systemd-sysv udev initramfs-tools iproute2 kmod nodejs zstd busybox dosfstools)
key=$(printf '%s\n' "$LAYOUT" "$KVER" "${packages[@]}" | sha256sum | cut -c1-16)
SYS="$CACHE/system"
ROOT="$SYS/root-$key"
if [ ! -f "$ROOT/.complete" ]; then
  mkdir -p "$SYS/debs"
  tmp=$(mktemp -d "$SYS/root-$key.tmp.XXXXXX")
  trap 'rm -rf --one-file-system "$tmp"' EXIT
  log "debootstrap trixie from $mirror into $tmp"
  # debootstrap mounts proc/sys in the target; a private mount namespace drops them when it exits
  unshare -m --propagation private debootstrap --variant=minbase --cache-dir="$SYS/debs" \
    --include="$(IFS=,; echo "${packages[*]}")" trixie "$tmp" "$mirror" >&2
  # Debian's 6.12 cloud kernel: modules, config and System.map as linux-image-* installs them
  mkdir -p "$tmp/usr/lib/modules" "$tmp/boot"
  cp -a "$KTREE/lib/modules/$KVER" "$tmp/usr/lib/modules/"
  cp -a "$KTREE/boot/config-$KVER" "$KTREE/boot/System.map-$KVER" "$KTREE/boot/vmlinuz-$KVER" "$tmp/boot/"
  chroot "$tmp" /usr/sbin/depmod -a "$KVER"
  # a guest that runs the suite on its serial console; root's password is irrelevant (no login)
  echo kmodts-system > "$tmp/etc/hostname"
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' > "$tmp/etc/fstab"
  rm -f "$tmp/var/cache/apt/archives/"*.deb
  printf '%s\n' "${packages[@]}" > "$tmp/.complete"
  rm -rf --one-file-system "$ROOT"
  mv "$tmp" "$ROOT"
  trap - EXIT
  # roots for other package lists or kernels are not needed any more
  for d in "$SYS"/root-*; do [ "$d" = "$ROOT" ] || rm -rf --one-file-system "$d"; done
fi
echo "ROOT=$ROOT"
