#!/usr/bin/env node
/**
 * `npm run package`: the release files in dist/release/, built offline from pkg.config.json.
 * Inputs come from npm (Node 26 runtimes, keyring addons; `npm pack` into .cache/) and
 * Debian tools (tar, gzip, zip, dpkg-deb, rpmbuild, wixl, osslsigncode). See docs/release.md.
 *
 *   node scripts/package.mjs [--targets linux-x64,win-x64] [--no-code-cache] [--skip-build]
 *                            [--no-packages] [--packages-only] [--out DIR]
 *
 * --packages-only reuses the executables already in <out> (and their manifest entries).
 *
 * Every step logs one line on stderr; a manifest (sizes, code caches, timings) is written
 * to <out>/manifest.json.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { extractMember, lockedPackage, npmPack } from './release/inputs.mjs';
import {
  makeArchive,
  makeDeb,
  makeMsi,
  makeRpm,
  msiVersion,
  packageVersion,
  render,
  sha256File,
  writeSums,
} from './release/packages.mjs';
import { buildExecutable, bundleStages, makeBlob, nodeRunner } from './release/sea.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const t0 = performance.now();
const log = (msg) =>
  process.stderr.write(`package: [${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);

const { values: opts } = parseArgs({
  options: {
    targets: { type: 'string' },
    'no-code-cache': { type: 'boolean', default: false },
    'skip-build': { type: 'boolean', default: false },
    'no-packages': { type: 'boolean', default: false },
    'packages-only': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});

const config = JSON.parse(fs.readFileSync(path.join(root, 'pkg.config.json'), 'utf8'));
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const outDir = path.resolve(root, opts.out ?? config.outputPath);
const cacheRoot = path.resolve(root, config.cacheDir);
const work = path.join(cacheRoot, 'package');
const wanted = opts.targets ? new Set(opts.targets.split(',')) : null;
const targets = config.targets.filter((t) => !wanted || wanted.has(t.id));
if (wanted && targets.length !== wanted.size) throw new Error(`unknown target in --targets ${opts.targets}`);

function sourceDateEpoch() {
  if (process.env.SOURCE_DATE_EPOCH) return Number(process.env.SOURCE_DATE_EPOCH);
  try {
    return Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: root, encoding: 'utf8' }).trim());
  } catch {
    return Math.floor(Date.now() / 1000);
  }
}

const manifest = {
  version: '',
  commit: '',
  node: config.node.version,
  targets: {},
  files: {},
  timingsSec: {},
};
const timed = async (name, fn) => {
  const start = performance.now();
  const result = await fn();
  manifest.timingsSec[name] = Number(((performance.now() - start) / 1000).toFixed(1));
  return result;
};

// 1. The npm build (dist/keybroker + dist/lib), which also gives the version string.
if (!opts['skip-build']) {
  await timed('build', () =>
    execFileSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' }),
  );
}
const versionLine = execFileSync(process.execPath, [path.join(root, 'dist', 'keybroker'), '--version'], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
}).trim();
const vm = /^(\S+) \((\S+)\)$/.exec(versionLine);
if (!vm || vm[1] !== pkg.version) throw new Error(`dist/keybroker --version printed "${versionLine}"`);
const [, version, commit] = vm;
manifest.version = version;
manifest.commit = commit;
const epoch = sourceDateEpoch();
log(
  `keybroker ${version} (${commit}), Node ${config.node.version}, targets ${targets.map((t) => t.id).join(' ')}`,
);

// 2. Inputs from npm, pinned.
const nodeBinaries = await timed('inputs', () => {
  const bins = {};
  const needed = new Set([...targets.map((t) => t.id), 'linux-x64']); // linux-x64 makes foreign blobs
  for (const id of needed) {
    const spec = config.node.packages[id];
    const tgz = npmPack({
      name: spec.name,
      version: config.node.version,
      integrity: spec.integrity,
      dir: path.join(cacheRoot, 'node-bins'),
      log,
    });
    const dir = path.join(work, 'node', id);
    fs.mkdirSync(dir, { recursive: true });
    bins[id] = extractMember(tgz, spec.binary, path.join(dir, path.basename(spec.binary)));
  }
  return bins;
});
const assetFiles = (target) => {
  const files = {};
  for (const [name, a] of Object.entries(target.assets ?? {})) {
    const locked = lockedPackage(root, a.package);
    const tgz = npmPack({ ...locked, dir: path.join(cacheRoot, 'addons'), log });
    const dir = path.join(work, 'addons', target.id);
    fs.mkdirSync(dir, { recursive: true });
    files[name] = extractMember(tgz, `package/${a.file}`, path.join(dir, a.file));
  }
  return files;
};

// 3. The two stages, bundled for the executables.
const stages = await timed('bundle', () =>
  bundleStages({ root, config, outDir: path.join(work, 'stages'), version, commit }),
);

// 4. One executable per target.
const executables = {};
if (opts['packages-only']) {
  const previous = JSON.parse(fs.readFileSync(path.join(outDir, 'manifest.json'), 'utf8'));
  for (const f of fs.readdirSync(outDir)) {
    if (!targets.some((t) => t.output === f)) fs.rmSync(path.join(outDir, f));
  }
  for (const target of targets) {
    executables[target.id] = path.join(outDir, target.output);
    manifest.targets[target.id] = previous.targets[target.id];
  }
} else {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
}
const hostRunner = nodeRunner('native', nodeBinaries['linux-x64'], cacheRoot);
for (const target of opts['packages-only'] ? [] : targets) {
  await timed(`exe ${target.id}`, async () => {
    const tw = path.join(work, 'targets', target.id);
    fs.rmSync(tw, { recursive: true, force: true });
    fs.mkdirSync(tw, { recursive: true });
    let runner = null;
    if (!opts['no-code-cache'] && target.codeCache !== 'none') {
      runner = nodeRunner(target.codeCache, nodeBinaries[target.id], cacheRoot);
      if (!runner)
        log(`${target.id}: WARNING ${target.codeCache} is not installed: no code cache for this target`);
    }
    const { blob, codeCache } = makeBlob({
      work: tw,
      stages,
      assets: assetFiles(target),
      runner,
      hostRunner,
    });
    const out = path.join(outDir, target.output);
    await buildExecutable({ target, nodeBinary: nodeBinaries[target.id], blob, out, log });
    executables[target.id] = out;
    manifest.targets[target.id] = {
      file: target.output,
      codeCache,
      signed:
        target.sign === 'adhoc'
          ? 'adhoc'
          : target.removeSignature
            ? 'unsigned (signature removed)'
            : 'unsigned',
      assets: Object.keys(target.assets ?? {}),
    };
    log(
      `${target.output}: ${(fs.statSync(out).size / 1e6).toFixed(1)} MB, code cache ${codeCache ? 'yes' : 'no'}`,
    );
  });
}

fs.writeFileSync(path.join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`); // for --packages-only

// 5. The linux-x64 executable must answer like dist/keybroker, with nothing on stderr.
if (executables['linux-x64']) {
  const got = execFileSync(executables['linux-x64'], ['--version'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (got.trim() !== versionLine) throw new Error(`keybroker-linux-x64 --version printed "${got.trim()}"`);
}

// 6. Archives and packages.
const released = Object.values(executables);
if (!opts['no-packages']) {
  const pkgWork = path.join(work, 'packages');
  fs.rmSync(pkgWork, { recursive: true, force: true });
  fs.mkdirSync(pkgWork, { recursive: true });
  const templatesDir = path.join(root, 'packaging');
  const configExample = path.join(templatesDir, 'config.json.example');
  const extras = config.archives.include.map((f) => path.join(root, f)).filter((f) => fs.existsSync(f));
  for (const f of config.archives.include) {
    if (!fs.existsSync(path.join(root, f))) log(`WARNING ${f} does not exist: left out of the archives`);
  }
  const values = {
    version,
    debVersion: packageVersion(version),
    rpmVersion: packageVersion(version),
    nodeVersion: config.node.version,
    maintainer: config.maintainer,
    summary: config.summary,
    homepage: config.homebrew.homepage,
    license: pkg.license,
    depends: config.deb.depends,
    requires: config.rpm.requires,
  };
  const archives = {};
  await timed('archives', () => {
    for (const target of targets) {
      const win = target.os === 'win32';
      archives[target.id] = makeArchive({
        stem: `keybroker-${version}-${target.id}`,
        exe: executables[target.id],
        exeName: win ? 'keybroker.exe' : 'keybroker',
        extras,
        outDir,
        work: pkgWork,
        epoch,
        zip: win,
      });
      released.push(archives[target.id]);
    }
  });
  await timed('deb', () => {
    for (const [id, debArch] of Object.entries(config.deb.targets)) {
      if (!executables[id]) continue;
      const exe = executables[id];
      released.push(
        makeDeb({ exe, configExample, debArch, values, templatesDir, outDir, work: pkgWork, epoch }),
      );
    }
  });
  await timed('rpm', () => {
    for (const [id, rpmArch] of Object.entries(config.rpm.targets)) {
      if (!executables[id]) continue;
      const exe = executables[id];
      released.push(
        makeRpm({ exe, configExample, rpmArch, values, templatesDir, outDir, work: pkgWork, epoch }),
      );
    }
  });
  if (executables[config.msi.target]) {
    await timed('msi', () => {
      released.push(
        makeMsi({
          exe: executables[config.msi.target],
          configExample,
          values,
          upgradeCode: config.msi.upgradeCode,
          templatesDir,
          outDir,
          work: pkgWork,
        }),
      );
    });
    manifest.msiVersion = msiVersion(version);
  }
  const brewIds = ['darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-x64'];
  if (brewIds.every((id) => archives[id])) {
    const brew = {
      ...values,
      class: config.homebrew.class,
      urlBase: render(config.homebrew.urlBase.replaceAll('{version}', '{{version}}'), values),
    };
    for (const id of brewIds) {
      const key = id.replace('-', '_');
      brew[`archive_${key}`] = path.basename(archives[id]);
      brew[`sha256_${key}`] = sha256File(archives[id]);
    }
    const formula = path.join(outDir, 'keybroker.rb');
    fs.writeFileSync(
      formula,
      render(fs.readFileSync(path.join(templatesDir, 'homebrew', 'keybroker.rb.in'), 'utf8'), brew),
    );
    released.push(formula);
  }
  await timed('npm pack', () => {
    const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', outDir], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }).trim();
    released.push(path.join(outDir, name.split('\n').pop()));
  });
}
writeSums(outDir, released);
for (const f of [...released, path.join(outDir, 'SHA256SUMS')])
  manifest.files[path.basename(f)] = fs.statSync(f).size;
manifest.timingsSec.total = Number(((performance.now() - t0) / 1000).toFixed(1));
fs.writeFileSync(path.join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
for (const [name, size] of Object.entries(manifest.files)) {
  log(`${name.padEnd(44)} ${(size / 1e6).toFixed(1).padStart(7)} MB`);
}
log(`done in ${manifest.timingsSec.total}s`);
