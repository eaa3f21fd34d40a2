import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { defaultDebianKernels, testCacheRoot } from '../test-support/kernels.js';
import {
  type AptSource,
  DEBIAN_KEYRING,
  debianMirrorFor,
  PrivateApt,
  parseDeb822,
  parseDeb822Sources,
  parseOneLineSources,
  readSystemSources,
} from './apt.js';

// Mirrors in these tests are made-up names under the reserved .example domain.
const ONE_LINE = `# a comment
deb http://mirror.example/debian bookworm main contrib
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://mirror.example/debian bookworm-updates main # trailing

deb-src http://mirror.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
`;

const DEB822 = `Types: deb deb-src
URIs: http://mirror.example/debian http://other.example/debian
Suites: trixie trixie-updates
Components: main non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# disabled
Types: deb
URIs: http://disabled.example/debian
Suites: sid
Components: main
Enabled: no

Types: deb
URIs: http://security.example/debian-security
Suites: trixie-security
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 xyz
 -----END PGP PUBLIC KEY BLOCK-----
`;

describe('sources', () => {
  test('one-line format', () => {
    const s = parseOneLineSources(ONE_LINE, 'sources.list');
    expect(s.map((x) => [x.types[0], x.uri, x.suites[0], x.components.join(','), x.signedBy])).toEqual([
      ['deb', 'http://mirror.example/debian', 'bookworm', 'main,contrib', undefined],
      ['deb', 'https://mirror.example/debian', 'bookworm-updates', 'main', '/usr/share/keyrings/k.gpg'],
      ['deb-src', 'http://mirror.example/debian', 'bookworm', 'main', undefined],
      ['deb', 'http://security.example/debian-security', 'bookworm-security', 'main', undefined],
    ]);
  });

  test('deb822 format: one source per URI, disabled paragraphs skipped, inline keys not taken as paths', () => {
    const s = parseDeb822Sources(DEB822, 'debian.sources');
    expect(s.map((x) => [x.uri, x.suites.join(','), x.types.join(','), x.signedBy])).toEqual([
      ['http://mirror.example/debian', 'trixie,trixie-updates', 'deb,deb-src', DEBIAN_KEYRING],
      ['http://other.example/debian', 'trixie,trixie-updates', 'deb,deb-src', DEBIAN_KEYRING],
      ['http://security.example/debian-security', 'trixie-security', 'deb', undefined],
    ]);
  });

  test('deb822 continuation lines keep their lines; "." is an empty line', () => {
    const [p] = parseDeb822('Description: short\n long one\n .\n end\nX: 1\n', 'f');
    expect(p?.get('description')).toBe('short\nlong one\n\nend');
    expect(p?.get('x')).toBe('1');
  });

  test('malformed sources are usage errors naming the file and line', () => {
    expect(() => parseOneLineSources('deb\n', '/etc/apt/sources.list')).toThrow(
      expect.objectContaining({
        code: 'usage',
        file: '/etc/apt/sources.list',
        message: expect.stringMatching(/line 1/),
      }),
    );
    expect(() => parseDeb822(' continuation first\n', 'x.sources')).toThrow(
      expect.objectContaining({ code: 'usage' }),
    );
    expect(() => parseDeb822Sources('Types: deb\nSuites: sid\n', 'x.sources')).toThrow(
      /lacks Types, URIs or Suites/,
    );
  });

  test('the mirror of a suite: main archive for releases, security archive for -security', () => {
    const sources: AptSource[] = [...parseOneLineSources(ONE_LINE, 'a'), ...parseDeb822Sources(DEB822, 'b')];
    expect(debianMirrorFor('sid', sources, {})).toBe('http://mirror.example/debian');
    expect(debianMirrorFor('bullseye-security', sources, {})).toBe('http://security.example/debian-security');
    expect(debianMirrorFor('sid', sources, { COREMATRIX_DEBIAN_MIRROR: 'http://m.example/d/' })).toBe(
      'http://m.example/d/',
    );
    expect(() =>
      debianMirrorFor(
        'sid',
        sources.filter((s) => s.suites.some((x) => x.endsWith('-security'))),
        {},
      ),
    ).toThrow(expect.objectContaining({ code: 'usage', message: expect.stringMatching(/no Debian mirror/) }));
  });

  test("the system's sources give a mirror apt itself uses", async () => {
    const mirror = debianMirrorFor('sid', await readSystemSources(), {});
    // apt-cache policy lists every archive the system's apt reads, by URI.
    const { stdout } = await execa('apt-cache', ['policy']);
    expect(stdout).toContain(`${mirror} `);
  });
});

describe('private apt', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'corematrix-apt-'));
  });
  afterAll(async () => {
    await fs.rm(scratch, { recursive: true, force: true });
  });

  test("reads none of the system's apt.conf.d and keeps all state under its root", async () => {
    const apt = new PrivateApt({
      root: path.join(scratch, 'iso'),
      suite: 'sid',
      mirror: 'http://m.example/debian',
    });
    await apt.prepare();
    const { stdout } = await execa('apt-config', ['dump'], { env: { APT_CONFIG: apt.configFile } });
    const system = (await execa('apt-config', ['dump'])).stdout;
    // The system has hooks (e.g. Post-Invoke) in apt.conf.d; the private apt must not run them.
    const hooks = (text: string) => text.split('\n').filter((l) => /Invoke/.test(l));
    expect(hooks(system).length).toBeGreaterThan(0);
    expect(hooks(stdout)).toEqual([]);
    const dirs = stdout.split('\n').filter((l) => /^Dir::(State|Cache|Etc|Log) /.test(l));
    expect(dirs).toHaveLength(4);
    for (const d of dirs) expect(d).toContain(apt.root);
    expect(stdout).toMatch(/^Dir::State::status ".*iso\/state\/status";$/m);
    expect(await fs.readFile(path.join(apt.root, 'etc', 'sources.list'), 'utf8')).toBe(
      `deb [arch=amd64 signed-by=${DEBIAN_KEYRING}] http://m.example/debian sid main\n`,
    );
  });

  test('a Release not signed by a key in the keyring is refused', async () => {
    const mirror = debianMirrorFor('sid', await readSystemSources());
    // Sid is signed by the current archive keys, never by the bullseye release key alone.
    const apt = new PrivateApt({
      root: path.join(scratch, 'wrongkey'),
      suite: 'sid',
      mirror,
      keyring: '/usr/share/keyrings/debian-archive-bullseye-stable.gpg',
    });
    await expect(apt.update()).rejects.toMatchObject({
      code: 'io',
      message: expect.stringMatching(
        /Release of sid .* is not signed by a key in .*bullseye-stable.gpg.*NO_PUBKEY/,
      ),
    });
    expect(await apt.hasLists()).toBe(false);
  });

  test('each cached suite has a Release signed by keys of the Debian keyring, and the system apt is untouched', async () => {
    const systemLists = await fs.stat('/var/lib/apt/lists');
    await defaultDebianKernels();
    const { stdout } = await execa('gpg', ['--show-keys', '--with-colons', DEBIAN_KEYRING]);
    const keyringFingerprints = new Set(
      stdout
        .split('\n')
        .filter((l) => l.startsWith('fpr:'))
        .map((l) => l.split(':')[9]),
    );
    for (const suite of ['bullseye', 'bookworm', 'trixie', 'sid']) {
      const apt = new PrivateApt({
        root: path.join(testCacheRoot(), '.apt', suite),
        suite,
        mirror: 'unused',
      });
      // Only what resolving a kernel needs was fetched: the signed Release and main's amd64 Packages.
      const lists = (await fs.readdir(apt.listsDir)).filter(
        (n) => !['lock', 'partial', 'auxfiles'].includes(n),
      );
      expect(lists.map((n) => n.replace(/^.*_dists_/, '')).sort(), suite).toEqual([
        `${suite}_InRelease`,
        expect.stringMatching(new RegExp(`^${suite}_main_binary-amd64_Packages(\\.(lz4|gz|xz|zst))?$`)),
      ]);
      const signers = await apt.releaseSigners();
      expect(signers.length, suite).toBeGreaterThan(0);
      // gpgv reports the signing (sub)key; the keyring lists primary keys and subkeys alike.
      for (const s of signers) expect(keyringFingerprints, `${suite} signer ${s}`).toContain(s);
    }
    expect((await fs.stat('/var/lib/apt/lists')).mtimeMs).toBe(systemLists.mtimeMs);
  });
});
