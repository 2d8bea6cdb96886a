// The switcher's guest invites panel: create an invite (name, minutes, single-use or
// reusable) and show its link and QR code; list invites with their state and uses; revoke one
// (the server ends the guest's session at once). Requests carry the page's auth headers (the
// CSRF token when signed in).

const el = (id) => document.getElementById(id);

/** Wires the panel; `auth` are the headers every request carries. */
export function setupInvites(auth) {
  const form = el('invite-form');
  if (!form) return;
  const showError = (message) => {
    el('invite-error').textContent = message;
    el('invite-error').hidden = !message;
  };

  async function refresh() {
    const r = await fetch('/api/invites', { headers: auth, cache: 'no-store' });
    if (!r.ok) {
      // Not an operator here: the panel has nothing to show.
      el('invites').hidden = true;
      return;
    }
    el('invites').hidden = false;
    const { invites } = await r.json();
    const body = el('invite-list').querySelector('tbody');
    body.replaceChildren(...invites.slice().reverse().map((invite) => {
      const row = document.createElement('tr');
      row.dataset.id = invite.id;
      row.dataset.state = invite.state;
      const cells = [invite.name, invite.state, String(invite.uses),
        new Date(invite.expires * 1000).toLocaleString()];
      for (const text of cells) {
        const td = document.createElement('td');
        td.textContent = text;
        row.append(td);
      }
      const td = document.createElement('td');
      if (invite.state === 'live') {
        const revoke = document.createElement('button');
        revoke.type = 'button';
        revoke.className = 'invite-revoke';
        revoke.textContent = 'Revoke';
        revoke.addEventListener('click', async () => {
          const rr = await fetch(`/api/invites/${encodeURIComponent(invite.id)}`, { method: 'DELETE', headers: auth });
          showError(rr.ok ? '' : `Revoke failed: ${rr.status} ${(await rr.text()).trim()}`);
          await refresh();
        });
        td.append(revoke);
      }
      row.append(td);
      return row;
    }));
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    showError('');
    const r = await fetch('/api/invites', {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'application/json' },
      body: JSON.stringify({
        name: el('invite-name').value.trim(),
        minutes: Number(el('invite-minutes').value),
        reusable: el('invite-reusable').checked,
      }),
    });
    if (!r.ok) {
      showError(`Could not create the invite: ${r.status} ${(await r.text()).trim()}`);
      return;
    }
    const made = await r.json();
    const link = new URL(made.link, location.href).href;
    el('invite-link').href = link;
    el('invite-link').textContent = link;
    el('invite-qr').src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(made.qr_svg)}`;
    el('invite-made').hidden = false;
    await refresh();
  });

  refresh().catch((e) => showError(`Cannot list invites: ${e.message}`));
}
