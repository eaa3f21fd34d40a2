import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, test } from 'vitest';
import { isParseError } from '../errors.js';
import { type CachedKernel, defaultDebianKernels } from '../test-support/kernels.js';
import { formatConfigValue, isEnabled, parseKernelConfig } from './config.js';

const SAMPLE = `#
# Automatically generated file; DO NOT EDIT.
# Linux/x86 6.1.176 Kernel Configuration
#
CONFIG_CC_VERSION_TEXT="gcc-12 (Debian 12.2.0-14) 12.2.0"
CONFIG_BPF=y
CONFIG_NET_CLS_BPF=m
# CONFIG_BPF_LSM is not set
CONFIG_NR_CPUS=8192
CONFIG_PHYSICAL_START=0x1000000
CONFIG_LSM="landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf"
CONFIG_QUOTED="a \\"b\\" c\\\\"
`;

const text = (s: string) => new TextEncoder().encode(s);

describe('kernel config', () => {
  test('reads every value kind and the header', () => {
    const c = parseKernelConfig(text(SAMPLE));
    expect(c.version).toBe('6.1.176');
    expect(c.arch).toBe('x86');
    expect(c.options.get('CONFIG_BPF')).toEqual({ type: 'tristate', value: 'y' });
    expect(c.options.get('CONFIG_NET_CLS_BPF')).toEqual({ type: 'tristate', value: 'm' });
    expect(c.options.get('CONFIG_BPF_LSM')).toEqual({ type: 'tristate', value: 'n' });
    expect(c.options.get('CONFIG_NR_CPUS')).toEqual({ type: 'number', value: 8192, text: '8192' });
    expect(c.options.get('CONFIG_PHYSICAL_START')).toEqual({
      type: 'number',
      value: 0x1000000,
      text: '0x1000000',
    });
    expect(c.options.get('CONFIG_QUOTED')).toEqual({ type: 'string', value: 'a "b" c\\' });
    expect(formatConfigValue(c.options.get('CONFIG_QUOTED'))).toBe('"a \\"b\\" c\\\\"');
    expect(formatConfigValue(c.options.get('CONFIG_BPF_LSM'))).toBe('is not set');
    expect(isEnabled(c, 'CONFIG_NET_CLS_BPF')).toBe(true);
    expect(isEnabled(c, 'CONFIG_BPF_LSM')).toBe(false);
    expect(isEnabled(c, 'CONFIG_ABSENT')).toBe(false);
  });

  test('gzip (as /proc/config.gz) reads the same as plain text', () => {
    expect(parseKernelConfig(gzipSync(text(SAMPLE)))).toEqual(parseKernelConfig(text(SAMPLE)));
  });

  test.each([
    ['CONFIG_BPF=y\nnot a config line\n', 'config: line 2: expected CONFIG_NAME=value'],
    ['CONFIG_X=maybe\n', 'config: line 1: expected y, m, a "string" or a number, got "maybe"'],
    ['CONFIG_X="open\n', 'config: line 1: unterminated'],
    ['\0\0ELF', 'config: not a kernel config'],
  ])('rejects %j', (input, message) => {
    let error: unknown;
    try {
      parseKernelConfig(text(input));
    } catch (e) {
      error = e;
    }
    expect(isParseError(error)).toBe(true);
    expect((error as Error).message).toContain(message);
  });

  test('corrupt gzip is a parse error', () => {
    const gz = gzipSync(text(SAMPLE));
    expect(() => parseKernelConfig(gz.subarray(0, 40))).toThrow(/config: gzip data does not decompress/);
  });

  describe('Debian kernels', () => {
    let kernels: CachedKernel[];
    beforeAll(async () => {
      kernels = await defaultDebianKernels();
    });

    test('every option line of each config is read, with the value the file writes', () => {
      for (const k of kernels) {
        const bytes = readFileSync(k.config);
        const c = parseKernelConfig(bytes);
        const lines = bytes.toString('utf8').split('\n');
        const set = lines.filter((l) => /^CONFIG_\w+=/.test(l));
        const unset = lines.filter((l) => /^# CONFIG_\w+ is not set$/.test(l));
        expect(c.options.size, k.name).toBe(set.length + unset.length);
        for (const line of set) {
          const [name, value] = [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)];
          expect(formatConfigValue(c.options.get(name)), line).toBe(value);
        }
        expect(c.version, k.name).toMatch(/^\d+\.\d+/);
        expect(isEnabled(c, 'CONFIG_DEBUG_INFO_BTF'), k.name).toBe(true);
      }
    });
  });
});
