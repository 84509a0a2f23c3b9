/**
 * `${user}`, `${identity}`, `${hostname}`, `${profile}` and `${env:NAME}` in config string values
 * (contract §3).
 * Runs on the cache-hit path: a string without `${` is returned untouched, no regex involved.
 */
import { configError, seeDocs } from '../errors.js';

export interface TemplateVars {
  /** The OS login name. */
  user: string;
  /** The top-level `identity`, expanded (default the OS login); undefined while expanding `identity` itself. */
  identity?: string | undefined;
  hostname: string;
  profile: string;
  env: Readonly<Record<string, string | undefined>>;
}

/** Where a value sits, for error messages: the file that set it and its JSON pointer. */
export type DescribeLocation = (pointer: string) => string;

const TEMPLATE = /\$\{([^}]*)\}/g;

/** True when the string takes (part of) its value from the environment; such values are redacted when shown. */
export function usesEnvTemplate(s: string): boolean {
  return s.includes('${env:');
}

/** Expands the templates of one string value found at `pointer`. */
export function expandTemplates(
  value: string,
  vars: TemplateVars,
  pointer: string,
  where: DescribeLocation,
): string {
  if (!value.includes('${')) return value;
  return value.replace(TEMPLATE, (_whole, name: string) => {
    switch (name) {
      case 'user':
        return vars.user;
      case 'identity':
        if (vars.identity === undefined) {
          throw configError(
            'ERR_CONFIG_TEMPLATE',
            `${where(pointer)}: ${pointer}: \${identity} cannot be used here`,
            {
              hint: `"identity" defines \${identity}: build it from \${user}, \${hostname} or \${env:NAME}; ${seeDocs('ERR_CONFIG_TEMPLATE')}`,
            },
          );
        }
        return vars.identity;
      case 'hostname':
        return vars.hostname;
      case 'profile':
        return vars.profile;
    }
    if (name.startsWith('env:')) {
      const envName = name.slice(4);
      const v = envName === '' ? undefined : vars.env[envName];
      if (v === undefined) {
        throw configError(
          'ERR_CONFIG_ENV_UNSET',
          `${where(pointer)}: ${pointer}: environment variable ${envName || '(empty name)'} is not set (used as \${env:${envName}})`,
          {
            hint: `set ${envName || 'the variable'} or change that value; ${seeDocs('ERR_CONFIG_ENV_UNSET')}`,
          },
        );
      }
      return v;
    }
    throw configError('ERR_CONFIG_TEMPLATE', `${where(pointer)}: ${pointer}: unknown template \${${name}}`, {
      hint: `use \${user}, \${identity}, \${hostname}, \${profile} or \${env:NAME}; ${seeDocs('ERR_CONFIG_TEMPLATE')}`,
    });
  });
}

/** The first template in `s` that can never expand (`${foo}`, `${env:}`), for validation; undefined if none. */
export function findUnknownTemplate(s: string): string | undefined {
  if (!s.includes('${')) return undefined;
  for (const m of s.matchAll(TEMPLATE)) {
    const name = m[1]!;
    if (name === 'user' || name === 'identity' || name === 'hostname' || name === 'profile') continue;
    if (name.startsWith('env:') && name.length > 4) continue;
    return m[0];
  }
  return undefined;
}

/** Escapes one key for a JSON pointer (RFC 6901). */
export function pointerKey(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}

/**
 * Returns a copy of `value` with every string (at any depth, arrays included) expanded.
 * Object keys are left as they are.
 */
export function expandTemplatesDeep(
  value: unknown,
  vars: TemplateVars,
  pointer: string,
  where: DescribeLocation,
): unknown {
  if (typeof value === 'string') return expandTemplates(value, vars, pointer, where);
  if (Array.isArray(value))
    return value.map((v, i) => expandTemplatesDeep(v, vars, `${pointer}/${i}`, where));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      setOwn(out, k, expandTemplatesDeep(v, vars, `${pointer}/${pointerKey(k)}`, where));
    }
    return out;
  }
  return value;
}

/** Assigns without ever touching the prototype (a JSON key may be "__proto__"). */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}
