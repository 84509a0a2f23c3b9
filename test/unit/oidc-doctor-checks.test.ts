/**
 * Doctor's oidc checks that depend on what a provider publishes or puts in a token, for the
 * providers the e2e tests cannot stand up (a Google-like discovery document without
 * offline_access, a provider without the refresh_token grant) and for claim values
 * (long group lists, empty claims, tokens that are not JWTs).
 */
import { describe, expect, it } from 'vitest';
import type { OidcSourceConfig } from '../../src/config/types.js';
import { describeClaims, offlineOffered, oidcProbeClaims } from '../../src/sources/oidc-checks.js';

const src = (extra: Partial<OidcSourceConfig> = {}): OidcSourceConfig => ({
  type: 'oidc',
  issuer: 'https://idp.example.com',
  clientId: 'keybroker',
  ...extra,
});

describe('source.oidc.offline: what the discovery document says about refresh tokens', () => {
  it('says nothing when the document lists neither grants nor scopes', () => {
    expect(offlineOffered(src(), { issuer: 'https://idp.example.com' })).toBeUndefined();
  });

  it('fails when the provider does not offer the refresh_token grant', () => {
    expect(offlineOffered(src(), { grant_types_supported: ['authorization_code', 'implicit'] })).toEqual({
      id: 'source.oidc.offline',
      status: 'fail',
      message:
        'the provider does not offer the refresh_token grant (grant_types_supported: authorization_code, implicit)',
      code: 'ERR_OIDC_NO_REFRESH_TOKEN',
      hint: 'enable refresh tokens for this client at the provider (docs/oidc.md, provider recipes); run keybroker explain ERR_OIDC_NO_REFRESH_TOKEN',
    });
  });

  it('fails when scopes ask for offline_access and the provider (Google) does not know it', () => {
    const google = {
      scopes_supported: ['openid', 'email', 'profile'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
    };
    expect(offlineOffered(src(), google)).toMatchObject({
      status: 'fail',
      message:
        'scopes ask for offline_access, which the provider does not offer (scopes_supported: openid, email, profile)',
      hint: `remove "offline_access" from scopes and use the provider's own way to get a refresh token (Google: a desktop client's first consent; docs/oidc.md, provider recipes); run keybroker explain ERR_OIDC_NO_REFRESH_TOKEN`,
    });
    // Google's recipe: no offline_access in scopes.
    expect(offlineOffered(src({ scopes: ['openid', 'email', 'profile'] }), google)).toEqual({
      id: 'source.oidc.offline',
      status: 'pass',
      message: 'the provider offers the refresh_token grant',
    });
  });

  it('passes with both published and asked for', () => {
    expect(
      offlineOffered(src(), {
        scopes_supported: ['openid', 'offline_access'],
        grant_types_supported: ['refresh_token'],
      }),
    ).toMatchObject({
      status: 'pass',
      message: 'the provider offers the refresh_token grant and the offline_access scope',
    });
  });
});

describe('claims: names and non-secret values, against requireClaims', () => {
  it('shows identity claims with values, exp as a time, other claims by name only, long lists cut', () => {
    const groups = Array.from({ length: 12 }, (_, i) => `g${i}`);
    expect(
      describeClaims({
        sub: 'u1',
        exp: 1796393448,
        iat: 1796389848,
        groups,
        at_hash: 'abc',
        aud: ['a', 'b'],
        name: `x${'y'.repeat(100)}`,
        dept: 'eng',
      }),
    ).toBe(
      `sub=u1, aud=[a, b], name=x${'y'.repeat(79)}…, groups=[g0, g1, g2, g3, g4, g5, g6, g7, g8, g9, … 12 in all], exp=2026-12-04T14:10:48.000Z; also at_hash, dept, iat`,
    );
    // A required claim is shown with its value.
    expect(describeClaims({ sub: 'u1', dept: 'eng' }, ['dept'])).toBe('sub=u1, dept=eng');
  });

  it('a required claim present but empty is a warning: the token path accepts it, the gateway maps nothing', () => {
    const r = oidcProbeClaims(src({ requireClaims: ['email', 'groups'] }), 'sso', {
      sub: 'u1',
      email: 'u1@example.com',
      groups: [],
    });
    expect(r).toEqual({
      id: 'probe.claims',
      status: 'warn',
      message:
        'the renewed token carries sub=u1, email=u1@example.com, groups=[]; requireClaims: groups empty, email present',
      code: 'ERR_OIDC_CLAIMS_MISSING',
      hint: 'give the user a value at the provider (group membership, profile attributes) or map the claim differently; run keybroker explain ERR_OIDC_CLAIMS_MISSING',
    });
  });

  it('without requireClaims the claims are listed and pass', () => {
    expect(oidcProbeClaims(src(), 'sso', { sub: 'u1' })).toEqual({
      id: 'probe.claims',
      status: 'pass',
      message: 'the renewed token carries sub=u1; no requireClaims',
    });
  });

  it('a token that is not a JWT fails requireClaims, as the token path does', () => {
    expect(oidcProbeClaims(src({ requireClaims: ['email'] }), 'sso', undefined)).toMatchObject({
      status: 'fail',
      message: 'the renewed token is not a JWT: it carries no claims keybroker can read',
      code: 'ERR_OIDC_CLAIMS_MISSING',
    });
    expect(oidcProbeClaims(src(), 'sso', undefined).status).toBe('info');
  });

  it('claim values reach no terminal as control characters', () => {
    const r = oidcProbeClaims(src(), 'sso', { sub: 'u1\u001b]0;pwned\u0007', email: 'e\nx' });
    expect(r.message).toBe('the renewed token carries sub=u1?]0;pwned?, email=e?x; no requireClaims');
  });
});
