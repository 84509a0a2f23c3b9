/**
 * The certificates every TLS connection trusts (contract §3a): Node's bundled roots, the
 * operating system's store, NODE_EXTRA_CA_CERTS, and the source's own `caCert`.
 *
 * Passing `ca` to a TLS socket replaces Node's roots (and NODE_EXTRA_CA_CERTS), so the list
 * is always built whole, here, and turned into one SecureContext per client (parsing a few
 * hundred certificates once, not once per connection).
 *
 * The OS store:
 * - Linux (every Node version): OpenSSL's default locations, read as the vault CLI (Go)
 *   reads them: `SSL_CERT_FILE` if set, else the first distribution bundle that exists
 *   (Debian, Fedora/RHEL, SUSE, Alpine paths); `SSL_CERT_DIR` (colon-separated) if set, else
 *   /etc/ssl/certs and /etc/pki/tls/certs only when no bundle file was found (the bundle is
 *   made from them).
 * - macOS and Windows: `tls.getCACertificates('system')` (Node 22.15+, 23.5+: the System and
 *   login keychains; the ROOT and CA stores). Node 20 has no such call: there, only Node's
 *   roots, NODE_EXTRA_CA_CERTS and caCert apply, and `doctor` says so.
 *
 * Nothing here runs on a cache hit: only the network clients, loaded on a miss, call it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';

type Env = Readonly<Record<string, string | undefined>>;

/** Go's crypto/x509 list (root_linux.go), in its order. */
const LINUX_CERT_FILES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/pki/tls/certs/ca-bundle.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/pki/tls/cacert.pem',
  '/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem',
  '/etc/ssl/cert.pem',
];
const LINUX_CERT_DIRS = ['/etc/ssl/certs', '/etc/pki/tls/certs'];

export interface TrustPart {
  /** `Node's bundled roots`, `/etc/ssl/certs/ca-certificates.crt (SSL_CERT_FILE)`, `caCert /x.pem`. */
  label: string;
  count: number;
}

export interface TrustStore {
  ca: string[];
  parts: TrustPart[];
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function pemCertificates(text: string): string[] {
  return text.match(PEM_CERT) ?? [];
}

function readPemFile(file: string): string[] {
  try {
    return pemCertificates(fs.readFileSync(file, 'utf8'));
  } catch {
    return [];
  }
}

function readPemDir(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of names.sort()) {
    for (const pem of readPemFile(path.join(dir, name))) {
      if (!seen.has(pem)) {
        seen.add(pem);
        out.push(pem);
      }
    }
  }
  return out;
}

type GetCa = (type: 'default' | 'system' | 'bundled' | 'extra') => string[];

function getCaCertificates(): GetCa | undefined {
  const f = (tls as unknown as { getCACertificates?: GetCa }).getCACertificates;
  return typeof f === 'function' ? f : undefined;
}

/** The OS store's certificates and where they came from. */
function systemCertificates(
  env: Env,
  platform: NodeJS.Platform = process.platform,
): TrustPart & {
  ca: string[];
} {
  if (platform === 'linux') {
    const parts: string[] = [];
    const ca: string[] = [];
    const fileVar = env.SSL_CERT_FILE?.trim();
    const files = fileVar ? [fileVar] : LINUX_CERT_FILES;
    const file = files.find((f) => fs.existsSync(f));
    if (file) {
      ca.push(...readPemFile(file));
      parts.push(fileVar ? `${file} (SSL_CERT_FILE)` : file);
    } else if (fileVar) {
      parts.push(`${fileVar} (SSL_CERT_FILE, missing)`);
    }
    const dirVar = env.SSL_CERT_DIR?.trim();
    const dirs = dirVar ? dirVar.split(':').filter(Boolean) : file ? [] : LINUX_CERT_DIRS;
    for (const dir of dirs) {
      const found = readPemDir(dir);
      if (found.length > 0 || dirVar) parts.push(`${dir}${dirVar ? ' (SSL_CERT_DIR)' : ''}`);
      ca.push(...found);
    }
    return { label: `OS store: ${parts.join(', ') || 'none found'}`, count: ca.length, ca };
  }
  const get = getCaCertificates();
  if (!get) {
    return {
      label: `OS store: not available on Node ${process.versions.node} (needs 22.15+)`,
      count: 0,
      ca: [],
    };
  }
  const ca = get('system');
  return {
    label: platform === 'darwin' ? 'OS store: macOS keychains' : 'OS store: Windows certificate store',
    count: ca.length,
    ca,
  };
}

/** NODE_EXTRA_CA_CERTS, which an explicit CA list would otherwise drop. */
function extraCertificates(env: Env): TrustPart & { ca: string[] } {
  const file = env.NODE_EXTRA_CA_CERTS?.trim();
  if (!file) return { label: 'NODE_EXTRA_CA_CERTS not set', count: 0, ca: [] };
  const ca = readPemFile(file);
  return { label: `NODE_EXTRA_CA_CERTS ${file}`, count: ca.length, ca };
}

/** Node's roots + the OS store + NODE_EXTRA_CA_CERTS + each `caCert` given. */
export function loadTrustStore(env: Env, extra: { label: string; pem: string | Buffer }[] = []): TrustStore {
  const bundled = [...tls.rootCertificates];
  const system = systemCertificates(env);
  const fromEnv = extraCertificates(env);
  const parts: TrustPart[] = [{ label: "Node's bundled roots", count: bundled.length }, system];
  if (fromEnv.count > 0) parts.push(fromEnv);
  const ca = [...bundled, ...system.ca, ...fromEnv.ca];
  for (const e of extra) {
    const pems = pemCertificates(e.pem.toString());
    ca.push(...(pems.length > 0 ? pems : [e.pem.toString()]));
    parts.push({ label: e.label, count: Math.max(1, pems.length) });
  }
  return { ca: [...new Set(ca)], parts: parts.map(({ label, count }) => ({ label, count })) };
}

/** `Node's bundled roots (146) + OS store: /etc/ssl/certs/ca-certificates.crt (140) + caCert /x.pem (1)`. */
export function describeTrust(store: TrustStore): string {
  return store.parts.map((p) => `${p.label} (${p.count})`).join(' + ');
}
