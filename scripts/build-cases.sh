#!/usr/bin/env bash
# Builds corematrix's built-in BPF case suite:
#   cases/*.bpf.c       -> build/cases/NAME.bpf.o     (clang-19 -target bpf,   -g -O2)
#   (BIG_ENDIAN list)   -> build/cases/NAME.bpfeb.o   (clang-19 -target bpfeb, -g -O2)
#   cases/targets/*.c   -> build/cases/targets/NAME.o and NAME.btf (the object's .BTF section,
#                          a small hand-made "kernel" BTF for relocating against)
#
# Idempotent and incremental: an output is rebuilt only when it is older than its source, a shared
# header under cases/include/, or this script. Every failure prints one line
# "build-cases: FAILED <output>: <first compiler error>" (the full log stays in <output>.log);
# the exit code is 1 if anything failed. Flags: -f rebuilds everything, -v echoes commands,
# -k then prints which CO-RE relocation kinds each object has (from llvm-objdump-19 -dr, which
# shows them as "CO-RE <kind>" comments) and fails unless the objects together have all 13.
#
# clang-19 is required: bookworm's default clang 14 cannot emit enum64 or type_matches relocations.
set -uo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."

CLANG=${CLANG:-clang-19}
OBJCOPY=${OBJCOPY:-llvm-objcopy-19}
OUT=build/cases
force=0 verbose=0 kinds=0
while getopts fvk opt; do
  case $opt in
  f) force=1 ;;
  v) verbose=1 ;;
  k) kinds=1 ;;
  *) echo "usage: $0 [-f] [-v] [-k]" >&2; exit 2 ;;
  esac
done

for tool in "$CLANG" "$OBJCOPY"; do
  command -v "$tool" >/dev/null || { echo "build-cases: $tool not found (install clang-19/llvm-19)" >&2; exit 1; }
done

# Cases that also get a big-endian object: they read no pt_regs (whose layout bpf_tracing.h takes
# from the x86 target), so the same source is meaningful for bpfeb.
BIG_ENDIAN=(fields bitfields enums types synthetic minimal)

# -D__TARGET_ARCH_x86: bpf_tracing.h's PT_REGS_* and BPF_KSYSCALL need the target's pt_regs layout;
# vmlinux.h comes from an x86_64 kernel. -idirafter keeps the host's asm/ headers reachable for
# libbpf's headers without letting them override vmlinux.h.
COMMON_FLAGS=(-g -O2 -Wall -Werror -Wno-unused-function -D__TARGET_ARCH_x86 -Icases/include
  -idirafter /usr/include -idirafter /usr/include/x86_64-linux-gnu)

mkdir -p "$OUT/targets"
shared_deps=(cases/include/*.h "$0")
failed=0 built=0 uptodate=0

# needs_build OUTPUT SOURCE: true if OUTPUT is missing or older than SOURCE or a shared dependency.
needs_build() {
  local out=$1 src=$2 dep
  ((force)) && return 0
  [[ -f $out ]] || return 0
  [[ $src -nt $out ]] && return 0
  for dep in "${shared_deps[@]}"; do [[ $dep -nt $out ]] && return 0; done
  return 1
}

# run OUTPUT CMD...: runs CMD, logging to OUTPUT.log; on failure prints the one-line summary.
run() {
  local out=$1; shift
  ((verbose)) && echo "+ $*"
  if "$@" >"$out.log" 2>&1; then
    rm -f "$out.log"
    return 0
  fi
  local first
  first=$(grep -m1 -E 'error|Error|ERROR' "$out.log" || head -n1 "$out.log")
  echo "build-cases: FAILED $out: ${first:-no output} (log: $out.log)"
  rm -f "$out"
  failed=$((failed + 1))
  return 1
}

compile_case() {
  local src=$1 target=$2 out=$3
  needs_build "$out" "$src" || { uptodate=$((uptodate + 1)); return; }
  run "$out" "$CLANG" -target "$target" "${COMMON_FLAGS[@]}" -c "$src" -o "$out" && built=$((built + 1))
}

for src in cases/*.bpf.c; do
  name=$(basename "$src" .bpf.c)
  compile_case "$src" bpf "$OUT/$name.bpf.o"
  for be in "${BIG_ENDIAN[@]}"; do
    [[ $be == "$name" ]] && compile_case "$src" bpfeb "$OUT/$name.bpfeb.o"
  done
done

# Target fixtures: plain C type definitions, compiled for the BPF target only because that is how
# clang emits a .BTF section; the code in them is never loaded.
for src in cases/targets/*.c; do
  name=$(basename "$src" .c)
  obj="$OUT/targets/$name.o" btf="$OUT/targets/$name.btf"
  if needs_build "$btf" "$src" || [[ $obj -nt $btf ]]; then
    if run "$obj" "$CLANG" -target bpf -g -O2 -Wall -Werror -c "$src" -o "$obj" &&
      run "$btf" "$OBJCOPY" --dump-section ".BTF=$btf" "$obj" "$obj.tmp"; then
      rm -f "$obj.tmp"
      built=$((built + 1))
    fi
  else
    uptodate=$((uptodate + 1))
  fi
done

echo "build-cases: $built built, $uptodate up to date, $failed failed -> $OUT/"

# The 13 kinds in libbpf's enum bpf_core_relo_kind order, spelled as llvm-objdump prints them.
ALL_KINDS=(byte_off byte_sz field_exists signed lshift_u64 rshift_u64 local_type_id target_type_id
  type_exists type_size enumval_exists enumval_value type_matches)
if ((kinds)); then
  OBJDUMP=${OBJDUMP:-llvm-objdump-19}
  printf '%-22s' object
  printf ' %s' "${ALL_KINDS[@]}"
  echo
  declare -A total=()
  for obj in "$OUT"/*.o; do
    declare -A count=()
    while read -r kind; do
      count[$kind]=$((${count[$kind]:-0} + 1))
      total[$kind]=$((${total[$kind]:-0} + 1))
    done < <("$OBJDUMP" -dr "$obj" | grep -o 'CO-RE <[a-z0-9_]*>' | tr -d '<>' | cut -d' ' -f2)
    printf '%-22s' "$(basename "$obj")"
    for k in "${ALL_KINDS[@]}"; do printf " %${#k}s" "${count[$k]:--}"; done
    echo
    unset count
  done
  missing=()
  for k in "${ALL_KINDS[@]}"; do [[ -n ${total[$k]:-} ]] || missing+=("$k"); done
  if ((${#missing[@]})); then
    echo "build-cases: CO-RE kinds no object has: ${missing[*]}"
    failed=$((failed + 1))
  else
    echo "build-cases: all 13 CO-RE relocation kinds are covered"
  fi
fi
((failed == 0))
