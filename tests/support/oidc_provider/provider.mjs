// An OpenID Connect provider on loopback for the single sign-on tests.
//
// Usage: node provider.mjs CONFIG_FILE
//
// CONFIG_FILE is JSON: {"client_id", "client_secret", "redirect_uris": [...],
// "accounts_file"}. The accounts file is JSON keyed by login name, each entry
// {"password", "email", "email_verified", "name", "given_name", "family_name",
// "groups": [...], "mfa": bool}. It is read again on every lookup, so tests add
// accounts while the provider runs. The provider listens on an ephemeral port
// of 127.0.0.1 and prints "listening <issuer>" on stdout once it is ready.
//
// Sign-in runs through two HTML forms (login, then consent) served under
// /interaction/<uid>, so an HTTP client drives the whole authorization code flow.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import process from 'node:process';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));

function loadAccounts() {
  return JSON.parse(readFileSync(config.accounts_file, 'utf8'));
}

function escapeHtml(text) {
  return String(text)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');
}

async function findAccount(ctx, accountId) {
  const account = loadAccounts()[accountId];
  if (!account) {
    return undefined;
  }
  return {
    accountId,
    async claims() {
      return {
        sub: accountId,
        email: account.email,
        email_verified: account.email_verified ?? true,
        name: account.name,
        given_name: account.given_name,
        family_name: account.family_name,
        groups: account.groups ?? [],
      };
    },
  };
}

function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: 'test-key', use: 'sig', alg: 'RS256' };
}

function page(res, status, title, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.end(`<!DOCTYPE html><html><head><title>${title}</title></head><body>${body}</body></html>`);
}

function loginForm(res, uid, error) {
  const message = error ? `<p class="error">${escapeHtml(error)}</p>` : '';
  page(res, 200, 'Sign in', `<h1>Sign in</h1>${message}
<form method="post" action="/interaction/${uid}/login">
  <input name="login" autocomplete="username">
  <input name="password" type="password" autocomplete="current-password">
  <button type="submit">Sign in</button>
</form>`);
}

function consentForm(res, uid, clientId) {
  page(res, 200, 'Authorize', `<h1>Authorize ${escapeHtml(clientId)}</h1>
<form method="post" action="/interaction/${uid}/confirm">
  <button type="submit">Allow</button>
</form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) {
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function showInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === 'login') {
    loginForm(res, details.uid);
  } else {
    consentForm(res, details.uid, details.params.client_id);
  }
}

async function submitLogin(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const form = await readForm(req);
  const login = form.get('login') ?? '';
  const account = loadAccounts()[login];
  if (!account || account.password !== form.get('password')) {
    loginForm(res, details.uid, 'Invalid login or password.');
    return;
  }
  const amr = account.mfa ? ['pwd', 'mfa'] : ['pwd'];
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: login, amr } },
    { mergeWithLastSubmission: false },
  );
}

async function submitConsent(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) {
    grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  }
  if (prompt.details.missingOIDCClaims) {
    grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  }
  const grantId = await grant.save();
  await provider.interactionFinished(
    req,
    res,
    { consent: { grantId } },
    { mergeWithLastSubmission: true },
  );
}

async function handleInteraction(provider, req, res) {
  const match = /^\/interaction\/([^/?]+)(\/login|\/confirm)?/.exec(req.url);
  if (!match) {
    page(res, 404, 'Not found', '<h1>Not found</h1>');
  } else if (req.method === 'GET' && !match[2]) {
    await showInteraction(provider, req, res);
  } else if (req.method === 'POST' && match[2] === '/login') {
    await submitLogin(provider, req, res);
  } else if (req.method === 'POST' && match[2] === '/confirm') {
    await submitConsent(provider, req, res);
  } else {
    page(res, 405, 'Method not allowed', '<h1>Method not allowed</h1>');
  }
}

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: config.client_id,
        client_secret: config.client_secret,
        redirect_uris: config.redirect_uris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
      },
    ],
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // amr and auth_time under openid, so the ID token carries them: with
    // conformIdTokenClaims (the default) claims of other scopes go to userinfo only.
    claims: {
      openid: ['sub', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    features: { devInteractions: { enabled: false } },
    pkce: { methods: ['S256'], required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    findAccount,
  });
  const callback = provider.callback();

  server.on('request', (req, res) => {
    if (!req.url.startsWith('/interaction/')) {
      callback(req, res);
      return;
    }
    handleInteraction(provider, req, res).catch((error) => {
      page(res, 400, 'Error', `<h1>${escapeHtml(error.name)}</h1><p>${escapeHtml(error.message)}</p>`);
    });
  });
  process.stdout.write(`listening ${issuer}\n`);
});
