/**
 * A kernel's build configuration (the `.config` Kconfig writes: /boot/config-<release>,
 * /proc/config.gz, a Debian package's config file), plain or gzip-compressed.
 *
 * Lines are `CONFIG_X=y`, `CONFIG_X=m`, `CONFIG_X="string"` (with \" and \\ escaped),
 * `CONFIG_X=123` or `CONFIG_X=0x1f`, and `# CONFIG_X is not set`; other comments and blank lines
 * carry nothing. The first comment lines name the kernel version it was made for
 * (`# Linux/x86 6.1.76 Kernel Configuration`).
 */

import { gunzipSync } from 'node:zlib';
import { ParseError } from '../errors.js';

export type ConfigValue =
  /** A bool or tristate: built in, a module, or not set. */
  | { type: 'tristate'; value: 'y' | 'm' | 'n' }
  | { type: 'string'; value: string }
  /** A decimal or hex number; `text` as written ("0x1f"). */
  | { type: 'number'; value: number; text: string };

export interface KernelConfig {
  /** Every option the file sets or says is not set, by full name (CONFIG_…), in file order. */
  options: Map<string, ConfigValue>;
  /** The kernel version of the header comment ("6.1.76"), when there is one. */
  version: string | undefined;
  /** The architecture of the header comment ("x86"), when there is one. */
  arch: string | undefined;
}

const OPTION = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/;
const NOT_SET = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/;
const HEADER = /^# Linux\/(\S+) (\S+) Kernel Configuration$/;

/** Whether the bytes start with gzip's magic. */
function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Parses a kernel config, plain text or gzip. A line that is neither an option, a comment nor
 * blank → ParseError('config') naming the line; so does a file that is not text at all.
 */
export function parseKernelConfig(bytes: Uint8Array): KernelConfig {
  let data = bytes;
  if (isGzip(bytes)) {
    try {
      data = gunzipSync(bytes);
    } catch (e) {
      throw new ParseError(
        'config',
        `gzip data does not decompress: ${(e as Error).message}`,
        {},
        { cause: e },
      );
    }
  }
  if (data.includes(0)) throw new ParseError('config', 'not a kernel config: the file holds NUL bytes');
  const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
  const options = new Map<string, ConfigValue>();
  let version: string | undefined;
  let arch: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    const trimmed = line.trim();
    if (trimmed === '') continue;
    if (trimmed.startsWith('#')) {
      const off = NOT_SET.exec(trimmed);
      if (off !== null) {
        options.set(off[1]!, { type: 'tristate', value: 'n' });
        continue;
      }
      const header = HEADER.exec(trimmed);
      if (header !== null && version === undefined) {
        arch = header[1]!;
        version = header[2]!;
      }
      continue;
    }
    const m = OPTION.exec(trimmed);
    if (m === null) {
      throw new ParseError(
        'config',
        `line ${i + 1}: expected CONFIG_NAME=value or "# CONFIG_NAME is not set", got ${JSON.stringify(clip(trimmed))}`,
      );
    }
    options.set(m[1]!, parseValue(m[2]!, i + 1));
  }
  return { options, version, arch };
}

function parseValue(text: string, line: number): ConfigValue {
  if (text === 'y' || text === 'm' || text === 'n') return { type: 'tristate', value: text };
  if (text.startsWith('"')) {
    let value = '';
    let i = 1;
    for (; i < text.length; i++) {
      const c = text[i]!;
      if (c === '\\' && i + 1 < text.length) value += text[++i]!;
      else if (c === '"') break;
      else value += c;
    }
    if (i !== text.length - 1) {
      throw new ParseError('config', `line ${line}: unterminated or trailing text in string ${clip(text)}`);
    }
    return { type: 'string', value };
  }
  if (/^-?[0-9]+$/.test(text)) return { type: 'number', value: Number(text), text };
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) return { type: 'number', value: Number.parseInt(text, 16), text };
  throw new ParseError(
    'config',
    `line ${line}: expected y, m, a "string" or a number, got ${JSON.stringify(clip(text))}`,
  );
}

function clip(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The value as the config file writes it, or "is not set" (absent and `n` alike). */
export function formatConfigValue(value: ConfigValue | undefined): string {
  if (value === undefined || (value.type === 'tristate' && value.value === 'n')) return 'is not set';
  if (value.type === 'tristate') return value.value;
  if (value.type === 'number') return value.text;
  return JSON.stringify(value.value);
}

/** Whether an option is built in or a module (a tristate of y or m). */
export function isEnabled(config: KernelConfig, name: string): boolean {
  const v = config.options.get(name);
  return v !== undefined && v.type === 'tristate' && v.value !== 'n';
}

/**
 * The options that decide what BPF programs can do on a kernel, in the order `kernels info`
 * shows them, each with why it matters.
 */
export const BPF_CONFIG_HIGHLIGHTS: readonly { name: string; why: string }[] = [
  { name: 'CONFIG_BPF', why: 'the BPF core' },
  { name: 'CONFIG_BPF_SYSCALL', why: 'the bpf() system call: loading anything at all' },
  { name: 'CONFIG_BPF_JIT', why: 'JIT-compiled programs' },
  { name: 'CONFIG_BPF_JIT_ALWAYS_ON', why: 'no interpreter fallback' },
  { name: 'CONFIG_DEBUG_INFO_BTF', why: 'kernel BTF (/sys/kernel/btf/vmlinux): CO-RE' },
  { name: 'CONFIG_DEBUG_INFO_BTF_MODULES', why: "modules' BTF (/sys/kernel/btf/<module>)" },
  { name: 'CONFIG_BPF_LSM', why: 'BPF LSM programs (lsm/)' },
  { name: 'CONFIG_BPF_EVENTS', why: 'kprobe, uprobe and tracepoint programs' },
  { name: 'CONFIG_KPROBES', why: 'kprobes' },
  { name: 'CONFIG_UPROBES', why: 'uprobes' },
  { name: 'CONFIG_FTRACE', why: 'ftrace' },
  { name: 'CONFIG_FUNCTION_TRACER', why: 'fentry/fexit trampolines' },
  { name: 'CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS', why: 'fentry/fexit attach' },
  { name: 'CONFIG_FPROBE', why: 'kprobe.multi' },
  { name: 'CONFIG_NET_CLS_BPF', why: 'tc classifier programs' },
  { name: 'CONFIG_NET_ACT_BPF', why: 'tc action programs' },
  { name: 'CONFIG_CGROUP_BPF', why: 'cgroup programs' },
  { name: 'CONFIG_BPF_STREAM_PARSER', why: 'sockmap stream parser' },
  { name: 'CONFIG_XDP_SOCKETS', why: 'AF_XDP' },
];
