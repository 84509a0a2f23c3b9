/**
 * Doctor: how Claude Code reaches the model (Messages API, Bedrock or Vertex pass-through),
 * read from the winning settings files and the environment as Claude Code reads them, which
 * header carries keybroker's token there, and the variables that replace it.
 * What each mode does was measured with the real Claude Code (docs/gateway.md).
 */
import {
  effectiveEnv,
  envBlock,
  GATEWAY_MODE_KEYS,
  type GatewayMode,
  type SettingsFile,
} from '../claude-settings.js';
import { type CheckResult, check } from '../report.js';
import type { Env } from './scope.js';

/** Claude Code's reading of a switch such as CLAUDE_CODE_USE_BEDROCK. */
function truthy(value: string | undefined): boolean {
  return value !== undefined && ['1', 'true', 'yes', 'on'].includes(value.trim().toLowerCase());
}

interface Setting {
  value: string;
  from: string;
}

function shown(name: string, s: Setting): string {
  return `${name}=${s.value} (from ${s.from})`;
}

/** The mode Claude Code runs in: Bedrock wins over Vertex, as in Claude Code. */
function gatewayModeInForce(
  files: SettingsFile[],
  env: Env,
): { mode: GatewayMode; by?: Setting & { name: string } } {
  for (const mode of ['bedrock', 'vertex'] as const) {
    const name = GATEWAY_MODE_KEYS[mode].use!;
    const s = effectiveEnv(files, env, name);
    if (s && truthy(s.value)) return { mode, by: { ...s, name } };
  }
  return { mode: 'messages' };
}

const HALF = 'ERR_CLAUDE_GATEWAY_MODE';

export function gatewayChecks(files: SettingsFile[], env: Env): CheckResult[] {
  const out: CheckResult[] = [];
  const get = (name: string) => effectiveEnv(files, env, name);
  const { mode, by } = gatewayModeInForce(files, env);
  const keys = GATEWAY_MODE_KEYS[mode];
  const base = get(keys.baseUrl);
  const passThrough = mode !== 'messages';

  // Which mode, where requests go, which header carries the token.
  if (!passThrough) {
    out.push(
      check(
        'claude.gateway',
        'info',
        `${keys.label}${base ? ` at ${shown(keys.baseUrl, base)}` : ` at api.anthropic.com (${keys.baseUrl} is not set)`}; Claude Code sends keybroker's token as Authorization: Bearer and X-Api-Key, and runs keybroker again after a 401 or 403`,
      ),
    );
  } else {
    out.push(
      check(
        'claude.gateway',
        'info',
        `${keys.label} (${by!.name}=${by!.value} from ${by!.from})${base ? ` at ${shown(keys.baseUrl, base)}` : ''}; Claude Code sends keybroker's token only as Authorization: Bearer`,
      ),
      check(
        'claude.gateway',
        'info',
        `in ${keys.label} mode Claude Code runs keybroker again after a 401 but not after a 403 (${mode === 'bedrock' ? 'it retries the same token' : 'it gives up at once'}): the gateway must answer 401 for an expired or unknown token and 403 only for a valid token that may not do what it asked`,
      ),
    );
    const skip = get(keys.skipAuth!);
    if (!skip || !truthy(skip.value)) {
      out.push(
        check(
          'claude.gateway',
          'fail',
          `${by!.name} is on but ${keys.skipAuth} is not: Claude Code signs requests with ${mode === 'bedrock' ? 'AWS' : 'Google Cloud'} credentials of its own instead of sending keybroker's token`,
          {
            code: HALF,
            hint: `set ${keys.skipAuth}=1 in the settings env block (keybroker init --gateway URL --mode ${mode})`,
          },
        ),
      );
    }
    if (!base) {
      out.push(
        check(
          'claude.gateway',
          'fail',
          `${by!.name} is on but ${keys.baseUrl} is not set: Claude Code sends requests to ${mode === 'bedrock' ? 'AWS Bedrock' : 'Google Vertex AI'} itself, not to your gateway`,
          {
            code: HALF,
            hint: `set ${keys.baseUrl} to the gateway's ${mode} route (keybroker init --gateway URL --mode ${mode})`,
          },
        ),
      );
    }
    for (const name of keys.extra) {
      if (!get(name)) {
        out.push(
          check(
            'claude.gateway',
            'fail',
            `${by!.name} is on but ${name} is not set: Claude Code cannot build the request path`,
            {
              code: HALF,
              hint: `keybroker init --gateway URL --mode vertex --vertex-project P --vertex-region R`,
            },
          ),
        );
      }
    }
  }
  // Settings of a mode that is not in force: Claude Code ignores them, which is rarely meant.
  for (const other of ['bedrock', 'vertex'] as const) {
    if (other === mode) continue;
    const k = GATEWAY_MODE_KEYS[other];
    const stray = [k.baseUrl, k.skipAuth!]
      .map((n) => [n, get(n)] as const)
      .filter(([, s]) => s !== undefined);
    const on = get(k.use!);
    if (on && truthy(on.value) && mode === 'bedrock') {
      out.push(
        check(
          'claude.gateway',
          'warn',
          `${k.use} is on too, but ${by!.name} wins: Claude Code uses Bedrock`,
          {
            code: HALF,
            hint: `remove ${k.use} from the settings env block and your environment`,
          },
        ),
      );
    } else if (stray.length > 0) {
      out.push(
        check(
          'claude.gateway',
          'warn',
          `${stray.map(([n, s]) => shown(n, s!)).join(' and ')} set, but ${k.use} is not: Claude Code ignores ${stray.length > 1 ? 'them' : 'it'} and uses the ${GATEWAY_MODE_KEYS[mode].label}`,
          {
            code: HALF,
            hint: `set ${k.use}=1 too (keybroker init --gateway URL --mode ${other}), or remove ${stray.map(([n]) => n).join(' and ')}`,
          },
        ),
      );
    }
  }

  // Variables that replace (or, in the pass-through modes, add to) the helper's value.
  const headerVars: [string, string][] = [
    ['ANTHROPIC_API_KEY', 'X-Api-Key'],
    ['ANTHROPIC_AUTH_TOKEN', 'Authorization'],
  ];
  const envOut: CheckResult[] = [];
  for (const [name, header] of headerVars) {
    const places: string[] = [];
    if (env[name]) places.push('your environment');
    for (const f of files) if (envBlock(f)?.[name] !== undefined) places.push(`the env block of ${f.path}`);
    if (places.length === 0) {
      envOut.push(check('claude.env', 'pass', `${name} is not set`));
    } else if (!passThrough) {
      envOut.push(
        check(
          'claude.env',
          'fail',
          `${name} is set in ${places.join(' and ')}: Claude Code sends it in ${header} instead of keybroker's token`,
          {
            code: 'ERR_CLAUDE_ENV_OVERRIDE',
            hint: `unset ${name} (and remove it from those settings) so both headers carry keybroker's token`,
          },
        ),
      );
    } else if (name === 'ANTHROPIC_AUTH_TOKEN') {
      envOut.push(
        check(
          'claude.env',
          'fail',
          `${name} is set in ${places.join(' and ')}: in ${keys.label} mode Claude Code sends it as Authorization: Bearer, the only header the gateway reads, instead of keybroker's token`,
          {
            code: 'ERR_CLAUDE_ENV_OVERRIDE',
            hint: `unset ${name} (and remove it from those settings)`,
          },
        ),
      );
    } else {
      envOut.push(
        check(
          'claude.env',
          'warn',
          `${name} is set in ${places.join(' and ')}: in ${keys.label} mode Claude Code sends it as X-Api-Key beside keybroker's Bearer token; a gateway that reads X-Api-Key first sees the wrong credential`,
          {
            code: 'ERR_CLAUDE_ENV_OVERRIDE',
            hint: `unset ${name} (and remove it from those settings)`,
          },
        ),
      );
    }
  }
  return [...envOut, ...out];
}
