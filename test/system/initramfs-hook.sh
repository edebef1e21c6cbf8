#!/bin/sh
# initramfs-tools hook (installed as /etc/initramfs-tools/hooks/kmodts by replace-kmod.sh): when
# kmodts stands in for kmod's programs, kmod's own hook and mkinitramfs copy what those names point
# to, which is kmodts' Node script. /etc/initramfs-tools/hooks run after every packaged hook, so this
# one puts kmod's real binary (kept aside by dpkg-divert) back under kmod's names and removes kmodts:
# the image holds exactly what it would hold with kmod alone.
set -e
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions

real=$(dpkg-divert --truename /usr/bin/kmod)
[ "$real" != /usr/bin/kmod ] || exit 0   # kmod is not replaced: nothing to do
# the package kmod's names lead to (mkinitramfs' PATH has no /usr/local/bin: ask the link)
kmodts_dir=$(readlink -f /usr/bin/kmod)
kmodts_dir=${kmodts_dir%/bin/*}
case "$kmodts_dir" in
  */node_modules/kmodts) ;;
  *) echo "E: kmodts hook: /usr/bin/kmod is diverted but does not lead to kmodts" >&2; exit 1 ;;
esac

# whatever was copied through kmod's names, and the kmodts files they dragged in
rm -f "$DESTDIR/usr/bin/kmod"
rm -rf "${DESTDIR:?}$kmodts_dir"
rmdir -p --ignore-fail-on-non-empty "$(dirname "$DESTDIR$kmodts_dir")" 2>/dev/null || true
copy_exec "$real" /usr/bin/kmod
# the links kmod's hook and mkinitramfs make (kmod's own relative links, as `cp -a` copies them)
for p in /usr/sbin/modprobe /usr/sbin/rmmod; do
  ln -sfn ../bin/kmod "$DESTDIR$p"
done
