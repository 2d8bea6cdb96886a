// What the /recordings page shows, without the DOM (tested in node): recordings grouped by
// stream, and the numbers formatted for people.

/** `files` (GET /api/recordings' list, oldest first) as [stream, files newest first], by name. */
export function groupByStream(files) {
  const groups = new Map();
  for (const f of files) {
    if (!groups.has(f.stream)) groups.set(f.stream, []);
    groups.get(f.stream).push(f);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([stream, list]) => [stream, list.slice().reverse()]);
}

/** "2026-12-06T14-03-22Z" (the start in a recording's name) -> seconds since 1970, or NaN. */
export function startSeconds(started) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})-(\d{2})-(\d{2})Z$/.exec(started ?? '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000 : NaN;
}

/**
 * Recording sessions: files whose time spans (start from the name, plus the duration) overlap or
 * follow each other within `joinGapSecs` belong to one session, so the ISO files of all streams
 * and a stream's split files stay together, and a stop then a later start makes a new one.
 * (The names keep whole seconds and the server keeps no session id: a restart within
 * `joinGapSecs` reads as the same session.) Newest session first:
 * `{ started, seconds, streams: groupByStream(...) }`.
 */
export function groupBySession(files, joinGapSecs = 1) {
  const spans = files
    .map((f) => {
      const start = startSeconds(f.started);
      return { f, start, end: start + Math.max(0, f.duration_ms ?? 0) / 1000 };
    })
    .sort((a, b) => a.start - b.start || a.f.file.localeCompare(b.f.file));
  const sessions = [];
  for (const span of spans) {
    const last = sessions[sessions.length - 1];
    if (last && span.start <= last.end + joinGapSecs) {
      last.files.push(span.f);
      last.end = Math.max(last.end, span.end);
    } else {
      sessions.push({ start: span.start, end: span.end, files: [span.f] });
    }
  }
  return sessions.reverse().map((x) => ({
    started: x.files[0].started,
    seconds: x.end - x.start,
    streams: groupByStream(x.files),
  }));
}

/** "2026-12-06T14-03-22Z" (the start in a recording's name) -> "2026-12-06 14:03:22". */
export function startLabel(started) {
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2})-(\d{2})-(\d{2})Z$/.exec(started ?? '');
  return m ? `${m[1]} ${m[2]}:${m[3]}:${m[4]}` : String(started ?? '');
}

/** Milliseconds -> "0:07", "12:05", "1:02:03"; '–' when unknown. */
export function durationLabel(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0) return '–';
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

/** Bytes -> "812 KB", "3.4 MB", "1.20 GB" (powers of 1000, as disks are sold). */
export function sizeLabel(bytes) {
  if (typeof bytes !== 'number' || !Number.isFinite(bytes)) return '–';
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1e3))} KB`;
}

/**
 * The disk line from GET /api/recordings' `status.disk`: space the recordings may still use
 * (free space above the reserve) and, while something is written, how long that lasts.
 * `{ text, low }`; `low` under 10 minutes left.
 */
export function diskLine(disk) {
  if (!disk || typeof disk.usable_bytes !== 'number') return { text: 'disk: unknown', low: false };
  const left = disk.time_left_secs;
  const time = typeof left === 'number' && Number.isFinite(left)
    ? `, ${durationLabel(left * 1000)} left at the current rate` : '';
  return { text: `${sizeLabel(disk.usable_bytes)} free for recordings${time}`, low: typeof left === 'number' && left < 600 };
}

/** The message for a refused request (`status`, the server's one-line `reason`), by what it means here. */
export function refusalMessage(action, status, reason) {
  const why = reason ? `: ${reason}` : '';
  if (status === 401 || status === 403) {
    return `${action} refused (${status}): recordings are for operators with admin rights; sign in as one or use the admin token${why}`;
  }
  if (status === 409) return `${action} refused (409)${why}`;
  if (status === 404) return `${action}: not found (404)${why}`;
  return `${action} failed (${status || 'no answer'})${why}`;
}

/**
 * GET /api/recordings' `status` in the shape of the `recording` event of /api/events (what the
 * switcher's REC control shows), so both feed one view.
 */
export function summaryFromStatus(status) {
  const events = status?.events ?? [];
  const last = events.length ? events[events.length - 1] : null;
  return {
    recording: Boolean(status?.recording),
    streams: (status?.streams ?? []).map((s) => ({ name: s.name, file: s.sink?.current ?? null })),
    usable_mib: typeof status?.disk?.usable_bytes === 'number' ? Math.floor(status.disk.usable_bytes / 2 ** 20) : null,
    time_left_secs: status?.disk?.time_left_secs ?? null,
    last_event: last && { kind: last.kind, stream: last.stream ?? null, detail: last.detail },
  };
}

/**
 * What the switcher's REC control shows for a `recording` summary: whether the tally is on, the
 * button's label, the streams with a file open (their inputs get a REC mark), the streams armed
 * (a stream waits for its first keyframe before its file opens), the disk line, and
 * `stopped`: the disk guard's stop, said plainly (null otherwise).
 */
export function recView(summary) {
  const recording = Boolean(summary?.recording);
  const writing = new Set((summary?.streams ?? []).filter((s) => s.file).map((s) => s.name));
  const armed = new Set((summary?.streams ?? []).map((s) => s.name));
  const disk = typeof summary?.usable_mib === 'number'
    ? diskLine({ usable_bytes: summary.usable_mib * 2 ** 20, time_left_secs: recording ? summary.time_left_secs : null })
    : { text: '', low: false };
  const last = summary?.last_event;
  const stopped = last?.kind === 'disk_low_stopped'
    ? `Recording stopped: the disk reached its reserve${last.detail ? ` (${last.detail})` : ''}` : null;
  return {
    recording,
    button: recording ? 'Stop recording' : 'Record all',
    writing,
    armed,
    disk: disk.text,
    low: disk.low,
    stopped: recording ? null : stopped,
  };
}
