/**
 * A kernel given as local files: any of a vmlinuz (compressed image), a vmlinux (ELF) and raw BTF,
 * plus optionally its config. The BTF is read from the most direct file given (raw BTF, then the
 * vmlinux, then the vmlinuz); the release from the image (the vmlinuz's setup header, the vmlinux's
 * banner), else from the BTF's container, else the version in the config's header.
 */

import type { Btf } from '../btf/btf.js';
import { inFile, UsageError } from '../errors.js';
import { type KernelConfig, parseKernelConfig } from './config.js';
import { kernelRelease } from './image.js';
import { type BtfSource, readBtfFile, readInputFile } from './read.js';

export interface LocalKernelFiles {
  vmlinuz?: string;
  vmlinux?: string;
  btf?: string;
  config?: string;
}

/** Where a kernel's release string was read from. */
export type ReleaseOrigin = 'vmlinuz' | 'vmlinux' | 'btf' | 'config' | 'uname';

/** A kernel's BTF and config, read and parsed. */
export interface KernelFilesRead {
  release: string | undefined;
  releaseFrom: ReleaseOrigin | undefined;
  btfFile: string;
  btf: Btf;
  btfSource: BtfSource;
  configFile: string | undefined;
  config: KernelConfig | undefined;
}

/** Reads and parses a kernel config file (plain or gzip); errors name the file. */
export async function readKernelConfig(file: string): Promise<KernelConfig> {
  const bytes = await readInputFile(file);
  return inFile(file, () => parseKernelConfig(bytes));
}

/** The release a vmlinuz's setup header names, or undefined when it names none. */
export async function imageRelease(vmlinuz: string): Promise<string | undefined> {
  const bytes = await readInputFile(vmlinuz);
  return inFile(vmlinuz, () =>
    kernelRelease(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)),
  );
}

/** Reads a local kernel. At least one of vmlinuz, vmlinux and btf must be given. */
export async function readLocalKernel(files: LocalKernelFiles): Promise<KernelFilesRead> {
  const btfFile = files.btf ?? files.vmlinux ?? files.vmlinuz;
  if (btfFile === undefined) throw new UsageError('a local kernel needs a vmlinuz, a vmlinux or a BTF file');
  const { btf, source } = await readBtfFile(btfFile);
  const config = files.config === undefined ? undefined : await readKernelConfig(files.config);

  let release: string | undefined;
  let releaseFrom: ReleaseOrigin | undefined;
  if (files.vmlinuz !== undefined) {
    release = btfFile === files.vmlinuz ? source.release : await imageRelease(files.vmlinuz);
    if (release !== undefined) releaseFrom = 'vmlinuz';
  }
  if (release === undefined && files.vmlinux !== undefined) {
    release = btfFile === files.vmlinux ? source.release : (await readBtfFile(files.vmlinux)).source.release;
    if (release !== undefined) releaseFrom = 'vmlinux';
  }
  if (release === undefined && source.release !== undefined) {
    release = source.release;
    releaseFrom = 'btf';
  }
  if (release === undefined && config?.version !== undefined) {
    release = config.version;
    releaseFrom = 'config';
  }
  return { release, releaseFrom, btfFile, btf, btfSource: source, configFile: files.config, config };
}
