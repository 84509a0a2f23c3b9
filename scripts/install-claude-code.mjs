#!/usr/bin/env node
/**
 * Installs the pinned Claude Code CLI into a folder the tests own (.cache/claude-code/),
 * never into package.json. test/e2e/claude-code.test.ts runs this when the binary is missing.
 *
 *   node scripts/install-claude-code.mjs          # installs if missing, prints the binary path
 *   CLAUDE_CODE_VERSION=2.1.300 node scripts/...  # another pinned version (own folder)
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CLAUDE_CODE_VERSION = process.env.CLAUDE_CODE_VERSION ?? '2.1.332';

const root = path.resolve(import.meta.dirname, '..');

export function claudeCodePrefix(version = CLAUDE_CODE_VERSION) {
  return path.join(root, '.cache', 'claude-code', version);
}

export function claudeCodeBin(version = CLAUDE_CODE_VERSION) {
  return path.join(claudeCodePrefix(version), 'node_modules', '.bin', 'claude');
}

function works(bin) {
  try {
    const out = execFileSync(bin, ['--version'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
      env: { ...process.env, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' },
    });
    return out.includes(CLAUDE_CODE_VERSION);
  } catch {
    return false;
  }
}

/** Installs when missing or broken; returns the path of the `claude` executable. */
export function ensureClaudeCode(log = (m) => process.stderr.write(`${m}\n`)) {
  const bin = claudeCodeBin();
  if (fs.existsSync(bin) && works(bin)) return bin;
  const prefix = claudeCodePrefix();
  fs.rmSync(prefix, { recursive: true, force: true });
  fs.mkdirSync(prefix, { recursive: true });
  // Its own package.json, so npm never walks up to the project's.
  fs.writeFileSync(path.join(prefix, 'package.json'), '{"name":"claude-code-test-install","private":true}\n');
  const started = Date.now();
  log(`installing @anthropic-ai/claude-code@${CLAUDE_CODE_VERSION} into ${prefix}`);
  execFileSync(
    'npm',
    [
      'install',
      '--prefix',
      prefix,
      '--no-save',
      '--no-audit',
      '--no-fund',
      '--no-package-lock',
      '--loglevel=error',
      `@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}`,
    ],
    // npm's summary goes to stderr: stdout carries only the binary's path to the caller.
    { stdio: ['ignore', 2, 'inherit'], cwd: prefix },
  );
  if (!works(bin)) throw new Error(`claude-code ${CLAUDE_CODE_VERSION}: ${bin} does not run here`);
  log(`installed claude-code ${CLAUDE_CODE_VERSION} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return bin;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.stdout.write(`${ensureClaudeCode()}\n`);
}
