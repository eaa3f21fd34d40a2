#!/usr/bin/env bash
# Builds the VM tier's two static programs into build/agent/ (sources in agent/, see its README):
#   build/agent/corematrix-agent   the in-VM agent (gcc -static, no library but libc)
#   build/agent/libbpf-loader      the libbpf reference loader, static against sid's libbpf in
#                                  build/libbpf/ (scripts/oracle/build.sh is run first when it is
#                                  missing), libelf.a and libz.a
# Both are fully static: an initramfs needs nothing else besides the plan and the objects.
#
# Idempotent: a binary is rebuilt only when a source, this script or (for the loader) libbpf is
# newer. --agent-only skips the loader (no libbpf needed). Prints nothing on stdout unless built;
# progress on stderr. Concurrent runs (test workers) wait for each other.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src="$repo/agent"
out="$repo/build/agent"
libbpf="$repo/build/libbpf"
cc=${CC:-gcc}
agent_only=0
[[ ${1:-} == --agent-only ]] && agent_only=1

mkdir -p "$out"
exec 7>"$repo/build/.agent.lock"
command -v flock >/dev/null && flock 7

# Whether $1 is missing or older than any of the rest.
stale() {
  local target=$1 dep
  shift
  [[ -e $target ]] || return 0
  for dep in "$@"; do [[ $dep -nt $target ]] && return 0; done
  return 1
}

cflags=(-O2 -s -Wall -Wextra -Werror -Wno-unused-parameter -std=gnu11 -static)
common=("$src/common.c" "$src/common.h")

if stale "$out/corematrix-agent" "$src/corematrix-agent.c" "${common[@]}" "$0"; then
  echo "build-agent: building corematrix-agent" >&2
  "$cc" "${cflags[@]}" -o "$out/corematrix-agent.tmp.$$" "$src/corematrix-agent.c" "$src/common.c"
  mv -f "$out/corematrix-agent.tmp.$$" "$out/corematrix-agent"
fi

((agent_only)) && exit 0

if [[ ! -f $libbpf/lib/libbpf.a || ! -f $libbpf/lib/libglibc-compat.a || ! -d $libbpf/include/bpf ]]; then
  bash "$repo/scripts/oracle/build.sh" >&2
fi
if stale "$out/libbpf-loader" "$src/libbpf-loader.c" "${common[@]}" "$0" "$libbpf/lib/libbpf.a" \
  "$libbpf/lib/libglibc-compat.a"; then
  echo "build-agent: building libbpf-loader against libbpf $(cat "$libbpf/VERSION")" >&2
  "$cc" "${cflags[@]}" -I"$libbpf/include" -o "$out/libbpf-loader.tmp.$$" "$src/libbpf-loader.c" \
    "$src/common.c" -L"$libbpf/lib" -l:libbpf.a -lglibc-compat -lelf -lz
  mv -f "$out/libbpf-loader.tmp.$$" "$out/libbpf-loader"
fi
