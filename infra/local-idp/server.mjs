// carenet-local-idp: a local OIDC issuer that serves a Keycloak realm export at Keycloak's URL
// layout (/realms/<realm>/...). Everything about clients, users, roles, audiences and claims comes
// from the realm export file; see README.md. For local runs and tests only.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Provider, { errors } from 'oidc-provider';

// stdout carries exactly one line (the listening line); oidc-provider's notices go to stderr.
console.log = console.info = (...args) => console.error(...args);

const here = path.dirname(fileURLToPath(import.meta.url));
const env = process.env;
const config = {
  realmFile: path.resolve(here, env.IDP_REALM_FILE || '../keycloak/demo-realm.json'),
  extraUsersFile: env.IDP_EXTRA_USERS_FILE ? path.resolve(env.IDP_EXTRA_USERS_FILE) : undefined,
  // default outside the repository, so a private key never ends up in a commit
  keysFile: path.resolve(env.IDP_KEYS_FILE || path.join(os.tmpdir(), 'carenet-local-idp', 'private-jwks.json')),
  host: env.IDP_HOST || '127.0.0.1',
  port: Number(env.IDP_PORT ?? 0),
  publicUrl: env.IDP_PUBLIC_URL, // e.g. http://idp:8080 when services reach it by another name
  ttl: Number(env.IDP_TOKEN_TTL_SECONDS || 300),
  sessionTtl: Number(env.IDP_SESSION_TTL_SECONDS || 10 * 60 * 60), // Keycloak's SSO session max
};

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const lower = (s) => String(s).toLowerCase();
const asList = (v) => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

// ---------------------------------------------------------------- realm export -> model

function loadRealm(realmFile, extraUsersFile) {
  const rep = readJson(realmFile);
  if (!rep.realm) throw new Error(`${realmFile}: not a Keycloak realm export (no "realm")`);
  const users = [...(rep.users ?? []), ...(extraUsersFile ? readJson(extraUsersFile) : [])];
  // Keycloak creates a bare service-account user for a client whose export lacks one.
  for (const client of rep.clients ?? []) {
    if (client.serviceAccountsEnabled && !users.some((u) => u.serviceAccountClientId === client.clientId)) {
      users.push({ username: `service-account-${lower(client.clientId)}`, serviceAccountClientId: client.clientId });
    }
  }

  const byName = new Map();
  for (const user of users) {
    const key = lower(user.username);
    if (byName.has(key)) throw new Error(`duplicate user ${user.username}`);
    if (user.groups?.length) throw new Error(`user ${user.username}: groups are not supported here`);
    byName.set(key, user);
  }
  for (const client of rep.clients ?? []) {
    if (!callable(client)) continue;
    if (client.fullScopeAllowed === false) throw new Error(`client ${client.clientId}: fullScopeAllowed=false is not supported here`);
    if ((client.clientAuthenticatorType ?? 'client-secret') !== 'client-secret') {
      throw new Error(`client ${client.clientId}: only client-secret authentication is supported here`);
    }
  }
  return {
    name: rep.realm,
    rep,
    clients: new Map((rep.clients ?? []).map((c) => [c.clientId, c])),
    users: byName,
    usersById: new Map(users.map((u) => [subjectOf(u), u])),
    serviceAccounts: new Map(users.filter((u) => u.serviceAccountClientId).map((u) => [u.serviceAccountClientId, u])),
    roles: new Map((rep.roles?.realm ?? []).map((r) => [r.name, r])),
    clientScopes: new Map((rep.clientScopes ?? []).map((s) => [s.name, s])),
  };
}

// A client can get tokens here if Keycloak would give it some: service account, direct grant
// or the standard flow (authorization code, with the login page below).
function callable(client) {
  return client.enabled !== false && !client.bearerOnly
    && (client.serviceAccountsEnabled || client.directAccessGrantsEnabled || client.standardFlowEnabled);
}

// Keycloak's redirect URI rule: an exact match, or a pattern ending in `*` matching any URI that
// starts with what comes before the `*`. Query strings are compared as part of the URI.
function keycloakUriAllowed(value, patterns) {
  return patterns.some((p) => (p.endsWith('*') ? value.startsWith(p.slice(0, -1)) : value === p));
}

const postLogoutUrisOf = (client) => (client.attributes?.['post.logout.redirect.uris'] ?? '')
  .split('##').filter(Boolean);

// Keycloak's `sub` is the user id; users without one (extra test users) get a stable derived id.
function subjectOf(user) {
  if (user.id) return user.id;
  const h = crypto.createHash('sha256').update(`carenet-local-idp:${lower(user.username)}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

// Protocol mappers on the client itself plus those of its default client scopes defined in the file.
function mappersOf(realm, client) {
  const fromScopes = asList(client.defaultClientScopes)
    .flatMap((name) => realm.clientScopes.get(name)?.protocolMappers ?? []);
  return [...(client.protocolMappers ?? []), ...fromScopes]
    .filter((m) => (m.protocol ?? 'openid-connect') === 'openid-connect')
    .filter((m) => m.config?.['access.token.claim'] !== 'false');
}

function audiencesOf(realm, client) {
  const auds = mappersOf(realm, client)
    .filter((m) => m.protocolMapper === 'oidc-audience-mapper')
    .map((m) => m.config['included.client.audience'] || m.config['included.custom.audience'])
    .filter(Boolean);
  return [...new Set(auds)];
}

// Realm roles of a user, with composite roles expanded as Keycloak does.
function realmRolesOf(realm, user) {
  const out = new Set();
  const visit = (name) => {
    if (out.has(name)) return;
    out.add(name);
    for (const child of realm.roles.get(name)?.composites?.realm ?? []) visit(child);
  };
  asList(user.realmRoles).forEach(visit);
  return [...out];
}

function typed(value, label) {
  switch (label) {
    case 'long': case 'int': return Number(value);
    case 'boolean': return lower(value) === 'true';
    case 'JSON': return typeof value === 'string' ? JSON.parse(value) : value;
    default: return String(value);
  }
}

// Keycloak nests claim names on unescaped dots ("a.b" -> {a: {b}}).
function setClaim(target, name, value) {
  const parts = name.split(/(?<!\\)\./).map((p) => p.replace(/\\\./g, '.'));
  const last = parts.pop();
  let node = target;
  for (const p of parts) node = (node[p] ??= {});
  node[last] = value;
}

const BUILTIN_USER_FIELDS = new Set(['username', 'email', 'firstName', 'lastName']);

// The claims Keycloak's protocol mappers would put in an access token for this client and user.
function mappedClaims(realm, client, user) {
  const claims = {
    typ: 'Bearer',
    azp: client.clientId,
    preferred_username: lower(user.username),
  };
  const scopes = asList(client.defaultClientScopes ?? ['roles']);
  const roles = realmRolesOf(realm, user);
  if (scopes.includes('roles') && roles.length) claims.realm_access = { roles };

  for (const m of mappersOf(realm, client)) {
    const c = m.config ?? {};
    if (m.protocolMapper === 'oidc-usermodel-attribute-mapper') {
      const attr = c['user.attribute'];
      const values = BUILTIN_USER_FIELDS.has(attr) ? asList(user[attr]) : asList(user.attributes?.[attr]);
      if (!values.length) continue;
      const mapped = values.map((v) => typed(v, c['jsonType.label']));
      setClaim(claims, c['claim.name'], c.multivalued === 'true' ? mapped : mapped[0]);
    } else if (m.protocolMapper === 'oidc-hardcoded-claim-mapper') {
      setClaim(claims, c['claim.name'], typed(c['claim.value'], c['jsonType.label']));
    }
  }
  return claims;
}

// Keycloak lists the client's default scopes that are "included in token scope" (profile, email).
function tokenScopeOf(realm, client, requested) {
  const inToken = (name) => {
    const flag = realm.clientScopes.get(name)?.attributes?.['include.in.token.scope'];
    return flag === undefined ? ['profile', 'email'].includes(name) : flag === 'true';
  };
  const defaults = asList(client.defaultClientScopes).filter(inToken);
  return [...new Set([...requested, ...defaults])].join(' ');
}

// ---------------------------------------------------------------- passwords

function checkPassword(user, password) {
  const creds = asList(user.credentials).filter((c) => c.type === 'password');
  return creds.some((cred) => {
    if (cred.value !== undefined) return safeEqual(Buffer.from(String(cred.value)), Buffer.from(password));
    return checkHashedPassword(cred, password);
  });
}

// Hashed credentials as Keycloak exports them (pbkdf2 only; argon2 is not available in node 20).
function checkHashedPassword(cred, password) {
  const data = JSON.parse(cred.credentialData ?? '{}');
  const secret = JSON.parse(cred.secretData ?? '{}');
  const digest = { pbkdf2: 'sha1', 'pbkdf2-sha256': 'sha256', 'pbkdf2-sha512': 'sha512' }[data.algorithm];
  if (!digest || !secret.value || !secret.salt) {
    console.error(`local-idp: cannot check a "${data.algorithm}" password hash; use a plain "value" credential`);
    return false;
  }
  const expected = Buffer.from(secret.value, 'base64');
  const actual = crypto.pbkdf2Sync(password, Buffer.from(secret.salt, 'base64'), data.hashIterations, expected.length, digest);
  return safeEqual(actual, expected);
}

function safeEqual(a, b) {
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

function findLoginUser(realm, username) {
  const key = lower(username ?? '');
  const user = realm.users.get(key)
    ?? (realm.rep.loginWithEmailAllowed !== false
      ? [...realm.users.values()].find((u) => u.email && lower(u.email) === key) : undefined);
  return user?.serviceAccountClientId ? undefined : user;
}

// ---------------------------------------------------------------- keys

function rsaJwk(use, alg) {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const thumbprint = crypto.createHash('sha256')
    .update(JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n })).digest('base64url');
  return { kid: thumbprint, use, alg, ...jwk };
}

// Reads the private JWKS, or creates it (atomically: concurrent starters end up sharing one file).
function loadOrCreateKeys(file) {
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
    const jwks = { keys: [rsaJwk('sig', 'RS256'), rsaJwk('enc', 'RSA-OAEP')] };
    fs.writeFileSync(tmp, `${JSON.stringify(jwks, null, 2)}\n`, { mode: 0o600 });
    try {
      fs.linkSync(tmp, file);
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
    } finally {
      fs.unlinkSync(tmp);
    }
  }
  const jwks = readJson(file);
  const sig = jwks.keys?.filter((k) => k.use === 'sig' && k.alg === 'RS256' && k.d) ?? [];
  if (sig.length !== 1) throw new Error(`${file}: need exactly one private RS256 key with use "sig"`);
  return jwks;
}

// ---------------------------------------------------------------- provider

const KEYCLOAK_ROUTES = {
  authorization: '/protocol/openid-connect/auth',
  token: '/protocol/openid-connect/token',
  jwks: '/protocol/openid-connect/certs',
  userinfo: '/protocol/openid-connect/userinfo',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
  end_session: '/protocol/openid-connect/logout',
  device_authorization: '/protocol/openid-connect/auth/device',
  pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
};

// A redirect URI as oidc-provider's metadata wants it: a wildcard pattern without its `*`
// (the allowed-check below applies Keycloak's rule to the realm's patterns).
const asMetadataUri = (uri) => (uri.endsWith('*') ? uri.slice(0, -1) || '/' : uri);

function oidcClients(realm) {
  return [...realm.clients.values()].filter(callable).map((c) => ({
    client_id: c.clientId,
    ...(c.publicClient
      ? { token_endpoint_auth_method: 'none' }
      : {
        client_secret: c.secret,
        token_endpoint_auth_method: 'client_secret_basic',
        // Keycloak takes the secret in the body or in the Authorization header
        token_endpoint_auth_methods_supported: undefined,
      }),
    grant_types: [
      ...(c.serviceAccountsEnabled && !c.publicClient ? ['client_credentials'] : []),
      ...(c.directAccessGrantsEnabled ? ['password'] : []),
      ...(c.standardFlowEnabled ? ['authorization_code', 'refresh_token'] : []),
    ],
    response_types: c.standardFlowEnabled ? ['code'] : [],
    redirect_uris: c.standardFlowEnabled ? asList(c.redirectUris).map(asMetadataUri) : [],
    post_logout_redirect_uris: c.standardFlowEnabled ? postLogoutUrisOf(c).map(asMetadataUri) : [],
    scope: 'openid profile email',
  })).map(({ token_endpoint_auth_methods_supported: _, ...c }) => c);
}

function createProvider(issuer, realm, jwks, prefix) {
  // One "resource server" per client, so oidc-provider issues JWT access tokens for it.
  const resourceId = (client) => `urn:carenet-local-idp:client:${client.clientId}`;
  const resourceServerInfo = (client) => ({
    scope: 'openid',
    audience: resourceId(client), // placeholder; the jwt customizer sets Keycloak's aud list
    accessTokenFormat: 'jwt',
    accessTokenTTL: config.ttl,
  });

  // The realm user a token is about: the login user, or the client's service-account user.
  const subjectUser = (token) => (token.accountId
    ? realm.usersById.get(token.accountId)
    : realm.serviceAccounts.get(token.clientId));

  const provider = new Provider(issuer, {
    clients: oidcClients(realm),
    jwks: { keys: jwks.keys.filter((k) => k.use === 'sig') }, // oidc-provider refuses unused enc keys
    routes: KEYCLOAK_ROUTES,
    scopes: ['openid', 'profile', 'email'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      email: ['email', 'email_verified'],
    },
    conformIdTokenClaims: false, // Keycloak puts the profile claims in the ID token itself
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    ttl: {
      AccessToken: config.ttl,
      ClientCredentials: config.ttl,
      IdToken: config.ttl,
      RefreshToken: config.sessionTtl,
      Session: config.sessionTtl,
      Grant: config.sessionTtl,
      Interaction: 30 * 60,
    },
    // The login page (Keycloak's login-actions) is served by the http wrapper below.
    interactions: { url: (ctx, interaction) => `${prefix}/login-actions/authenticate/${interaction.uid}` },
    // Keycloak asks no consent of a client with consentRequired false: grant what it asked.
    async loadExistingGrant(ctx) {
      const { client, session, params } = ctx.oidc;
      const existing = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      if (existing) return ctx.oidc.provider.Grant.find(existing);
      if (!session.accountId || realm.clients.get(client.clientId)?.consentRequired) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params.scope ?? 'openid'));
      grant.addResourceScope(resourceId(client), 'openid');
      await grant.save();
      return grant;
    },
    // Keycloak issues a refresh token with every code exchange (use.refresh.tokens).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    // Keycloak: PKCE is required when the client's pkce.code.challenge.method is set (S256 here).
    pkce: {
      required: (ctx, client) => client.tokenEndpointAuthMethod === 'none'
        || Boolean(realm.clients.get(client.clientId)?.attributes?.['pkce.code.challenge.method']),
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Fout bij inloggen', `<h1>Er ging iets mis</h1><p>${escapeHtml(out.error_description ?? out.error)}</p>`);
    },
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: {
        enabled: true,
        // Keycloak signs out at once when the client names itself (id_token_hint); this page
        // submits the logout form by itself and offers the button when scripts are off.
        logoutSource: async (ctx, form) => {
          ctx.body = page('Afmelden', `<h1>Afmelden</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Afmelden</button>
<script>document.forms['op.logoutForm'].requestSubmit ? document.forms['op.logoutForm'].requestSubmit(document.querySelector('button[name=logout]')) : document.forms['op.logoutForm'].submit();</script>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Afgemeld', '<h1>U bent afgemeld</h1>');
        },
      },
      clientCredentials: { enabled: true },
      userinfo: { enabled: false },
      introspection: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client) => resourceId(client),
        getResourceServerInfo: (ctx, indicator, client) => {
          if (indicator !== resourceId(client)) throw new errors.InvalidTarget();
          return resourceServerInfo(client);
        },
      },
    },
    findAccount: (ctx, id) => {
      const user = realm.usersById.get(id);
      if (!user) return undefined;
      return {
        accountId: id,
        claims: () => ({
          sub: id,
          preferred_username: lower(user.username),
          ...(user.firstName || user.lastName
            ? { name: [user.firstName, user.lastName].filter(Boolean).join(' '), given_name: user.firstName, family_name: user.lastName }
            : {}),
          ...(user.email ? { email: user.email, email_verified: Boolean(user.emailVerified) } : {}),
        }),
      };
    },
    extraTokenClaims(ctx, token) {
      const user = subjectUser(token);
      if (!user) throw new errors.InvalidGrant(`no realm user behind this token (client ${token.clientId})`);
      return mappedClaims(realm, realm.clients.get(token.clientId), user);
    },
    formats: {
      customizers: {
        jwt(ctx, token, jwt) {
          const client = realm.clients.get(token.clientId);
          const user = subjectUser(token);
          jwt.header = { typ: 'JWT' };
          jwt.payload.sub = subjectOf(user);
          jwt.payload.aud = audiencesOf(realm, client);
          jwt.payload.scope = tokenScopeOf(realm, client, [...token.scopes].filter(Boolean));
          if (token.accountId) delete jwt.payload.client_id; // Keycloak sets client_id for service accounts only
          if (!jwt.payload.aud.length) throw new Error(`client ${client.clientId} has no audience mappers`);
        },
      },
    },
  });

  // Keycloak's "direct access grant" (OAuth 2.0 resource owner password credentials).
  provider.registerGrantType('password', async (ctx) => {
    const { client, params } = ctx.oidc;
    const user = findLoginUser(realm, params.username);
    if (!user || user.enabled === false || !checkPassword(user, params.password ?? '')) {
      throw new errors.InvalidGrant('Invalid user credentials');
    }
    if (asList(user.requiredActions).length || asList(user.credentials).some((c) => c.temporary)) {
      throw new errors.InvalidGrant('Account is not fully set up');
    }
    const requested = (params.scope ?? '').split(' ').filter((s) => s === 'openid');
    const token = new provider.AccessToken({ accountId: subjectOf(user), client, gty: 'password' });
    token.resourceServer = new provider.ResourceServer(resourceId(client), resourceServerInfo(client));
    token.scope = requested.join(' ') || undefined;
    ctx.oidc.entity('AccessToken', token);
    const accessToken = await token.save();
    ctx.body = {
      access_token: accessToken,
      expires_in: token.expiration,
      token_type: token.tokenType,
      scope: tokenScopeOf(realm, realm.clients.get(client.clientId), requested),
    };
  }, ['username', 'password', 'scope']);

  // Keycloak's redirect URI patterns (trailing `*`), checked against the realm export itself.
  const allowed = (kind) => function allowedUri(value) {
    const client = realm.clients.get(this.clientId);
    return keycloakUriAllowed(value, kind === 'redirect' ? asList(client?.redirectUris) : postLogoutUrisOf(client ?? {}));
  };
  provider.Client.prototype.redirectUriAllowed = allowed('redirect');
  provider.Client.prototype.postLogoutRedirectUriAllowed = allowed('logout');

  provider.on('grant.error', (ctx, err) => console.error(`local-idp: token request refused (client ${ctx.oidc.client?.clientId ?? '?'}): ${err.message}: ${err.error_detail ?? err.error_description ?? ''}`));
  provider.on('server_error', (ctx, err) => console.error('local-idp: server error', err));
  return provider;
}

// The JWKS as Keycloak publishes it: every key (sig and enc) with its use, public parts only.
function publicJwks(jwks) {
  return {
    keys: jwks.keys.map(({ kid, kty, alg, use, n, e }) => ({ kid, kty, alg, use, n, e })),
  };
}

// Keycloak's realm info document (python-keycloak's public_key() reads it).
function realmInfo(issuer, realm, jwks) {
  const sig = jwks.keys.find((k) => k.use === 'sig');
  const spki = crypto.createPublicKey({ key: sig, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  return {
    realm: realm.name,
    public_key: spki.toString('base64'),
    'token-service': `${issuer}/protocol/openid-connect`,
    'account-service': `${issuer}/account`,
    'tokens-not-before': 0,
  };
}

// ---------------------------------------------------------------- login page

const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
})[c]);

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="nl"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} - carenet (lokaal)</title></head>
<body><main>${body}</main></body></html>`;
}

function sendHtml(res, status, html) {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'self'; frame-ancestors 'none'; form-action 'self' http: https:",
  });
  res.end(html);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function loginForm(action, username, error) {
  return page('Inloggen', `<h1>Inloggen bij carenet</h1>
${error ? `<p role="alert" id="error">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}" autocomplete="off">
<p><label for="username">Gebruikersnaam of e-mailadres</label><br>
<input id="username" name="username" value="${escapeHtml(username)}" autocomplete="username" required${error ? ' aria-invalid="true" aria-describedby="error"' : ''}></p>
<p><label for="password">Wachtwoord</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" required></p>
<p><button type="submit">Inloggen</button></p>
</form>`);
}

// The authorization code flow's login step, as Keycloak's login page: a realm user's name (or
// e-mail) and password. Consent is not asked (see loadExistingGrant).
async function loginInteraction(provider, realm, req, res) {
  const details = await provider.interactionDetails(req, res);
  const action = URL.parse(req.originalUrl ?? req.url, 'http://local').pathname;
  if (details.prompt.name !== 'login') {
    // a session already exists: only the consent step is left, which Keycloak does not ask
    const grant = await provider.Grant.find(details.grantId ?? '') ?? new provider.Grant({
      clientId: details.params.client_id, accountId: details.session?.accountId,
    });
    grant.addOIDCScope(String(details.params.scope ?? 'openid'));
    grant.addResourceScope(`urn:carenet-local-idp:client:${details.params.client_id}`, 'openid');
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET') return sendHtml(res, 200, loginForm(action, details.params.login_hint ?? '', ''));
  if (req.method !== 'POST') return sendHtml(res, 405, page('Fout', '<h1>Niet toegestaan</h1>'));
  const form = await readForm(req);
  const username = form.get('username') ?? '';
  const user = findLoginUser(realm, username);
  if (!user || user.enabled === false || !checkPassword(user, form.get('password') ?? '')
      || asList(user.requiredActions).length || asList(user.credentials).some((c) => c.temporary)) {
    return sendHtml(res, 200, loginForm(action, username, 'Ongeldige gebruikersnaam of wachtwoord.'));
  }
  return provider.interactionFinished(req, res, {
    login: { accountId: subjectOf(user), remember: false },
  }, { mergeWithLastSubmission: false });
}

// ---------------------------------------------------------------- http

function sendJson(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

async function main() {
  // installed first, so a stop request during start-up (key generation) also exits cleanly
  let server;
  const stop = () => {
    if (!server?.listening) process.exit(0);
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);

  const realm = loadRealm(config.realmFile, config.extraUsersFile);
  const jwks = loadOrCreateKeys(config.keysFile);
  const prefix = `/realms/${realm.name}`;

  server = http.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const { port } = server.address();
  const base = config.publicUrl?.replace(/\/$/, '') ?? `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  const issuer = `${base}${prefix}`;

  const provider = createProvider(issuer, realm, jwks, prefix);
  const callback = provider.callback();
  const info = realmInfo(issuer, realm, jwks);
  const certs = publicJwks(jwks);

  server.on('request', (req, res) => {
    const pathname = URL.parse(req.url, 'http://local')?.pathname;
    if (!pathname) return sendJson(res, 400, { error: 'invalid_request' });
    if (pathname === prefix || pathname === `${prefix}/`) {
      if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' });
      return sendJson(res, 200, info);
    }
    if (pathname === `${prefix}${KEYCLOAK_ROUTES.jwks}` && req.method === 'GET') return sendJson(res, 200, certs);
    if (pathname.startsWith(`${prefix}/login-actions/authenticate/`)) {
      return loginInteraction(provider, realm, req, res).catch((err) => {
        console.error(`local-idp: login page: ${err.message}`);
        sendHtml(res, 400, page('Fout bij inloggen', '<h1>Deze inlogpoging is verlopen</h1><p>Ga terug naar de toepassing en probeer het opnieuw.</p>'));
      });
    }
    if (!pathname.startsWith(`${prefix}/`)) return sendJson(res, 404, { error: 'Realm does not exist' });
    req.originalUrl = req.url;
    req.url = req.url.slice(prefix.length);
    return callback(req, res);
  });

  process.stdout.write(`carenet-local-idp listening issuer=${issuer}\n`);
}

main().catch((err) => {
  console.error(`carenet-local-idp: failed to start: ${err.stack ?? err}`);
  process.exit(1);
});
