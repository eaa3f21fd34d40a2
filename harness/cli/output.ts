import { writeSync } from 'node:fs';

/** Thrown by a write once the reader of stdout has gone away (`corematrix … | head`). */
export class OutputClosed extends Error {
  constructor() {
    super('output closed by its reader');
    this.name = 'OutputClosed';
  }
}

export interface Output {
  /**
   * Appends text, as a string or as UTF-8 bytes (which the output keeps: the caller must not reuse
   * them). Nothing reaches the descriptor before `flush`.
   */
  write(chunk: string | Uint8Array): void;
  /** Writes out everything written so far. */
  flush(): void;
}

/**
 * A writer to a file descriptor that holds everything back until `flush`, so that a command that
 * fails half-way (a corrupt type deep in a BTF) leaves no half-written `vmlinux.h` behind: it
 * prints its one-line error and nothing else. Even a kernel's raw dump is only ~12 MB of text.
 *
 * Dumps hand out text in pieces: small ones are gathered into blocks of `blockChars` (V8 keeps the
 * concatenation as a cheap rope), large ones are kept as they come and later written with one
 * synchronous write each; copying them into ever bigger strings instead costs a kernel's dump
 * ~30 ms, a fifth of bpftool's whole run. Synchronous writes also mean an EPIPE surfaces right at
 * the write that hit it, as an OutputClosed the caller can end on.
 */
export function fdOutput(fd: number, blockChars = 1 << 16): Output {
  const blocks: (string | Uint8Array)[] = [];
  let pending = '';
  return {
    write(chunk: string | Uint8Array): void {
      if (typeof chunk !== 'string' || chunk.length >= blockChars) {
        if (pending.length > 0) blocks.push(pending);
        pending = '';
        blocks.push(chunk);
        return;
      }
      pending += chunk;
      if (pending.length >= blockChars) {
        blocks.push(pending);
        pending = '';
      }
    },
    flush(): void {
      if (pending.length > 0) blocks.push(pending);
      pending = '';
      // Taken off the list as they are written: a second flush never repeats a block, and the
      // memory of what is written can go.
      for (let block = blocks.shift(); block !== undefined; block = blocks.shift()) {
        writeAll(fd, typeof block === 'string' ? Buffer.from(block, 'utf8') : block);
      }
    },
  };
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function writeAll(fd: number, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) {
    try {
      offset += writeSync(fd, bytes, offset, bytes.length - offset);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // The reader went away: EPIPE from a pipe; from a socket (what Node gives a child process
      // for stdout) ECONNRESET when the reader closed with data still unread.
      if (code === 'EPIPE' || code === 'ECONNRESET') throw new OutputClosed();
      // A descriptor inherited in non-blocking mode (a pipe another process set up): wait a
      // millisecond for the reader rather than spin.
      if (code === 'EAGAIN') {
        Atomics.wait(sleeper, 0, 0, 1);
        continue;
      }
      throw e;
    }
  }
}
