/** Shared by the jwt unit tests: source deps, a token request on a fixed clock, error capture. */
import { expect } from 'vitest';
import { formatErrorLine, isKeybrokerError } from '../../src/errors.js';
import { createLogger } from '../../src/output/logger.js';
import type { SourceDeps, TokenRequest } from '../../src/sources/types.js';

export function sourceDeps(homeDir: string, over: Partial<SourceDeps> = {}): SourceDeps {
  return {
    logger: createLogger({ debug: false, write: () => {} }),
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env: {},
    homeDir,
    ttlMs: 300_000,
    refreshMarginMs: 120_000,
    ...over,
  };
}

export function tokenRequest(nowMs: number): TokenRequest {
  return {
    signal: new AbortController().signal,
    now: () => nowMs,
    deadlineMs: nowMs + 8000,
    forceFresh: false,
  };
}

/** The stderr line main.ts would print, and the exit code, for a rejected promise. */
export async function failure(p: Promise<unknown>): Promise<{ line: string; exit: number }> {
  try {
    await p;
  } catch (e) {
    expect(isKeybrokerError(e)).toBe(true);
    return { line: formatErrorLine(e), exit: (e as { exitCode: number }).exitCode };
  }
  throw new Error('expected a failure');
}
