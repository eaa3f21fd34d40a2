import type { KernelConfig } from '../kernels/config.js';
import type { BpfExtern } from '../object/externs.js';
import type { KernelFeatures } from './features.js';

/**
 * The .kconfig map's contents for a kernel, as bpf_object__resolve_externs fills it: virtual
 * LINUX_* values first, then CONFIG_* values from the kernel's config, each written as its extern's
 * type asks (bool, tristate, char, integer of 1/2/4/8 bytes, char array).
 */

/**
 * A kernel config as libbpf reads it: each CONFIG_ line's raw value (the text after '=', quotes
 * and escapes kept), first occurrence first. `# CONFIG_X is not set` lines carry nothing.
 */
export type RawKconfig = Map<string, string>;

export type KconfigInput = RawKconfig | KernelConfig | string | Uint8Array;

export interface KconfigResult {
  /** The .kconfig map value (all zeros where nothing was set). */
  data: Uint8Array;
  /** Externs left unset (weak ones stay zero; a strong one fails the object). */
  unset: BpfExtern[];
  /** Where libbpf fails the object, with its message. */
  errors: string[];
}

/** bpf_object__read_kconfig_*: the config's CONFIG_ lines as raw values. */
export function rawKconfig(config: KconfigInput, errors: string[] = []): RawKconfig {
  if (config instanceof Map) return config;
  if (typeof config === 'object' && !(config instanceof Uint8Array)) {
    // A parsed config: its values written back as the config file had them. Not-set options were
    // comment lines, which libbpf skips.
    const raw: RawKconfig = new Map();
    for (const [name, v] of config.options) {
      if (v.type === 'tristate') {
        if (v.value !== 'n') raw.set(name, v.value);
      } else if (v.type === 'string') {
        raw.set(name, `"${v.value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`);
      } else {
        raw.set(name, v.text);
      }
    }
    return raw;
  }
  const text = typeof config === 'string' ? config : new TextDecoder().decode(config);
  const raw: RawKconfig = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('CONFIG_')) continue;
    const eq = line.indexOf('=');
    if (eq < 0) {
      errors.push(`failed to parse '${line}': no separator`);
      continue;
    }
    if (eq === line.length - 1) {
      errors.push(`failed to parse '${line}': no value`);
      continue;
    }
    const name = line.slice(0, eq);
    if (!raw.has(name)) raw.set(name, line.slice(eq + 1));
  }
  return raw;
}

/** strtoull(value, &end, 0) consuming the whole string; undefined when it does not. */
export function parseU64(value: string): bigint | undefined {
  const m = /^[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)$/.exec(value);
  if (m === null) return undefined;
  const digits = m[2]!;
  let v: bigint;
  if (/^0[xX]/.test(digits)) v = BigInt(digits);
  else if (digits.length > 1 && digits.startsWith('0')) v = BigInt(`0o${digits.slice(1)}`);
  else v = BigInt(digits);
  if (v > 0xffffffffffffffffn) return undefined; // ERANGE
  return m[1] === '-' ? BigInt.asUintN(64, -v) : v;
}

function inRange(ext: BpfExtern, v: bigint): boolean {
  const k = ext.kconfig!;
  if (k.size === 8) return true;
  const bits = BigInt(k.size * 8);
  if (k.signed) return BigInt.asUintN(64, v + (1n << (bits - 1n))) < 1n << bits;
  return v >> bits === 0n;
}

export interface KconfigContext {
  externs: readonly BpfExtern[];
  /** The .kconfig map's value size. */
  size: number;
  littleEndian: boolean;
  config: KconfigInput;
  features: KernelFeatures;
  /** LINUX_KERNEL_VERSION. */
  versionCode: number;
}

export function computeKconfig(ctx: KconfigContext): KconfigResult {
  const data = new Uint8Array(ctx.size);
  const view = new DataView(data.buffer);
  const errors: string[] = [];
  const set = new Set<BpfExtern>();
  const le = ctx.littleEndian;

  const writeNum = (ext: BpfExtern, value: bigint): boolean => {
    const k = ext.kconfig!;
    if (k.type !== 'int' && k.type !== 'char' && k.type !== 'bool') {
      errors.push(`extern (kcfg) '${ext.name}': value '${value}' implies integer, char, or boolean type`);
      return false;
    }
    if (k.type === 'bool' && value > 1n) {
      errors.push(`extern (kcfg) '${ext.name}': value '${value}' isn't boolean compatible`);
      return false;
    }
    if (!inRange(ext, value)) {
      errors.push(`extern (kcfg) '${ext.name}': value '${value}' doesn't fit in ${k.size} bytes`);
      return false;
    }
    const off = k.dataOffset;
    switch (k.size) {
      case 1:
        view.setUint8(off, Number(value & 0xffn));
        break;
      case 2:
        view.setUint16(off, Number(value & 0xffffn), le);
        break;
      case 4:
        view.setUint32(off, Number(value & 0xffffffffn), le);
        break;
      case 8:
        view.setBigUint64(off, value, le);
        break;
      default:
        errors.push(`extern (kcfg) '${ext.name}': size ${k.size} cannot take a number`);
        return false;
    }
    set.add(ext);
    return true;
  };

  const kcfg = ctx.externs.filter((e) => e.type === 'kconfig' && e.kconfig !== undefined);
  let needConfig = false;
  for (const ext of kcfg) {
    if (ext.name.startsWith('CONFIG_')) {
      needConfig = true;
      continue;
    }
    let value: bigint;
    if (ext.name === 'LINUX_KERNEL_VERSION') {
      if (ctx.versionCode === 0) {
        errors.push(`extern (kcfg) '${ext.name}': failed to get kernel version`);
        continue;
      }
      value = BigInt(ctx.versionCode);
    } else if (ext.name === 'LINUX_HAS_BPF_COOKIE') {
      value = ctx.features.bpfCookie ? 1n : 0n;
    } else if (ext.name === 'LINUX_HAS_SYSCALL_WRAPPER') {
      value = ctx.features.syscallWrapper ? 1n : 0n;
    } else if (!ext.name.startsWith('LINUX_') || !ext.weak) {
      errors.push(`extern (kcfg) '${ext.name}': unrecognized virtual extern`);
      continue;
    } else {
      value = 0n;
    }
    writeNum(ext, value);
  }

  if (needConfig) {
    const raw = rawKconfig(ctx.config, errors);
    for (const [name, value] of raw) {
      const ext = kcfg.find((e) => e.name === name);
      if (ext === undefined || set.has(ext)) continue;
      const k = ext.kconfig!;
      const first = value[0];
      if (first === 'y' || first === 'n' || first === 'm') {
        if (k.type === 'bool') {
          if (first === 'm') {
            errors.push(`extern (kcfg) '${name}': value '${first}' implies tristate or char type`);
            continue;
          }
          data[k.dataOffset] = first === 'y' ? 1 : 0;
        } else if (k.type === 'tristate') {
          // enum libbpf_tristate: TRI_NO = 0, TRI_YES = 1, TRI_MODULE = 2 (4 bytes).
          const tri = first === 'y' ? 1 : first === 'm' ? 2 : 0;
          if (k.size === 8) view.setBigUint64(k.dataOffset, BigInt(tri), le);
          else view.setUint32(k.dataOffset, tri, le);
        } else if (k.type === 'char') {
          data[k.dataOffset] = first.charCodeAt(0);
        } else {
          errors.push(`extern (kcfg) '${name}': value '${first}' implies bool, tristate, or char type`);
          continue;
        }
        set.add(ext);
      } else if (first === '"') {
        if (k.type !== 'char_array') {
          errors.push(`extern (kcfg) '${name}': value '${value}' implies char array type`);
          continue;
        }
        const bytes = new TextEncoder().encode(value);
        if (bytes.length < 2 || bytes[bytes.length - 1] !== 0x22) {
          errors.push(`extern (kcfg) '${name}': invalid string config '${value}'`);
          continue;
        }
        // libbpf copies what is between the quotes as is (escapes included), truncated to size - 1.
        const inner = bytes.subarray(1, bytes.length - 1).subarray(0, k.size - 1);
        data.set(inner, k.dataOffset);
        data[k.dataOffset + inner.length] = 0;
        set.add(ext);
      } else {
        const num = parseU64(value);
        if (num === undefined) {
          errors.push(`extern (kcfg) '${name}': value '${value}' isn't a valid integer`);
          continue;
        }
        if (k.type !== 'int' && k.type !== 'char') {
          errors.push(`extern (kcfg) '${name}': value '${value}' implies integer type`);
          continue;
        }
        writeNum(ext, num);
      }
    }
  }
  const unset = kcfg.filter((e) => !set.has(e));
  return { data, unset, errors };
}
