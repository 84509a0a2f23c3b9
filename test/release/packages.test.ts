/**
 * What npm run package hands to package managers: archives verified against SHA256SUMS,
 * the .deb installed into a throwaway root with dpkg, the .rpm and .msi inspected for the
 * right files, the Homebrew formula's checksums, and the npm tarball's contents.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  hasCommand,
  manifest,
  RELEASE_DIR,
  RELEASE_TESTS,
  ROOT,
  releaseFile,
  WINE_REASON,
} from './release-env.js';

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const v: string = pkg.version;
const sha256 = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const sh = (cmd: string, args: string[], cwd?: string) =>
  execFileSync(cmd, args, { encoding: 'utf8', ...(cwd ? { cwd } : {}), stdio: ['ignore', 'pipe', 'pipe'] });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-release-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const EXECUTABLES = [
  'keybroker-linux-x64',
  'keybroker-linux-arm64',
  'keybroker-darwin-x64',
  'keybroker-darwin-arm64',
  'keybroker-win-x64.exe',
];
const ARCHIVES = ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']
  .map((id) => `keybroker-${v}-${id}.tar.gz`)
  .concat(`keybroker-${v}-win-x64.zip`);
const PACKAGES = [
  `keybroker_${v}_amd64.deb`,
  `keybroker_${v}_arm64.deb`,
  `keybroker-${v}-1.x86_64.rpm`,
  `keybroker-${v}-1.aarch64.rpm`,
  `keybroker-${v}-x64.msi`,
  'keybroker.rb',
  `keybroker-${v}.tgz`,
];
/** Files the archives carry beside the executable (README.md and LICENSE when the repo has them). */
const EXTRAS = ['config.json.example', 'LICENSE', 'README.md'].filter(
  (f) => f === 'config.json.example' || fs.existsSync(path.join(ROOT, f)),
);

describe.runIf(RELEASE_TESTS)('release files', () => {
  it('SHA256SUMS lists every release file and sha256sum -c accepts it', () => {
    const sums = fs.readFileSync(releaseFile('SHA256SUMS'), 'utf8');
    const names = sums
      .trim()
      .split('\n')
      .map((l) => l.split('  ')[1]);
    expect(names).toEqual([...EXECUTABLES, ...ARCHIVES, ...PACKAGES].sort());
    const r = spawnSync('sha256sum', ['--strict', '-c', 'SHA256SUMS'], {
      cwd: RELEASE_DIR,
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(names.map((n) => `${n}: OK\n`).join(''));
  });

  it('SHA256SUMS catches a changed archive', () => {
    const copy = path.join(tmp, 'sums');
    fs.mkdirSync(copy);
    const name = `keybroker-${v}-linux-x64.tar.gz`;
    fs.copyFileSync(releaseFile('SHA256SUMS'), path.join(copy, 'SHA256SUMS'));
    fs.writeFileSync(path.join(copy, name), 'not the archive');
    const r = spawnSync('sha256sum', ['-c', '--ignore-missing', 'SHA256SUMS'], {
      cwd: copy,
      encoding: 'utf8',
    });
    expect(r.status).toBe(1);
    expect(r.stdout).toBe(`${name}: FAILED\n`);
  });

  for (const id of ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64']) {
    it(`the ${id} archive holds the executable and the example config`, () => {
      const archive = releaseFile(`keybroker-${v}-${id}.tar.gz`);
      const stem = `keybroker-${v}-${id}`;
      expect(sh('tar', ['-tzf', archive]).trim().split('\n').sort()).toEqual(
        [`${stem}/`, ...['keybroker', ...EXTRAS].map((f) => `${stem}/${f}`)].sort(),
      );
      const verbose = sh('tar', ['-tvzf', archive, `${stem}/keybroker`]);
      expect(verbose).toMatch(/^-rwxr-xr-x 0\/0 /);
      const out = path.join(tmp, id);
      fs.mkdirSync(out);
      sh('tar', ['-xzf', archive, '-C', out]);
      expect(sha256(path.join(out, stem, 'keybroker'))).toBe(sha256(releaseFile(`keybroker-${id}`)));
    });
  }

  it('the Windows zip holds keybroker.exe', () => {
    const zip = releaseFile(`keybroker-${v}-win-x64.zip`);
    const stem = `keybroker-${v}-win-x64`;
    expect(sh('unzip', ['-Z1', zip]).trim().split('\n').sort()).toEqual(
      [`${stem}/`, ...['keybroker.exe', ...EXTRAS].map((f) => `${stem}/${f}`)].sort(),
    );
    const exe = execFileSync('unzip', ['-p', zip, `${stem}/keybroker.exe`], { maxBuffer: 1 << 30 });
    expect(createHash('sha256').update(exe).digest('hex')).toBe(sha256(releaseFile('keybroker-win-x64.exe')));
  });

  it('the .deb installs /usr/bin/keybroker and the example config, and --version runs', () => {
    const deb = releaseFile(`keybroker_${v}_amd64.deb`);
    expect(sh('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture'])).toBe(
      `Package: keybroker\nVersion: ${v.replace('-', '~')}\nArchitecture: amd64\n`,
    );
    const root = path.join(tmp, 'dpkg-root');
    for (const d of ['var/lib/dpkg/info', 'var/lib/dpkg/updates', 'var/lib/dpkg/triggers']) {
      fs.mkdirSync(path.join(root, d), { recursive: true });
    }
    fs.writeFileSync(path.join(root, 'var/lib/dpkg/status'), '');
    const env = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
    const install = spawnSync(
      'dpkg',
      [
        '--root',
        root,
        '--force-not-root',
        '--force-bad-path',
        '--force-depends',
        '--log',
        '/dev/null',
        '-i',
        deb,
      ],
      { encoding: 'utf8', env },
    );
    expect(install.status, install.stderr).toBe(0);
    const listed = sh('dpkg', ['--root', root, '-L', 'keybroker']).trim().split('\n').sort();
    expect(listed).toEqual(
      [
        '/.',
        '/etc',
        '/etc/keybroker',
        '/etc/keybroker/config.json.example',
        '/usr',
        '/usr/bin',
        '/usr/bin/keybroker',
      ].sort(),
    );
    const conffiles = fs.readFileSync(path.join(root, 'var/lib/dpkg/info/keybroker.conffiles'), 'utf8');
    expect(conffiles).toBe('/etc/keybroker/config.json.example\n');
    const r = spawnSync(path.join(root, 'usr/bin/keybroker'), ['--version'], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 0,
      stdout: `${v} (${manifest().commit})\n`,
      stderr: '',
    });
    const example = path.join(root, 'etc/keybroker/config.json.example');
    expect(fs.readFileSync(example, 'utf8')).toBe(
      fs.readFileSync(path.join(ROOT, 'packaging/config.json.example'), 'utf8'),
    );
    // The example is a valid managed config for the keybroker it ships with.
    const home = path.join(tmp, 'validate-home');
    fs.mkdirSync(home, { mode: 0o700 });
    const valid = spawnSync(path.join(root, 'usr/bin/keybroker'), ['config', 'validate'], {
      encoding: 'utf8',
      env: { PATH: '/usr/bin:/bin', HOME: home, XDG_CONFIG_HOME: home, KEYBROKER_MANAGED_CONFIG: example },
    });
    expect({ status: valid.status, stdout: valid.stdout, stderr: valid.stderr }).toEqual({
      status: 0,
      stdout: `config ok: ${example} (managed); profiles: default, kv, aws, local-jwt\n`,
      stderr: '',
    });
  });

  it('the arm64 .deb carries the arm64 executable', () => {
    const deb = releaseFile(`keybroker_${v}_arm64.deb`);
    expect(sh('dpkg-deb', ['-f', deb, 'Architecture'])).toBe('arm64\n');
    const out = path.join(tmp, 'deb-arm64');
    sh('dpkg-deb', ['-x', deb, out]);
    expect(sha256(path.join(out, 'usr/bin/keybroker'))).toBe(sha256(releaseFile('keybroker-linux-arm64')));
  });

  for (const [arch, id] of [
    ['x86_64', 'linux-x64'],
    ['aarch64', 'linux-arm64'],
  ] as const) {
    it.skipIf(!hasCommand('rpm'))(`rpm -qlp lists the ${arch} package's files`, () => {
      const rpm = releaseFile(`keybroker-${v}-1.${arch}.rpm`);
      expect(sh('rpm', ['-qlp', rpm])).toBe(
        '/etc/keybroker\n/etc/keybroker/config.json.example\n/usr/bin/keybroker\n',
      );
      expect(sh('rpm', ['-qp', '--qf', '%{NAME} %{VERSION} %{ARCH}\n', rpm])).toBe(
        `keybroker ${v.replace('-', '~')} ${arch}\n`,
      );
      expect(sh('rpm', ['-qp', '--qf', '[%{FILENAMES} %{FILEMODES:perms} %{FILEDIGESTS}\n]', rpm])).toContain(
        `/usr/bin/keybroker -rwxr-xr-x ${sha256(releaseFile(`keybroker-${id}`))}\n`,
      );
      expect(sh('rpm', ['-qcp', rpm])).toBe('/etc/keybroker/config.json.example\n');
    });
  }

  it.skipIf(!hasCommand('msiinfo'))(
    'msiinfo shows keybroker.exe in Program Files and on the system PATH',
    () => {
      const msi = releaseFile(`keybroker-${v}-x64.msi`);
      const files = sh('msiinfo', ['export', msi, 'File']);
      expect(files).toMatch(/\tkeybroker\.exe\t/);
      expect(files).toMatch(/\tconfig\.json\.example\t/);
      const dirs = sh('msiinfo', ['export', msi, 'Directory']);
      expect(dirs).toMatch(/^INSTALLDIR\tProgramFiles64Folder\tkeybroker\r?$/m);
      expect(dirs).toMatch(/^ProgramFiles64Folder\tTARGETDIR\t/m);
      const env = sh('msiinfo', ['export', msi, 'Environment']);
      expect(env).toMatch(/^KeybrokerPath\t=-\*PATH\t\[~\];\[INSTALLDIR\]\tKeybrokerExe\r?$/m);
      const sequence = sh('msiinfo', ['export', msi, 'InstallExecuteSequence']);
      expect(sequence).toMatch(/^WriteEnvironmentStrings\t\t5200\r?$/m);
      expect(sequence).toMatch(/^RemoveEnvironmentStrings\t\t3300\r?$/m);
      // %ProgramData%\keybroker: only SYSTEM and Administrators may write (finding 13: any local
      // user could plant the managed config under ProgramData's inherited ACL).
      const folders = sh('msiinfo', ['export', msi, 'CreateFolder']);
      expect(folders).toMatch(/^PROGRAMDATADIR\tConfigExample\r?$/m);
      const acl = sh('msiinfo', ['export', msi, 'LockPermissions'])
        .split(/\r?\n/)
        .slice(3)
        .filter(Boolean)
        .sort();
      expect(acl).toEqual(
        [
          'ConfigExampleFile\tFile\t\tAdministrators\t268435456',
          'ConfigExampleFile\tFile\t\tSYSTEM\t268435456',
          'ConfigExampleFile\tFile\t\tUsers\t-1610612736',
          'PROGRAMDATADIR\tCreateFolder\t\tAdministrators\t268435456',
          'PROGRAMDATADIR\tCreateFolder\t\tSYSTEM\t268435456',
          'PROGRAMDATADIR\tCreateFolder\t\tUsers\t-1610612736',
        ].sort(),
      );
      const out = path.join(tmp, 'msi');
      fs.mkdirSync(out);
      sh('msiextract', ['-C', out, msi]);
      const extracted = execFileSync('find', [out, '-name', 'keybroker.exe'], { encoding: 'utf8' }).trim();
      expect(extracted).toMatch(/keybroker\/keybroker\.exe$/);
      expect(sha256(extracted)).toBe(sha256(releaseFile('keybroker-win-x64.exe')));
    },
  );

  it.skipIf(WINE_REASON !== '')(
    `msiexec under wine installs keybroker onto the PATH and uninstalls it${WINE_REASON ? ` (skipped: ${WINE_REASON})` : ''}`,
    () => {
      const prefix = path.join(tmp, 'wine-prefix');
      const env = {
        ...process.env,
        WINEPREFIX: prefix,
        WINEDEBUG: '-all',
        WINEDLLOVERRIDES: 'mscoree,mshtml=',
      };
      const wine = (...args: string[]) =>
        execFileSync('wine', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      wine('winecfg', '/v', 'win10'); // Windows 7, wine's default, is too old for msiexec's Node
      const msi = releaseFile(`keybroker-${v}-x64.msi`);
      wine('msiexec', '/i', msi, '/qn');
      const installed = path.join(prefix, 'drive_c', 'Program Files', 'keybroker', 'keybroker.exe');
      expect(sha256(installed)).toBe(sha256(releaseFile('keybroker-win-x64.exe')));
      expect(
        fs.existsSync(path.join(prefix, 'drive_c', 'ProgramData', 'keybroker', 'config.json.example')),
      ).toBe(true);
      const key = 'HKLM\\SYSTEM\\CurrentControlSet\\Control\\Session Manager\\Environment';
      expect(wine('reg', 'query', key, '/v', 'PATH')).toMatch(/;C:\\Program Files\\keybroker\\\r?\n/);
      // The installed file is the release executable. (wine 8 cannot run Node 26 itself: V8
      // aborts reserving its pointer tables, so the executable is not started here; see
      // docs/release.md.)
      expect(sha256(installed)).toBe(sha256(releaseFile('keybroker-win-x64.exe')));
      wine('msiexec', '/x', msi, '/qn');
      expect(fs.existsSync(installed)).toBe(false);
      expect(wine('reg', 'query', key, '/v', 'PATH')).not.toContain('keybroker');
    },
    600_000,
  );

  it('the Windows executable carries no (broken) Authenticode signature', () => {
    const exe = fs.readFileSync(releaseFile('keybroker-win-x64.exe'));
    const pe = exe.readUInt32LE(0x3c);
    expect(exe.toString('latin1', pe, pe + 4)).toBe('PE\0\0');
    const optional = pe + 24;
    expect(exe.readUInt16LE(optional)).toBe(0x20b); // PE32+
    const securityDir = optional + 112 + 4 * 8; // data directory 4: certificate table
    expect({ offset: exe.readUInt32LE(securityDir), size: exe.readUInt32LE(securityDir + 4) }).toEqual({
      offset: 0,
      size: 0,
    });
  });

  it('the Homebrew formula names each archive with its checksum', () => {
    const formula = fs.readFileSync(releaseFile('keybroker.rb'), 'utf8');
    expect(formula).toContain(`version "${v}"`);
    for (const id of ['darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-x64']) {
      const archive = `keybroker-${v}-${id}.tar.gz`;
      expect(formula).toContain(`/${archive}"\n      sha256 "${sha256(releaseFile(archive))}"`);
    }
    expect(formula).not.toMatch(/\{\{|\}\}/);
  });

  it('the npm tarball installs into an empty prefix with only the keyring addon, and runs', () => {
    const tgz = releaseFile(`keybroker-${v}.tgz`);
    const prefix = path.join(tmp, 'npm-prefix');
    fs.mkdirSync(prefix);
    const inst = spawnSync(
      'npm',
      ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tgz],
      { encoding: 'utf8', env: { ...process.env, npm_config_loglevel: 'error' } },
    );
    expect(inst.status, inst.stderr).toBe(0);
    const modules = path.join(prefix, 'lib', 'node_modules');
    const installed: string[] = [];
    const walk = (dir: string) => {
      for (const name of fs.readdirSync(dir)) {
        if (name.startsWith('.')) continue;
        if (name.startsWith('@')) {
          for (const sub of fs.readdirSync(path.join(dir, name))) installed.push(`${name}/${sub}`);
        } else installed.push(name);
      }
    };
    walk(modules);
    const nested = path.join(modules, 'keybroker', 'node_modules');
    if (fs.existsSync(nested)) walk(nested);
    // Everything but the native keyring addon is bundled into dist/: npm installs nothing else.
    expect(installed.sort()).toEqual(
      ['@napi-rs/keyring', `@napi-rs/keyring-linux-x64-gnu`, 'keybroker'].sort(),
    );
    const r = spawnSync(path.join(prefix, 'bin', 'keybroker'), ['--version'], { encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({
      status: 0,
      stdout: `${v} (${manifest().commit})\n`,
      stderr: '',
    });
  });

  it('manifest.json records every file with its size', () => {
    const m = manifest();
    for (const name of [...EXECUTABLES, ...ARCHIVES, ...PACKAGES, 'SHA256SUMS']) {
      expect(m.files[name]).toBe(fs.statSync(releaseFile(name)).size);
    }
    expect(m.targets['darwin-arm64']).toMatchObject({
      signed: 'adhoc',
      codeCache: false,
      assets: ['keyring.node'],
    });
    expect(m.targets['win-x64']).toMatchObject({
      signed: 'unsigned (signature removed)',
      assets: ['keyring.node'],
    });
  });
});
