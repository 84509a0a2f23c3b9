/** Doctor checks a vault or vault-identity source contributes: address, TLS, auth credentials; --probe asks /sys/health. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ResolvedProfile, VaultConnectionConfig } from '../config/types.js';
import { skewCheck } from '../doctor/checks/clock.js';
import { type DoctorScope, type Env, fromError } from '../doctor/checks/scope.js';
import { type CheckResult, check } from '../doctor/report.js';
import { assertPrivateFile } from '../platform/safe-fs.js';

export function vaultSourceChecks(src: VaultConnectionConfig, scope: DoctorScope): CheckResult[] {
  return vaultChecks(src, scope.env, scope.ctx.homeDir, scope.probe === true);
}

function fileCheck(
  id: string,
  what: string,
  file: string | undefined,
  privateFile: boolean,
): CheckResult | undefined {
  if (!file) return undefined;
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return check(id, 'fail', `${what} ${file}: does not exist`, {
      code: 'ERR_VAULT_CREDENTIAL_FILE',
      hint: `create it or fix the path in the config`,
    });
  }
  if (privateFile) {
    try {
      assertPrivateFile(file, st, what);
    } catch (e) {
      return fromError(id, e);
    }
  }
  return check(id, 'pass', `${what} ${file}: present`);
}

function vaultChecks(src: VaultConnectionConfig, env: Env, homeDir: string, probe: boolean): CheckResult[] {
  const out: CheckResult[] = [];
  if (!src.address) {
    out.push(
      check('source.address', 'fail', 'no Vault address: neither source.address nor VAULT_ADDR is set', {
        code: 'ERR_VAULT_NO_ADDRESS',
        hint: 'set VAULT_ADDR or "address" in the source',
      }),
    );
  } else {
    // With --probe, probe.vault says below whether it answers.
    const how = probe ? '' : ' (contacted only with --probe)';
    out.push(check('source.address', 'pass', `Vault at ${src.address}${how}`));
  }
  if (src.caCert) {
    const c = fileCheck('source.caCert', 'CA certificate', src.caCert, false);
    if (c) out.push(c);
  }
  if (src.tlsSkipVerify) {
    out.push(
      check('source.tls', 'warn', 'TLS certificate verification is off (tlsSkipVerify / VAULT_SKIP_VERIFY)', {
        code: 'ERR_VAULT_TLS',
        hint: 'point caCert (VAULT_CACERT) at your CA instead',
      }),
    );
  }
  const auth = src.auth ?? { method: 'token' as const };
  switch (auth.method) {
    case 'token': {
      const tokenFile = auth.tokenFile ?? path.join(homeDir, '.vault-token');
      if (env.VAULT_TOKEN) out.push(check('source.auth', 'pass', 'token auth with VAULT_TOKEN'));
      else if (fs.existsSync(tokenFile))
        out.push(fileCheck('source.auth', 'token auth: token file', tokenFile, true)!);
      else
        out.push(
          check('source.auth', 'fail', `token auth: neither VAULT_TOKEN nor ${tokenFile} is there`, {
            code: 'ERR_VAULT_NO_TOKEN',
            hint: 'run vault login, or set VAULT_TOKEN',
          }),
        );
      break;
    }
    case 'approle': {
      if (auth.secretIdEnv) {
        out.push(
          env[auth.secretIdEnv]
            ? check('source.auth', 'pass', `approle auth, secret id from ${auth.secretIdEnv}`)
            : check(
                'source.auth',
                'fail',
                `approle auth: environment variable ${auth.secretIdEnv} is not set`,
                {
                  code: 'ERR_VAULT_CREDENTIAL_ENV',
                  hint: `set ${auth.secretIdEnv}`,
                },
              ),
        );
      } else {
        out.push(
          fileCheck('source.auth', 'approle secret id file', auth.secretIdFile, true) ??
            check('source.auth', 'fail', 'approle auth: neither secretIdFile nor secretIdEnv is set', {
              code: 'ERR_CONFIG_INVALID',
              hint: 'set one of them in source.auth',
            }),
        );
      }
      break;
    }
    case 'kubernetes': {
      const jwtFile = auth.jwtFile ?? '/var/run/secrets/kubernetes.io/serviceaccount/token';
      out.push(
        fileCheck(
          'source.auth',
          `kubernetes auth (role ${auth.role}) service account token`,
          jwtFile,
          false,
        )!,
      );
      break;
    }
    case 'jwt': {
      out.push(fileCheck('source.auth', `jwt auth (role ${auth.role}) token file`, auth.jwtFile, false)!);
      break;
    }
    case 'cert': {
      out.push(
        fileCheck('source.auth', 'cert auth certificate file', auth.certFile, false)!,
        fileCheck('source.auth', 'cert auth key file', auth.keyFile, true)!,
      );
      break;
    }
  }
  return out;
}

/** `doctor --probe`: is the Vault server up, unsealed, and does its clock agree with ours. */
export async function vaultProbeChecks(
  src: VaultConnectionConfig & { address: string },
  resolved: ResolvedProfile,
  nowMs: () => number,
): Promise<CheckResult[]> {
  const checks: CheckResult[] = [];
  const { vaultHealth } = await import('../doctor/vault-health.js');
  try {
    const h = await vaultHealth(src.address, {
      ...(src.caCert ? { caCert: src.caCert } : {}),
      ...(src.tlsSkipVerify ? { tlsSkipVerify: true } : {}),
      ...(src.namespace ? { namespace: src.namespace } : {}),
      timeoutMs: resolved.timeoutMs,
    });
    if (h.sealed || h.status === 503) {
      checks.push(
        check('probe.vault', 'fail', `Vault at ${src.address} is sealed`, {
          code: 'ERR_VAULT_SEALED',
          hint: 'ask the Vault operators to unseal it',
        }),
      );
    } else if (h.status === 501 || h.initialized === false) {
      checks.push(
        check('probe.vault', 'fail', `Vault at ${src.address} is not initialised`, {
          code: 'ERR_VAULT_SERVER_ERROR',
          hint: 'check VAULT_ADDR points at the right server',
        }),
      );
    } else {
      checks.push(
        check(
          'probe.vault',
          'pass',
          `Vault at ${src.address} answers (HTTP ${h.status}${h.version ? `, version ${h.version}` : ''})`,
        ),
      );
    }
    if (h.serverDateMs !== undefined)
      checks.push(skewCheck(nowMs(), h.serverDateMs, `Vault at ${src.address}`));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    checks.push(
      check('probe.vault', 'fail', `Vault at ${src.address} cannot be reached (${code})`, {
        code: 'ERR_VAULT_UNREACHABLE',
        hint: 'check VAULT_ADDR, your network or VPN, and the CA certificate',
      }),
    );
  }
  return checks;
}
