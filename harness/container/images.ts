/**
 * Which images a matrix needs, by name: the executor image (QEMU, for `executor: container`) and
 * the toolchain images of its compiler axis. Pure: names and specs, no engine.
 */

import { matrixToolchainImages } from '../build/images.js';
import { UsageError } from '../errors.js';
import type { Matrix } from '../matrix/load.js';
import type { ImageSpec } from './image.js';

/** QEMU from Debian bookworm: the VMs of `executor: container` run in it. */
export const EXECUTOR_IMAGE: ImageSpec = {
  name: 'executor',
  suite: 'bookworm',
  packages: ['qemu-system-x86'],
};

/** Images every matrix may ask for by name, whatever it declares. */
export const BUILTIN_IMAGES: readonly ImageSpec[] = [EXECUTOR_IMAGE];

/**
 * The toolchain images of a matrix's compiler axis (`compilers:`), one per containerized
 * toolchain. The compiler axis (issue 8, part 2) declares them here.
 */
export function toolchainImages(matrix: Matrix): ImageSpec[] {
  return matrixToolchainImages(matrix);
}

/** The images a matrix needs, in a stable order: the executor image first when it runs VMs in containers. */
export function matrixImages(matrix: Matrix): ImageSpec[] {
  const images = [...(matrix.executor === 'container' ? [EXECUTOR_IMAGE] : []), ...toolchainImages(matrix)];
  const seen = new Set<string>();
  return images.filter((i) => !seen.has(i.name) && seen.add(i.name) !== undefined);
}

/**
 * The specs of the named images: built-in ones, and (when a matrix is given) those the matrix
 * declares. An unknown name is a usage error listing the names there are.
 */
export function imagesByName(names: readonly string[], matrix?: Matrix): ImageSpec[] {
  const known = [...BUILTIN_IMAGES, ...(matrix === undefined ? [] : toolchainImages(matrix))];
  return [...new Set(names)].map((name) => {
    const spec = known.find((i) => i.name === name);
    if (spec === undefined) {
      throw new UsageError(
        `no image named ${JSON.stringify(name)}; known images: ${known.map((i) => i.name).join(', ')}`,
        matrix === undefined ? {} : { file: matrix.file },
      );
    }
    return spec;
  });
}
