/** Doctor: the Claude Code wiring (settings files, apiKeyHelper, TTL, header-overriding variables). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ResolvedProfile } from '../../config/types.js';
import {
  CLAUDE_DEFAULT_TTL_MS,
  effectiveEnv,
  envBlock,
  parseClaudeTtl,
  parseHelper,
  type SettingsFile,
  TTL_VAR,
} from '../claude-settings.js';
import { type CheckResult, check } from '../report.js';
import { gatewayChecks } from './gateway.js';
import type { DoctorScope, Env } from './scope.js';

const SCOPE_ORDER_LOW_TO_HIGH = ['user', 'project', 'project-local', 'managed'] as const;

/** The environment keybroker sees when Claude Code runs it: its own plus every settings `env` block. */
export function claudeRunEnv(files: SettingsFile[], env: Env): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (const scope of SCOPE_ORDER_LOW_TO_HIGH) {
    for (const f of files.filter((x) => x.scope === scope)) {
      for (const [k, v] of Object.entries(envBlock(f) ?? {}))
        if (v !== null && v !== undefined) out[k] = String(v);
    }
  }
  return out;
}

function looksLikeKeybroker(program: string, execPath: string): boolean {
  if (program === '') return false;
  if (path.resolve(program) === path.resolve(execPath)) return true;
  const base = path.basename(program).replace(/\.(exe|cmd|cjs|js)$/i, '');
  return base === 'keybroker' || base.startsWith('keybroker-');
}

function findOnPath(program: string, env: Env, cwd: string): string | undefined {
  if (program.includes('/')) {
    const p = path.resolve(cwd, program);
    return fs.existsSync(p) ? p : undefined;
  }
  for (const dir of (env.PATH ?? '').split(':')) {
    if (!dir) continue;
    const p = path.join(dir, program);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

export function claudeChecks(scope: DoctorScope): CheckResult[] {
  const { ctx, settings: files, helper, resolved } = scope;
  const out: CheckResult[] = [];
  for (const f of files) {
    if (f.problem) {
      out.push(
        check(
          `claude.settings`,
          'fail',
          `${f.scope} settings ${f.path}: ${f.problem}; Claude Code cannot use it`,
          {
            code: 'ERR_CLAUDE_SETTINGS_INVALID',
            hint: 'fix the file (keybroker init refuses to touch it until then)',
          },
        ),
      );
    }
  }
  if (!helper) {
    out.push(
      check(
        'claude.helper',
        'fail',
        `no Claude Code settings file sets apiKeyHelper (looked in ${files.map((f) => f.path).join(', ')})`,
        {
          code: 'ERR_CLAUDE_NO_HELPER',
          hint: 'run keybroker init (or keybroker init --scope managed as root)',
        },
      ),
    );
  } else {
    const { program, profile } = parseHelper(helper.command);
    const isKb = looksLikeKeybroker(program, ctx.execPath);
    out.push(
      isKb
        ? check(
            'claude.helper',
            'pass',
            `apiKeyHelper from ${helper.file.scope} settings ${helper.file.path} runs keybroker: ${helper.command}`,
          )
        : check(
            'claude.helper',
            'fail',
            `apiKeyHelper from ${helper.file.scope} settings ${helper.file.path} does not run keybroker: ${program || '(empty)'}`,
            {
              code: 'ERR_CLAUDE_HELPER_NOT_KEYBROKER',
              hint: `run keybroker init --scope ${helper.file.scope === 'project-local' ? 'project' : helper.file.scope} to replace it`,
            },
          ),
    );
    if (isKb) {
      const found = findOnPath(program, ctx.env, ctx.cwd);
      if (!found) {
        out.push(
          check(
            'claude.helper',
            'fail',
            `the helper's program ${program} is not found${program.includes('/') ? '' : ' on PATH'}`,
            {
              code: 'ERR_CLAUDE_HELPER_NOT_FOUND',
              hint: 'run keybroker init again from the installed keybroker, which writes its absolute path',
            },
          ),
        );
      }
      if (resolved && profile && profile !== resolved.name) {
        out.push(
          check(
            'claude.helper',
            'warn',
            `the helper uses profile "${profile}" but this check ran for "${resolved.name}"`,
            {
              code: 'ERR_CLAUDE_HELPER_PROFILE',
              hint: `run keybroker doctor --profile ${profile}`,
            },
          ),
        );
      }
    }
    const others = files.filter((f) => f !== helper.file && typeof f.data?.apiKeyHelper === 'string');
    for (const f of files) {
      if (
        (f.scope === 'project' || f.scope === 'project-local') &&
        typeof f.data?.apiKeyHelper === 'string'
      ) {
        const overrides = others.filter((o) => o.scope === 'user').length > 0 || f === helper.file;
        out.push(
          check(
            'claude.project-helper',
            'warn',
            `the project file ${f.path} sets apiKeyHelper${overrides && f === helper.file ? ' and overrides yours' : ''}; it runs without a trust prompt in claude -p mode`,
            {
              code: 'ERR_CLAUDE_PROJECT_HELPER',
              hint: 'remove apiKeyHelper from the project file unless you trust this repository; set it in ~/.claude/settings.json or the managed file',
            },
          ),
        );
      }
    }
  }

  // The TTL Claude Code holds a token for, against what the token can live.
  const ttlVar = effectiveEnv(files, ctx.env, TTL_VAR);
  const claudeTtl = parseClaudeTtl(ttlVar?.value);
  if (!claudeTtl.valid) {
    out.push(
      check(
        'claude.ttl',
        'warn',
        `${TTL_VAR}="${ttlVar!.value}" (from ${ttlVar!.from}) is not a positive integer; Claude Code uses ${CLAUDE_DEFAULT_TTL_MS} ms`,
        {
          code: 'ERR_CLAUDE_TTL_INVALID',
          hint: `set it to a whole number of milliseconds, e.g. keybroker init --ttl ${CLAUDE_DEFAULT_TTL_MS}`,
        },
      ),
    );
  }
  if (resolved) out.push(ttlCheck(resolved, claudeTtl.ttlMs, ttlVar?.from));

  out.push(...gatewayChecks(files, ctx.env));
  return out;
}

function ttlCheck(resolved: ResolvedProfile, claudeTtlMs: number, from: string | undefined): CheckResult {
  const margin = resolved.cache.refreshMarginMs;
  const need = claudeTtlMs + margin;
  const heldBy = `Claude Code holds a token ${claudeTtlMs} ms (${from ? `${TTL_VAR} from ${from}` : 'its default'})`;
  const src = resolved.source;
  if (resolved.ttlMs !== claudeTtlMs) {
    return check(
      'claude.ttl',
      'fail',
      `${heldBy}, but keybroker plans for ${resolved.ttlMs} ms (${resolved.ttlOrigin})`,
      {
        code: 'ERR_CLAUDE_TTL_MISMATCH',
        hint: `set ${TTL_VAR} in the settings env block (keybroker init --ttl ${resolved.ttlMs})`,
      },
    );
  }
  if (src.type === 'jwt') {
    const lifetimeMs =
      src.lifetimeSec !== undefined
        ? src.lifetimeSec * 1000
        : Math.ceil((2 * resolved.ttlMs + margin) / 1000) * 1000;
    if (lifetimeMs < need) {
      return check(
        'claude.ttl',
        'fail',
        `${heldBy}; with the ${margin} ms margin a token must live ${need} ms, but jwt lifetimeSec gives ${lifetimeMs} ms`,
        {
          code: 'ERR_CLAUDE_TTL_MISMATCH',
          hint: `raise lifetimeSec to at least ${Math.ceil(need / 1000)} or lower ${TTL_VAR}`,
        },
      );
    }
    return check(
      'claude.ttl',
      'pass',
      `${heldBy}; minted tokens live ${lifetimeMs / 1000} s, more than TTL + margin (${need / 1000} s)`,
    );
  }
  if (src.type === 'vault-identity') {
    return check(
      'claude.ttl',
      'pass',
      `${heldBy}; Vault sets the token's lifetime (doctor --probe compares it with TTL + margin = ${need} ms)`,
    );
  }
  return check(
    'claude.ttl',
    'pass',
    `${heldBy}; the ${src.type} secret is fetched again once it is older than that`,
  );
}
