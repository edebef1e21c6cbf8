#!/bin/bash
# Host side of the system suite, run by harness.ts inside `unshare -m` (every mount here vanishes
# with the process): the cached root file system is the lower layer of an overlay, so it is never
# written. In the overlay, with chroot:
#   1. kmodts is installed from its npm tarball with `npm install -g` (the host's npm, --prefix
#      /usr/local of the root: see README "Installing in place of kmod");
#   2. update-initramfs -c with kmod 34.2 → $WORK/initrd-kmod.img, then the root image root-kmod.img;
#   3. replace-kmod.sh puts kmodts under kmod's names; update-initramfs -c again → initrd-kmodts.img,
#      root-kmodts.img. Both images are unpacked (unmkinitramfs) for the comparison, and the
#      module calls older initramfs-tools made (hook_calls) are run with each.
# Usage: prepare.sh ROOT WORK TARBALL KVER GUEST_DIR
set -euo pipefail
ROOT=$1 WORK=$2 TARBALL=$3 KVER=$4 GUEST=$5
M=$WORK/merged
mkdir -p "$WORK/upper" "$WORK/ovl" "$M"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$WORK/upper,workdir=$WORK/ovl" "$M"
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8

in_root() { # runs a command in the root with /proc, /sys and /dev, unmounted again (mkfs copies the tree)
  mount -t proc proc "$M/proc"; mount --rbind /sys "$M/sys"; mount --rbind /dev "$M/dev"
  local rc=0
  # a clean environment, as a root shell of the system has (the host's NODE_* or npm_* must not leak in)
  chroot "$M" /usr/bin/env -i PATH="$PATH" LANG=C.UTF-8 HOME=/root TERM=dumb "$@" || rc=$?
  umount -l "$M/dev" "$M/sys" "$M/proc"
  return $rc
}

# the guest side: scenario runner, its unit, the udev rule for the device-alias scenario
install -D -m 644 "$GUEST/guest.js" "$M/usr/local/lib/kmodts-system/guest.js"
install -D -m 644 "$GUEST/scenarios.json" "$M/usr/local/lib/kmodts-system/scenarios.json"
install -D -m 644 "$GUEST/kmodts-system.service" "$M/etc/systemd/system/kmodts-system.service"
install -D -m 644 "$GUEST/60-kmodts-modalias.rules" "$M/etc/udev/rules.d/60-kmodts-modalias.rules"
mkdir -p "$M/etc/systemd/system/multi-user.target.wants"
ln -sfn ../kmodts-system.service "$M/etc/systemd/system/multi-user.target.wants/kmodts-system.service"
# no logins on the consoles: the guest only runs the suite
for u in serial-getty@ttyS0.service getty@tty1.service; do ln -sfn /dev/null "$M/etc/systemd/system/$u"; done
install -D -m 755 "$GUEST/replace-kmod.sh" "$M/usr/local/lib/kmodts-system/replace-kmod.sh"
install -D -m 755 "$GUEST/initramfs-hook.sh" "$M/usr/local/lib/kmodts-system/initramfs-hook.sh"

# 1. kmodts, as a user installs it
npm install -g --prefix "$M/usr/local" --no-audit --no-fund --loglevel=error "$TARBALL" >&2

initramfs() { # IMPL: update-initramfs -c with the tools now in place; image, output and listing to $WORK
  rm -f "$M/boot/initrd.img-$KVER"
  local rc=0
  in_root update-initramfs -c -k "$KVER" > "$WORK/update-initramfs-$1.out" 2>&1 || rc=$?
  echo "$rc" > "$WORK/update-initramfs-$1.status"
  [ "$rc" = 0 ] || { cat "$WORK/update-initramfs-$1.out" >&2; return 1; }
  mv "$M/boot/initrd.img-$KVER" "$WORK/initrd-$1.img"
  cp "$WORK/initrd-$1.img" "$M/tmp/initrd.img"
  in_root unmkinitramfs /tmp/initrd.img "/tmp/initrd-$1"
  mv "$M/tmp/initrd-$1" "$WORK/initrd-$1.d"
  rm -f "$M/tmp/initrd.img"
}

hook_calls() { # IMPL: the module calls initramfs-tools up to 0.142 (bookworm) made for the image's modules
  # (trixie's 0.148 resolves modules and firmware with dracut-install, through libkmod):
  # `modprobe --show-depends` and `modinfo -F firmware`, each once for all of them (0.142 ran modinfo
  # once per module: 171 Node starts on a loaded 2-core machine cost minutes)
  [ -f "$WORK/initrd-modules.txt" ] ||
    { find "$WORK/initrd-kmod.d" -name '*.ko*' | sed 's|.*/||; s|\.ko.*||'
      # none of the image's modules declares firmware; two of the tree's (comedi drivers) do
      echo jr3_pci; echo me4000; } | LC_ALL=C sort > "$WORK/initrd-modules.txt"
  cp "$WORK/initrd-modules.txt" "$M/tmp/initrd-modules.txt"
  in_root sh -c 'modprobe --all --set-version="$0" --ignore-install --quiet --show-depends $(cat /tmp/initrd-modules.txt) 2>&1; echo "exit $?"' "$KVER" > "$WORK/show-depends-$1.out"
  in_root sh -c 'modinfo -k "$0" -F firmware $(cat /tmp/initrd-modules.txt) 2>&1; echo "exit $?"' "$KVER" > "$WORK/firmware-$1.out"
  rm -f "$M/tmp/initrd-modules.txt"
}

image() { # IMPL: the root file system as an ext4 image (mkfs.ext4 -d copies the tree, no loop mount)
  local mb
  mb=$(du -sm --one-file-system "$M" | cut -f1)
  mkfs.ext4 -q -F -L kmodts-root -d "$M" "$WORK/root-$1.img" "$((mb + mb / 2 + 256))M"
}

# 2. kmod 34.2
initramfs kmod
hook_calls kmod
image kmod
# 3. kmodts in kmod's place
in_root /usr/local/lib/kmodts-system/replace-kmod.sh
initramfs kmodts
hook_calls kmodts
image kmodts
