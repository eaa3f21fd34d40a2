/**
 * "Essential" names: CO-RE ignores everything after the last `___` flavor separator, so that a
 * program can carry several local definitions (`task_struct___old`, `task_struct___new`) of one
 * kernel type. Mirrors bpf_core_essential_name_len in libbpf.c, including its edge cases:
 * the separator must be exactly three underscores between two non-underscore characters, so
 * `foo___` and `foo____bar` have no flavor.
 */
export function essentialNameLength(name: string): number {
  for (let i = name.length - 5; i >= 0; i--) {
    if (
      name.charCodeAt(i) !== 0x5f &&
      name.charCodeAt(i + 1) === 0x5f &&
      name.charCodeAt(i + 2) === 0x5f &&
      name.charCodeAt(i + 3) === 0x5f &&
      name.charCodeAt(i + 4) !== 0x5f
    ) {
      return i + 1;
    }
  }
  return name.length;
}

export function essentialName(name: string): string {
  return name.slice(0, essentialNameLength(name));
}

/** Both names equal once their flavors are dropped. */
export function essentialNamesEqual(a: string, b: string): boolean {
  const n = essentialNameLength(a);
  return n === essentialNameLength(b) && a.startsWith(b.slice(0, n));
}

/**
 * `essentialNamesEqual(name, other)` as a test of `other`, with `name`'s essential name computed
 * once: for searching many names (an enum's values) for one.
 */
export function hasEssentialNameOf(name: string): (other: string) => boolean {
  const essential = essentialName(name);
  return (other) => other.startsWith(essential) && essentialNameLength(other) === essential.length;
}
