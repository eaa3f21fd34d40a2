/**
 * A private apt: Debian's archive read through apt itself (so apt checks the Release signatures and
 * the packages' hashes), with apt's state, cache, lists, lock and configuration all kept under a
 * directory of ours, so nothing of the system's apt is read for state or changed.
 *
 * The mirror comes from the system's apt sources at run time: whatever archive this machine already
 * trusts is the one kernels are fetched from.
 */

import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { CorematrixError, UsageError } from '../errors.js';

/** The keyring every Debian release is signed with; apt refuses a Release not signed by a key in it. */
export const DEBIAN_KEYRING = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** One paragraph of a deb822 document (control file, Packages index, .sources file): field → value. */
export type Deb822Paragraph = Map<string, string>;

/**
 * Splits a deb822 document into paragraphs. Field names are matched case-insensitively by Debian,
 * so they are stored lower-cased; continuation lines (starting with a space or tab) are kept, joined
 * by newlines, with a lone "." standing for an empty line as policy §5.1 says.
 */
export function parseDeb822(text: string, file: string): Deb822Paragraph[] {
  const paragraphs: Deb822Paragraph[] = [];
  let current: Deb822Paragraph | undefined;
  let lastField: string | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') {
      current = undefined;
      lastField = undefined;
      continue;
    }
    if (line.startsWith('#')) continue;
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (current === undefined || lastField === undefined) {
        throw new UsageError(`line ${i + 1}: continuation line with no field before it`, { file });
      }
      const more = line.trim() === '.' ? '' : line.trim();
      current.set(lastField, `${current.get(lastField)}\n${more}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new UsageError(`line ${i + 1}: expected "Field: value", got ${JSON.stringify(line)}`, { file });
    if (current === undefined) {
      current = new Map();
      paragraphs.push(current);
    }
    lastField = line.slice(0, colon).trim().toLowerCase();
    current.set(lastField, line.slice(colon + 1).trim());
  }
  return paragraphs;
}

/** One apt source: where (uri), which suites and components, and what signs it. */
export interface AptSource {
  types: string[];
  uri: string;
  suites: string[];
  components: string[];
  signedBy: string | undefined;
  /** The file it was read from, for messages. */
  file: string;
}

/**
 * Reads the one-line format of sources.list(5): `deb [opt=val ...] URI SUITE [COMPONENT...]`.
 * Options in brackets may hold `signed-by=`; everything after `#` is a comment.
 */
export function parseOneLineSources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/#.*/, '').trim();
    if (line === '') continue;
    const m = /^(deb|deb-src)\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)(.*)$/.exec(line);
    if (m === null)
      throw new UsageError(`line ${i + 1}: not a sources.list entry: ${JSON.stringify(line)}`, { file });
    const options = new Map<string, string>();
    for (const opt of (m[2] ?? '').trim().split(/\s+/)) {
      const eq = opt.indexOf('=');
      if (eq > 0) options.set(opt.slice(0, eq).toLowerCase(), opt.slice(eq + 1));
    }
    sources.push({
      types: [m[1]!],
      uri: m[3]!,
      suites: [m[4]!],
      components: m[5]!.trim().split(/\s+/).filter(Boolean),
      signedBy: options.get('signed-by'),
      file,
    });
  }
  return sources;
}

/** Reads the deb822 format of sources.list(5) (a `*.sources` file); disabled paragraphs are skipped. */
export function parseDeb822Sources(text: string, file: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const p of parseDeb822(text, file)) {
    if ((p.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const words = (field: string) => (p.get(field) ?? '').split(/\s+/).filter(Boolean);
    const types = words('types');
    const uris = words('uris');
    const suites = words('suites');
    if (types.length === 0 || uris.length === 0 || suites.length === 0) {
      throw new UsageError('a source paragraph lacks Types, URIs or Suites', { file });
    }
    const signedBy = p.get('signed-by');
    for (const uri of uris) {
      sources.push({
        types,
        uri,
        suites,
        components: words('components'),
        // Signed-By may also hold an inline key block; only a keyring path is useful to us.
        signedBy: signedBy !== undefined && !signedBy.includes('\n') ? signedBy : undefined,
        file,
      });
    }
  }
  return sources;
}

/** Every source the system's apt is configured with: sources.list, then sources.list.d in name order. */
export async function readSystemSources(etcApt = '/etc/apt'): Promise<AptSource[]> {
  const sources: AptSource[] = [];
  const main = path.join(etcApt, 'sources.list');
  const mainText = await readIfExists(main);
  if (mainText !== undefined) sources.push(...parseOneLineSources(mainText, main));
  const partsDir = path.join(etcApt, 'sources.list.d');
  let names: string[] = [];
  try {
    names = (await fs.readdir(partsDir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  for (const name of names) {
    const file = path.join(partsDir, name);
    if (name.endsWith('.list')) sources.push(...parseOneLineSources((await readIfExists(file)) ?? '', file));
    else if (name.endsWith('.sources'))
      sources.push(...parseDeb822Sources((await readIfExists(file)) ?? '', file));
  }
  return sources;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Debian's suites carry their archive in the name: `bookworm-security` lives in the security archive. */
function isSecuritySuite(suite: string): boolean {
  return /-security$/.test(suite) || /\/updates$/.test(suite);
}

/**
 * The mirror URI to fetch `suite` from: a binary (`deb`) source of the system that serves a Debian
 * suite of the same archive (security or main), preferring one signed by the Debian keyring.
 * `$COREMATRIX_DEBIAN_MIRROR` overrides it, for machines whose apt points at no Debian archive.
 */
export function debianMirrorFor(suite: string, sources: AptSource[], env = process.env): string {
  const override = env.COREMATRIX_DEBIAN_MIRROR;
  if (override !== undefined && override !== '') return override;
  const wantSecurity = isSecuritySuite(suite);
  const candidates = sources.filter(
    (s) =>
      s.types.includes('deb') &&
      /^https?:\/\//.test(s.uri) &&
      s.suites.some((x) => isSecuritySuite(x) === wantSecurity) &&
      s.components.includes('main'),
  );
  const byDebianKey = candidates.filter((s) => s.signedBy === undefined || s.signedBy === DEBIAN_KEYRING);
  const chosen = byDebianKey[0] ?? candidates[0];
  if (chosen === undefined) {
    throw new UsageError(
      `no Debian ${wantSecurity ? 'security ' : ''}mirror in the system's apt sources (need a "deb" source with component main); set COREMATRIX_DEBIAN_MIRROR`,
      { file: '/etc/apt/sources.list.d' },
    );
  }
  return chosen.uri.replace(/\/+$/, '');
}

/** An I/O failure: a tool failed, the archive did not answer, a signature did not verify. */
export function ioError(message: string, file?: string, cause?: unknown): CorematrixError {
  return new CorematrixError('io', message, { file, cause });
}

const SIGNATURE_PROBLEM = /GPG error|is not signed|NO_PUBKEY|EXPKEYSIG|REVKEYSIG|BADSIG/;

export interface PrivateAptOptions {
  /** Directory holding this apt's state, cache and configuration (created as needed). */
  root: string;
  /** The one suite this apt knows, e.g. "trixie". */
  suite: string;
  mirror: string;
  keyring?: string;
  /** Settings from the system's configuration worth keeping (proxies, Valid-Until checks). */
  inherited?: Record<string, string>;
}

/**
 * An apt that knows exactly one suite of Debian (amd64, main) and keeps everything under `root`.
 * One suite per apt makes every package it lists come from that suite, with no pinning needed.
 */
export class PrivateApt {
  readonly root: string;
  readonly suite: string;
  readonly mirror: string;
  readonly keyring: string;
  readonly configFile: string;
  readonly listsDir: string;
  private readonly inherited: Record<string, string>;

  constructor(options: PrivateAptOptions) {
    this.root = options.root;
    this.suite = options.suite;
    this.mirror = options.mirror;
    this.keyring = options.keyring ?? DEBIAN_KEYRING;
    this.inherited = options.inherited ?? {};
    this.configFile = path.join(this.root, 'etc', 'apt.conf');
    this.listsDir = path.join(this.root, 'state', 'lists');
  }

  /**
   * The configuration, given to apt as APT_CONFIG. apt reads that file first, and because it moves
   * Dir::Etc::Parts and Dir::Etc::Main here, none of the system's apt.conf.d is read — its update
   * hooks, extra index targets and cache-cleaning rules stay out of this apt.
   */
  configText(): string {
    const q = (s: string) => JSON.stringify(s);
    const lines = [
      `Dir::State ${q(path.join(this.root, 'state'))};`,
      'Dir::State::lists "lists/";',
      `Dir::State::status ${q(path.join(this.root, 'state', 'status'))};`,
      `Dir::Cache ${q(path.join(this.root, 'cache'))};`,
      'Dir::Cache::archives "archives/";',
      'Dir::Cache::pkgcache "pkgcache.bin";',
      // The source cache only speeds up rebuilding pkgcache.bin; it is as big, and we rebuild rarely.
      'Dir::Cache::srcpkgcache "";',
      `Dir::Etc ${q(path.join(this.root, 'etc'))};`,
      'Dir::Etc::main "apt.conf.main-unused";',
      'Dir::Etc::parts "apt.conf.d";',
      'Dir::Etc::sourcelist "sources.list";',
      'Dir::Etc::sourceparts "sources.list.d";',
      'Dir::Etc::preferences "preferences";',
      'Dir::Etc::preferencesparts "preferences.d";',
      'Dir::Etc::trusted "trusted.gpg";',
      'Dir::Etc::trustedparts "trusted.gpg.d";',
      `Dir::Log ${q(path.join(this.root, 'log'))};`,
      'APT::Architecture "amd64";',
      'APT::Architectures { "amd64"; };',
      // Only the Packages index: no translations, no Contents, no DEP-11.
      'Acquire::Languages "none";',
      'Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled "false";',
      'Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";',
      // Keep the indexes compressed on disk: four suites uncompressed would be ~400 MB.
      'Acquire::GzipIndexes "true";',
      'APT::Get::List-Cleanup "true";',
    ];
    for (const [key, value] of Object.entries(this.inherited)) lines.push(`${key} ${q(value)};`);
    return `${lines.join('\n')}\n`;
  }

  sourcesText(): string {
    return `deb [arch=amd64 signed-by=${this.keyring}] ${this.mirror} ${this.suite} main\n`;
  }

  /** Creates the directories and writes the configuration and sources (cheap; done before every run). */
  async prepare(): Promise<void> {
    for (const dir of [
      'etc/apt.conf.d',
      'etc/sources.list.d',
      'etc/preferences.d',
      'etc/trusted.gpg.d',
      'state/lists/partial',
      'cache/archives/partial',
      'log',
    ]) {
      await fs.mkdir(path.join(this.root, dir), { recursive: true });
    }
    await writeIfChanged(this.configFile, this.configText());
    await writeIfChanged(path.join(this.root, 'etc', 'sources.list'), this.sourcesText());
    const status = path.join(this.root, 'state', 'status');
    if ((await readIfExists(status)) === undefined) await fs.writeFile(status, '');
  }

  private async run(tool: 'apt-get' | 'apt-cache', args: string[], cwd?: string) {
    const result = await execa(tool, args, {
      env: { APT_CONFIG: this.configFile, LC_ALL: 'C.UTF-8' },
      cwd: cwd ?? this.root,
      reject: false,
      stdin: 'ignore',
      maxBuffer: 256 * 1024 * 1024,
    });
    if (result.failed) {
      const errors = `${result.stderr}`
        .split('\n')
        .filter((l) => /^(E|W):/.test(l))
        .join('; ');
      const problem = errors !== '' ? errors : result.shortMessage;
      throw ioError(`${tool} ${args[0]} for ${this.suite} failed: ${problem}`, this.root);
    }
    return result;
  }

  /** The InRelease file apt keeps for this suite, once updated. */
  async releaseFile(): Promise<string | undefined> {
    let names: string[];
    try {
      names = await fs.readdir(this.listsDir);
    } catch {
      return undefined;
    }
    const name = names.find((n) => n.endsWith(`_dists_${this.suite}_InRelease`));
    return name === undefined ? undefined : path.join(this.listsDir, name);
  }

  /** Whether this apt has a Packages index (i.e. has been updated at least once). */
  async hasLists(): Promise<boolean> {
    try {
      return (await fs.readdir(this.listsDir)).some((n) => n.includes('_Packages'));
    } catch {
      return false;
    }
  }

  /**
   * Fetches the suite's signed Release and its amd64 Packages index. apt checks the signature
   * against `keyring` (and refuses the suite if it does not verify); we fail rather than go on.
   */
  async update(): Promise<void> {
    await this.prepare();
    let output: string;
    try {
      output = `${(await this.run('apt-get', ['update', '-q'])).stderr}`;
    } catch (e) {
      output = e instanceof Error ? e.message : String(e);
      if (!SIGNATURE_PROBLEM.test(output)) throw e;
    }
    // apt turns a bad signature into a warning plus a "not signed" error (exit 100); on a state
    // updated before, it may keep the old lists and exit 0. Any signature complaint fails here.
    const problem = output.split(/\n|; /).find((l) => SIGNATURE_PROBLEM.test(l));
    if (problem !== undefined) {
      throw ioError(
        `the Release of ${this.suite} at ${this.mirror} is not signed by a key in ${this.keyring} (apt: ${problem.trim()})`,
        this.root,
      );
    }
    if (!(await this.hasLists()))
      throw ioError(`apt-get update for ${this.suite} left no Packages index`, this.root);
  }

  /**
   * The fingerprints of the keys in `keyring` that made a good signature on the suite's Release, as
   * gpgv reports them. apt has already refused a Release without one; this tells which keys they were.
   */
  async releaseSigners(): Promise<string[]> {
    const release = await this.releaseFile();
    if (release === undefined) throw ioError(`no Release for ${this.suite}: run update first`, this.root);
    const result = await execa('gpgv', ['--status-fd', '1', '--keyring', this.keyring, release], {
      reject: false,
      stdin: 'ignore',
    });
    const signers = `${result.stdout}`
      .split('\n')
      .map((l) => /^\[GNUPG:\] VALIDSIG (\S+)/.exec(l)?.[1])
      .filter((x): x is string => x !== undefined);
    if (signers.length === 0) {
      throw ioError(
        `the Release of ${this.suite} has no good signature by a key in ${this.keyring}`,
        release,
      );
    }
    return signers;
  }

  /** The names of the packages this suite has that start with `prefix`. */
  async packageNames(prefix: string): Promise<string[]> {
    const result = await this.run('apt-cache', ['pkgnames', prefix]);
    return `${result.stdout}`.split('\n').filter(Boolean);
  }

  /** The index paragraphs (newest version of each) of the named packages. */
  async show(packages: string[]): Promise<Deb822Paragraph[]> {
    if (packages.length === 0) return [];
    const result = await this.run('apt-cache', ['show', '--no-all-versions', ...packages]);
    return parseDeb822(`${result.stdout}`, `apt-cache show (${this.suite})`);
  }

  /**
   * Downloads `package=version` into `destDir` (on the cache's filesystem). apt checks the file's
   * size and SHA256 against the signed index before keeping it. Returns the .deb's path.
   */
  async download(pkg: string, version: string, destDir: string): Promise<string> {
    await this.prepare();
    await allowAptSandbox(destDir);
    await this.run('apt-get', ['download', '-q', `${pkg}=${version}`], destDir);
    const debs = (await fs.readdir(destDir)).filter((n) => n.startsWith(`${pkg}_`) && n.endsWith('.deb'));
    if (debs.length !== 1)
      throw ioError(`apt-get download ${pkg}=${version} left ${debs.length} .deb files`, destDir);
    return path.join(destDir, debs[0]!);
  }
}

async function writeIfChanged(file: string, text: string): Promise<void> {
  if ((await readIfExists(file)) === text) return;
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

/**
 * apt downloads as the unprivileged `_apt` user when run as root; it can only write where `_apt`
 * may. Handing the (private, empty) download directory to `_apt` keeps that sandbox in place.
 */
async function allowAptSandbox(dir: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const passwd = (await readIfExists('/etc/passwd')) ?? '';
  const entry = passwd.split('\n').find((l) => l.startsWith('_apt:'));
  const uid = entry === undefined ? undefined : Number(entry.split(':')[2]);
  if (uid !== undefined && Number.isInteger(uid)) await fs.chown(dir, uid, 0);
}

/**
 * The settings of the system's apt configuration that concern reaching the mirror: proxies, and
 * whether Release files may be past their Valid-Until (a snapshot mirror's are).
 */
export async function inheritedAptSettings(): Promise<Record<string, string>> {
  const result = await execa('apt-config', ['dump'], { reject: false, stdin: 'ignore' });
  const settings: Record<string, string> = {};
  if (result.failed) return settings;
  for (const line of `${result.stdout}`.split('\n')) {
    const m =
      /^(Acquire::(?:https?::Proxy|Check-Valid-Until|Check-Date|ForceIPv4|ForceIPv6)[^ ]*) "(.*)";$/.exec(
        line,
      );
    if (m !== null) settings[m[1]!] = m[2]!;
  }
  return settings;
}
