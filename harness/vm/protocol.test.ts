import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { AgentOutputParser, parseAgentOutput } from './protocol.js';

// The agent's framing (agent/common.c cmx_send), written again here from the protocol's description.
let sent = 0;
function frames(message: object, seq = sent++, chunk = 512): string[] {
  const bytes = Buffer.from(JSON.stringify(message), 'utf8');
  const parts = Math.max(1, Math.ceil(bytes.length / chunk));
  const lines: string[] = [];
  for (let part = 0; part < parts; part++) {
    const body = `${seq} ${part} ${parts} ${bytes.subarray(part * chunk, (part + 1) * chunk).toString('base64')}`;
    const crc = crc32(Buffer.from(body, 'latin1')).toString(16).padStart(8, '0');
    lines.push(`\n@@CMX1 ${body} ${crc}\n`);
  }
  return lines;
}

function run(): { messages: object[]; text: (noise?: (i: number) => string) => string } {
  sent = 0;
  const messages: object[] = [
    {
      type: 'hello',
      agent: 'corematrix-agent',
      protocol: 1,
      kernelRelease: '6.1.0-50-cloud-amd64',
      plan: 'k',
    },
    { type: 'object', object: 'a.o', btf: { loaded: true }, maps: [{ name: 'm', created: true }] },
    {
      type: 'result',
      object: 'a.o',
      program: 'ok',
      section: 'socket',
      verdict: 'loaded',
      log: 'verification time 5 usec\nstack depth 0\nprocessed 2 insns (limit 1000000) max_states_per_insn 0\n',
      loadNs: 1234,
    },
    {
      type: 'result',
      object: 'a.o',
      program: 'bad',
      verdict: 'rejected',
      stage: 'prog',
      errno: 13,
      // long enough for several parts, and not ASCII
      log: `${'0: (b7) r0 = 1 ; R0_w=1 — ünïcödé\n'.repeat(60)}R3 !read_ok\n`,
    },
  ];
  messages.push({ type: 'done', messages: messages.length, ok: true });
  const lineSets = messages.map((m) => frames(m));
  return {
    messages,
    text: (noise = () => '') =>
      lineSets
        .flat()
        .map((l, i) => noise(i) + l)
        .join(''),
  };
}

const kernelNoise = (i: number) =>
  `[    ${i}.123456] random: crng init done\r\n[    ${i}.2] virtio_blk virtio1: [vda] 2048 512-byte logical blocks`;

describe('agent output protocol', () => {
  it('reads every message from a clean run', () => {
    const out = parseAgentOutput(run().text());
    expect(out.errors).toEqual([]);
    expect(out.done).toBe(true);
    expect(out.complete).toBe(true);
    expect(out.hello).toMatchObject({ agent: 'corematrix-agent', kernelRelease: '6.1.0-50-cloud-amd64' });
    expect(out.objects).toEqual([
      { object: 'a.o', btf: { loaded: true }, maps: [{ name: 'm', created: true }] },
    ]);
    expect(out.results).toHaveLength(2);
    expect(out.results[0]).toMatchObject({
      program: 'ok',
      verdict: 'loaded',
      insnsProcessed: 2,
      loadNs: 1234,
    });
    expect(out.results[1]).toMatchObject({ program: 'bad', verdict: 'rejected', stage: 'prog', errno: 13 });
    expect(out.results[1]!.log).toContain('ünïcödé');
    expect(out.results[1]!.log.endsWith('R3 !read_ok\n')).toBe(true);
  });

  it('finds frames among kernel messages, CRLF line ends and noise before a frame on its line', () => {
    const text = run()
      .text(kernelNoise)
      .replace(/\n/g, '\r\n')
      .replace(/\n@@CMX1/g, '\n\x1b[0mlogin: @@CMX1');
    const out = parseAgentOutput(text);
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    expect(out.results.map((r) => r.verdict)).toEqual(['loaded', 'rejected']);
  });

  it('reads the same from chunks split anywhere, bytes or strings, and reports messages as they complete', () => {
    const { text } = run();
    const whole = Buffer.from(text(kernelNoise), 'latin1');
    for (const size of [1, 7, 100, 4096]) {
      const parser = new AgentOutputParser();
      const seen: string[] = [];
      for (let i = 0; i < whole.length; i += size) {
        const chunk = whole.subarray(i, i + size);
        for (const m of parser.push(size === 7 ? chunk.toString('latin1') : chunk)) seen.push(m.type);
      }
      expect(seen).toEqual(['hello', 'object', 'result', 'result', 'done']);
      const out = parser.finish();
      expect(out.errors).toEqual([]);
      expect(out.results).toHaveLength(2);
    }
  });

  it('rejects a frame whose bytes changed and says which message was lost', () => {
    const { text } = run();
    const clean = text();
    // flip one base64 character of the ok result (message 2, a single line)
    const line = clean.split('\n').find((l) => l.startsWith('@@CMX1 2 0 1 '))!;
    const flipped = line.slice(0, 30) + (line[30] === 'A' ? 'B' : 'A') + line.slice(31);
    const out = parseAgentOutput(clean.replace(line, flipped));
    expect(out.done).toBe(true);
    expect(out.complete).toBe(false);
    expect(out.results.map((r) => r.program)).toEqual(['bad']);
    expect(out.errors.map((e) => e.kind)).toEqual(['corrupt-line', 'missing-message']);
    expect(out.errors[0]!.message).toMatch(/CRC mismatch/);
    expect(out.errors[1]).toMatchObject({ seq: 2 });
  });

  it('rejects a frame a kernel message broke in two, and the message it belonged to', () => {
    const { text } = run();
    const clean = text();
    const lines = clean.split('\n');
    const index = lines.findIndex((l) => l.startsWith('@@CMX1 3 1 '));
    const l = lines[index]!;
    lines[index] = `${l.slice(0, 40)}\r\n[    3.1] BUG: soft lockup\r\n${l.slice(40)}`;
    const out = parseAgentOutput(lines.join('\n'));
    expect(out.results.map((r) => r.program)).toEqual(['ok']);
    expect(out.complete).toBe(false);
    const kinds = out.errors.map((e) => e.kind);
    expect(kinds.filter((k) => k === 'corrupt-line')).toHaveLength(1);
    expect(out.errors.find((e) => e.kind === 'incomplete-message')).toMatchObject({ seq: 3 });
  });

  it('reports an agent that died mid-run: no done, a half-sent message, a cut line', () => {
    const { text } = run();
    const clean = text();
    // cut inside the second part of message 3
    const cut = clean.indexOf('@@CMX1 3 1 ') + 50;
    const out = parseAgentOutput(`${clean.slice(0, cut)}`);
    expect(out.done).toBe(false);
    expect(out.complete).toBe(false);
    expect(out.results.map((r) => r.program)).toEqual(['ok']);
    expect(out.errors.map((e) => e.kind).sort()).toEqual(['incomplete-message', 'no-done', 'truncated-line']);

    // a panic right after a complete result: nothing half-done, but still no done message
    const panic = clean.slice(0, clean.indexOf('@@CMX1 3 0 ') - 1);
    const out2 = parseAgentOutput(
      `${panic}[    4.0] Kernel panic - not syncing: Attempted to kill init!\r\n`,
    );
    expect(out2.results.map((r) => r.program)).toEqual(['ok']);
    expect(out2.errors.map((e) => e.kind)).toEqual(['no-done']);
  });

  it('takes a last line that lacks only its newline', () => {
    const { text } = run();
    const out = parseAgentOutput(text().replace(/\n$/, ''));
    expect(out.errors).toEqual([]);
    expect(out.complete).toBe(true);
    const cut = parseAgentOutput(text().replace(/.\n$/, ''));
    expect(cut.errors.map((e) => e.kind)).toEqual(['truncated-line', 'no-done']);
    expect(cut.done).toBe(false);
  });

  it('counts a message lost entirely (its seq missing) against the done message', () => {
    const { text } = run();
    const clean = text();
    const withoutObject = clean.replace(/\n@@CMX1 1 0 1 [^\n]*\n/, '\n');
    const out = parseAgentOutput(withoutObject);
    expect(out.done).toBe(true);
    expect(out.complete).toBe(false);
    expect(out.errors).toEqual([{ kind: 'missing-message', seq: 1, message: 'message 1 never arrived' }]);
  });

  it('heals a line a kernel message broke from the next copy of its message (CMX_REPEAT)', () => {
    sent = 0;
    const result = {
      type: 'result',
      object: 'a.o',
      program: 'p',
      verdict: 'rejected',
      stage: 'prog',
      errno: 13,
      log: 'x'.repeat(1500),
    };
    const hello = frames({ type: 'hello', agent: 'a', protocol: 1, kernelRelease: 'r' });
    const message = frames(result);
    const done = frames({ type: 'done', messages: 2, ok: true });
    const broken = [...message];
    broken[1] = `${broken[1]!.slice(0, 100)}[    2.04] clocksource: Switched to clocksource tsc\r\n${broken[1]!.slice(100)}`;
    const out = parseAgentOutput([...hello, ...hello, ...broken, ...message, ...done, ...done].join(''));
    expect(out.complete).toBe(true);
    expect(out.results).toHaveLength(1);
    expect(out.results[0]!.log).toBe('x'.repeat(1500));
    // the broken line is still reported, though nothing was lost
    expect(out.errors.map((e) => e.kind)).toEqual(['corrupt-line']);
  });

  it('ignores a frame sent twice alike, and flags one sent twice differently', () => {
    sent = 0;
    const hello = frames({ type: 'hello', agent: 'a', protocol: 1, kernelRelease: 'r' });
    const done = frames({ type: 'done', messages: 1, ok: true });
    expect(parseAgentOutput([...hello, ...hello, ...done].join('')).errors).toEqual([]);
    const other = frames({ type: 'hello', agent: 'b', protocol: 1, kernelRelease: 'r' }, 0);
    const out = parseAgentOutput([...hello, ...other, ...done].join(''));
    expect(out.errors.map((e) => e.kind)).toEqual(['duplicate-message']);
    expect(out.hello?.agent).toBe('a');
  });

  it('passes the agent’s own errors on and rejects messages of unknown shape', () => {
    sent = 0;
    const text = [
      frames({ type: 'hello', agent: 'a', protocol: 1, kernelRelease: 'r' }),
      frames({ type: 'error', message: 'unusable plan /plan.bin: plan CRC32 mismatch' }),
      frames({ type: 'result', object: 'o', program: 'p', verdict: 'maybe', log: '' }),
      frames({ type: 'result', object: 'o', program: 'p', verdict: 'rejected', log: '' }),
      frames({ type: 'surprise' }),
      frames({ type: 'done', messages: 5, ok: false }),
    ]
      .flat()
      .join('');
    const out = parseAgentOutput(text);
    expect(out.done).toBe(true);
    expect(out.results).toEqual([]);
    expect(out.errors.map((e) => [e.kind, e.seq])).toEqual([
      ['agent-error', 1],
      ['invalid-message', 2],
      ['invalid-message', 3],
      ['invalid-message', 4],
    ]);
    expect(out.errors[0]!.message).toContain('CRC32 mismatch');
  });

  it('rejects malformed frame lines and frames after done', () => {
    sent = 0;
    const text = [
      ...frames({ type: 'hello', agent: 'a', protocol: 1, kernelRelease: 'r' }),
      '\n@@CMX1 1 0 1 not-base64! 00000000\n',
      '\n@@CMX1 1 0 1 eyJ9\n',
      ...frames({ type: 'done', messages: 1, ok: true }),
      ...frames({ type: 'error', message: 'late' }),
    ].join('');
    const out = parseAgentOutput(text);
    expect(out.errors.map((e) => e.kind)).toEqual(['corrupt-line', 'corrupt-line', 'after-done']);
    expect(out.done).toBe(true);
  });

  it('reads nothing from console text without frames', () => {
    const out = parseAgentOutput('[    0.000000] Linux version 6.1.0\r\nKernel panic - not syncing: VFS\r\n');
    expect(out).toEqual({
      results: [],
      objects: [],
      done: false,
      complete: false,
      errors: [{ kind: 'no-done', message: expect.any(String) }],
    });
  });
});
