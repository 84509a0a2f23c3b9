/**
 * The token path end to end (contract §1, §2): the built executable run through /bin/sh -c
 * with a stdin that never closes, as Claude Code runs it.
 */
import { spawn } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jwtConfig, readAudit, writeJwtKey } from '../helpers/jwt-profile.js';
import { CLAUDE_CODE_ENV, makeSandbox, runKeybroker, type Sandbox } from '../helpers/run.js';
import { makeZombie } from '../helpers/zombie.js';

let sb: Sandbox;
let keyFile: string;

beforeEach(() => {
  sb = makeSandbox();
  keyFile = writeJwtKey(sb);
  sb.writeConfig(jwtConfig(keyFile, { claims: { user: '${user}', team: 'engineering' } }));
});
afterEach(() => sb.cleanup());

const TOKEN_LINE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\n$/;
const fp = (t: string) => createHash('sha256').update(t.trim()).digest('hex').slice(0, 12);
const entryFiles = () =>
  fs.existsSync(sb.cacheDir) ? fs.readdirSync(sb.cacheDir).filter((f) => f.endsWith('.json')) : [];

describe('token path', () => {
  it('mints a JWT that verifies, prints exactly the token and a newline, and is silent on stderr', async () => {
    const r = await runKeybroker([], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    const pub = createPublicKey(fs.readFileSync(keyFile));
    const { payload, protectedHeader } = await jwtVerify(r.stdout.trim(), pub, {
      issuer: 'keybroker-test',
      audience: 'gateway',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.team).toBe('engineering');
    expect(payload.sub).toBe(sb.env.USER);
    // default lifetime 2 × TTL + margin = 2 × 300 s + 120 s
    // (iat is floored, exp rounded up to whole seconds, so one second of slack)
    expect(payload.exp! - payload.iat! - 30).toBeGreaterThanOrEqual(720);
    expect(payload.exp! - payload.iat! - 30).toBeLessThanOrEqual(721);
  });

  it('serves the cached token to a new caller and records a hit in the audit log', async () => {
    const first = await runKeybroker([], sb);
    const second = await runKeybroker(['token'], sb);
    expect(second.code).toBe(0);
    expect(second.stderr).toBe('');
    expect(second.stdout).toBe(first.stdout);
    const audit = readAudit(sb);
    expect(audit.map((a) => a.cache)).toEqual(['miss', 'hit']);
    expect(audit[1]!.fingerprint).toBe(fp(first.stdout));
  });

  it('--json prints one object with token, expiresAt, source, profile and cache', async () => {
    const miss = await runKeybroker(['--json'], sb);
    const hit = await runKeybroker(['token', '--json'], sb);
    const a = JSON.parse(miss.stdout);
    const b = JSON.parse(hit.stdout);
    expect(Object.keys(a)).toEqual(['token', 'expiresAt', 'source', 'profile', 'cache']);
    expect(a).toMatchObject({ source: 'jwt', profile: 'default', cache: 'miss' });
    expect(b).toEqual({ ...a, cache: 'hit' });
    expect(new Date(a.expiresAt).getTime()).toBeGreaterThan(Date.now() + 400_000);
    expect(miss.stdout.endsWith('}\n')).toBe(true);
  });

  it('50 concurrent cold invocations mint exactly once and all print the same token', async () => {
    // A generous timeoutMs: this is about single flight, and 50 Node starts on a loaded 2-core
    // machine can take longer than the default 8 s.
    sb.writeConfig(jwtConfig(keyFile, {}, { timeoutMs: 120_000 }));
    const runs = await Promise.all(Array.from({ length: 50 }, () => runKeybroker([], sb)));
    const outputs = new Set(runs.map((r) => r.stdout));
    expect(runs.filter((r) => r.code !== 0).map((r) => r.stderr)).toEqual([]);
    expect(runs.map((r) => r.code)).toEqual(Array(50).fill(0));
    expect(runs.filter((r) => r.stderr !== '')).toEqual([]);
    expect(outputs.size).toBe(1);
    expect([...outputs][0]).toMatch(TOKEN_LINE);
    const audit = readAudit(sb);
    expect(audit).toHaveLength(50);
    expect(audit.filter((a) => a.cache === 'miss')).toHaveLength(1);
  });

  it('recovers a lock left by a SIGKILLed holder at once', async () => {
    await runKeybroker(['--json'], sb); // creates the cache dir and learns the key
    const key = entryFiles()[0]!.replace(/\.json$/, '');
    fs.rmSync(path.join(sb.cacheDir, `${key}.json`));
    // A real process takes the lock, then dies by SIGKILL without releasing it.
    const holder = spawn(process.execPath, [
      '-e',
      `const fs=require('fs');const st=fs.readFileSync('/proc/self/stat','latin1');const start=st.slice(st.lastIndexOf(')')+2).split(' ')[19];
       fs.writeFileSync(${JSON.stringify(path.join(sb.cacheDir, `${key}.lock`))}, JSON.stringify({pid:process.pid,start,nonce:'dead',createdAtMs:Date.now()}),{flag:'wx',mode:0o600});
       process.stdout.write('locked');setInterval(()=>{},1000);`,
    ]);
    await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
    holder.kill('SIGKILL');
    await new Promise((resolve) => holder.once('exit', resolve));
    expect(fs.existsSync(path.join(sb.cacheDir, `${key}.lock`))).toBe(true);
    const r = await runKeybroker([], sb);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(fs.existsSync(path.join(sb.cacheDir, `${key}.lock`))).toBe(false);
    expect(fs.readdirSync(sb.cacheDir).filter((f) => f.includes('.stale-') || f.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('recovers a lock whose holder exited but was never reaped (a zombie) at once', async () => {
    // A deadline far shorter than the lock's 30 s maximum hold: waiting on the zombie would fail.
    sb.writeConfig(jwtConfig(keyFile, {}, { timeoutMs: 3000 }));
    await runKeybroker([], sb);
    const key = entryFiles()[0]!.replace(/\.json$/, '');
    const lockFile = path.join(sb.cacheDir, `${key}.lock`);
    fs.rmSync(path.join(sb.cacheDir, `${key}.json`));
    // The holder takes the lock and exits; its parent never reaps it.
    const holderCode = `const fs=require('fs');const st=fs.readFileSync('/proc/self/stat','latin1');const start=st.slice(st.lastIndexOf(')')+2).split(' ')[19];fs.writeFileSync(${JSON.stringify(lockFile)},JSON.stringify({pid:process.pid,start,nonce:'zombie',createdAtMs:Date.now()}),{flag:'wx',mode:0o600});`;
    const zombie = await makeZombie([process.execPath, '-e', holderCode]);
    try {
      expect(fs.readFileSync(`/proc/${zombie.pid}/stat`, 'latin1')).toMatch(/\) Z /);
      expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid).toBe(zombie.pid);
      const r = await runKeybroker([], sb);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(TOKEN_LINE);
      expect(fs.existsSync(lockFile)).toBe(false);
    } finally {
      zombie.release();
    }
  });

  it('discards a corrupt cache entry with one warning and mints anew', async () => {
    await runKeybroker([], sb);
    const file = path.join(sb.cacheDir, entryFiles()[0]!);
    fs.writeFileSync(file, '{"v":1,"key":"trunc', { mode: 0o600 });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(r.stderr).toBe(`keybroker: warning: discarded a corrupt cache entry ${file}; fetching anew\n`);
    expect(readAudit(sb).map((a) => a.cache)).toEqual(['miss', 'miss']);
  });

  it('refuses a symlinked cache entry (exit 6) and prints nothing', async () => {
    await runKeybroker([], sb);
    const file = path.join(sb.cacheDir, entryFiles()[0]!);
    const elsewhere = path.join(sb.dir, 'elsewhere.json');
    fs.renameSync(file, elsewhere);
    fs.symlinkSync(elsewhere, file);
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: cache entry ${file}: is a symbolic link (remove it (keybroker cache clear); run keybroker explain ERR_UNSAFE_SYMLINK)\n`,
    );
  });

  it('refuses a cache directory that others can write (exit 6)', async () => {
    fs.mkdirSync(sb.cacheDir, { recursive: true });
    fs.chmodSync(sb.cacheDir, 0o777);
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: cache directory ${sb.cacheDir}: writable by others (mode 0777) (run chmod go-w '${sb.cacheDir}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
  });

  it('--no-cache neither reads nor writes the cache and creates no file in the cache directory', async () => {
    const a = await runKeybroker(['--no-cache'], sb);
    const b = await runKeybroker(['--no-cache'], sb);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stdout).not.toBe(b.stdout);
    expect(fs.existsSync(sb.cacheDir)).toBe(false);
  });

  it('--refresh skips the cached entry and replaces it', async () => {
    const a = await runKeybroker([], sb);
    const b = await runKeybroker(['--refresh'], sb);
    const c = await runKeybroker([], sb);
    expect(b.code).toBe(0);
    expect(b.stdout).not.toBe(a.stdout);
    expect(c.stdout).toBe(b.stdout);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'refresh', 'hit']);
  });

  it('regression: --refresh never hands back the entry it was told to skip', async () => {
    const outs = [(await runKeybroker([], sb)).stdout];
    for (let i = 0; i < 3; i++) outs.push((await runKeybroker(['--refresh'], sb)).stdout);
    expect(new Set(outs).size).toBe(4);
  });

  it('a malformed TTL variable is a warning, not a failure', async () => {
    const r = await runKeybroker([], sb, { env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '5m' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(TOKEN_LINE);
    expect(r.stderr).toBe(
      'keybroker: warning: CLAUDE_CODE_API_KEY_HELPER_TTL_MS="5m" is not a positive integer; using 300000 ms\n',
    );
  });

  it('a short TTL from Claude Code changes the lifetime, not the cache key', async () => {
    const a = await runKeybroker(['--json'], sb, { env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '60000' } });
    const j = JSON.parse(a.stdout);
    // 2 × 60 s + 120 s
    const { payload } = await jwtVerify(j.token, createPublicKey(fs.readFileSync(keyFile)));
    expect(payload.exp! - payload.iat! - 30).toBeGreaterThanOrEqual(240);
    expect(payload.exp! - payload.iat! - 30).toBeLessThanOrEqual(241);
    const b = await runKeybroker(['--json'], sb, { env: { CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '60000' } });
    expect(JSON.parse(b.stdout).cache).toBe('hit');
    expect(entryFiles()).toHaveLength(1);
  });
});

describe('rejected tokens (the same Claude Code process asking again within its TTL)', () => {
  it('gets a new token the second time, and the newest token within the minimum interval', async () => {
    const first = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    const second = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    const third = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    for (const r of [first, second, third]) {
      expect(r.code).toBe(0);
      expect(r.stderr).toBe('');
    }
    expect(second.stdout).not.toBe(first.stdout);
    expect(third.stdout).toBe(second.stdout);
    expect(readAudit(sb).map((a) => a.cache)).toEqual(['miss', 'rejected', 'hit']);
    // Another Claude Code process is served the newest token from the cache.
    const other = await runKeybroker([], sb, { env: CLAUDE_CODE_ENV });
    expect(other.stdout).toBe(second.stdout);
  });

  it('forces a refresh again once the minimum interval has passed', async () => {
    sb.writeConfig({ ...jwtConfig(keyFile), cache: { minRefreshIntervalMs: 1 } });
    const a = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    const b = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    const c = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(new Set([a.stdout, b.stdout, c.stdout]).size).toBe(3);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'rejected', 'rejected']);
  });

  it('a caller asking again after its TTL ran out is a routine refresh, not a rejection', async () => {
    const env = { ...CLAUDE_CODE_ENV, CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '1' };
    sb.writeConfig({ ...jwtConfig(keyFile, { lifetimeSec: 600 }) });
    const a = await runKeybroker([], sb, { caller: 'shared', env });
    await new Promise((r) => setTimeout(r, 20));
    const b = await runKeybroker([], sb, { caller: 'shared', env });
    expect(b.stdout).toBe(a.stdout);
    expect(readAudit(sb).map((x) => x.cache)).toEqual(['miss', 'hit']);
  });
});

describe('exit codes and one-line errors', () => {
  it('2: an unknown config key names the file and the JSON path', async () => {
    const file = sb.writeConfig({ profiles: { default: { source: { type: 'jwt', colour: 'blue' } } } });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toHaveLength(2);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('/profiles/default/source/colour');
  });

  it('2: an unknown profile', async () => {
    const r = await runKeybroker(['--profile', 'nope'], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^keybroker: [^\n]*nope[^\n]*\n$/);
  });

  it('3: a Vault that refuses connections', async () => {
    sb.writeConfig({
      profiles: {
        default: {
          source: { type: 'vault', address: 'http://127.0.0.1:9', path: 'secret/llm', field: 'token' },
        },
      },
    });
    const r = await runKeybroker([], sb, { env: { VAULT_TOKEN: 'test-token' } });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^keybroker: [^\n]+\n$/);
    expect(r.stderr).toContain('VAULT_ADDR');
  });

  it('6: a signing key readable by others', async () => {
    fs.chmodSync(keyFile, 0o644);
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(6);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `keybroker: signing key file ${keyFile}: permissions 0644 are too open (run chmod 600 '${keyFile}'; run keybroker explain ERR_UNSAFE_PERMISSIONS)\n`,
    );
  });

  it('never reads stdin and never prints a stack trace without --debug', async () => {
    fs.writeFileSync(keyFile, 'not a key', { mode: 0o600 });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).not.toContain('    at ');
    expect(r.stderr.split('\n')).toHaveLength(2);
  });
});

describe('a config edited after a token was cached', () => {
  it('is validated before the cached token is served again (the first stage has no schema)', async () => {
    const first = await runKeybroker([], sb);
    expect((await runKeybroker([], sb)).stdout).toBe(first.stdout);
    const file = sb.writeConfig({
      ...jwtConfig(keyFile, { claims: { user: '${user}', team: 'engineering' } }),
      colour: 'blue',
    });
    const r = await runKeybroker([], sb);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`config ${file}: /colour`);
  });
});

describe('scripted callers are not Claude Code (contract §2: only CLAUDE_CODE_ENTRYPOINT callers count)', () => {
  it('two calls from the same non-terminal parent without the variable: both served, one mint', async () => {
    const first = await runKeybroker([], sb, { caller: 'shared' });
    const second = await runKeybroker([], sb, { caller: 'shared' });
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(second).toMatchObject({ code: 0, stderr: '', stdout: first.stdout });
    // one source request (the miss); the second call is a hit
    expect(readAudit(sb).map((a) => a.cache)).toEqual(['miss', 'hit']);
  });

  it('with CLAUDE_CODE_ENTRYPOINT the second call is a rejection and fetches anew', async () => {
    const first = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    const second = await runKeybroker([], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(second).toMatchObject({ code: 0, stderr: '' });
    expect(second.stdout).not.toBe(first.stdout);
    expect(readAudit(sb).map((a) => a.cache)).toEqual(['miss', 'rejected']);
  });

  it('--debug names the rule applied, in words', async () => {
    const script = await runKeybroker(['--debug'], sb, { caller: 'shared' });
    expect(script.code).toBe(0);
    expect(script.stderr).toContain(
      'rejected-token detection off: CLAUDE_CODE_ENTRYPOINT is not set, so the caller is not Claude Code (a repeated call is served from the cache)\n',
    );
    const claude = await runKeybroker(['--debug'], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(claude.code).toBe(0);
    expect(claude.stderr).toMatch(
      /rejected-token detection on: called by Claude Code \(CLAUDE_CODE_ENTRYPOINT=cli\), process \d+-\d+; a second call from it within the TTL fetches a new token\n/,
    );
    const again = await runKeybroker(['--debug'], sb, { caller: 'shared', env: CLAUDE_CODE_ENV });
    expect(again.code).toBe(0);
    expect(again.stderr).toContain(
      ': the same Claude Code process asked again within the TTL it was given, so its token was rejected: fetching a new one\n',
    );
    expect(again.stderr).not.toMatch(/: force\b/);
  });
});
