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
  return `${lines.join('\n')}\n`;
}
