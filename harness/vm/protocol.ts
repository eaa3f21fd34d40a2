/**
 * The host side of the agent's result protocol: finds the agent's frames in a VM's console output
 * (kernel messages share the console), checks them, reassembles messages and reports what the agent
 * said — and everything that went wrong on the way. Nothing from a frame that fails its checks, or
 * from a message missing a part, is ever used.
 *
 * Wire format (agent/common.c writes it; agent/README.md has the same text). Each message is a
 * UTF-8 JSON object, sent as one or more lines, each on a line of its own:
 *
 *   @@CMX1 <seq> <part> <parts> <base64> <crc>
 *
 * seq numbers messages from 0 in the order sent; part runs from 0 to parts-1; base64 (standard
 * alphabet, padded) carries at most 512 bytes of the message; crc is the IEEE CRC32 (zlib's), 8
 * lowercase hex digits, of the text between "@@CMX1 " and the space before it. Lines may end in
 * "\r\n" (a tty's output processing) and may follow noise on the same line.
 *
 * Messages: {"type":"hello",…} first; per object {"type":"object",…} (its BTF and maps); per
 * program {"type":"result",…}; {"type":"error",…} for trouble the agent could only describe;
 * {"type":"done","messages":N,"ok":…} last, where N is the number of messages sent before it, so
 * the host can tell that none was lost. An agent that dies mid-run leaves no done message.
 */
import { crc32 } from 'node:zlib';
import type { ProgramResult } from './plan.js';

export const FRAME_PREFIX = '@@CMX1 ';
/** The most message bytes one frame line carries (agent/common.h CMX_CHUNK). */
export const FRAME_CHUNK = 512;

/** What the agent says first: who it is and what the kernel supports. */
export interface AgentHello {
  agent: string;
  protocol: number;
  kernelRelease: string;
  /** The plan's kernel name (corematrix-agent). */
  plan?: string;
  objects?: number;
  programs?: number;
  features?: Record<string, boolean>;
  /** libbpf-loader: libbpf's version. */
  libbpf?: string;
}

/** How an object's BTF and maps fared (corematrix-agent, before its programs). */
export interface ObjectReport {
  object: string;
  /** Absent when the plan has no BTF for the object. */
  btf?: { loaded: boolean; errno?: number; log?: string };
  maps: { name: string; created: boolean; errno?: number; step?: string; retriedWithoutBtf?: boolean }[];
}

/** A program's result as the agent sent it: ProgramResult and a few facts around it. */
export interface AgentResult extends ProgramResult {
  section?: string;
  /** Time PROG_LOAD took in the VM (first attempt), in nanoseconds. */
  loadNs?: number;
  /** Bytes of the log the agent left out (the result's log keeps its head and tail). */
  logOmitted?: number;
}

export type ProtocolErrorKind =
  /** A line with the frame prefix that fails its checks (format, base64, CRC). */
  | 'corrupt-line'
  /** The output ends in the middle of a frame line. */
  | 'truncated-line'
  /** A message of which only some parts arrived. */
  | 'incomplete-message'
  /** A message whose sequence number never showed up at all. */
  | 'missing-message'
  /** A reassembled message that is not a JSON object of a known shape. */
  | 'invalid-message'
  /** The same sequence number twice with different content. */
  | 'duplicate-message'
  /** Frames after the done message. */
  | 'after-done'
  /** The agent's own error message (unreadable plan, a slot it could not fill, …). */
  | 'agent-error'
  /** The output ended without a done message: the agent died or the VM stopped mid-run. */
  | 'no-done';

export interface ProtocolError {
  kind: ProtocolErrorKind;
  message: string;
  seq?: number;
  object?: string;
}

export type AgentMessage =
  | { seq: number; type: 'hello'; hello: AgentHello }
  | { seq: number; type: 'object'; report: ObjectReport }
  | { seq: number; type: 'result'; result: AgentResult }
  | { seq: number; type: 'error'; object?: string; message: string }
  | { seq: number; type: 'done'; messages: number; ok: boolean };

export interface AgentOutput {
  hello?: AgentHello;
  /** Per program, in the order the agent sent them. */
  results: AgentResult[];
  objects: ObjectReport[];
  /** A valid done message arrived. */
  done: boolean;
  /** done, and every message the done message counts arrived whole: the results are all there is. */
  complete: boolean;
  errors: ProtocolError[];
}

const FRAME = /^(\d{1,9}) (\d{1,9}) (\d{1,9}) ([A-Za-z0-9+/]*={0,2}) ([0-9a-f]{8})$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

interface Pending {
  parts: number;
  chunks: (Uint8Array | undefined)[];
  received: number;
}

/**
 * Reads agent output as it arrives: push() console chunks (strings or bytes), get back the
 * messages each chunk completed (e.g. to time the hello and done messages), then finish().
 */
export class AgentOutputParser {
  private text = '';
  private readonly pending = new Map<number, Pending>();
  private readonly messages = new Map<number, { json: string; message: AgentMessage }>();
  private readonly errors: ProtocolError[] = [];
  /** Messages that arrived whole but were not valid (already reported). */
  private readonly invalid = new Set<number>();
  private doneSeq: number | undefined;

  push(chunk: string | Uint8Array): AgentMessage[] {
    // Frames are ASCII: bytes map one to one onto characters, and a chunk may end anywhere.
    this.text += typeof chunk === 'string' ? chunk : latin1.decode(chunk);
    const out: AgentMessage[] = [];
    let nl = this.text.indexOf('\n');
    while (nl >= 0) {
      this.line(this.text.slice(0, nl), out);
      this.text = this.text.slice(nl + 1);
      nl = this.text.indexOf('\n');
    }
    // Noise without a newline (a boot log's progress dots…) need not pile up: keep the tail that may
    // still begin a frame.
    if (this.text.length > 1 << 20 && !this.text.includes(FRAME_PREFIX.slice(0, 2))) this.text = '';
    return out;
  }

  finish(): AgentOutput {
    // The last line may lack only its newline (a reader that strips it): whole and CRC-checked, it
    // counts; anything less is a frame cut short.
    const before = this.errors.length;
    this.line(this.text, []);
    for (let i = before; i < this.errors.length; i++) {
      this.errors[i] = { kind: 'truncated-line', message: 'the output ends in the middle of a frame line' };
    }
    this.text = '';
    const errors = [...this.errors];
    const seqs = [...this.messages.keys()].sort((a, b) => a - b);
    const expected = this.doneSeq ?? (seqs.length > 0 ? seqs[seqs.length - 1]! + 1 : 0);
    for (const [seq, p] of [...this.pending].sort((a, b) => a[0] - b[0])) {
      errors.push({
        kind: 'incomplete-message',
        seq,
        message: `message ${seq}: ${p.received} of ${p.parts} parts arrived`,
      });
    }
    for (let seq = 0; seq < expected; seq++) {
      if (!this.messages.has(seq) && !this.pending.has(seq) && !this.invalid.has(seq)) {
        errors.push({ kind: 'missing-message', seq, message: `message ${seq} never arrived` });
      }
    }
    const done = this.doneSeq !== undefined;
    if (!done) {
      errors.push({
        kind: 'no-done',
        message: 'the output ended without the done message: the agent died or the VM stopped mid-run',
      });
    }
    const output: AgentOutput = { results: [], objects: [], done, complete: false, errors };
    let allThere = done;
    for (let seq = 0; seq < expected; seq++) if (!this.messages.has(seq)) allThere = false;
    for (const seq of seqs) {
      const m = this.messages.get(seq)!.message;
      if (m.type === 'hello') output.hello ??= m.hello;
      else if (m.type === 'object') output.objects.push(m.report);
      else if (m.type === 'result') output.results.push(m.result);
      else if (m.type === 'error') {
        errors.push({
          kind: 'agent-error',
          seq,
          message: m.message,
          ...(m.object === undefined ? {} : { object: m.object }),
        });
      }
    }
    output.complete = allThere;
    errors.sort((a, b) => (a.seq ?? -1) - (b.seq ?? -1));
    return output;
  }

  private line(raw: string, out: AgentMessage[]): void {
    let start = raw.indexOf(FRAME_PREFIX);
    while (start >= 0) {
      const next = raw.indexOf(FRAME_PREFIX, start + FRAME_PREFIX.length);
      const body = raw.slice(start + FRAME_PREFIX.length, next < 0 ? raw.length : next).replace(/\r+$/, '');
      this.frame(body, out);
      start = next;
    }
  }

  private frame(body: string, out: AgentMessage[]): void {
    const m = FRAME.exec(body);
    const corrupt = (why: string) =>
      this.errors.push({ kind: 'corrupt-line', message: `frame line ${why}: ${preview(body)}` });
    if (!m) return void corrupt('malformed');
    const [, seqText, partText, partsText, b64, crcText] = m as unknown as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    const signed = `${seqText} ${partText} ${partsText} ${b64}`;
    if (crc32(Buffer.from(signed, 'latin1')) !== Number.parseInt(crcText, 16))
      return void corrupt('CRC mismatch');
    if (b64.length % 4 !== 0) return void corrupt('bad base64 length');
    const seq = Number(seqText);
    const part = Number(partText);
    const parts = Number(partsText);
    if (parts < 1 || part >= parts) return void corrupt(`part ${part} of ${parts}`);
    if (this.doneSeq !== undefined && seq > this.doneSeq) {
      this.errors.push({ kind: 'after-done', seq, message: `message ${seq} after the done message` });
      return;
    }
    const data = new Uint8Array(Buffer.from(b64, 'base64'));
    if (this.messages.has(seq)) {
      // a repeat of a complete message: harmless when identical, which the reassembly below checks
      this.assemble(seq, part, parts, data, out, true);
      return;
    }
    this.assemble(seq, part, parts, data, out, false);
  }

  private assemble(
    seq: number,
    part: number,
    parts: number,
    data: Uint8Array,
    out: AgentMessage[],
    repeat: boolean,
  ): void {
    if (repeat) {
      // Only whole-message repeats can be compared; parts of a repeat are checked against the original.
      const original = Buffer.from(this.messages.get(seq)!.json, 'utf8');
      const from = part * FRAME_CHUNK;
      const same = Buffer.compare(original.subarray(from, from + data.length), Buffer.from(data)) === 0;
      if (!same) {
        this.errors.push({
          kind: 'duplicate-message',
          seq,
          message: `message ${seq} sent twice, differently`,
        });
      }
      return;
    }
    let p = this.pending.get(seq);
    if (p === undefined) {
      p = { parts, chunks: new Array(parts).fill(undefined), received: 0 };
      this.pending.set(seq, p);
    } else if (p.parts !== parts) {
      this.errors.push({
        kind: 'duplicate-message',
        seq,
        message: `message ${seq}: parts announced as ${p.parts} and as ${parts}`,
      });
      return;
    }
    const had = p.chunks[part];
    if (had !== undefined) {
      if (Buffer.compare(Buffer.from(had), Buffer.from(data)) !== 0) {
        this.errors.push({
          kind: 'duplicate-message',
          seq,
          message: `message ${seq} part ${part} sent twice, differently`,
        });
      }
      return;
    }
    p.chunks[part] = data;
    p.received++;
    if (p.received < p.parts) return;
    this.pending.delete(seq);
    const bytes = Buffer.concat(p.chunks as Uint8Array[]);
    let json: string;
    let value: unknown;
    try {
      json = utf8.decode(bytes);
      value = JSON.parse(json);
    } catch {
      this.errors.push({ kind: 'invalid-message', seq, message: `message ${seq} is not UTF-8 JSON` });
      this.invalid.add(seq);
      return;
    }
    const message = toMessage(seq, value);
    if (typeof message === 'string') {
      this.errors.push({ kind: 'invalid-message', seq, message: `message ${seq}: ${message}` });
      this.invalid.add(seq);
      return;
    }
    this.messages.set(seq, { json, message });
    if (message.type === 'done') {
      this.doneSeq = seq;
      if (message.messages !== seq) {
        this.errors.push({
          kind: 'invalid-message',
          seq,
          message: `the done message counts ${message.messages} messages before it but is message ${seq}`,
        });
        this.doneSeq = Math.max(seq, message.messages);
      }
    }
    out.push(message);
  }
}

/** Parses a VM's whole console output (or its chunks in order) at once. */
export function parseAgentOutput(input: string | Uint8Array | Iterable<string | Uint8Array>): AgentOutput {
  const parser = new AgentOutputParser();
  if (typeof input === 'string' || input instanceof Uint8Array) parser.push(input);
  else for (const chunk of input) parser.push(chunk);
  return parser.finish();
}

function preview(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

type Json = Record<string, unknown>;

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);
const isStr = (v: unknown): v is string => typeof v === 'string';
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';

/** "processed N insns" from a verifier statistics log. */
export function insnsProcessed(log: string): number | undefined {
  const m = /processed (\d+) insns/.exec(log);
  return m ? Number(m[1]) : undefined;
}

function toMessage(seq: number, value: unknown): AgentMessage | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const v = value as Json;
  switch (v.type) {
    case 'hello': {
      if (!isStr(v.agent) || !isInt(v.protocol) || !isStr(v.kernelRelease))
        return 'hello lacks agent/protocol/kernelRelease';
      const hello: AgentHello = { agent: v.agent, protocol: v.protocol, kernelRelease: v.kernelRelease };
      if (isStr(v.plan)) hello.plan = v.plan;
      if (isInt(v.objects)) hello.objects = v.objects;
      if (isInt(v.programs)) hello.programs = v.programs;
      if (isStr(v.libbpf)) hello.libbpf = v.libbpf;
      if (typeof v.features === 'object' && v.features !== null) {
        hello.features = Object.fromEntries(
          Object.entries(v.features as Json).filter((e): e is [string, boolean] => isBool(e[1])),
        );
      }
      return { seq, type: 'hello', hello };
    }
    case 'object': {
      if (!isStr(v.object) || !Array.isArray(v.maps)) return 'object report lacks object/maps';
      const report: ObjectReport = { object: v.object, maps: [] };
      if (v.btf !== undefined) {
        const b = v.btf as Json;
        if (typeof b !== 'object' || b === null || !isBool(b.loaded)) return 'object report: bad btf';
        report.btf = { loaded: b.loaded };
        if (isInt(b.errno)) report.btf.errno = b.errno;
        if (isStr(b.log)) report.btf.log = b.log;
      }
      for (const m of v.maps as unknown[]) {
        const map = m as Json;
        if (typeof map !== 'object' || map === null || !isStr(map.name) || !isBool(map.created)) {
          return 'object report: bad map';
        }
        const entry: ObjectReport['maps'][number] = { name: map.name, created: map.created };
        if (isInt(map.errno)) entry.errno = map.errno;
        if (isStr(map.step)) entry.step = map.step;
        if (map.retriedWithoutBtf === true) entry.retriedWithoutBtf = true;
        report.maps.push(entry);
      }
      return { seq, type: 'object', report };
    }
    case 'result': {
      if (!isStr(v.object) || !isStr(v.program) || !isStr(v.log)) return 'result lacks object/program/log';
      if (v.verdict !== 'loaded' && v.verdict !== 'rejected') return `result verdict ${String(v.verdict)}`;
      if (!optional(v.stage, (s) => s === 'btf' || s === 'map' || s === 'prog')) return 'result stage';
      if (!optional(v.errno, isInt)) return 'result errno';
      if (v.verdict === 'rejected' && v.errno === undefined) return 'rejected result without errno';
      const result: AgentResult = { object: v.object, program: v.program, verdict: v.verdict, log: v.log };
      if (v.stage !== undefined) result.stage = v.stage as 'btf' | 'map' | 'prog';
      if (v.errno !== undefined) result.errno = v.errno as number;
      if (v.verdict === 'loaded') {
        const n = insnsProcessed(v.log);
        if (n !== undefined) result.insnsProcessed = n;
      }
      if (isStr(v.section)) result.section = v.section;
      if (isInt(v.loadNs)) result.loadNs = v.loadNs;
      if (isInt(v.logOmitted)) result.logOmitted = v.logOmitted;
      return { seq, type: 'result', result };
    }
    case 'error': {
      if (!isStr(v.message) || !optional(v.object, isStr)) return 'error lacks message';
      return {
        seq,
        type: 'error',
        message: v.message,
        ...(isStr(v.object) ? { object: v.object } : {}),
      };
    }
    case 'done': {
      if (!isInt(v.messages) || !isBool(v.ok)) return 'done lacks messages/ok';
      return { seq, type: 'done', messages: v.messages, ok: v.ok };
    }
    default:
      return `unknown message type ${JSON.stringify(v.type)}`;
  }
}
