/** `keybroker doctor`: each check, its fix and docs link, exit 0 only when nothing failed. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BIN, makeSandbox, type RunResult, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

interface Healthy {
  keyFile: string;
  kid: string;
  project: string;
}

/** A working jwt profile wired into ~/.claude/settings.json by `keybroker init`. */
async function healthy(
  profile: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<Healthy> {
  sb = makeSandbox();
  const keyFile = path.join(sb.home, 'signing.pem');
  const keygen = await runKeybroker(['keygen', '--out', keyFile], sb);
  expect(keygen.code).toBe(0);
  sb.writeConfig({
    ...extra,
    profiles: {
      default: {
        source: {
          type: 'jwt',
          signingKey: { file: keyFile },
          issuer: 'keybroker-e2e',
          audience: 'litellm',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a keybroker config template
          claims: { user: '${user}', team: 'platform' },
        },
        ...profile,
      },
    },
  });
  const init = await runKeybroker(['init', '--ttl', '300000'], sb);
  expect(init.code).toBe(0);
  const project = path.join(sb.dir, 'project');
  fs.mkdirSync(project);
  return { keyFile, kid: keygen.stdout.trim(), project };
}

/** Doctor's text with the clock reading made stable. */
function text(r: RunResult): string {
  return r.stdout.replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/g, '<time>');
}

function lines(r: RunResult): string[] {
  return text(r).trimEnd().split('\n');
}

async function doctor(args: string[], h: Healthy, env: Record<string, string | undefined> = {}) {
  return runKeybroker(['doctor', ...args], sb, { cwd: h.project, env });
}

describe('keybroker doctor', () => {
  it('passes every check for a working setup (exit 0)', async () => {
    const h = await healthy();
    const r = await doctor([], h);
    expect(r.stderr).toBe('');
    const settings = path.join(sb.home, '.claude', 'settings.json');
    expect(text(r)).toBe(
      [
        'keybroker doctor: profile "default"',
        `[ok  ] config.managed: ${sb.env.KEYBROKER_MANAGED_CONFIG} (from KEYBROKER_MANAGED_CONFIG): not present`,
        `[ok  ] config.user: ${sb.configPath} (default location): read`,
        '[ok  ] config.valid: valid',
        '[info] config.policy: no lockdown; lifetime cap maxLifetimeSec 86400 s (a TTL of at most 43140000 ms)',
        '[ok  ] profile: "default" (chosen by the config)',
        `[ok  ] source: jwt ES256 (key from file ${h.keyFile}) iss=keybroker-e2e aud=litellm`,
        '[ok  ] source.lifetime: minted tokens live 720 s',
        `[ok  ] source.key: ES256 signing key from file ${h.keyFile}, kid ${h.kid}`,
        '[info] source.claims: the user controls every claim of this jwt profile (sub, user, team): whoever can read the signing key signs any claims',
        `[ok  ] cache.dir: ${sb.cacheDir}: not created yet (made 0700 on first use)`,
        `[ok  ] audit: ${sb.env.XDG_STATE_HOME}/keybroker/audit.log: not written yet`,
        "[ok  ] clock: local clock <time> (compared with the source's server only with --probe)",
        `[ok  ] claude.helper: apiKeyHelper from user settings ${settings} runs keybroker: ${BIN}`,
        `[ok  ] claude.ttl: Claude Code holds a token 300000 ms (CLAUDE_CODE_API_KEY_HELPER_TTL_MS from ${settings}); minted tokens live 720 s, more than TTL + margin (420 s)`,
        '[ok  ] claude.env: ANTHROPIC_API_KEY is not set',
        '[ok  ] claude.env: ANTHROPIC_AUTH_TOKEN is not set',
        "[info] claude.gateway: Messages API at api.anthropic.com (ANTHROPIC_BASE_URL is not set); Claude Code sends keybroker's token as Authorization: Bearer and X-Api-Key, and runs keybroker again after a 401 or 403",
        'all checks passed',
        '',
      ].join('\n'),
    );
    expect(r.code).toBe(0);
  });

  it('fails when no settings file sets apiKeyHelper, and says to run init (exit 1)', async () => {
    const h = await healthy();
    fs.rmSync(path.join(sb.home, '.claude'), { recursive: true });
    const r = await doctor([], h);
    const settingsList = [
      '/etc/claude-code/managed-settings.json',
      path.join(h.project, '.claude', 'settings.local.json'),
      path.join(h.project, '.claude', 'settings.json'),
      path.join(sb.home, '.claude', 'settings.json'),
    ].join(', ');
    const l = lines(r);
    expect(l).toContain(
      `[FAIL] claude.helper: no Claude Code settings file sets apiKeyHelper (looked in ${settingsList})`,
    );
    expect(l).toContain(
      '       fix: run keybroker init (or keybroker init --scope managed as root); run keybroker explain ERR_CLAUDE_NO_HELPER',
    );
    // Without the settings' TTL, Claude Code holds a token its default 5 minutes: still a match.
    expect(l.at(-1)).toBe('1 check failed');
    expect(r.code).toBe(1);
  });

  it('fails when the winning apiKeyHelper is not keybroker', async () => {
    const h = await healthy();
    fs.mkdirSync(path.join(h.project, '.claude'));
    fs.writeFileSync(
      path.join(h.project, '.claude', 'settings.local.json'),
      '{"apiKeyHelper": "~/bin/get-key.sh"}',
    );
    const r = await doctor([], h);
    const file = path.join(h.project, '.claude', 'settings.local.json');
    const l = lines(r);
    expect(l).toContain(
      `[FAIL] claude.helper: apiKeyHelper from project-local settings ${file} does not run keybroker: ~/bin/get-key.sh`,
    );
    expect(l).toContain(
      '       fix: run keybroker init --scope project to replace it; run keybroker explain ERR_CLAUDE_HELPER_NOT_KEYBROKER',
    );
    expect(l).toContain(
      `[warn] claude.project-helper: the project file ${file} sets apiKeyHelper and overrides yours; it runs without a trust prompt in claude -p mode`,
    );
    expect(r.code).toBe(1);
  });

  it('warns (exit 0) about a project .claude/settings.json that sets the helper', async () => {
    const h = await healthy();
    const init = await runKeybroker(['init', '--scope', 'project', '--ttl', '300000'], sb, {
      cwd: h.project,
    });
    expect(init.code).toBe(0);
    const file = path.join(h.project, '.claude', 'settings.json');
    const r = await doctor([], h);
    const l = lines(r);
    expect(l).toContain(
      `[ok  ] claude.helper: apiKeyHelper from project settings ${file} runs keybroker: ${BIN}`,
    );
    expect(l).toContain(
      `[warn] claude.project-helper: the project file ${file} sets apiKeyHelper and overrides yours; it runs without a trust prompt in claude -p mode`,
    );
    expect(l).toContain(
      '       fix: remove apiKeyHelper from the project file unless you trust this repository; set it in ~/.claude/settings.json or the managed file; run keybroker explain ERR_CLAUDE_PROJECT_HELPER',
    );
    expect(l.at(-1)).toBe('all checks passed, 1 warning');
    expect(r.code).toBe(0);
  });

  it('fails when ANTHROPIC_API_KEY or ANTHROPIC_AUTH_TOKEN would replace the token in a header', async () => {
    const h = await healthy();
    const settings = path.join(sb.home, '.claude', 'settings.json');
    const s = JSON.parse(fs.readFileSync(settings, 'utf8'));
    s.env.ANTHROPIC_AUTH_TOKEN = 'sk-test-not-a-secret';
    fs.writeFileSync(settings, JSON.stringify(s));
    const r = await doctor([], h, { ANTHROPIC_API_KEY: 'sk-ant-test' });
    const l = lines(r);
    expect(l).toContain(
      "[FAIL] claude.env: ANTHROPIC_API_KEY is set in your environment: Claude Code sends it in X-Api-Key instead of keybroker's token",
    );
    expect(l).toContain(
      `[FAIL] claude.env: ANTHROPIC_AUTH_TOKEN is set in the env block of ${settings}: Claude Code sends it in Authorization instead of keybroker's token`,
    );
    expect(l).toContain(
      "       fix: unset ANTHROPIC_AUTH_TOKEN (and remove it from those settings) so both headers carry keybroker's token; run keybroker explain ERR_CLAUDE_ENV_OVERRIDE",
    );
    expect(r.stdout).not.toContain('sk-ant-test');
    expect(r.stdout).not.toContain('sk-test-not-a-secret');
    expect(l.at(-1)).toBe('2 checks failed');
    expect(r.code).toBe(1);
  });

  it("fails when Claude Code's TTL is longer than the minted token can serve", async () => {
    const h = await healthy({ ttlMs: 300000 });
    // The profile's key lives 10 minutes; Claude Code is told to hold tokens for an hour.
    const cfg = JSON.parse(fs.readFileSync(sb.configPath, 'utf8'));
    cfg.profiles.default.source.lifetimeSec = 600;
    sb.writeConfig(cfg);
    const init = await runKeybroker(['init', '--ttl', '3600000'], sb);
    expect(init.code).toBe(0);
    const r = await doctor([], h);
    const l = lines(r);
    expect(l).toContain(
      '[FAIL] source.lifetime: jwt source: lifetimeSec 600 is shorter than the TTL plus the refresh margin (3600 s + 120 s = 3720 s)',
    );
    const settings = path.join(sb.home, '.claude', 'settings.json');
    expect(l).toContain(
      `[FAIL] claude.ttl: Claude Code holds a token 3600000 ms (CLAUDE_CODE_API_KEY_HELPER_TTL_MS from ${settings}); with the 120000 ms margin a token must live 3720000 ms, but jwt lifetimeSec gives 600000 ms`,
    );
    expect(l).toContain(
      '       fix: raise lifetimeSec to at least 3720 or lower CLAUDE_CODE_API_KEY_HELPER_TTL_MS; run keybroker explain ERR_CLAUDE_TTL_MISMATCH',
    );
    expect(r.code).toBe(1);
  });

  it('says the user config is ignored when the managed config sets allowUserConfig: false', async () => {
    const h = await healthy();
    const keyFile = h.keyFile;
    fs.writeFileSync(
      sb.env.KEYBROKER_MANAGED_CONFIG!,
      JSON.stringify({
        allowUserConfig: false,
        profiles: { default: { source: { type: 'jwt', signingKey: { file: keyFile }, audience: 'corp' } } },
      }),
      { mode: 0o644 },
    );
    const r = await doctor([], h);
    const l = lines(r);
    expect(l).toContain(
      `[ok  ] config.managed: ${sb.env.KEYBROKER_MANAGED_CONFIG} (from KEYBROKER_MANAGED_CONFIG): read`,
    );
    expect(l).toContain(
      `[warn] config.user: ${sb.configPath} (default location): ignored, because the managed config sets "allowUserConfig": false; its settings have no effect`,
    );
    expect(l).toContain(`[ok  ] source: jwt ES256 (key from file ${keyFile}) aud=corp`);
    expect(r.code).toBe(0);
  });

  it('warns about HS256 and fails on a signing key file others can read', async () => {
    const h = await healthy();
    const secretFile = path.join(sb.home, 'hs.key');
    fs.writeFileSync(secretFile, 'x'.repeat(40), { mode: 0o644 });
    fs.chmodSync(secretFile, 0o644);
    const cfg = JSON.parse(fs.readFileSync(sb.configPath, 'utf8'));
    cfg.profiles.default.source = { type: 'jwt', algorithm: 'HS256', signingKey: { file: secretFile } };
    sb.writeConfig(cfg);
    const r = await doctor([], h);
    const l = lines(r);
    expect(l).toContain(
      '[warn] source.algorithm: HS256 uses a shared secret: anyone who has it can mint a token for any user or team',
    );
    expect(l).toContain(`[FAIL] source.key: signing key file ${secretFile}: permissions 0644 are too open`);
    expect(l).toContain(
      `       fix: run chmod 600 '${secretFile}'; run keybroker explain ERR_UNSAFE_PERMISSIONS`,
    );
    expect(r.code).toBe(1);
  });

  it('--probe fetches one token and shows it redacted with the JWT header and claims', async () => {
    const h = await healthy();
    const r = await doctor(['--probe'], h);
    expect(r.stderr).toBe('');
    const l = lines(r);
    const probe = l.find((x) => x.startsWith('[ok  ] probe: '));
    expect(probe).toMatch(
      /^\[ok {2}\] probe: fetched a token from jwt in \d+ ms: eyJ\S{1}…\S{4} \(\d+ chars\)$/,
    );
    expect(l).toContain(`  jwt header:  {"alg":"ES256","kid":"${h.kid}","typ":"JWT"}`);
    const claims = JSON.parse(
      l.find((x) => x.startsWith('  jwt claims:  '))!.slice('  jwt claims:  '.length),
    );
    expect(claims).toMatchObject({
      team: 'platform',
      user: sb.env.USER,
      aud: 'litellm',
      iss: 'keybroker-e2e',
    });
    expect(claims.exp - claims.iat).toBe(720 + 30);
    // The whole token never appears.
    expect(r.stdout).not.toMatch(/eyJ[\w-]{20,}\.[\w-]{20,}/);
    // A probe neither reads nor writes the cache.
    expect(fs.existsSync(sb.cacheDir)).toBe(false);
    expect(r.code).toBe(0);
  });

  it('--json gives every check as data', async () => {
    const h = await healthy();
    const r = await doctor(['--json', '--probe'], h);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.ok).toBe(true);
    expect(report.profile).toBe('default');
    expect(report.checks.map((c: { id: string }) => c.id)).toEqual([
      'config.managed',
      'config.user',
      'config.valid',
      'config.policy',
      'profile',
      'source',
      'source.lifetime',
      'source.key',
      'source.claims',
      'cache.dir',
      'audit',
      'clock',
      'claude.helper',
      'claude.ttl',
      'claude.env',
      'claude.env',
      'claude.gateway',
      'probe',
      'probe.lifetime',
    ]);
    expect(report.probe.token).toMatch(/^eyJ.….{4} \(\d+ chars\)$/);
    expect(report.probe.jwt.claims.team).toBe('platform');
  });

  it('--probe on a Vault source that cannot be reached says so and fails', async () => {
    const h = await healthy();
    const cfg = JSON.parse(fs.readFileSync(sb.configPath, 'utf8'));
    cfg.profiles.default = {
      timeoutMs: 3000,
      source: { type: 'vault', address: 'http://127.0.0.1:9', path: 'secret/llm', field: 'token' },
    };
    sb.writeConfig(cfg);
    const r = await doctor(['--probe'], h, { VAULT_TOKEN: 'hvs.test' });
    const l = lines(r);
    // Under --probe the describing checks do not say "only with --probe" (issue 16).
    expect(l).toContain('[ok  ] source.address: Vault at http://127.0.0.1:9');
    expect(l.filter((x) => x.startsWith('[ok  ] clock: '))).toEqual(['[ok  ] clock: local clock <time>']);
    expect(l).toContain('[ok  ] source.auth: token auth with VAULT_TOKEN');
    expect(l).toContain('[FAIL] probe.vault: Vault at http://127.0.0.1:9 cannot be reached (ECONNREFUSED)');
    expect(l).toContain(
      '       fix: check VAULT_ADDR, your network or VPN, and the CA certificate; run keybroker explain ERR_VAULT_UNREACHABLE',
    );
    expect(l.some((x) => x.startsWith('[FAIL] probe: '))).toBe(true);
    expect(r.stdout).not.toContain('hvs.test');
    expect(r.code).toBe(1);
  });
  it('fails on a ~/.vault-token others can read, as the token path does (exit 6)', async () => {
    const h = await healthy();
    const cfg = JSON.parse(fs.readFileSync(sb.configPath, 'utf8'));
    cfg.profiles.default = {
      source: { type: 'vault', address: 'http://127.0.0.1:9', path: 'secret/llm', field: 'token' },
    };
    sb.writeConfig(cfg);
    const tokenFile = path.join(sb.home, '.vault-token');
    fs.writeFileSync(tokenFile, 'hvs.readable-by-all\n', { mode: 0o644 });
    const l = lines(await doctor([], h));
    const at = l.indexOf(
      `[FAIL] source.auth: token auth: token file ${tokenFile}: permissions 0644 are too open`,
    );
    expect(at).toBeGreaterThan(0);
    expect(l[at + 1]).toBe(
      `       fix: run chmod 600 '${tokenFile}'; run keybroker explain ERR_UNSAFE_PERMISSIONS`,
    );
    fs.chmodSync(tokenFile, 0o600);
    expect(lines(await doctor([], h))).toContain(
      `[ok  ] source.auth: token auth: token file ${tokenFile}: present`,
    );
  });

  it('fails on a config directory others can write, naming it and the chmod to run', async () => {
    const h = await healthy();
    const dir = path.dirname(sb.configPath);
    fs.chmodSync(dir, 0o777);
    const r = await doctor([], h);
    const l = lines(r);
    expect(l[1]).toBe(`[FAIL] config: config directory ${dir}: writable by others (mode 0777)`);
    expect(l[2]).toBe(`       fix: run chmod go-w '${dir}'; run keybroker explain ERR_UNSAFE_PERMISSIONS`);
    expect(r.code).toBe(1);
  });

  it('checks that the keychain a keychain source uses can be reached', async () => {
    const h = await healthy();
    const cfg = JSON.parse(fs.readFileSync(sb.configPath, 'utf8'));
    cfg.profiles.default = { source: { type: 'keychain', service: 'llm-gateway' } };
    sb.writeConfig(cfg);
    const r = await doctor([], h, { DBUS_SESSION_BUS_ADDRESS: undefined });
    const l = lines(r);
    expect(l).toContain(`[ok  ] source: keychain service=llm-gateway account=${sb.env.USER}`);
    expect(l).toContain(
      '[FAIL] source.keychain: keychain (Secret Service): no session bus (DBUS_SESSION_BUS_ADDRESS is unset)',
    );
    expect(
      l.find(
        (x) => x.startsWith('       fix: ') && x.endsWith('run keybroker explain ERR_KEYCHAIN_UNAVAILABLE'),
      ),
    ).toBeDefined();
    expect(r.code).toBe(1);
  });
});

describe('doctor: the environment and a repository settings env (issue 11 findings 4, 18; issue 16)', () => {
  it("finding 4: fails when a repository's settings env sets variables keybroker reads, a TTL above the cap included", async () => {
    const h = await healthy();
    fs.mkdirSync(path.join(h.project, '.claude'));
    const repo = path.join(h.project, '.claude', 'settings.json');
    fs.writeFileSync(
      repo,
      JSON.stringify({
        env: {
          VAULT_SKIP_VERIFY: '1',
          HTTPS_PROXY: 'http://tunnel:3128',
          CLAUDE_CODE_API_KEY_HELPER_TTL_MS: '999999999999999',
        },
      }),
    );
    const local = path.join(h.project, '.claude', 'settings.local.json');
    fs.writeFileSync(local, JSON.stringify({ env: { NODE_DEBUG: 'https', EDITOR: 'vi' } }));
    const r = await doctor([], h);
    const l = lines(r);
    expect(l).toContain(
      `[FAIL] settings.env: ${repo} (a repository's settings) sets VAULT_SKIP_VERIFY, HTTPS_PROXY, CLAUDE_CODE_API_KEY_HELPER_TTL_MS in its env block, which reaches keybroker`,
    );
    expect(l).toContain(
      `[FAIL] settings.env: ${local} (a repository's settings) sets NODE_DEBUG in its env block, which reaches keybroker`,
    );
    expect(l).toContain(
      '       fix: remove them from the repository file unless you trust it; set what you need in ~/.claude/settings.json or the managed settings; run keybroker explain ERR_REPO_SETTINGS_ENV',
    );
    expect(r.code).toBe(1);
  });

  it('finding 18: lists NODE_OPTIONS and OPENSSL_CONF when set, and fails on NODE_TLS_REJECT_UNAUTHORIZED=0', async () => {
    const h = await healthy();
    const r = await doctor([], h, {
      NODE_OPTIONS: '--no-deprecation',
      OPENSSL_CONF: '/dev/null',
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
    });
    const l = lines(r);
    expect(l.filter((x) => x.startsWith('[warn] env.foreign-code') || x.startsWith('[FAIL] env.'))).toEqual([
      "[warn] env.foreign-code: OPENSSL_CONF is set (/dev/null): it loads code or settings into Node that are not keybroker's",
      "[warn] env.foreign-code: NODE_OPTIONS is set (--no-deprecation): it loads code or settings into Node that are not keybroker's",
      '[FAIL] env.tls: NODE_TLS_REJECT_UNAUTHORIZED=0 asks Node to skip certificate checks',
    ]);
    expect(r.code).toBe(1);
  });

  it('issue 16: a managed file that stopped validating fails doctor, naming the copy the token path uses', async () => {
    const h = await healthy();
    const managed = sb.env.KEYBROKER_MANAGED_CONFIG!;
    fs.writeFileSync(managed, JSON.stringify({ cache: { refreshMarginMs: 120000 } }), { mode: 0o644 });
    expect((await runKeybroker([], sb)).code).toBe(0);
    fs.writeFileSync(managed, '{"cache": {"refreshMarginMs": 120000},}', { mode: 0o644 });
    const token = await runKeybroker([], sb);
    expect(token.code).toBe(0);
    const r = await doctor([], h);
    expect(lines(r)).toContain(
      `[FAIL] config.managed: ${managed} (from KEYBROKER_MANAGED_CONFIG): does not validate (config ${managed}: invalid JSON at line 1, column 39: expected a property name in double quotes); the token path goes on with the last copy that did, saved <time>`,
    );
    expect(r.code).toBe(1);
  });
});
