#!/usr/bin/env bash
# Obtains an extra Debian trixie kernel module tree for the depmod differential suite and benchmark:
#   fetch-tree.sh ARCH METAPACKAGE    e.g.  amd64 linux-image-amd64   |   s390x linux-image-s390x
# Same mirrors as scripts/fetch-reference.sh (which it runs first, for the trixie source list and kmod
# 34.2). The package is unpacked, untouched (no indexes), into $CACHE/tree-ARCH-VERSION with lib -> usr/lib.
# Prints KTREE=... and KVER=... on stdout, logs on stderr.
set -euo pipefail
arch=${1:?usage: fetch-tree.sh ARCH METAPACKAGE}
meta=${2:?usage: fetch-tree.sh ARCH METAPACKAGE}
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KMODTS_CACHE:-$here/.cache}
bash "$here/scripts/fetch-reference.sh" >/dev/null
log() { echo "fetch-tree: $*" >&2; }
APT="$CACHE/apt-trixie-$arch"
mkdir -p "$APT/lists/partial" "$APT/archives/partial"
srclist="$CACHE/apt-trixie/etc/sources.list"
aptopts=(-o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=/dev/null
         -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT" -o Debug::NoLocking=1
         -o APT::Architecture="$arch" -o APT::Architectures::="$arch")
if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  log "updating trixie package lists for $arch"
  apt-get "${aptopts[@]}" -q update >&2
fi
img=$(apt-cache "${aptopts[@]}" depends "$meta" | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$img" ] || { log "cannot resolve $meta for $arch"; exit 1; }
img=${img%%:*}
kver=${img#linux-image-}; kver=${kver%-unsigned}
TREE="$CACHE/tree-$arch-$kver"
if [ ! -f "$TREE/.stamp" ]; then
  mkdir -p "$CACHE/debs-$arch"
  v=$(apt-cache "${aptopts[@]}" policy "$img" | awk '/Candidate:/{print $2}')
  deb=$(ls "$CACHE/debs-$arch/${img}_"*"_$arch.deb" 2>/dev/null | head -1 || true)
  if [ -z "$deb" ]; then
    log "downloading $img=$v ($arch)"
    (cd "$CACHE/debs-$arch" && apt-get "${aptopts[@]}" -q download "$img:$arch=$v" >&2)
    deb=$(ls "$CACHE/debs-$arch/${img}_"*"_$arch.deb" | head -1)
  fi
  rm -rf "$TREE.tmp"; mkdir -p "$TREE.tmp"
  dpkg -x "$deb" "$TREE.tmp"
  [ -e "$TREE.tmp/lib" ] || ln -s usr/lib "$TREE.tmp/lib"
  echo "$img" > "$TREE.tmp/.stamp"
  rm -rf "$TREE"; mv "$TREE.tmp" "$TREE"
fi
echo "KTREE=$TREE"
echo "KVER=$kver"
