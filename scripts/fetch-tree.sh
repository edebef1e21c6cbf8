#!/usr/bin/env bash
# Obtains an extra Debian trixie kernel module tree for the depmod differential suite and benchmark:
#   fetch-tree.sh ARCH METAPACKAGE    e.g.  amd64 linux-image-amd64   |   s390x linux-image-s390x
# Same mirrors as scripts/fetch-reference.sh (which it runs first, for the trixie source list and kmod
# 34.2). The newest image of the metapackage's flavour that the mirror actually serves is taken (mirrors
# have been seen listing packages whose files answer 404: the next older one is tried then), checked
# against the SHA256 of its Packages entry and unpacked, untouched (no indexes), into
# $CACHE/tree-ARCH-VERSION with lib -> usr/lib. Prints KTREE=... and KVER=... on stdout, logs on stderr.
set -euo pipefail
arch=${1:?usage: fetch-tree.sh ARCH METAPACKAGE}
meta=${2:?usage: fetch-tree.sh ARCH METAPACKAGE}
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KMODTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodts}
bash "$here/scripts/fetch-reference.sh" >/dev/null
log() { echo "fetch-tree: $*" >&2; }
# plain HTTP download through apt's own helper (present wherever apt is; curl may not be)
fetch() { rm -f "$2"; /usr/lib/apt/apt-helper -o Debug::NoLocking=1 download-file "$1" "$2" >/dev/null 2>&1 || { [ -s "$2" ] || return 1; }; }
APT="$CACHE/apt-trixie-$arch"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$CACHE/debs-$arch"
# one run at a time per architecture (test files ask for the same tree in parallel): they share the
# lists, the candidates and the tree's temporary directory
exec 8>>"$CACHE/.fetch-tree-$arch.lock"
flock 8
srclist="$CACHE/apt-trixie/etc/sources.list"
# apt's own lists for this architecture, refreshed daily: suites that need more packages of the same
# kernel (the arm64 simulator suite's headers) download them through apt with these options
aptopts=(-o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=/dev/null
         -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT" -o Debug::NoLocking=1
         -o Dir::Cache::pkgcache="$APT/pkgcache.bin" -o Dir::Cache::srcpkgcache="$APT/srcpkgcache.bin"
         -o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o Acquire::By-Hash=force)
if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  log "updating trixie package lists for $arch"
  apt-get "${aptopts[@]}" -q update >"$APT/update.log" 2>&1 || true
fi
# Every image of the flavour in the suites' Packages files (read directly: the mirror sometimes serves
# Packages files older than its Release file, which apt then refuses), newest first.
flavour=${meta#linux-image-}
candidates="$APT/candidates"
while read -r kind uri suite comp; do
  [ "$kind" = deb ] || continue
  pk="$APT/Packages-$(echo "$uri$suite" | tr -c 'A-Za-z0-9' _)"
  if [ -z "$(find "$pk" -mtime -1 2>/dev/null)" ]; then
    fetch "$uri/dists/$suite/$comp/binary-$arch/Packages.xz" "$pk.xz" && xz -dc "$pk.xz" > "$pk.new" && mv "$pk.new" "$pk" || true
  fi
  [ -s "$pk" ] || continue
  awk -v f="$flavour" -v u="$uri" '/^Package: /{p=$2} /^Filename: /{fn=$2} /^SHA256: /{h=$2}
    /^$/{ if (p ~ ("^linux-image-[0-9][^-]*-" f "$")) print p, u "/" fn, h; p="" }' "$pk"
done < "$srclist" | sort -V -r -u > "$candidates"
[ -s "$candidates" ] || { log "no $meta image for $arch in $srclist"; exit 1; }
TREE=
# (the list on its own descriptor: nothing in the loop may read it as standard input)
while read -r -u 3 img url sha; do
  kver=${img#linux-image-}
  if [ -f "$CACHE/tree-$arch-$kver/.stamp" ]; then TREE="$CACHE/tree-$arch-$kver"; break; fi
  deb="$CACHE/debs-$arch/$(basename "$url")"
  if [ ! -s "$deb" ]; then
    # a file the mirror lists but did not serve is not asked for again for a day (each try costs seconds)
    if [ -n "$(find "$deb.not-served" -mmin -1440 2>/dev/null)" ]; then continue; fi
    log "downloading $url"
    if ! fetch "$url" "$deb.tmp"; then log "not served: $url (not tried again for a day)"; rm -f "$deb.tmp"; touch "$deb.not-served"; continue; fi
    rm -f "$deb.not-served"
    if ! echo "$sha  $deb.tmp" | sha256sum -c --quiet - >/dev/null 2>&1; then log "checksum mismatch: $url"; rm -f "$deb.tmp"; continue; fi
    mv "$deb.tmp" "$deb"
  fi
  TREE="$CACHE/tree-$arch-$kver"
  rm -rf "$TREE.tmp"; mkdir -p "$TREE.tmp"
  dpkg -x "$deb" "$TREE.tmp"
  [ -e "$TREE.tmp/lib" ] || ln -s usr/lib "$TREE.tmp/lib"
  echo "$img" > "$TREE.tmp/.stamp"
  rm -rf "$TREE"; mv "$TREE.tmp" "$TREE"
  break
done 3< "$candidates"
[ -n "$TREE" ] || { log "none of the $meta images listed for $arch could be downloaded"; exit 1; }
echo "KTREE=$TREE"
echo "KVER=$kver"
