#!/usr/bin/env bash
# Obtains the reference material the differential, simulator and VM suites compare against:
#   - kmod 34.2 from Debian trixie, unpacked into $CACHE/kmod-34.2 and run through trixie's own loader;
#   - the current Debian 6.12 cloud-amd64 kernel image and headers, unpacked into $CACHE/linux,
#     its module tree indexed by kmod 34.2's depmod.
# Everything is cached once per machine, in $KMODTS_CACHE or else ${XDG_CACHE_HOME:-~/.cache}/kmodts;
# re-running is cheap once downloaded.
# Prints shell assignments (KMOD_ROOT=..., KTREE=..., KVER=...) on stdout, logs on stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${KMODTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodts}
mkdir -p "$CACHE"
# one run at a time per machine (test files run it in parallel): they share the files written below
exec 9>>"$CACHE/.fetch-reference.lock"
flock 9
APT="$CACHE/apt-trixie"
mkdir -p "$APT/lists/partial" "$APT/archives/partial" "$APT/etc"
log() { echo "fetch-reference: $*" >&2; }

# A trixie source list derived from the machine's own apt sources (same mirror URIs).
mirrors() {
  { cat /etc/apt/sources.list 2>/dev/null; cat /etc/apt/sources.list.d/*.list 2>/dev/null; } |
    awk '$1=="deb"{for(i=2;i<=NF;i++) if($i ~ /^https?:/){print $i; break}}'
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '/^URIs:/{for(i=2;i<=NF;i++) print $i}' "$f"
  done
}
# KMODTS_DEBIAN_MIRROR (e.g. http://deb.debian.org/debian) overrides them; a host whose apt sources
# name no Debian mirror (another distribution, a local proxy) uses deb.debian.org.
if [ -n "${KMODTS_DEBIAN_MIRROR:-}" ]; then
  mirrors() { echo "$KMODTS_DEBIAN_MIRROR"; }
elif [ -z "$(mirrors | grep debian || true)" ]; then
  mirrors() { echo http://deb.debian.org/debian; }
fi
srclist="$APT/etc/sources.list"
: > "$srclist.new"
for uri in $(mirrors | sort -u); do
  case "$uri" in
    *debian-security*) echo "deb $uri trixie-security main" >> "$srclist.new" ;;
    *debian*) echo "deb $uri trixie main" >> "$srclist.new" ;;
  esac
done
[ -s "$srclist.new" ] || { log "no Debian mirror found in /etc/apt sources"; exit 1; }
# replaced only when it changes: a new file makes apt rebuild its package cache (~4 s per query)
if cmp -s "$srclist.new" "$srclist"; then rm -f "$srclist.new"; else mv "$srclist.new" "$srclist"; fi
# the package caches are named: hosts whose apt.conf turns them off (container images) would rebuild
# them on every query, ~4 s each
aptopts=(-o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=/dev/null
         -o Dir::State::Lists="$APT/lists" -o Dir::Cache="$APT" -o Debug::NoLocking=1
         -o Dir::Cache::pkgcache="$APT/pkgcache.bin" -o Dir::Cache::srcpkgcache="$APT/srcpkgcache.bin"
         -o APT::Architecture=amd64)
# Refresh the package lists at most once a day.
if [ -z "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
  log "updating trixie package lists"
  apt-get "${aptopts[@]}" -q update >&2 && [ -n "$(find "$APT/lists" -maxdepth 1 -name '*Packages*' | head -1)" ] || {
    log "no Debian mirror reachable ($(mirrors | sort -u | paste -sd ' ')): set KMODTS_DEBIAN_MIRROR to one that is"; exit 1; }
fi
cand() { apt-cache "${aptopts[@]}" policy "$1" | awk '/Candidate:/{print $2}'; }

download() { # download PKG... into $CACHE/debs, skipping those already there
  mkdir -p "$CACHE/debs"
  local need=()
  for p in "$@"; do
    local v; v=$(cand "$p")
    [ -n "$v" ] && [ "$v" != "(none)" ] || { log "no candidate for $p"; exit 1; }
    ls "$CACHE/debs/${p}_"*"${v#*:}"_*.deb >/dev/null 2>&1 || need+=("$p=$v")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "downloading ${need[*]}"
    (cd "$CACHE/debs" && apt-get "${aptopts[@]}" -q download "${need[@]}" >&2)
  fi
}
debfile() { local v; v=$(cand "$1"); ls "$CACHE/debs/${1}_"*"${v#*:}"_*.deb | head -1; }

# --- kmod 34.2 ---
KMOD_ROOT="$CACHE/kmod-34.2"
kmodpkgs=(kmod libkmod2 libc6 liblzma5 libzstd1 libssl3t64 zlib1g)
if [ ! -x "$KMOD_ROOT/usr/bin/kmod" ] || [ "$(cat "$KMOD_ROOT/.stamp" 2>/dev/null)" != "$(cand kmod)" ]; then
  download "${kmodpkgs[@]}"
  rm -rf "$KMOD_ROOT.tmp"; mkdir -p "$KMOD_ROOT.tmp"
  for p in "${kmodpkgs[@]}"; do dpkg -x "$(debfile "$p")" "$KMOD_ROOT.tmp"; done
  cand kmod > "$KMOD_ROOT.tmp/.stamp"
  rm -rf "$KMOD_ROOT"; mv "$KMOD_ROOT.tmp" "$KMOD_ROOT"
fi
ver=$("$KMOD_ROOT/usr/lib64/ld-linux-x86-64.so.2" --library-path "$KMOD_ROOT/usr/lib/x86_64-linux-gnu" \
      "$KMOD_ROOT/usr/bin/kmod" --version | head -1)
[ "$ver" = "kmod version 34.2" ] || { log "unexpected kmod: $ver"; exit 1; }

# --- Debian 6.12 cloud-amd64 kernel ---
# The metapackage names the current versioned image; the headers package carries Module.symvers.
img=$(apt-cache "${aptopts[@]}" depends linux-image-cloud-amd64 | awk '/Depends: linux-image-6\.12/{print $2; exit}')
[ -n "$img" ] || { log "cannot resolve linux-image-cloud-amd64"; exit 1; }
kver=${img#linux-image-}; kver=${kver%-unsigned}
hdr="linux-headers-$kver"
hdrcommon=$(apt-cache "${aptopts[@]}" depends "$hdr" | awk '/Depends: linux-headers-.*-common/{print $2; exit}')
KTREE="$CACHE/linux-$kver"
if [ ! -f "$KTREE/.stamp" ]; then
  download "$img" "$hdr"
  rm -rf "$KTREE.tmp"; mkdir -p "$KTREE.tmp"
  dpkg -x "$(debfile "$img")" "$KTREE.tmp"
  mkdir -p "$KTREE.tmp/headers"; dpkg -x "$(debfile "$hdr")" "$KTREE.tmp/headers"
  # trixie ships modules under /usr/lib/modules (merged /usr); kmod looks in /lib/modules.
  [ -e "$KTREE.tmp/lib" ] || ln -s usr/lib "$KTREE.tmp/lib"
  # depmod of kmod 34.2 indexes the tree (reference indexes).
  "$KMOD_ROOT/usr/lib64/ld-linux-x86-64.so.2" --library-path "$KMOD_ROOT/usr/lib/x86_64-linux-gnu" \
    --argv0 depmod "$KMOD_ROOT/usr/bin/kmod" -b "$KTREE.tmp" "$kver" >&2
  echo "$img" > "$KTREE.tmp/.stamp"
  rm -rf "$KTREE"; mv "$KTREE.tmp" "$KTREE"
fi
: "${hdrcommon:=}"
echo "KMOD_ROOT=$KMOD_ROOT"
echo "KTREE=$KTREE"
echo "KVER=$kver"
echo "VMLINUZ=$KTREE/boot/vmlinuz-$kver"
echo "SYMVERS=$KTREE/headers/usr/src/linux-headers-$kver/Module.symvers"
