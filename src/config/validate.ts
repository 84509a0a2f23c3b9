/**
 * Validation of the config against the one schema (./schema.ts), second stage only.
 *
 * Each layer is checked on its own first, so that an error names the file that holds it;
 * a layer may be partial (a user file that only changes the ttlMs of a managed profile), so
 * required keys are checked on the merged result, where the error names the file that set
 * the object missing the key.
 */
import { configError, isKeybrokerError, seeDocs } from '../errors.js';
import {
  type ConfigInputs,
  isObject,
  type LoadedConfig,
  locationOf,
  selectProfileName,
  templateVars,
} from './load.js';
import { CONFIG_SCHEMA, MANAGED_ONLY_KEYS, type Schema, type SchemaType } from './schema.js';
import { expandTemplates, findUnknownTemplate, pointerKey } from './templates.js';
import type { ConfigLayer } from './types.js';

export interface Issue {
  pointer: string;
  message: string;
  hint?: string;
}

export interface ValidateConfigOptions {
  /**
   * `config validate`: a `${env:NAME}` whose variable is unset is an error wherever it is. The
   * token path passes false: an unset variable in a profile not in use does not matter, and
   * the profile in use reports it when it is resolved.
   */
  requireEnv?: boolean;
}

/**
 * Throws a configError (exit 2) for the first problem found, naming the file and the JSON path.
 * With `inputs`, templates are expanded before a value's format is checked (contract §3), so
 * `"address": "${env:CORP_VAULT_ADDR}"` is checked as the URL it becomes.
 */
export function validateConfig(
  loaded: LoadedConfig,
  inputs?: ConfigInputs,
  options: ValidateConfigOptions = {},
): void {
  for (const layer of loaded.layers) {
    if (!layer.exists || layer.ignored) continue;
    validateLayer(layer, inputs && { loaded, inputs, requireEnv: options.requireEnv === true });
  }
  const expand =
    inputs && expander(loaded, inputs, options.requireEnv === true, (p) => locationOf(loaded, p));
  const issue =
    validateValue(CONFIG_SCHEMA, loaded.merged, { partial: false, ...(expand ? { expand } : {}) }) ??
    semanticIssue(loaded);
  if (issue) throw issueError(locationOf(loaded, issue.pointer), issue);
}

export interface LayerContext {
  loaded: LoadedConfig;
  inputs: ConfigInputs;
  requireEnv: boolean;
}

/** One layer on its own (it may be partial): the schema, templates expanded, and the managed-only keys. */
export function validateLayer(layer: ConfigLayer, context?: LayerContext): void {
  const where = `config ${layer.path}`;
  // Without the inputs to expand them (the managed file checked alone while loading), a value
  // with a template is checked once expanded, by validateConfig.
  const expand = context
    ? expander(context.loaded, context.inputs, context.requireEnv, () => where)
    : (v: string) => (v.includes('${') ? undefined : v);
  const issue =
    validateValue(CONFIG_SCHEMA, layer.raw, { partial: true, expand }) ??
    (layer.kind === 'user' ? managedOnlyIssue(layer.raw) : undefined);
  if (issue) throw issueError(where, issue);
}

/** Keys that only the managed file may set: a user file (which KEYBROKER_CONFIG can select) must not loosen them. */
function managedOnlyIssue(raw: unknown): Issue | undefined {
  if (!isObject(raw)) return undefined;
  const key = MANAGED_ONLY_KEYS.find((k) => Object.hasOwn(raw, k));
  if (key === undefined) return undefined;
  return {
    pointer: `/${key}`,
    message: 'only the managed config may set this',
    hint: 'move it to the managed config, or remove it',
  };
}

/** Where resolveProfile expands templates: a profile's source, the audit file, the identity. */
const EXPANDED = /^\/profiles\/([^/]+)\/source(?:\/|$)|^\/audit\/file$|^\/identity$/;

/**
 * Expands a string value the way resolveProfile will before its format is checked. Returns
 * undefined (skip the format checks) for a variable that is unset when `requireEnv` is false.
 */
function expander(
  loaded: LoadedConfig,
  inputs: ConfigInputs,
  requireEnv: boolean,
  where: (pointer: string) => string,
): (value: string, pointer: string) => string | undefined {
  return (value, pointer) => {
    const m = EXPANDED.exec(pointer);
    if (!value.includes('${') || !m) return value;
    const profile = m[1] !== undefined ? m[1].replace(/~1/g, '/').replace(/~0/g, '~') : undefined;
    try {
      const vars = templateVars(loaded, inputs, profile ?? selectProfileName(loaded, inputs));
      return expandTemplates(
        value,
        pointer === '/identity' ? { ...vars, identity: undefined } : vars,
        pointer,
        where,
      );
    } catch (e) {
      if (!requireEnv && isKeybrokerError(e) && e.code === 'ERR_CONFIG_ENV_UNSET') return undefined;
      throw e;
    }
  };
}

/** `keybroker config schema`: the draft 2020-12 JSON Schema of a config file. */
export function configJsonSchema(): object {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://github.com/keybroker/keybroker/schema/config.json',
    title: 'keybroker config',
    ...CONFIG_SCHEMA,
  };
}

function issueError(where: string, issue: Issue) {
  return configError('ERR_CONFIG_INVALID', `${where}: ${issue.pointer || '/'}: ${issue.message}`, {
    hint: `${issue.hint ? `${issue.hint}; ` : ''}${seeDocs('ERR_CONFIG_INVALID')}`,
  });
}

/** Checks that hold across keys: a default profile that exists, templates that can expand. */
function semanticIssue(loaded: LoadedConfig): Issue | undefined {
  const merged = loaded.merged as Record<string, unknown>;
  const profiles = isObject(merged.profiles) ? merged.profiles : {};
  if (typeof merged.defaultProfile === 'string' && !Object.hasOwn(profiles, merged.defaultProfile)) {
    return {
      pointer: '/defaultProfile',
      message: `names profile "${merged.defaultProfile}", which is not defined`,
      hint: `define profiles.${merged.defaultProfile} or change defaultProfile`,
    };
  }
  return templateIssue(merged.profiles, '/profiles') ?? templateIssue(merged.audit, '/audit');
}

function templateIssue(value: unknown, pointer: string): Issue | undefined {
  if (typeof value === 'string') {
    const bad = findUnknownTemplate(value);
    return bad === undefined
      ? undefined
      : {
          pointer,
          message: `unknown template ${bad}`,
          hint: `use \${user}, \${identity}, \${hostname}, \${profile} or \${env:NAME}`,
        };
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = templateIssue(value[i], `${pointer}/${i}`);
      if (issue) return issue;
    }
  } else if (isObject(value)) {
    for (const [k, v] of Object.entries(value)) {
      const issue = templateIssue(v, `${pointer}/${pointerKey(k)}`);
      if (issue) return issue;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// A validator for the JSON Schema subset that schema.ts uses.

export interface ValidateOptions {
  /** A single layer: required keys are not enforced, a union without its discriminator accepts any branch's keys. */
  partial: boolean;
  /** Expands a string's templates before its format is checked; undefined skips the format checks. */
  expand?: (value: string, pointer: string) => string | undefined;
}

const TYPE_NAMES: Record<SchemaType, string> = {
  object: 'an object',
  string: 'a string',
  integer: 'an integer',
  boolean: 'a boolean',
  array: 'an array',
  null: 'null',
};

const patterns = new Map<string, RegExp>();
function regex(p: string): RegExp {
  let r = patterns.get(p);
  if (!r) {
    r = new RegExp(p, 'u');
    patterns.set(p, r);
  }
  return r;
}

function hasType(value: unknown, t: SchemaType): boolean {
  switch (t) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return typeof value === 'number' && Number.isSafeInteger(value);
    case 'null':
      return value === null;
    default:
      return typeof value === t;
  }
}

const quoteList = (xs: readonly unknown[]) => xs.map((x) => JSON.stringify(x)).join(', ');

/** The first problem of `value` against `schema`, or undefined. Never quotes the value itself. */
export function validateValue(
  schema: Schema,
  value: unknown,
  options: ValidateOptions,
  pointer = '',
): Issue | undefined {
  const hint = schema.description;
  const issue = (message: string, extra: Partial<Issue> = {}): Issue => ({
    pointer,
    message,
    ...(hint ? { hint } : {}),
    ...extra,
  });

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t)))
      return issue(`must be ${types.map((t) => TYPE_NAMES[t]).join(' or ')}`);
  }
  if (schema.const !== undefined && value !== schema.const)
    return issue(`must be ${JSON.stringify(schema.const)}`);
  // The format is checked on what the value becomes, not on its template.
  const expanded = typeof value === 'string' && options.expand ? options.expand(value, pointer) : value;
  if (expanded === undefined) return undefined;
  if (schema.enum && !schema.enum.includes(expanded as never))
    return issue(`must be one of ${quoteList(schema.enum)}`);
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum)
      return issue(`must be at least ${schema.minimum}`);
    if (schema.maximum !== undefined && value > schema.maximum)
      return issue(`must be at most ${schema.maximum}`);
  }
  if (typeof expanded === 'string') {
    if (schema.minLength !== undefined && expanded.length < schema.minLength) {
      return issue(
        schema.minLength === 1 ? 'must not be empty' : `must be at least ${schema.minLength} characters`,
      );
    }
    if (schema.pattern !== undefined && !regex(schema.pattern).test(expanded))
      return issue(`must match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) {
      return issue(`must have at least ${schema.minItems} item${schema.minItems === 1 ? '' : 's'}`);
    }
    if (schema.items) {
      for (let i = 0; i < value.length; i++) {
        const inner = validateValue(schema.items, value[i], options, `${pointer}/${i}`);
        if (inner) return inner;
      }
    }
  }
  if (schema.oneOf) {
    const inner = validateOneOf(schema, value, options, pointer);
    if (inner) return inner;
  }
  if (isObject(value)) {
    const inner = validateObject(schema, value, options, pointer);
    if (inner) return inner;
  }
  return undefined;
}

function validateObject(
  schema: Schema,
  value: Record<string, unknown>,
  options: ValidateOptions,
  pointer: string,
): Issue | undefined {
  if (!options.partial && schema.required) {
    for (const k of schema.required) {
      if (!Object.hasOwn(value, k))
        return { pointer: `${pointer}/${pointerKey(k)}`, message: 'required key missing' };
    }
  }
  if (schema.not?.required?.every((k) => Object.hasOwn(value, k))) {
    return {
      pointer,
      message: `${quoteList(schema.not.required).replace(/, (?=[^,]*$)/, ' and ')} cannot both be set`,
    };
  }
  for (const [k, v] of Object.entries(value)) {
    const at = `${pointer}/${pointerKey(k)}`;
    const names = schema.propertyNames;
    if (names?.pattern !== undefined && !regex(names.pattern).test(k)) {
      return withDescription({ pointer: at, message: `key must match ${names.pattern}` }, names);
    }
    if (names?.not?.enum?.includes(k)) {
      return withDescription(
        { pointer: at, message: `key cannot be set here (reserved: ${names.not.enum.join(', ')})` },
        names,
      );
    }
    const sub = schema.properties && Object.hasOwn(schema.properties, k) ? schema.properties[k] : undefined;
    if (sub) {
      const inner = validateValue(sub, v, options, at);
      if (inner) return inner;
    } else if (schema.additionalProperties === false) {
      return {
        pointer: at,
        message: 'unknown key',
        hint: `allowed here: ${Object.keys(schema.properties ?? {}).join(', ')}`,
      };
    } else if (schema.additionalProperties) {
      const inner = validateValue(schema.additionalProperties, v, options, at);
      if (inner) return inner;
    }
  }
  return undefined;
}

function withDescription(issue: Issue, schema: Schema): Issue {
  return schema.description ? { ...issue, hint: schema.description } : issue;
}

/** The key whose `const` tells the branches apart (`type`, `method`), if there is one. */
function discriminatorOf(branches: Schema[]): string | undefined {
  const first = branches[0]?.properties;
  if (!first) return undefined;
  for (const [k, s] of Object.entries(first)) {
    if (s.const !== undefined && branches.every((b) => b.properties?.[k]?.const !== undefined)) return k;
  }
  return undefined;
}

function validateOneOf(
  schema: Schema,
  value: unknown,
  options: ValidateOptions,
  pointer: string,
): Issue | undefined {
  const branches = schema.oneOf!;
  const hint = schema.description;
  const withHint = (i: Issue): Issue => (hint && !i.hint ? { ...i, hint } : i);
  const discriminator = discriminatorOf(branches);
  if (discriminator !== undefined) {
    if (!isObject(value)) return withHint({ pointer, message: 'must be an object' });
    const consts = branches.map((b) => b.properties![discriminator]!.const!);
    const at = `${pointer}/${discriminator}`;
    if (!Object.hasOwn(value, discriminator)) {
      if (!options.partial) return withHint({ pointer: at, message: 'required key missing' });
      return validateAgainstUnion(branches, value, options, pointer);
    }
    const i = consts.indexOf(value[discriminator] as string);
    if (i < 0) return withHint({ pointer: at, message: `must be one of ${quoteList(consts)}` });
    return validateValue(branches[i]!, value, options, pointer);
  }
  // Told apart by which of their required keys is present (signingKey: file | env | keychain).
  const keyed = branches.every((b) => b.type === 'object' && b.required?.length === 1);
  if (keyed) {
    if (!isObject(value)) return withHint({ pointer, message: 'must be an object' });
    const keys = branches.map((b) => b.required![0]!);
    const present = branches.filter((b) => Object.hasOwn(value, b.required![0]!));
    if (present.length !== 1)
      return withHint({ pointer, message: `must have exactly one of ${quoteList(keys)}` });
    return validateValue(present[0]!, value, options, pointer);
  }
  // Plain alternatives (audience: a string or an array of strings).
  for (const b of branches) {
    if (!validateValue(b, value, options, pointer)) return undefined;
  }
  const shapes = branches.map(describeShape);
  return withHint({ pointer, message: `must be ${shapes.join(' or ')}` });
}

function describeShape(s: Schema): string {
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  if (t === 'array' && s.items?.type && !Array.isArray(s.items.type)) {
    return `${s.minItems ? 'a non-empty ' : 'an '}array of ${TYPE_NAMES[s.items.type].replace(/^an? /, '')}s`;
  }
  return t ? TYPE_NAMES[t] : 'a valid value';
}

/** A partial layer's union without its discriminator: each key must fit some branch. */
function validateAgainstUnion(
  branches: Schema[],
  value: Record<string, unknown>,
  options: ValidateOptions,
  pointer: string,
): Issue | undefined {
  for (const [k, v] of Object.entries(value)) {
    const owner = branches.find((b) => b.properties && Object.hasOwn(b.properties, k));
    const at = `${pointer}/${pointerKey(k)}`;
    if (!owner) {
      const all = [...new Set(branches.flatMap((b) => Object.keys(b.properties ?? {})))];
      return { pointer: at, message: 'unknown key', hint: `allowed here: ${all.join(', ')}` };
    }
    const inner = validateValue(owner.properties![k]!, v, options, at);
    if (inner) return inner;
  }
  return undefined;
}
