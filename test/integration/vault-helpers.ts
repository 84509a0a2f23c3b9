/** What the Vault integration tests share: source deps with an in-memory memo, requests, results. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { createLogger, type Logger } from '../../src/output/logger.js';
import type { SourceDeps, SourceMemo, TokenRequest } from '../../src/sources/types.js';

export interface MemoryMemo extends SourceMemo {
  entries: Map<string, { value: string; expiresAtMs?: number }>;
}

export function memoryMemo(): MemoryMemo {
  const entries = new Map<string, { value: string; expiresAtMs?: number }>();
  return {
    entries,
    async get(name) {
      return entries.get(name);
    },
    async set(name, value, expiresAtMs) {
      entries.set(name, expiresAtMs === undefined ? { value } : { value, expiresAtMs });
    },
    async delete(name) {
      entries.delete(name);
    },
  };
}

export interface TestDeps extends SourceDeps {
  memo: MemoryMemo;
  lines: string[];
  logger: Logger;
}

export function testDeps(env: Record<string, string | undefined> = {}, homeDir?: string): TestDeps {
  const lines: string[] = [];
  return {
    logger: createLogger({ debug: true, write: (l) => lines.push(l) }),
    lines,
    memo: memoryMemo(),
    env,
    homeDir: homeDir ?? tempDir(),
    ttlMs: 300_000,
    refreshMarginMs: 120_000,
  };
}

export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-vault-'));
  fs.chmodSync(dir, 0o700);
  return dir;
}

export function request(overrides: Partial<TokenRequest> = {}): TokenRequest {
  return {
    signal: new AbortController().signal,
    now: () => Date.now(),
    deadlineMs: Date.now() + 8000,
    forceFresh: false,
    ...overrides,
  };
}

/** The exit code and the exact stderr line a failure would produce. */
export async function failure(
  p: Promise<unknown>,
): Promise<{ exitCode: number; code: string; line: string; retryAfterSec?: number }> {
  try {
    await p;
  } catch (e) {
    if (!isKeybrokerError(e)) throw e;
    const wait = e.retryAfterSec !== undefined ? { retryAfterSec: e.retryAfterSec } : {};
    return { exitCode: e.exitCode, code: e.code, line: formatErrorLine(e), ...wait };
  }
  throw new Error('expected a failure, got a token');
}

export function suffix(): string {
  return randomBytes(3).toString('hex');
}

export function writeSecretFile(dir: string, name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content, { mode: 0o600 });
  return file;
}
