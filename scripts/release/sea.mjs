/**
 * Node single executables (SEA) for every target: the two stages bundled for the SEA, the
 * preparation blob made by exactly the embedded Node version (a mismatch segfaults), the V8
 * code caches made by the target's own Node where it can run here (qemu-user for
 * linux-arm64, wine for win-x64), injection with postject, and signature handling.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as esbuild from 'esbuild';
import postject from 'postject';
import { signAdhoc, verifySignature } from './macho.mjs';

export const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/** Must match src/platform/sea.ts. */
export const MAIN_ASSET = 'keybroker-main.cjs';
export const MAIN_CACHE_ASSET = 'keybroker-main.cache';
const AARCH64_SYSROOT = '/usr/aarch64-linux-gnu';

/** Bundles both stages for the executables (CommonJS, everything inside, SEA loaders on). */
export async function bundleStages({ root, config, outDir, version, commit }) {
  fs.mkdirSync(outDir, { recursive: true });
  const common = {
    bundle: true,
    platform: 'node',
    target: `node${config.node.version.split('.')[0]}`,
    format: 'cjs',
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
  const main = path.join(outDir, MAIN_ASSET);
  await esbuild.build({ ...common, entryPoints: [path.join(root, config.entry)], outfile: entry });
  await esbuild.build({
    ...common,
    entryPoints: [path.join(root, config.main)],
    outfile: main,
    // ESM-only dependencies (yargs) read import.meta.url; give the CommonJS bundle one.
    // `keybroker explain` prints docs/troubleshooting.md's entries from the second stage, as
    // scripts/build.mjs embeds them for dist/ (the first stage never carries the text).
    define: {
      ...common.define,
      'import.meta.url': '__kbImportMetaUrl',
      __KEYBROKER_TROUBLESHOOTING__: JSON.stringify(
        fs.readFileSync(path.join(root, 'docs', 'troubleshooting.md'), 'utf8'),
      ),
    },
    banner: { js: 'var __kbImportMetaUrl=require("node:url").pathToFileURL(__filename).href;' },
  });
  return { entry, main };
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

function run(runner, args, cwd) {
  const [cmd, ...rest] = runner.argv;
  return execFileSync(cmd, [...rest, ...args], {
    cwd,
    env: { ...process.env, ...runner.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
  });
}

const CODE_CACHE_SCRIPT = `
const fs = require('fs'), vm = require('vm'), { wrap } = require('module');
const [src, out, name] = process.argv.slice(-3);
const opts = { filename: name, importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER };
const code = wrap(fs.readFileSync(src, 'utf8'));
const data = new vm.Script(code, opts).createCachedData();
if (new vm.Script(code, { ...opts, cachedData: data }).cachedDataRejected) throw new Error('code cache rejected by its own Node');
fs.writeFileSync(out, data);
`;

/**
 * Writes the SEA preparation blob for one target into `work` and returns its path.
 * `runner` null: no Node of the target can run here, so the blob comes from the linux-x64
 * Node of the same version without code caches (a foreign cache is rejected with a warning
 * on stderr at every start).
 */
export function makeBlob({ work, stages, assets, runner, hostRunner }) {
  fs.copyFileSync(stages.entry, path.join(work, 'entry.cjs'));
  fs.copyFileSync(stages.main, path.join(work, MAIN_ASSET));
  const seaAssets = { [MAIN_ASSET]: MAIN_ASSET };
  for (const [name, file] of Object.entries(assets)) {
    fs.copyFileSync(file, path.join(work, name));
    seaAssets[name] = name;
  }
  const codeCache = runner !== null;
  if (codeCache) {
    fs.writeFileSync(path.join(work, 'code-cache.cjs'), CODE_CACHE_SCRIPT);
    run(runner, ['code-cache.cjs', MAIN_ASSET, MAIN_CACHE_ASSET, MAIN_ASSET], work);
    seaAssets[MAIN_CACHE_ASSET] = MAIN_CACHE_ASSET;
  }
  const seaConfig = {
    main: 'entry.cjs',
    output: 'sea.blob',
    disableExperimentalSEAWarning: true,
    useSnapshot: false,
    // NODE_OPTIONS is not for keybroker: a V8 flag in it (say --max-old-space-size in a
    // developer's shell) would make V8 reject the code cache with a warning on every run,
    // and --require would run foreign code inside the credential broker.
    execArgvExtension: 'none',
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
