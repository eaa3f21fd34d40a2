import { CoreFailure } from '../core/errno.js';
import { reloKindName } from '../core/kinds.js';
import { formatSpec, parseSpec } from '../core/spec.js';
import type { BpfObject } from './object.js';
import { programAt } from './object.js';

/**
 * `corematrix obj dump`: what libbpf sees in an object — its programs with their types and attach
 * targets, and every CO-RE relocation with the local spec as libbpf's debug log prints it.
 */
export function formatObjectDump(obj: BpfObject, name: string): string {
  const lines: string[] = [];
  lines.push(
    `object ${name}: ${obj.littleEndian ? 'little' : 'big'}-endian BPF, license ${obj.license ?? '(none)'}`,
  );
  if (obj.kernelVersion !== undefined) lines.push(`version ${obj.kernelVersion}`);
  lines.push('', `programs (${obj.programs.length}):`);
  for (const p of obj.programs) {
    const kind = p.isSubprogram ? 'subprogram' : p.progType || 'unknown type';
    const attach = p.expectedAttachType === '' ? '' : ` attach ${p.expectedAttachType}`;
    const target =
      p.attachTarget.kind === 'none'
        ? ''
        : ` target ${p.attachTarget.kind === 'btf' ? `${p.attachTarget.btfKind} ${p.attachTarget.name}` : JSON.stringify(p.attachTarget)}`;
    const flags = [
      p.autoload ? '' : 'autoload=false',
      p.sleepable ? 'sleepable' : '',
      p.global ? 'global' : 'static',
    ]
      .filter((f) => f !== '')
      .join(' ');
    lines.push(
      `  ${p.name}: sec '${p.section}' ${kind}${attach}${target}, ${p.insnCount} insns @ ${p.sectionInsnOffset} (${flags})`,
    );
  }
  const btf = obj.btf;
  const ext = obj.btfExt;
  const total = ext?.coreRelo.sections.reduce((n, s) => n + s.records.length, 0) ?? 0;
  lines.push('', `CO-RE relocations (${total}):`);
  if (btf !== undefined && ext !== undefined) {
    for (const sec of ext.coreRelo.sections) {
      const secName = btf.strings.has(sec.secNameOff)
        ? btf.strings.get(sec.secNameOff)
        : `<bad name ${sec.secNameOff}>`;
      const elfSection = obj.elf.sectionHeader(secName);
      lines.push(`  sec '${secName}': ${sec.records.length} relocations`);
      sec.records.forEach((relo, i) => {
        const insn = Math.floor(relo.insnOff / 8);
        const prog = elfSection === undefined ? undefined : programAt(obj, elfSection.index, insn);
        const where =
          prog === undefined ? `insn #${insn}` : `${prog.name} insn #${insn - prog.sectionInsnOffset}`;
        const access = btf.strings.has(relo.accessStrOff) ? btf.strings.get(relo.accessStrOff) : '';
        let spec: string;
        try {
          spec = formatSpec(parseSpec(btf, relo, access));
        } catch (e) {
          if (!(e instanceof CoreFailure)) throw e;
          spec = `<${reloKindName(relo.kind)}> [${relo.typeId}] + '${access}': invalid (${e.message})`;
        }
        lines.push(`    relo #${i}: ${relo.insnOff} ${where}: ${spec}`);
      });
    }
  }
  lines.push(...formatOpenModel(obj));
  return `${lines.join('\n')}\n`;
}

/** Maps, global data, externs, program relocations and open errors, as libbpf's open sees them. */
function formatOpenModel(obj: BpfObject): string[] {
  const lines: string[] = [];
  lines.push('', `maps (${obj.maps.length}):`);
  obj.maps.forEach((m, i) => {
    const kernel = m.kernelName === m.name ? '' : ` (kernel name '${m.kernelName}')`;
    const key = m.keyTypeId === 0 ? `${m.keySize}` : `${m.keySize} [${m.keyTypeId}]`;
    const value = m.valueTypeId === 0 ? `${m.valueSize}` : `${m.valueSize} [${m.valueTypeId}]`;
    const entries =
      m.createMaxEntries === m.maxEntries
        ? `${m.maxEntries}`
        : `${m.maxEntries} (created with ${m.createMaxEntries})`;
    const extras = [
      m.mapFlags === 0 ? '' : `flags 0x${m.mapFlags.toString(16)}`,
      m.numaNode === 0 ? '' : `numa_node ${m.numaNode}`,
      m.pinning === 'none' ? '' : `pinning ${m.pinning}`,
      m.mapExtra === 0n ? '' : `map_extra 0x${m.mapExtra.toString(16)}`,
      m.data === undefined
        ? ''
        : `${m.data.readonly ? 'readonly' : 'writable'}${m.data.frozen ? ' frozen' : ''}`,
    ].filter((x) => x !== '');
    lines.push(
      `  #${i} ${m.name}${kernel}: ${m.kind} ${m.typeName} key ${key} value ${value} max_entries ${entries}` +
        ` (sec '${m.section}' +${m.sectionOffset})${extras.length === 0 ? '' : `, ${extras.join(', ')}`}`,
    );
    if (m.inner !== undefined) {
      lines.push(
        `    inner ${m.inner.name}: ${m.inner.typeName} key ${m.inner.keySize} value ${m.inner.valueSize} max_entries ${m.inner.maxEntries}`,
      );
    }
    for (const slot of m.initialSlots ?? []) lines.push(`    [${slot.slot}] = ${slot.kind} ${slot.name}`);
    if (m.data !== undefined && m.data.initialBytes === undefined) {
      lines.push(`    ${m.data.size} bytes, zero-filled`);
    } else if (m.data?.initialBytes !== undefined && m.data.size > 0) {
      const shown = m.data.initialBytes.subarray(0, 32);
      const hex = Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join(' ');
      lines.push(`    ${m.data.size} bytes: ${hex}${m.data.size > shown.length ? ' …' : ''}`);
    }
    if (m.error !== undefined) lines.push(`    error: ${m.error.message} (${m.error.errno})`);
  });
  lines.push('', `externs (${obj.externs.length}):`);
  obj.externs.forEach((e, i) => {
    const what =
      e.kconfig !== undefined
        ? `kconfig ${e.kconfig.type}${e.kconfig.signed ? ' signed' : ''} size ${e.kconfig.size} at +${e.kconfig.dataOffset} (${e.kconfig.source})`
        : e.ksym?.kfunc
          ? 'kfunc'
          : e.ksym?.typeless
            ? 'ksym typeless'
            : `ksym typed [${e.ksym?.typeId ?? 0}]`;
    lines.push(`  #${i} ${e.name}: ${what}, ${e.weak ? 'weak' : 'strong'}, ${e.btfKind} [${e.btfId}]`);
  });
  lines.push('', `program relocations (${obj.insnRelocs.length}):`);
  for (const r of obj.insnRelocs) {
    const detail = [
      r.target === undefined ? '' : r.target,
      r.offset === undefined ? '' : `+${r.offset}`,
      r.variable === undefined ? '' : `(${r.variable})`,
    ]
      .filter((x) => x !== '')
      .join(' ');
    const kind = r.kind ?? `error: ${r.error?.message ?? ''}`;
    lines.push(
      `  ${r.program} insn #${r.insn}: ${kind}${detail === '' ? '' : ` ${detail}`} (sym '${r.symbol}')`,
    );
  }
  lines.push('', `open errors (${obj.openErrors.length}):`);
  for (const e of obj.openErrors) lines.push(`  ${e.stage}: ${e.message} (${e.errno})`);
  return lines;
}
