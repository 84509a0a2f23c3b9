#!/usr/bin/env node
// Builds dist/keybroker (first stage: CommonJS, cache hits with node:fs only) and
// dist/lib/main.mjs (second stage: ESM, every heavy library in its own lazily imported chunk).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));

function commit() {
  if (process.env.KEYBROKER_COMMIT) return process.env.KEYBROKER_COMMIT;
  try {
    const sha = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    return dirty ? `${sha}-dirty` : sha;
  } catch {
    return 'unknown';
  }
}

const define = {
  __KEYBROKER_VERSION__: JSON.stringify(pkg.version),
  __KEYBROKER_COMMIT__: JSON.stringify(commit()),
  // The single-executable code paths (src/platform/sea.ts) drop out of dist/.
  __KEYBROKER_SEA__: 'false',
};
const dist = path.join(root, 'dist');
// Build beside, then swap in: tests running meanwhile never see a half-built dist/.
const stage = fs.mkdtempSync(path.join(root, 'dist-build-'));
fs.mkdirSync(dist, { recursive: true });
// dist/ is CommonJS for the first stage; the second stage uses explicit .mjs files.
const distPkg = path.join(dist, 'package.json');
const distPkgText = '{ "type": "commonjs" }\n';
if (!fs.existsSync(distPkg) || fs.readFileSync(distPkg, 'utf8') !== distPkgText) {
  fs.writeFileSync(`${distPkg}.tmp`, distPkgText);
  fs.renameSync(`${distPkg}.tmp`, distPkg);
}

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  define,
  legalComments: 'none',
  logLevel: 'warning',
};

await esbuild.build({
  ...common,
  entryPoints: [path.join(root, 'src/entry.ts')],
  outfile: path.join(stage, 'keybroker'),
  format: 'cjs',
  minify: true,
  banner: { js: '#!/usr/bin/env node' },
});
fs.chmodSync(path.join(stage, 'keybroker'), 0o755);

await esbuild.build({
  ...common,
  // `keybroker explain` prints docs/troubleshooting.md's entries; only the second stage carries
  // the text (in the lazily imported chunk that reads it), so a cache hit never loads it.
  define: {
    ...define,
    __KEYBROKER_TROUBLESHOOTING__: JSON.stringify(
      fs.readFileSync(path.join(root, 'docs', 'troubleshooting.md'), 'utf8'),
    ),
  },
  entryPoints: { main: path.join(root, 'src/main.ts') },
  outdir: path.join(stage, 'lib'),
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  splitting: true,
  minify: true,
  chunkNames: 'chunks/[name]-[hash]',
  // CommonJS dependencies (axios, the AWS SDK) call require(); give ESM chunks one.
  banner: {
    js: "import { createRequire as __kbCreateRequire } from 'node:module'; const require = __kbCreateRequire(import.meta.url);",
  },
  external: ['@napi-rs/keyring', '@napi-rs/keyring-*'],
});

// Swap in file by file: chunks first (their names carry a content hash, so old and new live
// side by side for runs that started before), then the entry points, each by one rename. Chunks
// no build has written for an hour are removed.
const libDir = path.join(dist, 'lib');
const chunkDir = path.join(libDir, 'chunks');
fs.mkdirSync(chunkDir, { recursive: true });
const fresh = new Set();
for (const f of fs.readdirSync(path.join(stage, 'lib', 'chunks'))) {
  fresh.add(f);
  fs.renameSync(path.join(stage, 'lib', 'chunks', f), path.join(chunkDir, f));
}
for (const f of fs.readdirSync(path.join(stage, 'lib'))) {
  if (f !== 'chunks') fs.renameSync(path.join(stage, 'lib', f), path.join(libDir, f));
}
fs.renameSync(path.join(stage, 'keybroker'), path.join(dist, 'keybroker'));
fs.rmSync(stage, { recursive: true, force: true });
for (const f of fs.readdirSync(chunkDir)) {
  const file = path.join(chunkDir, f);
  if (!fresh.has(f) && Date.now() - fs.statSync(file).mtimeMs > 3600_000) fs.rmSync(file);
  else if (fresh.has(f)) fs.utimesSync(file, new Date(), new Date());
}

const size = (f) => `${(fs.statSync(f).size / 1024).toFixed(1)} KiB`;
process.stderr.write(
  `built dist/keybroker (${size(path.join(dist, 'keybroker'))}) and dist/lib/main.mjs (${size(path.join(dist, 'lib', 'main.mjs'))}), commit ${define.__KEYBROKER_COMMIT__}\n`,
);
