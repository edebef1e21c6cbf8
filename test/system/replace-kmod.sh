#!/bin/sh
# Puts an installed kmodts (`npm install -g kmodts`) in place of Debian's kmod, under kmod's own
# names and paths: each of the kmod package's programs is diverted with dpkg-divert (so upgrades of
# kmod keep the real ones aside, as <path>.distrib) and replaced by a link to kmodts, which picks the
# tool by the name it is called by. Also installs the initramfs-tools hook that keeps kmod's own
# binary in every initramfs (a Node program does not belong there). Run as root, in the system.
# `replace-kmod.sh --undo` restores kmod.
set -eu
# the kmod package's programs (dpkg -L kmod): one binary and its links
programs="/usr/bin/kmod /usr/bin/lsmod /usr/sbin/depmod /usr/sbin/insmod /usr/sbin/lsmod /usr/sbin/modinfo /usr/sbin/modprobe /usr/sbin/rmmod"
hook=/etc/initramfs-tools/hooks/kmodts

if [ "${1:-}" = --undo ]; then
  for p in $programs; do
    [ "$(dpkg-divert --truename "$p")" = "$p" ] && continue
    rm -f "$p"
    dpkg-divert --local --rename --remove "$p" >/dev/null
  done
  rm -f "$hook"
  exit 0
fi

kmodts=$(command -v kmodts) || { echo "replace-kmod.sh: kmodts is not installed (npm install -g kmodts)" >&2; exit 1; }
mkdir -p "$(dirname "$hook")"
cp "$(dirname "$0")/initramfs-hook.sh" "$hook"
chmod 755 "$hook"
for p in $programs; do
  if [ "$(dpkg-divert --truename "$p")" = "$p" ]; then
    dpkg-divert --local --rename --add "$p" >/dev/null
  fi
  ln -sfn "$kmodts" "$p"
done
