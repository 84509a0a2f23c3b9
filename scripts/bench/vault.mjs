// Bench module (scripts/bench.mjs): a cold fetch from Vault KV (`keybroker --no-cache`, node-vault
// loaded, token auth, one preflight and one read against the local Vault) against a cold JWT mint
// (`keybroker --no-cache`, jose only), both through /bin/sh -c. Run alone:
// `node scripts/bench.mjs --only 'cold Vault'`.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jwtSandbox, kb, startVault, vaultSandbox } from './lib/fixtures.mjs';

export default async function vaultBench(h) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kb-bench-vault-'));
  const vault = await startVault(dir);
  const v = vaultSandbox(h, 'vault', vault);
  const j = jwtSandbox(h, 'vault-vs-jwt');
  try {
    h.compare('cold Vault fetch (--no-cache) vs cold mint (--no-cache)', {
      a: { label: 'keybroker --no-cache (vault kv)', cmd: kb(h, '--no-cache'), env: v.env },
      b: { label: 'keybroker --no-cache (jwt mint)', cmd: kb(h, '--no-cache'), env: j.env },
    });
    h.compare('cold Vault fetch (--no-cache) vs bare node', {
      a: { label: 'keybroker --no-cache (vault kv)', cmd: kb(h, '--no-cache'), env: v.env },
      b: { label: `sh -c 'node -e 0' (${process.version})`, cmd: `${kb(h).split(' ')[0]} -e 0`, env: v.env },
    });
  } finally {
    vault.stop();
    v.cleanup();
    j.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
