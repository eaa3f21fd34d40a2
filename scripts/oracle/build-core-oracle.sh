#!/usr/bin/env bash
# Builds build/oracle/core-oracle (scripts/oracle/core-oracle.c) statically against sid's libbpf in
# build/libbpf/, running scripts/oracle/build.sh first when that library is not there yet.
# Idempotent: recompiles only when the source or the library is newer than the binary.
# Prints the binary's path on stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
src="$repo/scripts/oracle/core-oracle.c"
libbpf="$repo/build/libbpf"
out="$repo/build/oracle"
bin="$out/core-oracle"
cc=${CC:-$(command -v clang || command -v clang-19 || command -v cc)}

# Test workers may call this at the same time: one builds, the others wait for it.
mkdir -p "$repo/build"
exec 9>"$repo/build/.core-oracle.lock"
command -v flock >/dev/null && flock 9

if [[ ! -f $libbpf/lib/libbpf.a || ! -f $libbpf/link-flags || ! -f $libbpf/lib/libglibc-compat.a ]]; then
  bash "$repo/scripts/oracle/build.sh" >&2
fi

stale=0
if [[ ! -x $bin ]]; then
  stale=1
else
  for dep in "$src" "$libbpf/lib/libbpf.a" "$libbpf/lib/libglibc-compat.a"; do
    [[ $dep -nt $bin ]] && stale=1
  done
fi

if ((stale)); then
  mkdir -p "$out"
  echo "core-oracle: building against libbpf $(cat "$libbpf/VERSION")" >&2
  # shellcheck disable=SC2046 # link-flags is a list of words
  "$cc" -O2 -g -Wall -Werror -o "$bin.tmp.$$" "$src" $(cat "$libbpf/link-flags")
  mv -f "$bin.tmp.$$" "$bin"
fi
echo "$bin"
