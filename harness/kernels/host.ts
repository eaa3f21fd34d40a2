/**
 * The running kernel: its release (`uname -r`), its BTF (/sys/kernel/btf/vmlinux) and its config
 * (/boot/config-<release>, else /proc/config.gz when the kernel was built with CONFIG_IKCONFIG_PROC).
 */

import { accessSync, constants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../errors.js';
import { type KernelFilesRead, readKernelConfig } from './local.js';
import { readBtfFile } from './read.js';

export interface HostKernelPaths {
  release: string;
  btf: string;
  /** The config file found, if any. */
  config: string | undefined;
}

export interface HostOptions {
  /** Prefix for /sys, /boot and /proc (tests); default "/". */
  root?: string;
  /** Default: os.release(), what uname -r prints. */
  release?: string;
}

function readable(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where the running kernel keeps its BTF and config. No BTF → UsageError. */
export function hostKernelPaths(options: HostOptions = {}): HostKernelPaths {
  const root = options.root ?? '/';
  const release = options.release ?? os.release();
  const btf = path.join(root, 'sys/kernel/btf/vmlinux');
  if (!readable(btf)) {
    throw new UsageError(
      `the running kernel ${release} has no readable BTF (was it built with CONFIG_DEBUG_INFO_BTF=y?)`,
      { file: btf },
    );
  }
  const config = [path.join(root, 'boot', `config-${release}`), path.join(root, 'proc/config.gz')].find(
    readable,
  );
  return { release, btf, config };
}

/** Reads the running kernel's BTF and config. */
export async function readHostKernel(options: HostOptions = {}): Promise<KernelFilesRead> {
  const paths = hostKernelPaths(options);
  const { btf, source } = await readBtfFile(paths.btf);
  const config = paths.config === undefined ? undefined : await readKernelConfig(paths.config);
  return {
    release: paths.release,
    releaseFrom: 'uname',
    btfFile: paths.btf,
    btf,
    btfSource: { ...source, release: paths.release },
    configFile: paths.config,
    config,
  };
}
