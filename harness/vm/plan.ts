/**
 * The load plan: everything the in-VM agent needs to load a matrix cell's programs into the kernel
 * under test, prepared on the host (CO-RE relocation, subprogram linking, BTF sanitization, extern
 * resolution all happen there) so that the agent only issues bpf() syscalls. It is the contract
 * between harness/loader/ (which builds plans), harness/vm/ (which encodes them into the initramfs
 * and reads results back) and agent/ (the static C program that runs as PID 1 in the VM).
 *
 * Each program is loaded on its own: a program's PROG_LOAD failing never stops the others, since
 * user space often loads a subset. Maps of an object are created once, before its first program,
 * and shared by its programs.
 */

export const PLAN_VERSION = 1;

export interface LoadPlan {
  version: typeof PLAN_VERSION;
  /** The matrix kernel this plan was made for (for messages). */
  kernel: string;
  objects: PlannedObject[];
}

export interface PlannedObject {
  /** The object's name in reports (its path as given). */
  name: string;
  /**
   * The object's BTF, sanitized for this kernel (as libbpf's bpf_object__sanitize_btf does), for
   * BTF_LOAD. Absent when the kernel cannot take BTF at all or the object has none; maps and
   * programs then go without BTF ids and func/line info.
   */
  btf?: Uint8Array;
  maps: PlannedMap[];
  programs: PlannedProgram[];
}

export interface PlannedMap {
  /** The name the map is created with (at most 15 bytes, libbpf's kernel name). */
  name: string;
  /** BPF_MAP_TYPE_* number. */
  type: number;
  keySize: number;
  valueSize: number;
  maxEntries: number;
  /** map_flags. */
  flags: number;
  numaNode?: number;
  mapExtra?: bigint;
  /** BTF type ids in the object's BTF (0 when none or when the object's BTF is not loaded). */
  btfKeyTypeId: number;
  btfValueTypeId: number;
  /** For map-in-map: index (in this object's maps) of the map used as the inner map template. */
  innerMap?: number;
  /** Global data (.data/.rodata/.bss/.kconfig …): the value written at key 0 after creation. */
  initialValue?: Uint8Array;
  /** .rodata and .kconfig: frozen (BPF_MAP_FREEZE) after the initial value is written. */
  freeze: boolean;
  /** Initial slots of a map-in-map (`map` = index of a map) or prog array (`program` = index of a program). */
  initialSlots?: { key: number; map?: number; program?: number }[];
}

/** How an ld_imm64 instruction refers to a map once the agent has created it. */
export interface MapReference {
  /** Index of the first half of the ld_imm64, in the program's final instructions. */
  insn: number;
  /** Index in this object's maps. */
  map: number;
  /** 'fd': src_reg BPF_PSEUDO_MAP_FD, imm = fd; 'value': BPF_PSEUDO_MAP_VALUE, imm = fd, next imm = offset. */
  kind: 'fd' | 'value';
  offset: number;
}

export interface PlannedProgram {
  /** The program's function name. */
  name: string;
  /** The ELF section it came from (for reports). */
  section: string;
  /** BPF_PROG_TYPE_* number. */
  type: number;
  /** BPF_* expected attach type number (0 when none). */
  expectedAttachType: number;
  /** attach_btf_id in the kernel's vmlinux BTF for fentry/fexit/fmod_ret/lsm/tp_btf/iter (0 when none). */
  attachBtfId: number;
  /** prog_flags (BPF_F_SLEEPABLE, BPF_F_XDP_HAS_FRAGS, …). */
  flags: number;
  license: string;
  kernVersion: number;
  /** The final instructions: relocated, subprograms appended and calls linked, as libbpf loads them. */
  insns: Uint8Array;
  /** ld_imm64s to point at the object's maps. */
  mapReferences: MapReference[];
  /** Maps (indexes) the program uses, created before it is loaded. */
  maps: number[];
  /** bpf_func_info records (insn_off in instructions, type_id), adjusted to the final layout. */
  funcInfo?: { recordSize: number; records: Uint8Array };
  /** bpf_line_info records, adjusted likewise. */
  lineInfo?: { recordSize: number; records: Uint8Array };
}

/** What the agent reports for each program. */
export interface ProgramResult {
  object: string;
  program: string;
  verdict: 'loaded' | 'rejected';
  /** Where it failed: loading the object's BTF, creating one of its maps, or the program itself. */
  stage?: 'btf' | 'map' | 'prog';
  errno?: number;
  /** The verifier log: level 1 on failure; the statistics line (level 4) on success. */
  log: string;
  /** From the success log: "processed N insns (limit …) … total_states …". */
  insnsProcessed?: number;
}
