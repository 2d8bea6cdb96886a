// The sign-in page: posts the user name and password as JSON to /api/login (the server sets
// an HttpOnly session cookie), then goes back to the page that sent the browser here (?next=,
// same-site paths only).
import { safeNext } from './session.js';

const el = (id) => document.getElementById(id);
const next = safeNext(new URLSearchParams(location.search).get('next'));

function showError(message) {
  el('error').textContent = message;
  el('error').hidden = false;
}

async function refresh() {
  const r = await fetch('/api/session', { cache: 'no-store' });
  const s = await r.json();
  el('signed-in').hidden = !s.signed_in;
  el('login').hidden = s.signed_in;
  if (s.signed_in) el('who').textContent = `${s.user} (${s.role})`;
  el('no-users').hidden = s.can_sign_in || s.signed_in;
}

el('login').addEventListener('submit', async (event) => {
  event.preventDefault();
  el('error').hidden = true;
  el('submit').disabled = true;
  try {
    const r = await fetch('/api/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: el('user').value, password: el('password').value }),
    });
    if (r.ok) {
      location.assign(next);
      return;
    }
    const reason = (await r.text()).trim();
    showError(r.status === 429 ? `Too many attempts: ${reason}` : `Not signed in: ${reason}`);
  } catch (e) {
    showError(`Sign-in failed: ${e.message}`);
  } finally {
    el('submit').disabled = false;
    el('password').value = '';
  }
});

el('logout').addEventListener('click', async () => {
  const csrf = (await (await fetch('/api/session', { cache: 'no-store' })).json()).csrf ?? '';
  await fetch('/api/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf } });
  await refresh();
});

refresh().catch((e) => showError(`Cannot reach the server: ${e.message}`));
