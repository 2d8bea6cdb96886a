// `/recordings`: every recording on the box, by session and stream (start, duration, size), played in the
// page's <video> straight from the file route (HTTP Range: the browser seeks by asking for the
// bytes it needs), downloaded with a link, deleted (admin only: a refusal is shown, not hidden).
// The list follows the server's `recording` events (a file started, closed, deleted by the disk
// guard). Every decision and label is in recordings-model.js.

import { csrfHeaders } from './session.js';
import {
  diskLine, durationLabel, groupBySession, refusalMessage, sizeLabel, startLabel,
} from './recordings-model.js';

const el = (id) => document.getElementById(id);
const video = el('player');
const sessionTemplate = el('session-template');
const streamTemplate = el('stream-template');

// A bearer token (?token=) reaches the API calls; the <video> and the download link send
// cookies only, so they work through a signed-in session or the LAN's open admin gate.
const token = new URLSearchParams(location.search).get('token');
const auth = { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(await csrfHeaders()) };

let files = [];
let playing = null; // "stream/file"

const fileUrl = (f) => `/api/recordings/files/${encodeURIComponent(f.stream)}/${encodeURIComponent(f.file)}`;

function showAlert(message) {
  el('alert').textContent = message;
  el('alert').hidden = !message;
}

async function reason(response) {
  try { return (await response.text()).trim(); } catch { return ''; }
}

async function refresh() {
  let r;
  try {
    r = await fetch('/api/recordings', { headers: auth, cache: 'no-store' });
  } catch (e) {
    showAlert(refusalMessage('Listing recordings', 0, e.message));
    return;
  }
  if (!r.ok) {
    showAlert(refusalMessage('Listing recordings', r.status, await reason(r)));
    return;
  }
  const body = await r.json();
  files = body.files;
  const disk = diskLine(body.status?.disk);
  el('disk').textContent = disk.text;
  el('disk').dataset.kind = disk.low ? 'low' : '';
  render();
}

function render() {
  el('empty').hidden = files.length > 0;
  el('sessions').replaceChildren(...groupBySession(files).map((session) => {
    const box = sessionTemplate.content.firstElementChild.cloneNode(true);
    box.dataset.session = session.started;
    const names = session.streams.map(([stream]) => stream).join(', ');
    box.querySelector('.rec-session-title').textContent =
      `${startLabel(session.started)} UTC · ${durationLabel(session.seconds * 1000)} · ${names}`;
    box.append(...session.streams.map(([stream, list]) => {
      const section = streamTemplate.content.firstElementChild.cloneNode(true);
      section.dataset.stream = stream;
      section.querySelector('.rec-stream-name').textContent = stream;
      section.querySelector('tbody').replaceChildren(...list.map(row));
      return section;
    }));
    return box;
  }));
}

function row(f) {
  const tr = document.createElement('tr');
  const key = `${f.stream}/${f.file}`;
  tr.dataset.file = f.file;
  tr.dataset.playing = String(key === playing);
  tr.title = f.file;
  const cells = [startLabel(f.started), durationLabel(f.duration_ms), sizeLabel(f.bytes)];
  for (const text of cells) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  if (f.open) {
    const rec = document.createElement('span');
    rec.className = 'rec-open';
    rec.textContent = ' ● REC';
    tr.cells[0].append(rec);
  }
  const actions = document.createElement('td');
  actions.className = 'actions';

  const play = document.createElement('button');
  play.type = 'button';
  play.className = 'play';
  play.textContent = 'Play';
  play.addEventListener('click', () => playFile(f));

  const download = document.createElement('a');
  download.className = 'download';
  download.href = fileUrl(f);
  download.download = f.file;
  download.textContent = 'Download';

  const remove = document.createElement('button');
  remove.type = 'button';
  remove.className = 'delete';
  remove.textContent = 'Delete';
  remove.disabled = f.open;
  remove.title = f.open ? 'Being written: stop recording first' : 'Delete this recording from the disk';
  remove.addEventListener('click', () => deleteFile(f));

  actions.append(play, download, remove);
  tr.append(actions);
  return tr;
}

function playFile(f) {
  playing = `${f.stream}/${f.file}`;
  video.src = fileUrl(f);
  el('now-playing').textContent = `${f.stream} · ${startLabel(f.started)} UTC · ${f.file}`;
  video.play().catch((e) => showAlert(`Cannot play ${f.file}: ${e.message}`));
  render();
}

video.addEventListener('error', () => {
  const code = video.error?.code;
  showAlert(`The player could not play this recording (media error ${code ?? '?'}: ${video.error?.message ?? ''})`);
});

async function deleteFile(f) {
  if (!confirm(`Delete ${f.stream}/${f.file} from the disk? This cannot be undone.`)) return;
  const r = await fetch(fileUrl(f), { method: 'DELETE', headers: auth });
  if (!r.ok) {
    showAlert(refusalMessage(`Deleting ${f.file}`, r.status, await reason(r)));
    return;
  }
  showAlert('');
  if (playing === `${f.stream}/${f.file}`) {
    playing = null;
    video.removeAttribute('src');
    video.load();
    el('now-playing').textContent = 'Pick a recording to play it.';
  }
  await refresh();
}

// The `recording` event comes when a file starts or ends or the disk changes (every MiB written,
// so up to several a second); the list follows it at most every 2 s, since listing scans every
// file for its duration. The sizes of files being written are refreshed every few seconds besides.
let refreshTimer = null;
const events = new EventSource('/api/events');
events.addEventListener('recording', () => {
  refreshTimer ??= setTimeout(() => {
    refreshTimer = null;
    refresh();
  }, 2000);
});
setInterval(() => { if (files.some((f) => f.open)) refresh(); }, 5000);

await refresh();

// Tests and curious operators can look inside.
window.r58recordings = {
  refresh,
  video,
  get files() { return files; },
  get playing() { return playing; },
};
