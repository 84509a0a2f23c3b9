/** ACL policies written in HCL, and the capabilities a token's policies grant on a path. */

import type { Namespace, Token } from './state.js';

/** `path "x" { capabilities = ["read"] }` blocks of an HCL policy. */
export function parsePolicy(hcl: string): { path: string; caps: string[] }[] {
  const rules: { path: string; caps: string[] }[] = [];
  for (const m of hcl.matchAll(/path\s+"([^"]+)"\s*\{([^}]*)\}/g)) {
    const caps = /capabilities\s*=\s*\[([^\]]*)\]/.exec(m[2] ?? '');
    rules.push({
      path: m[1]!,
      caps: (caps?.[1] ?? '')
        .split(',')
        .map((s) => s.trim().replace(/^"|"$/g, ''))
        .filter(Boolean),
    });
  }
  return rules;
}

/** Vault's path matching: `+` is one segment, a trailing `*` a prefix. */
function pathMatches(rule: string, p: string): boolean {
  const glob = rule.endsWith('*');
  const body = glob ? rule.slice(0, -1) : rule;
  const re = body
    .split('+')
    .map((s) => s.replace(/[.*?^${}()|[\]\\]/g, '\\$&'))
    .join('[^/]+');
  return new RegExp(`^${re}${glob ? '' : '$'}`).test(p);
}

function capabilitiesFor(ns: Namespace, token: Token, p: string): Set<string> {
  const caps = new Set<string>();
  if (token.root) return new Set(['root']);
  for (const name of token.policies) {
    if (name === 'root') return new Set(['root']);
    const hcl = ns.policies.get(name);
    if (!hcl) continue;
    for (const rule of parsePolicy(hcl))
      if (pathMatches(rule.path, p)) for (const c of rule.caps) caps.add(c);
  }
  if (caps.has('deny')) return new Set();
  return caps;
}

/** Whether the token may call `method` on `p` (LIST needs list, writes update or create). */
export function allowed(ns: Namespace, token: Token, method: string, p: string): boolean {
  const need =
    method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : method === 'LIST' ? 'list' : 'update';
  const caps = capabilitiesFor(ns, token, p);
  return caps.has('root') || caps.has(need) || (need === 'update' && caps.has('create'));
}
