import {
  closeSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Btf } from '../btf/btf.js';
import type { TargetBtfs } from '../core/candidates.js';
import type { ObjectRelocation, RelocationRecord } from '../core/relocate.js';
import type { ElfFill } from '../elf/elf.js';
import { UsageError } from '../errors.js';
import type { BpfObject } from '../object/object.js';
import type { CoreBpfObject } from '../object/object-core.js';
import { readInput, withFileSync } from './input.js';
import type { Output } from './output.js';

/** Reads and opens one BPF object; errors name the file. */
export async function openObject(path: string): Promise<BpfObject> {
  const { parseBpfObject } = await import('../object/object.js');
  const bytes = readObject(path);
  return withFileSync(path, () => parseBpfObject(bytes, { path }));
}

/** The object's bytes; a file that cannot be read is a usage error naming it. */
function readObject(path: string): Uint8Array {
  try {
    return new Uint8Array(readFileSync(path));
  } catch (e) {
    throw cannotRead(path, e);
  }
}

function cannotRead(path: string, e: unknown): UsageError {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  return new UsageError(`cannot read ${path}: ${code === 'ENOENT' ? 'no such file' : code}`, { file: path });
}

/** The unit `openObjectFile` reads an object in. */
const FILL_BLOCK = 16 * 1024;

/**
 * An object file open for reading on demand: a zero-filled buffer of the file's size (its pages
 * cost nothing until written) and the `fill` that reads a range of the file into it. Relocation
 * then reads only the headers, .BTF, .BTF.ext, the symbols and the code: a few percent of an object
 * whose DWARF is most of its bytes (~650 KB per case object, ~6 MB for the suite). Anything but a
 * regular file is read whole.
 */
function openObjectFile(path: string): { bytes: Uint8Array; fill: ElfFill | undefined; close(): void } {
  let fd: number;
  let size: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw cannotRead(path, e);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      return { bytes: readObject(path), fill: undefined, close() {} };
    }
    size = stat.size;
  } catch (e) {
    closeSync(fd);
    throw cannotRead(path, e);
  }
  const bytes = new Uint8Array(size);
  const read = (start: number, end: number): void => {
    try {
      for (let done = start; done < end; ) {
        const n = readSync(fd, bytes, done, end - done, done);
        // The file got shorter since it was opened: what is gone reads as zeros.
        if (n === 0) break;
        done += n;
      }
    } catch (e) {
      throw cannotRead(path, e);
    }
  };
  // Whole blocks at a time: an object's small pieces sit close together (the headers and the code
  // at the start; the section headers and their names at the end), so most of them come with the
  // first read near them, ~4 reads per object instead of ~11.
  const filled = new Uint8Array(Math.ceil(size / FILL_BLOCK));
  const fill = (offset: number, length: number): void => {
    const last = Math.floor((offset + length - 1) / FILL_BLOCK);
    for (let block = Math.floor(offset / FILL_BLOCK); block <= last; block++) {
      if (filled[block] === 1) continue;
      let end = block;
      while (end < last && filled[end + 1] === 0) end++;
      read(block * FILL_BLOCK, Math.min(size, (end + 1) * FILL_BLOCK));
      filled.fill(1, block, end + 1);
      block = end;
    }
  };
  return { bytes, fill, close: () => closeSync(fd) };
}

/** `corematrix obj dump OBJ`. */
export async function objDump(path: string, out: Output): Promise<void> {
  const obj = await openObject(path);
  const { formatObjectDump } = await import('../object/dump.js');
  // The open model (maps, externs, …) is computed as the dump reads it: its errors name the file.
  out.write(withFileSync(path, () => formatObjectDump(obj, path)));
}

export interface RelocateOptions {
  objects: string[];
  btf: string;
  base?: string;
  modules: string[];
  json: boolean;
  output?: string;
}

/**
 * `corematrix relocate`: every object against one kernel's BTF (read once), in libbpf's order.
 * Returns how many objects libbpf would refuse (a relocation error).
 */
export async function relocate(
  options: RelocateOptions,
  out: Output,
  stderr: (line: string) => void,
): Promise<number> {
  if (options.output !== undefined && options.objects.length !== 1) {
    throw new UsageError('-o writes one relocated object: give exactly one OBJ');
  }
  // The CO-RE engine's modules load (their files read by the thread pool) while this thread reads
  // and parses the kernel's BTF. Relocation needs only the CO-RE part of an object
  // (parseCoreObject): the rest of the object model is not even loaded.
  const engine = Promise.all([import('../core/relocate.js'), import('../object/object-core.js')]);
  const base = options.base === undefined ? undefined : (await readInput(options.base)).btf;
  const vmlinux = (await readInput(options.btf, base)).btf;
  const modules: { name: string; btf: Btf }[] = [];
  for (const m of options.modules)
    modules.push({ name: basename(m), btf: (await readInput(m, vmlinux)).btf });
  // libbpf with btf_custom_path searches only that BTF; with module BTFs given, it behaves as on a
  // running kernel: vmlinux first, modules when vmlinux has no candidate.
  const targets: TargetBtfs = { vmlinux, modules, vmlinuxOverride: modules.length === 0 };
  const [{ relocateObject }, { parseCoreObject }] = await engine;
  const { relocationRecordJson } = options.json ? await import('../core/records-json.js') : {};
  // Several objects look up many root type names between them: hash vmlinux's names once now
  // rather than let the first lookups search its string bytes one name at a time (relocateObject
  // decides that per object, from its own records).
  if (options.objects.length > 1) vmlinux.indexNames();

  let refused = 0;
  for (const path of options.objects) {
    // -o copies the whole object: read it whole.
    const file =
      options.output === undefined
        ? openObjectFile(path)
        : { bytes: readObject(path), fill: undefined, close() {} };
    let obj: CoreBpfObject;
    let result: ObjectRelocation;
    try {
      obj = withFileSync(path, () => parseCoreObject(file.bytes, file.fill));
      result = withFileSync(path, () => relocateObject(obj, targets));
    } finally {
      file.close();
    }
    for (const r of result.records)
      out.write(
        relocationRecordJson !== undefined ? `${relocationRecordJson(path, r)}\n` : textLine(path, r),
      );
    if (result.failed !== undefined) {
      refused++;
      stderr(`corematrix: ${path}: libbpf would refuse this object: ${describeFailure(result.failed)}\n`);
      continue;
    }
    if (options.output !== undefined) {
      const { objectWithSections } = await import('../object/patched.js');
      writeAtomically(options.output, objectWithSections(obj, result.sections));
    }
  }
  return refused;
}

function textLine(path: string, r: RelocationRecord): string {
  const where = `${path}: sec '${r.section}' relo #${r.index}: prog '${r.function}' insn #${r.insn}`;
  const what = `<${r.kind}> ${r.access}`;
  switch (r.result) {
    case 'patched':
      return `${where}: ${what}: patched ${r.old} -> ${r.new}${r.memSize ? ` (mem size ${r.memSize.old} -> ${r.memSize.new})` : ''}\n`;
    case 'poisoned':
      return `${where}: ${what}: poisoned\n`;
    case 'error':
      return `${where}: ${what}: error: ${r.message}\n`;
  }
}

function describeFailure(r: RelocationRecord): string {
  return `sec '${r.section}' relo #${r.index} (${r.access || r.kind}): ${r.message}`;
}

/** Writes next to the destination, then renames: a reader never sees half an object. */
function writeAtomically(path: string, bytes: Uint8Array): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, bytes);
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot write ${path}: ${code}`, { file: path });
  }
}
