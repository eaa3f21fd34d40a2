/**
 * `corematrix image build`: container images from Debian's archive. Skeleton: lands with issue 8.
 */

import { NotSupportedError } from '../errors.js';
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

export async function imageBuild(_o: ImageBuildOptions, _io: ImageIo): Promise<number> {
  throw new NotSupportedError('image build', 'corematrix image build is not built yet');
}
