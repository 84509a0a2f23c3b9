/**
 * What company package managers take, built from the executables with Debian tools only:
 * reproducible archives, a .deb (dpkg-deb), an .rpm (rpmbuild), an .msi (wixl), a rendered
 * Homebrew formula, and SHA256SUMS over everything.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export function sha256File(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Fills `{{name}}` placeholders; a placeholder without a value is an error. */
export function render(template, values) {
  return template.replace(/\{\{(\w+)\}\}/g, (_, k) => {
    if (values[k] === undefined) throw new Error(`template value ${k} is missing`);
    return String(values[k]);
  });
}

/** `1.2.3-rc.1` sorts before `1.2.3` in dpkg and rpm only when written `1.2.3~rc.1`. */
export function packageVersion(semver) {
  return semver.replace('-', '~').replace(/[^A-Za-z0-9.~+]/g, '.');
}

/** MSI ProductVersion: three numbers only. */
export function msiVersion(semver) {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(semver);
  if (!m) throw new Error(`version ${semver} has no major.minor.patch`);
  return `${m[1]}.${m[2]}.${m[3]}`;
}

function setMtimes(dir, epoch) {
  const t = new Date(epoch * 1000);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) setMtimes(p, epoch);
    fs.utimesSync(p, t, t);
  }
  fs.utimesSync(dir, t, t);
}

/** Stages `<stem>/` with the executable and extra files, and archives it reproducibly. */
export function makeArchive({ stem, exe, exeName, extras, outDir, work, epoch, zip }) {
  const stage = path.join(work, stem);
  fs.rmSync(stage, { recursive: true, force: true });
  fs.mkdirSync(stage, { recursive: true });
  fs.copyFileSync(exe, path.join(stage, exeName));
  fs.chmodSync(path.join(stage, exeName), 0o755);
  for (const f of extras) {
    fs.copyFileSync(f, path.join(stage, path.basename(f)));
    fs.chmodSync(path.join(stage, path.basename(f)), 0o644);
  }
  setMtimes(stage, epoch);
  if (zip) {
    const out = path.join(outDir, `${stem}.zip`);
    fs.rmSync(out, { force: true });
    execFileSync('zip', ['-q', '-X', '-9', '-r', out, stem], { cwd: work });
    return out;
  }
  const out = path.join(outDir, `${stem}.tar.gz`);
  const tar = execFileSync(
    'tar',
    [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      `--mtime=@${epoch}`,
      '--format=gnu',
      '-cf',
      '-',
      stem,
    ],
    { cwd: work, maxBuffer: 1 << 30 },
  );
  fs.writeFileSync(out, execFileSync('gzip', ['-n'], { input: tar, maxBuffer: 1 << 30 }));
  return out;
}

export function makeDeb({ exe, configExample, debArch, values, templatesDir, outDir, work, epoch }) {
  const root = path.join(work, `deb-${debArch}`);
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr', 'bin'), { recursive: true });
  fs.mkdirSync(path.join(root, 'etc', 'keybroker'), { recursive: true });
  fs.copyFileSync(exe, path.join(root, 'usr', 'bin', 'keybroker'));
  fs.chmodSync(path.join(root, 'usr', 'bin', 'keybroker'), 0o755);
  fs.copyFileSync(configExample, path.join(root, 'etc', 'keybroker', 'config.json.example'));
  fs.chmodSync(path.join(root, 'etc', 'keybroker', 'config.json.example'), 0o644);
  const installedSizeKiB = Math.ceil((fs.statSync(exe).size + fs.statSync(configExample).size) / 1024);
  const control = render(fs.readFileSync(path.join(templatesDir, 'deb', 'control.in'), 'utf8'), {
    ...values,
    debArch,
    installedSizeKiB,
  });
  fs.writeFileSync(path.join(root, 'DEBIAN', 'control'), control);
  fs.copyFileSync(path.join(templatesDir, 'deb', 'conffiles'), path.join(root, 'DEBIAN', 'conffiles'));
  for (const d of ['', 'DEBIAN', 'usr', 'usr/bin', 'etc', 'etc/keybroker'])
    fs.chmodSync(path.join(root, d), 0o755);
  for (const f of ['DEBIAN/control', 'DEBIAN/conffiles']) fs.chmodSync(path.join(root, f), 0o644);
  setMtimes(root, epoch);
  const out = path.join(outDir, `keybroker_${values.debVersion}_${debArch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zgzip', '-z6', '--build', root, out], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) },
  });
  return out;
}

export function makeRpm({ exe, configExample, rpmArch, values, templatesDir, outDir, work, epoch }) {
  const top = path.join(work, `rpm-${rpmArch}`);
  fs.rmSync(top, { recursive: true, force: true });
  for (const d of ['SOURCES', 'SPECS', 'BUILD', 'RPMS', 'BUILDROOT', 'SRPMS']) {
    fs.mkdirSync(path.join(top, d), { recursive: true });
  }
  fs.copyFileSync(exe, path.join(top, 'SOURCES', 'keybroker'));
  fs.copyFileSync(configExample, path.join(top, 'SOURCES', 'config.json.example'));
  const spec = path.join(top, 'SPECS', 'keybroker.spec');
  fs.writeFileSync(
    spec,
    render(fs.readFileSync(path.join(templatesDir, 'rpm', 'keybroker.spec.in'), 'utf8'), values),
  );
  execFileSync(
    'rpmbuild',
    [
      '-bb',
      '--quiet',
      '--target',
      `${rpmArch}-linux`,
      '--define',
      `_topdir ${top}`,
      '--define',
      '_buildhost reproducible',
      '--define',
      'use_source_date_epoch_as_buildtime 1',
      '--define',
      'clamp_mtime_to_source_date_epoch 1',
      spec,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch) } },
  );
  const built = path.join(top, 'RPMS', rpmArch, `keybroker-${values.rpmVersion}-1.${rpmArch}.rpm`);
  const out = path.join(outDir, path.basename(built));
  fs.copyFileSync(built, out);
  return out;
}

/** GENERIC_ALL for SYSTEM and Administrators, GENERIC_READ | GENERIC_EXECUTE for Users (as signed 32-bit). */
export const MSI_FOLDER_ACL = [
  ['SYSTEM', 268435456],
  ['Administrators', 268435456],
  ['Users', -1610612736],
];

export function makeMsi({ exe, configExample, values, upgradeCode, templatesDir, outDir, work }) {
  const dir = path.join(work, 'msi');
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(exe, path.join(dir, 'keybroker.exe'));
  fs.copyFileSync(configExample, path.join(dir, 'config.json.example'));
  const out = path.join(outDir, `keybroker-${values.version}-x64.msi`);
  execFileSync(
    'wixl',
    [
      '-a',
      'x64',
      '-D',
      `Version=${msiVersion(values.version)}`,
      '-D',
      `UpgradeCode=${upgradeCode}`,
      '-D',
      'SourceExe=keybroker.exe',
      '-D',
      'ConfigExample=config.json.example',
      '-o',
      out,
      path.join(templatesDir, 'msi', 'keybroker.wxs'),
    ],
    { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  // What WiX makes of <Environment Name="PATH" Value="[INSTALLDIR]" Part="last" Action="set"
  // System="yes" Permanent="no"/>: "=-*" set on install, remove on uninstall, system-wide;
  // "[~];" appends to the existing value. wixl cannot express it, so it is added here.
  const queries = [
    'CREATE TABLE `Environment` (`Environment` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, ' +
      '`Value` CHAR(255) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `Environment`)',
    "INSERT INTO `Environment` (`Environment`, `Name`, `Value`, `Component_`) VALUES ('KeybrokerPath', '=-*PATH', '[~];[INSTALLDIR]', 'KeybrokerExe')",
    "INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES ('RemoveEnvironmentStrings', 3300)",
    "INSERT INTO `InstallExecuteSequence` (`Action`, `Sequence`) VALUES ('WriteEnvironmentStrings', 5200)",
    // %ProgramData%\keybroker gets an explicit ACL (what WiX's <Permission> elements make): by
    // default every local user may create files under ProgramData, and a file planted there
    // would be read as the machine's managed config. LockPermissions replaces the folder's
    // inherited ACL; files created in it later inherit this one.
    'CREATE TABLE `LockPermissions` (`LockObject` CHAR(72) NOT NULL, `Table` CHAR(32) NOT NULL, ' +
      '`Domain` CHAR(255), `User` CHAR(255) NOT NULL, `Permission` LONG PRIMARY KEY `LockObject`, `Table`, `Domain`, `User`)',
    ...MSI_FOLDER_ACL.flatMap(([user, permission]) => [
      `INSERT INTO \`LockPermissions\` (\`LockObject\`, \`Table\`, \`User\`, \`Permission\`) VALUES ('PROGRAMDATADIR', 'CreateFolder', '${user}', ${permission})`,
      `INSERT INTO \`LockPermissions\` (\`LockObject\`, \`Table\`, \`User\`, \`Permission\`) VALUES ('ConfigExampleFile', 'File', '${user}', ${permission})`,
    ]),
  ];
  execFileSync('msibuild', [out, ...queries.flatMap((q) => ['-q', q])], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return out;
}

/** `SHA256SUMS` in the format `sha256sum -c` reads. */
export function writeSums(outDir, files) {
  const lines = files
    .map((f) => path.basename(f))
    .sort()
    .map((name) => `${sha256File(path.join(outDir, name))}  ${name}\n`);
  const out = path.join(outDir, 'SHA256SUMS');
  fs.writeFileSync(out, lines.join(''));
  return out;
}
