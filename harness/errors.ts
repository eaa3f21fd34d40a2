/**
 * Typed errors shared by every stage. Callers branch on `code` (or the `isX` guards), never on the
 * message: messages are for people and name the byte offset, type id or section involved.
 */

export type ErrorCode = 'parse' | 'unsupported' | 'usage' | 'io';

export class CorematrixError extends Error {
  readonly code: ErrorCode;
  /** The file the error is about, set by the I/O edge that read it (see `inFile`). */
  file: string | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; file?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CorematrixError';
    this.code = code;
    this.file = options?.file;
  }

  /** One line for a person: `FILE: message`. */
  describe(): string {
    return this.file === undefined ? this.message : `${this.file}: ${this.message}`;
  }
}

/** Which binary format a parse error is about. */
export type ParseFormat = 'btf' | 'btf.ext' | 'elf' | 'kernel-image' | 'bpf-object' | 'config' | 'report';

export interface ParseLocation {
  /** Absolute byte offset in the input the parser was given. */
  offset?: number;
  /** BTF type id the error is about. */
  typeId?: number;
  /** ELF section (or BTF.ext subsection) the error is about. */
  section?: string;
}

/** The input is malformed: truncated, out of range, of an unknown kind, looping, … */
export class ParseError extends CorematrixError {
  readonly format: ParseFormat;
  readonly offset: number | undefined;
  readonly typeId: number | undefined;
  readonly section: string | undefined;
  /** The message without the location prefix. */
  readonly reason: string;

  constructor(format: ParseFormat, reason: string, where: ParseLocation = {}, options?: { cause?: unknown }) {
    super('parse', `${format}: ${formatLocation(where)}${reason}`, options);
    this.name = 'ParseError';
    this.format = format;
    this.reason = reason;
    this.offset = where.offset;
    this.typeId = where.typeId;
    this.section = where.section;
  }
}

function formatLocation(where: ParseLocation): string {
  const parts: string[] = [];
  if (where.section !== undefined) parts.push(`section ${where.section}`);
  if (where.typeId !== undefined) parts.push(`type [${where.typeId}]`);
  if (where.offset !== undefined) parts.push(`offset 0x${where.offset.toString(16)}`);
  return parts.length === 0 ? '' : `${parts.join(', ')}: `;
}

/** The input is well-formed but uses something corematrix does not handle (e.g. a compression). */
export class NotSupportedError extends CorematrixError {
  readonly feature: string;
  constructor(feature: string, message: string) {
    super('unsupported', message);
    this.name = 'NotSupportedError';
    this.feature = feature;
  }
}

/** The user asked for something that cannot be done as asked (bad option, missing file, …). */
export class UsageError extends CorematrixError {
  constructor(message: string, options?: { cause?: unknown; file?: string }) {
    super('usage', message, options);
    this.name = 'UsageError';
  }
}

// Guards work across two copies of the package, where instanceof would not.
export function isCorematrixError(e: unknown): e is CorematrixError {
  return e instanceof Error && typeof (e as Partial<CorematrixError>).code === 'string' && 'describe' in e;
}
export function isParseError(e: unknown): e is ParseError {
  return isCorematrixError(e) && e.code === 'parse';
}

/** Attaches the file name to a corematrix error thrown while handling that file. */
export function inFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (isCorematrixError(e) && e.file === undefined) e.file = file;
    throw e;
  }
}

/** Text for a one-line message: its lines joined by single spaces, trimmed. */
export function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}
