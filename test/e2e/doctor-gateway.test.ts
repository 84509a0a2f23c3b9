/**
 * `keybroker doctor` names the gateway mode Claude Code runs in (issue 15): which header
 * carries the token, the 401-not-403 rule of the pass-through modes, half-configured modes,
 * and ANTHROPIC_AUTH_TOKEN / ANTHROPIC_API_KEY beside a pass-through mode.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSandbox, type RunResult, runKeybroker, type Sandbox } from '../helpers/run.js';

let sb: Sandbox;
afterEach(() => sb?.cleanup());

const settingsFile = () => path.join(sb.home, '.claude', 'settings.json');

/** A jwt profile wired by `keybroker init` with these flags; returns the project directory. */
async function wired(initFlags: string[]): Promise<string> {
  sb = makeSandbox();
  const keyFile = path.join(sb.home, 'signing.pem');
  expect((await runKeybroker(['keygen', '--out', keyFile], sb)).code).toBe(0);
  sb.writeConfig({
    profiles: {
      default: { source: { type: 'jwt', signingKey: { file: keyFile }, issuer: 'kb', audience: 'litellm' } },
    },
  });
  const init = await runKeybroker(['init', '--ttl', '300000', ...initFlags], sb);
  expect(init.code).toBe(0);
  const project = path.join(sb.dir, 'project');
  fs.mkdirSync(project);
  return project;
}

/** Rewrites the env block of the user settings. */
function editEnv(edit: (env: Record<string, string>) => void): void {
  const data = JSON.parse(fs.readFileSync(settingsFile(), 'utf8'));
  edit(data.env);
  fs.writeFileSync(settingsFile(), JSON.stringify(data, null, 2));
}

function claudeLines(r: RunResult): string[] {
  return r.stdout
    .split('\n')
    .filter((l) =>
      /^(\[\w+ *\] claude\.(gateway|env)|\s+fix: .*(GATEWAY|gateway|ENV_OVERRIDE|env_override))/.test(l),
    );
}

const BEDROCK_RULE =
  '[info] claude.gateway: in Bedrock pass-through mode Claude Code runs keybroker again after a 401 but not after a 403 (it retries the same token): the gateway must answer 401 for an expired or unknown token and 403 only for a valid token that may not do what it asked';

describe('keybroker doctor: the gateway mode in force', () => {
  it('Messages API: both headers carry the token', async () => {
    const project = await wired(['--gateway', 'https://gw.example']);
    const r = await runKeybroker(['doctor'], sb, { cwd: project });
    expect(claudeLines(r)).toEqual([
      '[ok  ] claude.env: ANTHROPIC_API_KEY is not set',
      '[ok  ] claude.env: ANTHROPIC_AUTH_TOKEN is not set',
      `[info] claude.gateway: Messages API at ANTHROPIC_BASE_URL=https://gw.example (from ${settingsFile()}); Claude Code sends keybroker's token as Authorization: Bearer and X-Api-Key, and runs keybroker again after a 401 or 403`,
    ]);
    expect(r.code).toBe(0);
  });

  it('Bedrock pass-through: Bearer only, and the 401-not-403 rule', async () => {
    const project = await wired(['--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock']);
    const r = await runKeybroker(['doctor'], sb, { cwd: project });
    expect(claudeLines(r)).toEqual([
      '[ok  ] claude.env: ANTHROPIC_API_KEY is not set',
      '[ok  ] claude.env: ANTHROPIC_AUTH_TOKEN is not set',
      `[info] claude.gateway: Bedrock pass-through (CLAUDE_CODE_USE_BEDROCK=1 from ${settingsFile()}) at ANTHROPIC_BEDROCK_BASE_URL=https://gw.example/bedrock (from ${settingsFile()}); Claude Code sends keybroker's token only as Authorization: Bearer`,
      BEDROCK_RULE,
    ]);
    expect(r.code).toBe(0);
  });

  it('Vertex pass-through from the environment: Bearer only, and it gives up after a 403', async () => {
    const project = await wired([]);
    const r = await runKeybroker(['doctor'], sb, {
      cwd: project,
      env: {
        CLAUDE_CODE_USE_VERTEX: 'true',
        CLAUDE_CODE_SKIP_VERTEX_AUTH: '1',
        ANTHROPIC_VERTEX_BASE_URL: 'https://gw.example/vertex_ai/v1',
        ANTHROPIC_VERTEX_PROJECT_ID: 'acme',
        CLOUD_ML_REGION: 'us-east5',
      },
    });
    expect(claudeLines(r)).toEqual([
      '[ok  ] claude.env: ANTHROPIC_API_KEY is not set',
      '[ok  ] claude.env: ANTHROPIC_AUTH_TOKEN is not set',
      "[info] claude.gateway: Vertex pass-through (CLAUDE_CODE_USE_VERTEX=true from the environment) at ANTHROPIC_VERTEX_BASE_URL=https://gw.example/vertex_ai/v1 (from the environment); Claude Code sends keybroker's token only as Authorization: Bearer",
      '[info] claude.gateway: in Vertex pass-through mode Claude Code runs keybroker again after a 401 but not after a 403 (it gives up at once): the gateway must answer 401 for an expired or unknown token and 403 only for a valid token that may not do what it asked',
    ]);
    expect(r.code).toBe(0);
  });

  it('fails a half-configured Bedrock mode: no SKIP_BEDROCK_AUTH means AWS signing instead of the token', async () => {
    const project = await wired(['--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock']);
    editEnv((env) => {
      delete env.CLAUDE_CODE_SKIP_BEDROCK_AUTH;
    });
    const r = await runKeybroker(['doctor'], sb, { cwd: project });
    expect(claudeLines(r).slice(4)).toEqual([
      "[FAIL] claude.gateway: CLAUDE_CODE_USE_BEDROCK is on but CLAUDE_CODE_SKIP_BEDROCK_AUTH is not: Claude Code signs requests with AWS credentials of its own instead of sending keybroker's token",
      '       fix: set CLAUDE_CODE_SKIP_BEDROCK_AUTH=1 in the settings env block (keybroker init --gateway URL --mode bedrock); run keybroker explain ERR_CLAUDE_GATEWAY_MODE',
    ]);
    expect(r.code).toBe(1);
  });

  it('fails Vertex without its project and region, and warns about Bedrock keys left without their switch', async () => {
    const project = await wired([
      '--gateway',
      'https://gw.example/vertex_ai/v1',
      '--mode',
      'vertex',
      '--vertex-project',
      'acme',
      '--vertex-region',
      'us-east5',
    ]);
    editEnv((env) => {
      delete env.ANTHROPIC_VERTEX_PROJECT_ID;
      env.ANTHROPIC_BEDROCK_BASE_URL = 'https://gw.example/bedrock';
    });
    const r = await runKeybroker(['doctor'], sb, { cwd: project });
    expect(claudeLines(r).slice(4)).toEqual([
      '[FAIL] claude.gateway: CLAUDE_CODE_USE_VERTEX is on but ANTHROPIC_VERTEX_PROJECT_ID is not set: Claude Code cannot build the request path',
      '       fix: keybroker init --gateway URL --mode vertex --vertex-project P --vertex-region R; run keybroker explain ERR_CLAUDE_GATEWAY_MODE',
      `[warn] claude.gateway: ANTHROPIC_BEDROCK_BASE_URL=https://gw.example/bedrock (from ${settingsFile()}) set, but CLAUDE_CODE_USE_BEDROCK is not: Claude Code ignores it and uses the Vertex pass-through`,
      '       fix: set CLAUDE_CODE_USE_BEDROCK=1 too (keybroker init --gateway URL --mode bedrock), or remove ANTHROPIC_BEDROCK_BASE_URL; run keybroker explain ERR_CLAUDE_GATEWAY_MODE',
    ]);
    expect(r.code).toBe(1);
  });

  it('a pass-through mode with ANTHROPIC_AUTH_TOKEN fails (it replaces the only header), ANTHROPIC_API_KEY warns', async () => {
    const project = await wired(['--gateway', 'https://gw.example/bedrock', '--mode', 'bedrock']);
    editEnv((env) => {
      env.ANTHROPIC_AUTH_TOKEN = 'sk-static';
    });
    const r = await runKeybroker(['doctor'], sb, { cwd: project, env: { ANTHROPIC_API_KEY: 'sk-other' } });
    expect(claudeLines(r).slice(0, 4)).toEqual([
      "[warn] claude.env: ANTHROPIC_API_KEY is set in your environment: in Bedrock pass-through mode Claude Code sends it as X-Api-Key beside keybroker's Bearer token; a gateway that reads X-Api-Key first sees the wrong credential",
      '       fix: unset ANTHROPIC_API_KEY (and remove it from those settings); run keybroker explain ERR_CLAUDE_ENV_OVERRIDE',
      `[FAIL] claude.env: ANTHROPIC_AUTH_TOKEN is set in the env block of ${settingsFile()}: in Bedrock pass-through mode Claude Code sends it as Authorization: Bearer, the only header the gateway reads, instead of keybroker's token`,
      '       fix: unset ANTHROPIC_AUTH_TOKEN (and remove it from those settings); run keybroker explain ERR_CLAUDE_ENV_OVERRIDE',
    ]);
    expect(r.stdout).not.toContain('sk-static');
    expect(r.stdout).not.toContain('sk-other');
    expect(r.code).toBe(1);
  });
});
