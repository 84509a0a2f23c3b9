// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests are about ${...} templates in config strings
/**
 * Property tests for the template engine (src/config/templates.ts, contract §3): `${user}`,
 * `${hostname}`, `${profile}` and `${env:NAME}` expand once, left to right; an unset variable
 * or an unknown template is a configuration error (exit 2) naming the variable, never its
 * value; validation (findUnknownTemplate) agrees with expansion.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expandTemplates,
  expandTemplatesDeep,
  findUnknownTemplate,
  pointerKey,
  type TemplateVars,
} from '../../src/config/templates.js';
import { ExitCode, formatErrorLine, isKeybrokerError } from '../../src/errors.js';

const NUM_RUNS = 10_000;
const where = (pointer: string) => `config /tmp/config.json (at ${pointer})`;

/** Pieces that make templates, half-templates and look-alikes. */
const fragment = fc.oneof(
  fc.constantFrom(
    '${',
    '}',
    '$',
    '{',
    '${user}',
    '${hostname}',
    '${profile}',
    '${env:',
    '${env:HOME}',
    '${env:SET_A}',
    '${env:SET_EMPTY}',
    '${env:UNSET_B}',
    '${env:}',
    '${USER}',
    '${ user}',
    '${env:SET_A',
    '$${user}}',
    '~/',
    'env:',
    'user',
    '\\',
    '\n',
  ),
  fc.string({ maxLength: 6 }),
);
const templateString = fc.array(fragment, { maxLength: 8 }).map((xs) => xs.join(''));

/** Values that themselves look like templates: expansion must not run twice. */
const valueArb = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('${user}', '${env:SET_A}', '}', '${'),
);
const varsArb: fc.Arbitrary<TemplateVars> = fc
  .record({ user: valueArb, hostname: valueArb, profile: valueArb, a: valueArb, home: valueArb })
  .map(({ user, hostname, profile, a, home }) => ({
    user,
    hostname,
    profile,
    env: { SET_A: a, SET_EMPTY: '', HOME: home } as Record<string, string | undefined>,
  }));

type Expected = { ok: string } | { error: 'ERR_CONFIG_ENV_UNSET' | 'ERR_CONFIG_TEMPLATE'; name: string };

/** A reference expander written from the contract, independent of the regex in the source. */
function reference(s: string, vars: TemplateVars): Expected {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const start = s.indexOf('${', i);
    const end = start < 0 ? -1 : s.indexOf('}', start + 2);
    if (start < 0 || end < 0) {
      out += s.slice(i);
      break;
    }
    out += s.slice(i, start);
    const name = s.slice(start + 2, end);
    if (name === 'user') out += vars.user;
    else if (name === 'hostname') out += vars.hostname;
    else if (name === 'profile') out += vars.profile;
    else if (name.startsWith('env:')) {
      const v = name.length > 4 ? vars.env[name.slice(4)] : undefined;
      if (v === undefined) return { error: 'ERR_CONFIG_ENV_UNSET', name: name.slice(4) };
      out += v;
    } else return { error: 'ERR_CONFIG_TEMPLATE', name };
    i = end + 1;
  }
  return { ok: out };
}

function run(s: string, vars: TemplateVars): { ok: string } | { error: unknown } {
  try {
    return { ok: expandTemplates(s, vars, '/profiles/p/source/path', where) };
  } catch (e) {
    return { error: e };
  }
}

describe('expandTemplates', () => {
  it('expands exactly as the reference does, or fails with the same configuration error', () => {
    fc.assert(
      fc.property(templateString, varsArb, (s, vars) => {
        const want = reference(s, vars);
        const got = run(s, vars);
        if ('ok' in want) return 'ok' in got && got.ok === want.ok;
        if (!('error' in got) || !isKeybrokerError(got.error)) return false;
        return got.error.code === want.error && got.error.exitCode === ExitCode.config;
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('returns a string without "${" untouched', () => {
    fc.assert(
      fc.property(fc.string(), varsArb, (s, vars) => {
        fc.pre(!s.includes('${'));
        return expandTemplates(s, vars, '/x', where) === s;
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('an error is one printable line naming the variable and never showing a variable value', () => {
    const secret = 'PLANTED-env-value-7f3a';
    fc.assert(
      fc.property(templateString, (s) => {
        const vars: TemplateVars = {
          user: secret,
          hostname: secret,
          profile: 'p',
          env: { SET_A: secret, SET_EMPTY: '', HOME: secret },
        };
        const got = run(s, vars);
        if ('ok' in got) return true;
        if (!isKeybrokerError(got.error)) return false;
        const line = formatErrorLine(got.error);
        return (
          /^keybroker: [\x20-\x7e]+ \([\x20-\x7e]+\)$/.test(line) &&
          !line.includes(secret) &&
          line.includes('/profiles/p/source/path')
        );
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('agrees with validation: a string that validates expands once its variables are set', () => {
    fc.assert(
      fc.property(templateString, varsArb, (s, vars) => {
        const bad = findUnknownTemplate(s);
        // Every variable the string names is set (names may be odd: "${env:${x}" names "${x").
        const env: Record<string, string> = {};
        for (const m of s.matchAll(/\$\{env:([^}]+)\}/g)) env[m[1]!] = 'set';
        const got = run(s, { ...vars, env });
        if (bad === undefined) return 'ok' in got;
        return 'error' in got && isKeybrokerError(got.error);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

describe('expandTemplatesDeep', () => {
  it('expands every string at any depth, keeps keys and every other value, and never touches a prototype', () => {
    const json = fc.letrec((tie) => ({
      value: fc.oneof(
        { depthSize: 'small' },
        templateString,
        fc.integer(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 3 }),
        fc.dictionary(fc.oneof(fc.string({ maxLength: 5 }), fc.constant('__proto__')), tie('value'), {
          maxKeys: 3,
        }),
      ),
    })).value;
    fc.assert(
      fc.property(json, varsArb, (value, vars) => {
        const safeVars = { ...vars, env: { ...vars.env, UNSET_B: 'b' } };
        let out: unknown;
        try {
          out = expandTemplatesDeep(value, safeVars, '/profiles/p/source', where);
        } catch (e) {
          return isKeybrokerError(e) && e.exitCode === ExitCode.config;
        }
        const same = (a: unknown, b: unknown, pointer: string): boolean => {
          if (typeof a === 'string') {
            const want = reference(a, safeVars);
            return 'ok' in want && b === want.ok;
          }
          if (Array.isArray(a))
            return Array.isArray(b) && a.every((x, i) => same(x, b[i], `${pointer}/${i}`));
          if (a !== null && typeof a === 'object') {
            if (b === null || typeof b !== 'object' || Object.getPrototypeOf(b) !== Object.prototype)
              return false;
            const ka = Object.keys(a);
            const kb = Object.keys(b);
            return (
              ka.length === kb.length &&
              ka.every(
                (k) =>
                  Object.hasOwn(b, k) &&
                  same(
                    (a as Record<string, unknown>)[k],
                    (b as Record<string, unknown>)[k],
                    `${pointer}/${pointerKey(k)}`,
                  ),
              )
            );
          }
          return Object.is(a, b);
        };
        return same(value, out, '') && ({} as Record<string, unknown>).polluted === undefined;
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('an error names the JSON pointer of the value that failed', () => {
    const err = (() => {
      try {
        expandTemplatesDeep(
          { a: ['x', { 'b/c': '${env:NOPE_X}' }] },
          {
            user: 'u',
            hostname: 'h',
            profile: 'p',
            env: {},
          },
          '/profiles/p/source',
          where,
        );
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isKeybrokerError(err) && formatErrorLine(err)).toBe(
      'keybroker: config /tmp/config.json (at /profiles/p/source/a/1/b~1c): /profiles/p/source/a/1/b~1c: environment variable NOPE_X is not set (used as ${env:NOPE_X}) (set NOPE_X or change that value; run keybroker explain ERR_CONFIG_ENV_UNSET)',
    );
  });
});
