/**
 * `corematrix image build [IMAGE...] [--matrix FILE] [--rebuild]`: container images from Debian's
 * archive (harness/container/image.ts), built or reused by their content tag. Without names, the
 * images the matrix needs; with names, those (built-in ones, or ones the matrix declares).
 * Prints one line per image: its tag, whether it was built or reused, and how long it took.
 */

import { existsSync } from 'node:fs';
import { BUILTIN_IMAGES, imagesByName, matrixImages } from '../container/images.js';
import { isMatrixError, loadMatrix, type Matrix } from '../matrix/load.js';
import type { Output } from './output.js';

export interface ImageBuildOptions {
  /** Images to build (default: all the matrix needs). */
  names: string[];
  matrix: string;
  rebuild: boolean;
}

export interface ImageIo {
  out: Output;
  stderr: (text: string) => void;
}

export async function imageBuild(o: ImageBuildOptions, io: ImageIo): Promise<number> {
  // Names of built-in images need no matrix (a host without one can still build the executor).
  const builtinOnly = o.names.length > 0 && o.names.every((n) => BUILTIN_IMAGES.some((i) => i.name === n));
  let matrix: Matrix | undefined;
  if (!builtinOnly || existsSync(o.matrix)) {
    try {
      matrix = loadMatrix(o.matrix, { checkCases: false });
    } catch (e) {
      if (!isMatrixError(e)) throw e;
      io.stderr(`corematrix: ${e.describe()}\n`);
      return 2;
    }
  }
  const specs = o.names.length > 0 ? imagesByName(o.names, matrix) : matrixImages(matrix!);
  if (specs.length === 0) {
    io.stderr(
      `corematrix: ${o.matrix}: the matrix needs no images (no executor: container, no containerized compilers)\n`,
    );
    return 0;
  }
  const { ensureImage } = await import('../container/image.js');
  for (const spec of specs) {
    const image = await ensureImage(spec, {
      rebuild: o.rebuild,
      log: (line) => io.stderr(`corematrix: ${line}\n`),
    });
    io.out.write(`${image.tag}\t${image.built ? 'built' : 'reused'}\t${(image.ms / 1000).toFixed(1)} s\n`);
    // Each line as soon as its image is there: a long build of the next should not hide it.
    io.out.flush();
  }
  return 0;
}
