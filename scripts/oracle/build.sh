#!/usr/bin/env bash
# Builds the libbpf oracle: sid's libbpf (the reference libbpf, newer than bookworm's) unpacked
# under build/libbpf/, and the C helpers in this folder linked statically against it.
#
#   build/libbpf/include/         libbpf's headers (#include <bpf/btf.h>)
#   build/libbpf/lib/libbpf.a     sid's static libbpf
#   build/libbpf/lib/libglibc-compat.a   glibc 2.38 entry points bookworm lacks (see glibc-compat.c)
#   build/libbpf/VERSION          the Debian version of the libbpf-dev package unpacked
#   build/libbpf/link-flags       what to link a program against them with (one line)
#   build/oracle/btf-parse-bench  the benchmark helper
#   build/oracle/btf-dump-c       libbpf's C rendering of a BTF (other helpers here have build scripts
#                                 of their own, e.g. build-core-oracle.sh)
#
# Idempotent: once build/libbpf/ holds the library, no network is used, and helpers are only
# recompiled when their source is newer. Needs apt-get, dpkg-deb, clang (or cc), libelf-dev, zlib.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/scripts/oracle"
build="$repo/build"
libbpf="$build/libbpf"
out="$build/oracle"
cc=${CC:-$(command -v clang || command -v cc)}

log() { echo "oracle: $*" >&2; }

# The Debian archive this machine already uses, read from its apt sources (deb822 first, then
# one-line style), so the script names no host itself. Prints "URI KEYRING" (KEYRING may be "").
system_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    # deb822: blank-line-separated stanzas; take the first whose suites are not -security/-updates
    # and which serves Debian's "main" (the archive, not a third-party repository).
    awk '
      function flush() {
        if (uris != "" && suites != "" && comps ~ /(^| )main( |$)/ && suites !~ /-security/ && uris ~ /\/debian\/?$/ && !done) {
          split(uris, u, " "); print u[1], signed; done = 1
        }
        uris = ""; suites = ""; comps = ""; signed = ""
      }
      /^[ \t]*$/ { flush(); next }
      /^#/ { next }
      tolower($1) == "uris:" { $1 = ""; uris = substr($0, 2) }
      tolower($1) == "suites:" { $1 = ""; suites = substr($0, 2) }
      tolower($1) == "components:" { $1 = ""; comps = substr($0, 2) }
      tolower($1) == "signed-by:" { signed = $2 }
      END { flush() }
    ' "$f" | head -n1
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    # deb [options] URI SUITE COMPONENTS...
    sed -E 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $2 ~ /\/debian\/?$/ && $3 !~ /-security/ { print $2, ""; exit }'
  done
}

fetch_libbpf() {
  local mirror keyring apt_dir
  read -r mirror keyring < <(system_mirror | head -n1) || true
  if [[ -z ${mirror:-} ]]; then
    log "no Debian archive found in /etc/apt/sources.list(.d); cannot fetch sid's libbpf-dev" && return 1
  fi
  keyring=${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}
  apt_dir="$build/apt"
  mkdir -p "$apt_dir/state/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/parts" "$apt_dir/debs"
  echo "deb [signed-by=$keyring] $mirror sid main" >"$apt_dir/sources.list"
  # A private apt state: the system's package lists and sources are neither read nor changed.
  local -a apt_opts=(
    -o "Dir::State=$apt_dir/state"
    -o "Dir::State::status=/var/lib/dpkg/status"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::Etc::SourceList=$apt_dir/sources.list"
    -o "Dir::Etc::SourceParts=$apt_dir/parts"
    -o "Dir::Etc::PreferencesParts=$apt_dir/parts"
    -o "APT::Architecture=$(dpkg --print-architecture)"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  log "fetching sid's package list (private apt state in $apt_dir)"
  apt-get "${apt_opts[@]}" -qq update >&2
  rm -f "$apt_dir/debs"/libbpf-dev_*.deb
  (cd "$apt_dir/debs" && apt-get "${apt_opts[@]}" -qq download libbpf-dev >&2)
  local deb
  deb=$(ls "$apt_dir/debs"/libbpf-dev_*.deb | head -n1)
  log "unpacking $(basename "$deb")"
  rm -rf "$libbpf.tmp"
  mkdir -p "$libbpf.tmp/root"
  dpkg-deb -x "$deb" "$libbpf.tmp/root"
  local archive
  archive=$(find "$libbpf.tmp/root" -name libbpf.a | head -n1)
  [[ -n $archive ]] || { log "$deb has no libbpf.a"; return 1; }
  mkdir -p "$libbpf.tmp/lib"
  cp "$archive" "$libbpf.tmp/lib/libbpf.a"
  cp -r "$libbpf.tmp/root/usr/include" "$libbpf.tmp/include"
  dpkg-deb -f "$deb" Version >"$libbpf.tmp/VERSION"
  rm -rf "$libbpf.tmp/root" "$libbpf"
  mv "$libbpf.tmp" "$libbpf"
}

# Whether $1 is missing or older than any of the rest.
stale() {
  local target=$1 dep
  shift
  [[ -e $target ]] || return 0
  for dep in "$@"; do [[ $dep -nt $target ]] && return 0; done
  return 1
}

# Test workers and the benchmark may run this at the same time: one builds, the others wait.
mkdir -p "$build"
exec 8>"$build/.libbpf.lock"
command -v flock >/dev/null && flock 8

if [[ ! -f $libbpf/lib/libbpf.a || ! -d $libbpf/include/bpf ]]; then
  fetch_libbpf
fi

if stale "$libbpf/lib/libglibc-compat.a" "$here/glibc-compat.c"; then
  "$cc" -O2 -c "$here/glibc-compat.c" -o "$libbpf/lib/glibc-compat.o"
  rm -f "$libbpf/lib/libglibc-compat.a"
  ar rcs "$libbpf/lib/libglibc-compat.a" "$libbpf/lib/glibc-compat.o"
  rm -f "$libbpf/lib/glibc-compat.o"
fi
link_flags="-I$libbpf/include -L$libbpf/lib -l:libbpf.a -lglibc-compat -lelf -lz"
# Replaced, not rewritten in place: other scripts read it without taking the lock.
if [[ $(cat "$libbpf/link-flags" 2>/dev/null) != "$link_flags" ]]; then
  echo "$link_flags" >"$libbpf/link-flags.tmp.$$"
  mv -f "$libbpf/link-flags.tmp.$$" "$libbpf/link-flags"
fi

mkdir -p "$out"
for name in btf-parse-bench btf-dump-c; do
  src="$here/$name.c"
  if stale "$out/$name" "$src" "$libbpf/lib/libbpf.a" "$libbpf/lib/libglibc-compat.a"; then
    log "building $name against libbpf $(cat "$libbpf/VERSION")"
    # shellcheck disable=SC2086 # link_flags is a list of words
    "$cc" -O2 -Wall -Werror -o "$out/$name.tmp.$$" "$src" $link_flags
    mv -f "$out/$name.tmp.$$" "$out/$name"
  fi
done
