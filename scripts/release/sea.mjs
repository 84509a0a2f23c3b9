/**
 * Node single executables (SEA) for every target: the two stages bundled for the SEA, the
 * preparation blob made by exactly the embedded Node version (a mismatch segfaults), the V8
 * code caches made by the target's own Node where it can run here (qemu-user for
 * linux-arm64, wine for win-x64), injection with postject, and signature handling.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import postject from 'postject';
import { signAdhoc, verifySignature } from './macho.mjs';

export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Must match src/platform/sea.ts: the second stage's files are assets under this prefix. */
export const MAIN_PREFIX = 'keybroker-main/';
export const MAIN_ENTRY = 'main.cjs';
/** A file's V8 code cache is the asset of the same name with this suffix. */
export const CACHE_SUFFIX = '.cache';
/** The first stage, an asset that the SEA's main script (BOOT_SCRIPT) compiles with its cache. */
export const STAGE1_ASSET = 'keybroker-stage1.cjs';
/** How a CommonJS file is wrapped (Node's own wrapper), the same at build time and at run time. */
const WRAP = ['(function (exports, require, module, __filename, __dirname) { ', '\n});'];

/**
 * The SEA's main script. SEA's own `useCodeCache` holds only the main script's top level, so a
 * cache hit compiled every function it called (about 2 ms). The first stage is therefore an
 * asset compiled here with a code cache made after a cache hit (CODE_CACHE_SCRIPT); targets
 * without a cache compile it as before.
 */
const BOOT_SCRIPT = `'use strict';
const sea = require('node:sea');
const vm = require('node:vm');
let cachedData;
try {
  cachedData = Buffer.from(sea.getRawAsset(${JSON.stringify(STAGE1_ASSET + CACHE_SUFFIX)}));
} catch {}
const source = ${JSON.stringify(WRAP[0])} + sea.getAsset(${JSON.stringify(STAGE1_ASSET)}, 'utf8') + ${JSON.stringify(WRAP[1])};
new vm.Script(source, { filename: ${JSON.stringify(STAGE1_ASSET)}, cachedData })
  .runInThisContext()
  .call(module.exports, module.exports, require, module, __filename, __dirname);
`;
const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

/**
 * Bundles both stages for the executables, with `__KEYBROKER_SEA__` defined: the first stage
 * as one CommonJS file (loaded by the SEA's main script, BOOT_SCRIPT), the second stage split as dist/lib is (an
 * entry and chunks, each command and heavy library in its own), each file then turned into
 * CommonJS for src/platform/sea.ts to load from the executable's assets. A cold run compiles
 * only the chunks its path imports (a JWT mint: about 100 KB of 1.9 MB).
 * Returns the main script's and the first stage's paths, the second stage's directory and its
 * files (relative).
 */
export async function bundleStages({ root, config, outDir, version, commit }) {
  fs.rmSync(outDir, { recursive: true, force: true });
  fs.mkdirSync(outDir, { recursive: true });
  const target = `node${config.node.version.split('.')[0]}`;
  const common = {
    bundle: true,
    platform: 'node',
    target,
    minify: true,
    legalComments: 'none',
    logLevel: 'warning',
    define: {
      __KEYBROKER_VERSION__: JSON.stringify(version),
      __KEYBROKER_COMMIT__: JSON.stringify(commit),
      __KEYBROKER_SEA__: 'true',
    },
    // Unreachable inside a SEA (the loaders above use the embedded addon instead).
    external: ['@napi-rs/keyring', '@napi-rs/keyring-*'],
  };
  const entry = path.join(outDir, 'entry.cjs');
  fs.writeFileSync(entry, BOOT_SCRIPT);
  const stage1 = path.join(outDir, STAGE1_ASSET);
  await esbuild.build({
    ...common,
    format: 'cjs',
    entryPoints: [path.join(root, config.entry)],
    outfile: stage1,
  });
  const mainDir = path.join(outDir, 'main');
  const split = await esbuild.build({
    ...common,
    format: 'esm',
    splitting: true,
    write: false,
    entryPoints: { main: path.join(root, config.main) },
    outdir: mainDir,
    outExtension: { '.js': '.cjs' },
    chunkNames: 'chunks/[name]-[hash]',
    // ESM-only dependencies (yargs) read import.meta.url; each file that does gets a line that
    // defines it below. `keybroker explain` prints docs/troubleshooting.md's entries from the
    // second stage, as scripts/build.mjs embeds them for dist/ (the first stage never carries
    // the text).
    define: {
      ...common.define,
      'import.meta.url': '__kbImportMetaUrl',
      __KEYBROKER_TROUBLESHOOTING__: JSON.stringify(
        fs.readFileSync(path.join(root, 'docs', 'troubleshooting.md'), 'utf8'),
      ),
    },
  });
  const mainFiles = [];
  for (const out of split.outputFiles) {
    const rel = path.relative(mainDir, out.path).split(path.sep).join('/');
    // import/export become require/exports; import() of a chunk becomes a require of it too
    // (the loader resolves "./chunks/..." to the asset), never a real ESM import.
    const cjs = await esbuild.transform(out.text, {
      format: 'cjs',
      platform: 'node',
      target,
      minify: true,
      legalComments: 'none',
      supported: { 'dynamic-import': false },
    });
    const head = cjs.code.includes('__kbImportMetaUrl')
      ? 'var __kbImportMetaUrl=require("node:url").pathToFileURL(__filename).href;'
      : '';
    const file = path.join(mainDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, head + cjs.code);
    mainFiles.push(rel);
  }
  if (!mainFiles.includes(MAIN_ENTRY)) throw new Error(`the second stage has no ${MAIN_ENTRY}`);
  return { entry, stage1, mainDir, mainFiles: mainFiles.sort() };
}

/** How to run the target's own Node on this machine, or null when it cannot run here. */
export function nodeRunner(kind, nodeBinary, cacheRoot) {
  const onPath = (cmd) => {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  switch (kind) {
    case 'native':
      return { argv: [nodeBinary], env: {} };
    case 'qemu-aarch64':
      if (
        !onPath('qemu-aarch64') ||
        !fs.existsSync(path.join(AARCH64_SYSROOT, 'lib', 'ld-linux-aarch64.so.1'))
      ) {
        return null;
      }
      return { argv: ['qemu-aarch64', '-L', AARCH64_SYSROOT, nodeBinary], env: {} };
    case 'wine': {
      if (!onPath('wine')) return null;
      const prefix = path.join(cacheRoot, 'wine-prefix');
      fs.mkdirSync(prefix, { recursive: true });
      const env = { WINEPREFIX: prefix, WINEDEBUG: '-all', WINEDLLOVERRIDES: 'mscoree,mshtml=' };
      // Node 22 refuses to start on wine's default Windows 7.
      execFileSync('wine', ['winecfg', '/v', 'win10'], { env: { ...process.env, ...env }, stdio: 'ignore' });
      return { argv: ['wine', nodeBinary], env };
    }
    default:
      return null;
  }
}

function run(runner, args, cwd, env = process.env) {
  const [cmd, ...rest] = runner.argv;
  return execFileSync(cmd, [...rest, ...args], {
    cwd,
    env: { ...env, ...runner.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
}

/**
 * Loads the second stage as src/platform/sea.ts does (from files here) and, with KB_WARM_ARGS,
 * runs it once (a JWT minted and cached in a throwaway home); then runs the first stage
 * (KB_STAGE1) as BOOT_SCRIPT does, which must answer from that cache. Each file's V8 code
 * cache is written beside it after the runs: it also holds the functions the runs compiled,
 * so neither a cold mint nor a cache hit compiles them again. Files the runs did not load get
 * a cache of their top level.
 */
const CODE_CACHE_SCRIPT = `
const fs = require('fs'), path = require('path'), vm = require('vm'), { wrap } = require('module');
const [prefix, suffix, ...names] = process.argv.slice(2);
const opts = (name) => ({ filename: prefix + name, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER });
const source = (name) => wrap(fs.readFileSync(prefix + name, 'utf8'));
const scripts = new Map(), loaded = new Map();
function load(name) {
  const known = loaded.get(name);
  if (known) return known.exports;
  const script = new vm.Script(source(name), opts(name));
  scripts.set(name, script);
  const mod = { exports: {} };
  loaded.set(name, mod);
  const dir = path.posix.dirname(name);
  const req = (id) => (id.startsWith('./') || id.startsWith('../') ? load(path.posix.join(dir, id)) : require(id));
  script.runInThisContext().call(mod.exports, mod.exports, req, mod, process.execPath, path.dirname(process.execPath));
  return mod.exports;
}
function check(name, source, opts, data) {
  if (new vm.Script(source, { ...opts, cachedData: data }).cachedDataRejected) throw new Error(name + ': code cache rejected by its own Node');
  fs.writeFileSync(name + suffix, data);
}
/** Runs the first stage as a cache hit; its cache after the run. */
function stage1(name) {
  const code = ${JSON.stringify(WRAP[0])} + fs.readFileSync(name, 'utf8') + ${JSON.stringify(WRAP[1])};
  const script = new vm.Script(code, { filename: name });
  const exit = process.exit;
  const argv = process.argv;
  let answered;
  process.exit = (c) => { answered = c; throw exit; };
  process.argv = [process.execPath, 'keybroker'];
  try {
    const mod = { exports: {} };
    script.runInThisContext().call(mod.exports, mod.exports, require, mod, process.execPath, path.dirname(process.execPath));
  } catch (e) {
    if (e !== exit) throw e;
  } finally {
    process.exit = exit;
    process.argv = argv;
  }
  if (answered !== 0) throw new Error('the first stage did not answer from the cache (' + answered + ')');
  check(name, code, { filename: name }, script.createCachedData());
}
async function warm() {
  if (!process.env.KB_WARM_ARGS) return;
  const code = await load('main.cjs').main(JSON.parse(process.env.KB_WARM_ARGS), {});
  if (code !== 0) throw new Error('the warm-up run exited ' + code);
  if (process.env.KB_STAGE1) stage1(process.env.KB_STAGE1);
}
warm().then(() => {
  for (const name of names) {
    const data = (scripts.get(name) ?? new vm.Script(source(name), opts(name))).createCachedData();
    check(prefix + name, source(name), opts(name), data);
  }
}).then(() => process.exit(0), (e) => { process.stderr.write(String(e && e.stack || e) + '\\n'); process.exit(1); });
`;

/** A throwaway home with a jwt profile (a fresh P-256 key): what the code caches' warm-up runs in. */
function warmUpHome(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'config', 'keybroker'), { recursive: true, mode: 0o700 });
  const key = path.join(dir, 'key.pem');
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  fs.writeFileSync(key, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  fs.writeFileSync(
    path.join(dir, 'config', 'keybroker', 'config.json'),
    JSON.stringify({ profiles: { default: { source: { type: 'jwt', signingKey: { file: key } } } } }),
    { mode: 0o600 },
  );
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    LANG: 'C',
    XDG_CONFIG_HOME: path.join(dir, 'config'),
    XDG_CACHE_HOME: path.join(dir, 'cache'),
    XDG_STATE_HOME: path.join(dir, 'state'),
    KEYBROKER_MANAGED_CONFIG: path.join(dir, 'managed.json'),
    KB_WARM_ARGS: JSON.stringify([]),
    KB_STAGE1: STAGE1_ASSET,
  };
}

/**
 * Writes the SEA preparation blob for one target into `work` and returns its path.
 * `runner` null: no Node of the target can run here, so the blob comes from the linux-x64
 * Node of the same version without code caches (a foreign cache is rejected with a warning
 * on stderr at every start).
 */
export function makeBlob({ work, stages, assets, runner, hostRunner }) {
  fs.copyFileSync(stages.entry, path.join(work, 'entry.cjs'));
  fs.copyFileSync(stages.stage1, path.join(work, STAGE1_ASSET));
  const seaAssets = { [STAGE1_ASSET]: STAGE1_ASSET };
  for (const rel of stages.mainFiles) {
    const name = MAIN_PREFIX + rel;
    fs.mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
    fs.copyFileSync(path.join(stages.mainDir, rel), path.join(work, name));
    seaAssets[name] = name;
  }
  for (const [name, file] of Object.entries(assets)) {
    fs.copyFileSync(file, path.join(work, name));
    seaAssets[name] = name;
  }
  const codeCache = runner !== null;
  if (codeCache) {
    fs.writeFileSync(path.join(work, 'code-cache.cjs'), CODE_CACHE_SCRIPT);
    const env = warmUpHome(path.join(work, 'warm-up-home'));
    run(runner, ['code-cache.cjs', MAIN_PREFIX, CACHE_SUFFIX, ...stages.mainFiles], work, env);
    fs.rmSync(path.join(work, 'warm-up-home'), { recursive: true, force: true });
    for (const name of [STAGE1_ASSET, ...stages.mainFiles.map((rel) => MAIN_PREFIX + rel)]) {
      seaAssets[name + CACHE_SUFFIX] = name + CACHE_SUFFIX;
    }
  }
  const seaConfig = {
    main: 'entry.cjs',
    output: 'sea.blob',
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // NODE_OPTIONS is not for keybroker: some V8 flags in it would make V8 reject the code
    // caches (Node 26 no longer counts heap sizes such as --max-old-space-size among them),
    // and --require would run foreign code inside the credential broker.
    execArgvExtension: 'none',
    // A young generation that starts at 16 MB instead of growing from 1 MB: a cold run (the
    // second stage's code, node:crypto) no longer stops for several scavenges; about 9 ms of
    // a JWT mint, nothing on a cache hit or its peak RSS (docs/performance.md). Heap sizes are
    // not part of V8's code-cache check.
    execArgv: ['--min-semi-space-size=16'],
    useCodeCache: codeCache,
    assets: seaAssets,
  };
  fs.writeFileSync(path.join(work, 'sea-config.json'), `${JSON.stringify(seaConfig, null, 2)}\n`);
  run(runner ?? hostRunner, ['--experimental-sea-config', 'sea-config.json'], work);
  return { blob: path.join(work, 'sea.blob'), codeCache };
}

/** Copies the official Node binary, prepares it, injects the blob and re-signs. */
export async function buildExecutable({ target, nodeBinary, blob, out, log }) {
  const tmp = `${out}.tmp`;
  fs.rmSync(tmp, { force: true });
  if (target.removeSignature) {
    // The Authenticode signature would be broken by the injection: remove it first.
    execFileSync('osslsigncode', ['remove-signature', '-in', nodeBinary, '-out', tmp], { stdio: 'ignore' });
  } else {
    fs.copyFileSync(nodeBinary, tmp);
  }
  fs.chmodSync(tmp, 0o755);
  if (target.strip) {
    const tool = stripTool(target.arch);
    if (tool) execFileSync(tool, [tmp], { stdio: 'inherit' });
    else
      log(`${target.id}: WARNING no strip tool (llvm-strip, or binutils-aarch64-linux-gnu); left unstripped`);
  }
  // postject's LIEF prints "Can't find string offset for section name" notes for Node's ELF notes: harmless.
  await postject.inject(tmp, 'NODE_SEA_BLOB', fs.readFileSync(blob), {
    sentinelFuse: SEA_FUSE,
    ...(target.os === 'darwin' ? { machoSegmentName: 'NODE_SEA' } : {}),
  });
  if (target.sign === 'adhoc') {
    const signed = signAdhoc(fs.readFileSync(tmp), { identifier: 'keybroker' });
    const problems = verifySignature(signed);
    if (problems.length > 0)
      throw new Error(`${target.id}: ad hoc signature check failed: ${problems.join(', ')}`);
    fs.writeFileSync(tmp, signed);
    log(`${target.id}: signed ad hoc (SHA-256 CodeDirectory, ${Math.ceil(signed.length / 4096)} pages)`);
  }
  fs.renameSync(tmp, out);
  return out;
}

function stripTool(arch) {
  for (const cmd of ['llvm-strip', arch === 'arm64' ? 'aarch64-linux-gnu-strip' : 'strip']) {
    try {
      execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
      return cmd;
    } catch {
      // try the next one
    }
  }
  return null;
}
