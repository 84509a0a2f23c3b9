// The identity provider's token endpoint as the fleet's upstream (`--upstream oidc`): panva's
// oidc-provider (a certified OpenID provider) in this process on 127.0.0.1, with refresh-token
// rotation and reuse detection on (a rotated-out refresh token presented again revokes the whole
// login). Each laptop is one user with one login; every renewal is a real refresh_token grant
// whose answer carries a new refresh token, which the laptop keeps for its next renewal, and an
// ID token living `lifetimeSec` by the provider's own `iat`/`exp`.
//
// Same interface as the counting server (server.mjs): request(tMs, laptop) → { ok, token,
// expiresAtMs }, `times` of the grants that succeeded, `failures` of those answered 503 during a
// configured outage. The provider runs on the real clock; a token's lifetime is read from the
// token itself (exp - iat) and laid onto the simulation's virtual time.
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';

const CLIENT_ID = 'keybroker-fleet';
const SCOPE = 'openid email profile offline_access';

/**
 * oidc-provider's own memory adapter is an LRU of 1000 entries, too small for a fleet: its
 * adapter interface (find, upsert, consume, destroy, revokeByGrantId, findByUid/UserCode) over
 * plain Maps, expiry by the real clock.
 */
function mapAdapter() {
  const stores = new Map();
  const grants = new Map();
  return class MapAdapter {
    constructor(name) {
      this.name = name;
      if (!stores.has(name)) stores.set(name, new Map());
      this.store = stores.get(name);
    }
    async upsert(id, payload, expiresIn) {
      this.store.set(id, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
      if (payload.grantId) {
        if (!grants.has(payload.grantId)) grants.set(payload.grantId, []);
        grants.get(payload.grantId).push([this.name, id]);
      }
    }
    async find(id) {
      const e = this.store.get(id);
      if (!e) return undefined;
      if (e.expiresAt <= Date.now()) {
        this.store.delete(id);
        return undefined;
      }
      return e.payload;
    }
    async findByUid(uid) {
      for (const [id, e] of this.store) if (e.payload.uid === uid) return this.find(id);
      return undefined;
    }
    async findByUserCode(userCode) {
      for (const [id, e] of this.store) if (e.payload.userCode === userCode) return this.find(id);
      return undefined;
    }
    async consume(id) {
      const e = this.store.get(id);
      if (e) e.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id) {
      this.store.delete(id);
    }
    async revokeByGrantId(grantId) {
      for (const [name, id] of grants.get(grantId) ?? []) stores.get(name)?.delete(id);
      grants.delete(grantId);
    }
  };
}

/** The provider's development notices would mix into the simulation's report: dropped. */
function quietProvider() {
  const c = console; // oidc-provider writes its notices through console
  for (const k of ['info', 'warn', 'log']) {
    const orig = c[k];
    c[k] = (...a) => {
      if (typeof a[0] === 'string' && a[0].startsWith('oidc-provider ')) return;
      orig(...a);
    };
  }
}

const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
const digest = (s) => createHash('sha256').update(s).digest('base64url');

export async function startOidcUpstream({
  lifetimeSec = 3600,
  outageFromMs = Number.POSITIVE_INFINITY,
  outageUntilMs = Number.NEGATIVE_INFINITY,
} = {}) {
  quietProvider();
  const { default: Provider } = await import('oidc-provider');
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(privateKey)), alg: 'ES256', use: 'sig', kid: 'fleet' };
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    adapter: mapAdapter(),
    jwks: { keys: [jwk] },
    clients: [
      {
        client_id: CLIENT_ID,
        application_type: 'native',
        token_endpoint_auth_method: 'none',
        redirect_uris: ['http://127.0.0.1/callback'],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        id_token_signed_response_alg: 'ES256',
      },
    ],
    findAccount: async (_ctx, id) => ({
      accountId: id,
      claims: async () => ({ sub: id, email: `${id}@example.test`, email_verified: true, groups: ['eng'] }),
    }),
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['groups'] },
    conformIdTokenClaims: false,
    rotateRefreshToken: true,
    ttl: {
      IdToken: lifetimeSec,
      AccessToken: lifetimeSec,
      RefreshToken: 14 * 24 * 3600,
      Grant: 14 * 24 * 3600,
    },
    cookies: { keys: ['keybroker-fleet-cookie-key'] },
  });
  const times = [];
  const failures = [];
  const report = {
    /** refresh_token grants the provider refused (invalid_grant would be a reuse or a lost login). */
    refused: 0,
    /** Distinct refresh tokens presented, and how many of them were presented more than once. */
    presented: 0,
    presentedTwice: 0,
    /** Successful grants whose answer carried a new refresh token. */
    rotated: 0,
  };
  const seen = new Set();
  provider.use(async (ctx, next) => {
    if (!(ctx.method === 'POST' && ctx.path === '/token')) return next();
    const t = Number(ctx.get('x-sim-time-ms'));
    if (t >= outageFromMs && t < outageUntilMs) {
      failures.push(t);
      ctx.status = 503;
      ctx.body = { error: 'temporarily_unavailable' };
      return undefined;
    }
    await next();
    const presented = ctx.oidc?.params?.refresh_token;
    if (typeof presented === 'string') {
      const d = digest(presented);
      if (seen.has(d)) report.presentedTwice++;
      else {
        seen.add(d);
        report.presented++;
      }
    }
    if (ctx.status === 200) {
      times.push(t);
      if (typeof ctx.body?.refresh_token === 'string' && ctx.body.refresh_token !== presented)
        report.rotated++;
    } else report.refused++;
    return undefined;
  });
  server.on('request', provider.callback());
  const client = await provider.Client.find(CLIENT_ID);

  /**
   * The login each laptop starts with, as `keybroker login` leaves it: a grant with the offline
   * scope and its refresh token, made through the provider's own models (the sign-in pages are
   * not what this measures).
   */
  async function signIn(laptop) {
    const accountId = `user-${laptop}`;
    const grant = new provider.Grant({ accountId, clientId: CLIENT_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const rt = new provider.RefreshToken({
      accountId,
      client,
      grantId,
      scope: SCOPE,
      gty: 'urn:ietf:params:oauth:grant-type:device_code',
      authTime: Math.floor(Date.now() / 1000),
    });
    return rt.save();
  }

  const refreshTokens = new Map();
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const post = (tMs, form) =>
    new Promise((resolve, reject) => {
      const body = new URLSearchParams(form).toString();
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: '/token',
          method: 'POST',
          agent,
          headers: {
            'content-type': 'application/x-www-form-urlencoded',
            'content-length': Buffer.byteLength(body),
            'x-sim-time-ms': String(tMs),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode, text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  return {
    issuer,
    times,
    failures,
    report,
    /** One renewal of `laptop`'s login at virtual time tMs, with the newest refresh token it holds. */
    async request(tMs, laptop) {
      if (!refreshTokens.has(laptop)) refreshTokens.set(laptop, await signIn(laptop));
      const res = await post(tMs, {
        grant_type: 'refresh_token',
        refresh_token: refreshTokens.get(laptop),
        client_id: CLIENT_ID,
      });
      if (res.status !== 200) return { ok: false };
      const body = JSON.parse(res.text);
      // Kept the moment the answer is in, as keybroker keeps a rotated refresh token.
      if (body.refresh_token) refreshTokens.set(laptop, body.refresh_token);
      const { iat, exp } = claimsOf(body.id_token);
      return { ok: true, token: body.id_token, expiresAtMs: tMs + (exp - iat) * 1000 };
    },
    close() {
      agent.destroy();
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}
