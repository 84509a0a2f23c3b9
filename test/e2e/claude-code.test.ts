/**
 * The real Claude Code CLI (pinned, installed into .cache/claude-code/ by
 * scripts/install-claude-code.mjs, never into package.json) runs `claude -p` headless against
 * a fake gateway, with keybroker wired in as its apiKeyHelper by `keybroker init`, in each
 * way Claude Code reaches a gateway: the Messages API, Bedrock pass-through and Vertex
 * pass-through (issue 15; docs/gateway.md has the table these tests hold).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, ROOT, runKeybroker, type Sandbox, waitForSandboxProcesses } from '../helpers/run.js';
import { type FakeAnthropic, type GatewayMode, startFakeAnthropic } from '../servers/fake-anthropic.js';

let claudeBin = '';
let claudeVersion = '';

beforeAll(() => {
  claudeBin = execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'install-claude-code.mjs')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  claudeVersion = execFileSync(claudeBin, ['--version'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' },
  }).trim();
}, 600_000);

interface Setup {
  sb: Sandbox;
  fake: FakeAnthropic;
  project: string;
  auditFile: string;
  jwks: ReturnType<typeof createLocalJWKSet>;
}

let current: Setup | undefined;

afterEach(async () => {
  if (!current) return;
  await current.fake.close();
  const { sb } = current;
  current = undefined;
  // Claude Code may leave a background helper run behind when it exits; it must end on its own.
  const left = await waitForSandboxProcesses(sb);
  sb.cleanup();
  expect(left).toEqual([]);
});

const AUDIENCE = 'litellm-test';

/** A sandbox with a jwt profile, a fake API and Claude Code's user settings written by `keybroker init`. */
const MODE_FLAGS: Record<GatewayMode, string[]> = {
  messages: [],
  bedrock: ['--mode', 'bedrock'],
  vertex: ['--mode', 'vertex', '--vertex-project', 'acme-llm', '--vertex-region', 'us-east5'],
};

async function setup(
  ttlMs: number,
  sourceOverride?: unknown,
  mode: GatewayMode = 'messages',
): Promise<Setup> {
  const sb = makeSandbox();
  const fake = await startFakeAnthropic();
  const keyFile = path.join(sb.home, 'keys', 'signing.pem');
  fs.mkdirSync(path.dirname(keyFile), { mode: 0o700 });
  const keygen = await runKeybroker(['keygen', '--out', keyFile], sb);
  expect(keygen.code).toBe(0);
  sb.writeConfig({
    profiles: {
      default: {
        source: sourceOverride ?? {
          type: 'jwt',
          signingKey: { file: keyFile },
          issuer: 'keybroker-e2e',
          audience: AUDIENCE,
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a keybroker config template
          claims: { user: '${user}', team: 'platform' },
        },
      },
    },
  });
  const init = await runKeybroker(
    ['init', '--ttl', String(ttlMs), '--gateway', fake.baseUrl(mode), ...MODE_FLAGS[mode]],
    sb,
  );
  expect(init.stderr).toBe('');
  expect(init.code).toBe(0);
  let jwks = createLocalJWKSet({ keys: [] });
  if (!sourceOverride) {
    const out = await runKeybroker(['jwks'], sb);
    expect(out.code).toBe(0);
    jwks = createLocalJWKSet(JSON.parse(out.stdout));
  }
  const project = path.join(sb.dir, 'project');
  fs.mkdirSync(project);
  current = {
    sb,
    fake,
    project,
    auditFile: path.join(sb.env.XDG_STATE_HOME!, 'keybroker', 'audit.log'),
    jwks,
  };
  return current;
}

interface ClaudeRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runClaude(s: Setup, args: string[]): Promise<ClaudeRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(claudeBin, ['-p', 'hi', ...args], {
      cwd: s.project,
      env: {
        ...s.sb.env,
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
        DISABLE_AUTOUPDATER: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface AuditLine {
  ts: string;
  cache: string | null;
  fingerprint: string | null;
  outcome: string;
  error?: string;
}

function auditLines(s: Setup): AuditLine[] {
  if (!fs.existsSync(s.auditFile)) return [];
  return fs
    .readFileSync(s.auditFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);
}

function fingerprintOf(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/** Requests that reached the source: everything that was not served from the cache. */
const MINTS = new Set(['miss', 'refresh', 'rejected']);

interface Credentials {
  /** The Bearer token (every mode carries it there). */
  token: string;
  bearer: string | undefined;
  apiKey: string | undefined;
  status: number;
}

function credentials(s: Setup): Credentials[] {
  return s.fake.messageRequests().map((r) => ({
    token: (r.headers.authorization ?? '').replace(/^Bearer /, ''),
    bearer: r.headers.authorization,
    apiKey: r.headers['x-api-key'] as string | undefined,
    status: r.status,
  }));
}

/** Claude Code printed the fake gateway's answer and exited 0. */
function expectAnswered(run: ClaudeRun): void {
  expect(run.stdout).toBe('Hello from the fake API.\n');
  expect(run.code).toBe(0);
}

/** The token headers each mode sends: both in the Messages API, the Bearer one only in pass-through. */
function expectHeaders(c: Credentials, mode: GatewayMode): void {
  expect(c.bearer).toBe(`Bearer ${c.token}`);
  expect(c.apiKey).toBe(mode === 'messages' ? c.token : undefined);
}

describe('the real Claude Code CLI (pinned in scripts/install-claude-code.mjs) with keybroker as apiKeyHelper', () => {
  it('runs the pinned version', () => {
    expect(claudeVersion).toMatch(/^2\.1\.332 \(Claude Code\)$/);
  });
});

/** The fake gateway checks the Bearer token as LiteLLM's JWT auth would: signature, audience. */
function verifyingGateway(s: Setup): void {
  s.fake.setAuthCheck(async (r) => {
    const m = /^Bearer (.+)$/.exec(r.headers.authorization ?? '');
    if (!m) return false;
    try {
      await jwtVerify(m[1]!, s.jwks, { audience: AUDIENCE, issuer: 'keybroker-e2e' });
      return true;
    } catch {
      return false;
    }
  });
}

for (const mode of ['messages', 'bedrock', 'vertex'] as const) {
  describe(`Claude Code in the ${mode} mode (keybroker init --gateway ${MODE_FLAGS[mode].join(' ') || '(messages)'})`, () => {
    it(
      mode === 'messages'
        ? 'sends the same verified token as Authorization: Bearer and X-Api-Key'
        : 'sends the verified token as Authorization: Bearer only',
      async () => {
        const s = await setup(300_000, undefined, mode);
        verifyingGateway(s);
        const run = await runClaude(s, []);
        expect(run.stderr).toBe('');
        expectAnswered(run);
        const creds = credentials(s);
        expect(creds.length).toBeGreaterThanOrEqual(1);
        for (const c of creds) {
          expect(c.status).toBe(200);
          expect(c.token).toMatch(/^ey[\w-]+\.[\w-]+\.[\w-]+$/);
          expectHeaders(c, mode);
          const { payload, protectedHeader } = await jwtVerify(c.token, s.jwks, {
            audience: AUDIENCE,
            issuer: 'keybroker-e2e',
          });
          expect(protectedHeader.alg).toBe('ES256');
          expect(payload.team).toBe('platform');
          expect(payload.user).toBe(s.sb.env.USER);
        }
        expect(new Set(s.fake.messageRequests().map((r) => r.mode))).toEqual(new Set([mode]));
        if (mode === 'bedrock') {
          // Bedrock mode lists inference profiles first, with no credential at all.
          const profiles = s.fake.requests.filter((r) => r.path === '/bedrock/inference-profiles');
          expect(profiles.length).toBeGreaterThanOrEqual(1);
          for (const r of profiles) expect(r.headers.authorization).toBeUndefined();
        }
        // One process, one fresh token: fetched once, and it is what went out.
        const mints = auditLines(s).filter((l) => MINTS.has(l.cache ?? ''));
        expect(mints.length).toBe(1);
        for (const c of creds) expect(fingerprintOf(c.token)).toBe(mints[0]!.fingerprint);
      },
    );

    it('after a 401 the retry carries a different valid token (the rejected-token rule)', async () => {
      const s = await setup(300_000, undefined, mode);
      verifyingGateway(s);
      s.fake.rejectNext(1);
      const run = await runClaude(s, []);
      expectAnswered(run);
      const creds = credentials(s);
      expect(creds.map((c) => c.status)).toEqual([401, 200]);
      const [rejected, retried] = creds;
      expect(retried!.token).not.toBe(rejected!.token);
      expectHeaders(retried!, mode);
      await jwtVerify(retried!.token, s.jwks, { audience: AUDIENCE });
      const lines = auditLines(s);
      expect(lines.map((l) => l.cache)).toEqual(['miss', 'rejected']);
      expect(lines.map((l) => l.fingerprint)).toEqual([
        fingerprintOf(rejected!.token),
        fingerprintOf(retried!.token),
      ]);
    });

    it('with CLAUDE_CODE_API_KEY_HELPER_TTL_MS=1000 two Claude Code processes reach the source at most once per TTL', async () => {
      const ttlMs = 1000;
      const s = await setup(ttlMs, undefined, mode);
      verifyingGateway(s);
      // Three tool rounds (sleep 1.5 s each): four requests per process, spread over several TTLs.
      s.fake.tool = { command: 'sleep 1.5', rounds: 3 };
      const started = Date.now();
      const runs = await Promise.all([0, 1].map(() => runClaude(s, ['--allowedTools', 'Bash(sleep:*)'])));
      const elapsedMs = Date.now() - started;
      for (const run of runs) {
        expectAnswered(run);
      }
      const creds = credentials(s);
      expect(creds.length).toBe(8);
      for (const c of creds) {
        expect(c.status).toBe(200);
        expectHeaders(c, mode);
      }
      const lines = auditLines(s);
      expect(lines.filter((l) => l.outcome !== 'ok')).toEqual([]);
      // Each process ran the helper at its start and again once its TTL had passed...
      expect(lines.length).toBeGreaterThanOrEqual(4);
      // ...yet keybroker reached its source no more than once per TTL over the whole run.
      const mints = lines.filter((l) => MINTS.has(l.cache ?? ''));
      expect(mints.length).toBeGreaterThanOrEqual(1);
      expect(mints.length).toBeLessThanOrEqual(Math.floor(elapsedMs / ttlMs) + 1);
      // Every token that went out is one keybroker fetched (and logged).
      const minted = new Set(mints.map((l) => l.fingerprint));
      for (const c of creds) expect(minted.has(fingerprintOf(c.token))).toBe(true);
    });

    if (mode !== 'messages') {
      // Claude Code's behaviour, measured and pinned here: why a gateway must answer 401, not 403.
      it('after a 403 Claude Code does not run keybroker again', async () => {
        const s = await setup(300_000, undefined, mode);
        s.fake.rejectNext(1, 403);
        const run = await runClaude(s, []);
        const creds = credentials(s);
        expect(creds[0]!.status).toBe(403);
        // Every request carried the one token keybroker printed once.
        expect(new Set(creds.map((c) => c.token)).size).toBe(1);
        expect(auditLines(s).map((l) => l.cache)).toEqual(['miss']);
        if (mode === 'bedrock') {
          // The same token is retried, and here the retry is let through.
          expect(creds.map((c) => c.status)).toEqual([403, 200]);
          expectAnswered(run);
        } else {
          // Vertex gives up at once.
          expect(run.stdout).toContain('API Error: 403');
          expect(run.code).toBe(1);
        }
      });
    }
  });
}

describe('the real Claude Code CLI when keybroker fails', () => {
  it("shows keybroker's one-line error when the source fails", async () => {
    const missing = '/nonexistent/keybroker-e2e/signing.pem';
    const s = await setup(300_000, { type: 'jwt', signingKey: { file: missing } });
    const direct = await runKeybroker([], s.sb);
    expect(direct.stdout).toBe('');
    expect(direct.code).toBe(2);
    const line = direct.stderr.trimEnd();
    expect(line).toBe(
      `keybroker: jwt signing key file ${missing}: does not exist (create it with keybroker keygen --algorithm ES256 --out '${missing}', or fix signingKey.file; run keybroker explain ERR_JWT_KEY_FILE_MISSING)`,
    );
    // A gateway refuses a request without a credential.
    s.fake.setAuthCheck((r) => typeof r.headers['x-api-key'] === 'string' && r.headers['x-api-key'] !== '');
    const run = await runClaude(s, []);
    expect(run.stderr.split('\n')).toContain(`apiKeyHelper failed: exited ${direct.code}: ${line}`);
    expect(run.code).not.toBe(0);
    expect(s.fake.messageRequests().every((r) => r.status === 401)).toBe(true);
  });
});
