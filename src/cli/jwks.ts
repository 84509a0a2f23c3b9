/**
 * `keybroker jwks [--profile P]`: the public JWK Set of a jwt profile's signing key, for the
 * gateway that verifies the tokens (e.g. LiteLLM's JWT_PUBLIC_KEY_URL).
 */
import * as fs from 'node:fs';
import type { Argv } from 'yargs';
import { isObject } from '../config/load.js';
import type { JwtSourceConfig } from '../config/types.js';
import type { AppContext } from '../context.js';
import { configError, seeDocs } from '../errors.js';
import { resolveForCommand } from './token.js';

export function register(y: Argv, ctx: AppContext): Argv {
  return y.command(
    'jwks',
    "print the public JWK Set of a jwt profile's signing key (for the gateway)",
    (c) =>
      c
        .option('merge', {
          type: 'string',
          describe: 'a JWK Set file (the one published now) whose keys are kept beside this one, by kid',
        })
        .example('keybroker jwks --merge old-jwks.json > jwks.json', 'old and new keys during a rotation'),
    async (argv) => {
      await runJwks(ctx, argv.merge === undefined ? {} : { merge: argv.merge });
    },
  );
}

async function runJwks(ctx: AppContext, options: { merge?: string } = {}): Promise<void> {
  // The file first: a bad one is the same mistake whichever profile is selected.
  const kept = options.merge === undefined ? [] : readJwkSet(options.merge);
  const { resolved } = resolveForCommand(ctx);
  if (resolved.source.type !== 'jwt') {
    throw configError(
      'ERR_JWKS_NOT_JWT',
      `jwks: profile ${resolved.name} uses a ${resolved.source.type} source, not jwt`,
      {
        hint: `only a jwt profile has a signing key to publish; pass --profile with a jwt profile; ${seeDocs('ERR_JWKS_NOT_JWT')}`,
      },
    );
  }
  const { publicJwks } = await import('../sources/jwt.js');
  const jwks = await publicJwks(resolved.source as JwtSourceConfig, {
    logger: ctx.logger,
    // Publishing a key needs no memo: nothing is fetched from a remote source.
    memo: { get: async () => undefined, set: async () => {}, delete: async () => {} },
    env: ctx.env,
    homeDir: ctx.homeDir,
    ttlMs: resolved.ttlMs,
    refreshMarginMs: resolved.cache.refreshMarginMs,
  });
  ctx.stdout(`${JSON.stringify(mergeJwks(jwks.keys as Jwk[], kept), null, 2)}\n`);
}

type Jwk = Record<string, unknown>;

/** The profile's keys first, then each kept key whose kid (or, without one, whose content) is new. */
function mergeJwks(current: Jwk[], kept: Jwk[]): { keys: Jwk[] } {
  const keys = [...current];
  const seen = new Set(keys.map(identity));
  for (const k of kept) {
    const id = identity(k);
    if (seen.has(id)) continue;
    seen.add(id);
    keys.push(k);
  }
  return { keys };
}

function identity(k: Jwk): string {
  return typeof k.kid === 'string' ? `kid:${k.kid}` : `jwk:${JSON.stringify(k)}`;
}

/** Members that only a private (or symmetric) key has: such a key is never published. */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** A public JWK Set file, checked: `{"keys": [{"kty": …}, …]}` with no private key material. */
function readJwkSet(file: string): Jwk[] {
  const bad = (why: string) =>
    configError('ERR_JWKS_MERGE_FILE', `jwks --merge ${file}: ${why}`, {
      hint: `give the JWK Set the gateway publishes now (keybroker jwks output); ${seeDocs('ERR_JWKS_MERGE_FILE')}`,
    });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw bad(`cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw bad('not valid JSON');
  }
  const keys = isObject(doc) ? doc.keys : undefined;
  if (!Array.isArray(keys)) throw bad('not a JWK Set (no "keys" array)');
  keys.forEach((k, i) => {
    if (!isObject(k) || typeof k.kty !== 'string') throw bad(`/keys/${i}: not a JWK (no "kty")`);
    if (PRIVATE_MEMBERS.some((m) => Object.hasOwn(k, m))) {
      throw bad(`/keys/${i}: holds private key material, which is never published`);
    }
  });
  return keys as Jwk[];
}
