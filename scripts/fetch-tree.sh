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
# plain HTTP download through apt's own helper (present wherever apt is; curl may not be)
fetch() { rm -f "$2"; /usr/lib/apt/apt-helper -o Debug::NoLocking=1 download-file "$1" "$2" >/dev/null 2>&1 || { [ -s "$2" ] || return 1; }; }
APT="$CACHE/apt-trixie-$arch"
mkdir -p "$APT/lists/partial" "$APT/archives/partial"
srclist="$CACHE/apt-trixie/etc/sources.list"
aptopts=(-o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=/dev/null
         -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT" -o Debug::NoLocking=1
         -o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o Acquire::By-Hash=force)
# The mirror sometimes serves Packages files older than its Release file (apt then refuses them); in
# that case the package is looked up in those Packages files directly and checked against their SHA256.
aptok=1
if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  log "updating trixie package lists for $arch"
  apt-get "${aptopts[@]}" -q update >"$APT/update.log" 2>&1 || true
  grep -q '^E:' "$APT/update.log" && aptok=0
fi
img=
if [ $aptok = 1 ]; then
  img=$(apt-cache "${aptopts[@]}" depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  img=${img%%:*}
fi
if [ -n "$img" ]; then
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
  fi
else
  flavour=${meta#linux-image-}
  mkdir -p "$CACHE/debs-$arch"
  best=
  while read -r kind uri suite comp; do
    [ "$kind" = deb ] || continue
    pk="$APT/Packages-$(echo "$uri$suite" | tr -c 'A-Za-z0-9' _)"
    if [ ! -s "$pk" ]; then
      fetch "$uri/dists/$suite/$comp/binary-$arch/Packages.xz" "$pk.xz" && xz -dc "$pk.xz" > "$pk" || continue
    fi
    awk -v f="$flavour" -v u="$uri" '/^Package: /{p=$2} /^Filename: /{fn=$2} /^SHA256: /{h=$2}
      /^$/{ if (p ~ ("^linux-image-[0-9][^-]*-" f "$")) print p, u "/" fn, h; p="" }' "$pk"
  done < "$CACHE/apt-trixie/etc/sources.list" | sort -V | tail -1 > "$APT/chosen"
  read -r img url sha < "$APT/chosen" || { log "no $meta image for $arch"; exit 1; }
  kver=${img#linux-image-}
  TREE="$CACHE/tree-$arch-$kver"
  deb="$CACHE/debs-$arch/$(basename "$url")"
  if [ ! -f "$TREE/.stamp" ] && [ ! -s "$deb" ]; then
    log "downloading $url"
    fetch "$url" "$deb.tmp"
    echo "$sha  $deb.tmp" | sha256sum -c --quiet - || { log "checksum mismatch for $url"; exit 1; }
    mv "$deb.tmp" "$deb"
  fi
fi
if [ ! -f "$TREE/.stamp" ]; then
  rm -rf "$TREE.tmp"; mkdir -p "$TREE.tmp"
  dpkg -x "$deb" "$TREE.tmp"
  [ -e "$TREE.tmp/lib" ] || ln -s usr/lib "$TREE.tmp/lib"
  echo "$img" > "$TREE.tmp/.stamp"
  rm -rf "$TREE"; mv "$TREE.tmp" "$TREE"
fi
echo "KTREE=$TREE"
echo "KVER=$kver"
