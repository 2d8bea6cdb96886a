// The switcher's REC control: one button that records every configured input (POST
// /api/recordings/start with no stream) or stops them all, a red REC tally while armed, the disk
// line (space and time left), the disk guard's stop as an alert, a REC mark on each input
// being written, and a record button per input (`toggleStream`: start or stop that stream). Fed by GET /api/recordings once and then the `recording` events of
// /api/events; what it shows is decided in recordings-model.js.

import { recView, refusalMessage, summaryFromStatus } from './recordings-model.js';

const el = (id) => document.getElementById(id);

/**
 * Wires the control in `#rec`. `auth` are the headers every request carries; `onAlert(message)`
 * shows a message that stays; `onChange(view)` gets every view shown (recordings-model.js
 * `recView`: the streams armed and with a file open). Returns `{ apply(summary) }` for the
 * `recording` events, `toggleStream(name)` for an input's own button, and `view` (the last one
 * shown, null until the first).
 */
export function setupRecording({ auth, onAlert, onChange }) {
  const box = el('rec');
  const button = el('rec-btn');
  let current = null;
  let shownStop = null;

  function apply(summary) {
    const view = recView(summary);
    current = view;
    box.hidden = false;
    box.dataset.recording = String(view.recording);
    button.textContent = view.button;
    button.setAttribute('aria-pressed', String(view.recording));
    el('rec-disk').textContent = view.disk;
    el('rec-disk').dataset.kind = view.low ? 'low' : '';
    onChange(view);
    // Each stop once: the summary keeps naming its last event until the next one.
    const stopKey = view.stopped && JSON.stringify(summary.last_event);
    if (view.stopped && stopKey !== shownStop) onAlert(view.stopped);
    shownStop = stopKey ?? shownStop;
  }

  /** POST start or stop, for one stream (`name`) or all (null); a refusal is shown. */
  async function control(action, name) {
    const what = name ? `${name}` : 'all';
    const label = action === 'start' ? `Recording ${what}` : `Stopping the recording of ${what}`;
    try {
      const r = await fetch(`/api/recordings/${action}`, {
        method: 'POST',
        headers: { ...auth, ...(name ? { 'Content-Type': 'application/json' } : {}) },
        body: name ? JSON.stringify({ stream: name }) : undefined,
      });
      if (!r.ok) {
        onAlert(refusalMessage(label, r.status, (await r.text()).trim()));
        return;
      }
      await load();
    } catch (e) {
      onAlert(refusalMessage(label, 0, e.message));
    }
  }

  button.addEventListener('click', async () => {
    button.disabled = true;
    await control(current?.recording ? 'stop' : 'start', null);
    button.disabled = false;
  });

  const toggleStream = (name) => control(current?.armed.has(name) ? 'stop' : 'start', name);

  async function load() {
    const r = await fetch('/api/recordings', { headers: auth, cache: 'no-store' });
    // Not configured (409) or not for this client (401/403): the events still bring the tally
    // to those who may see it; the button would be refused.
    if (!r.ok) return;
    apply(summaryFromStatus((await r.json()).status));
  }
  load().catch(() => {});

  return { apply, toggleStream, get view() { return current; } };
}
