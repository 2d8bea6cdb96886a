// The signed-in session as the pages see it: GET /api/session once, and the X-CSRF-Token
// header every request that changes something carries when a session lets it in (the
// server refuses such a request without it: a forged cross-site request has no token).

let pending = null;

/** The session: { signed_in, user?, role?, csrf?, local, can_sign_in }. */
export function session() {
  pending ??= fetch('/api/session', { cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : { signed_in: false }))
    .catch(() => ({ signed_in: false }));
  return pending;
}

/** Headers to add to a state-changing request: the CSRF token when signed in. */
export async function csrfHeaders() {
  const s = await session();
  return s.csrf ? { 'X-CSRF-Token': s.csrf } : {};
}

/** A same-site path to go to after signing in; anything else (another site, //host) is "/". */
export function safeNext(next) {
  if (typeof next !== 'string' || !next.startsWith('/') || next.startsWith('//') || next.includes('\\')) return '/';
  return next;
}
