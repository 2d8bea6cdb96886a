// The /recordings page's pure module, run in node: grouping, labels and refusal messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  diskLine, durationLabel, groupBySession, groupByStream, recView, refusalMessage, sizeLabel, startLabel, summaryFromStatus,
} from '../../web/static/js/recordings-model.js';

test('recordings are grouped by stream (streams by name), newest first within each', () => {
  const files = [
    { stream: 'cam1', file: 'cam1_2026-12-06T10-00-00Z.mp4' },
    { stream: 'cam0', file: 'cam0_2026-12-06T10-00-00Z.mp4' },
    { stream: 'cam0', file: 'cam0_2026-12-06T10-10-00Z.mp4' },
  ];
  const groups = groupByStream(files);
  assert.deepEqual(groups.map(([s]) => s), ['cam0', 'cam1']);
  assert.deepEqual(groups[0][1].map((f) => f.file), ['cam0_2026-12-06T10-10-00Z.mp4', 'cam0_2026-12-06T10-00-00Z.mp4']);
  assert.deepEqual(files.map((f) => f.stream), ['cam1', 'cam0', 'cam0'], 'the input is left as it was');
  assert.deepEqual(groupByStream([]), []);
});

test('sessions: overlapping files of all streams and back-to-back splits together, a later start apart', () => {
  const f = (stream, started, seconds) => ({ stream, file: `${stream}_${started}.mp4`, started, duration_ms: seconds * 1000 });
  const files = [
    f('cam0', '2026-12-06T10-00-00Z', 600), // split at 600 s ...
    f('cam1', '2026-12-06T10-00-01Z', 700),
    f('cam0', '2026-12-06T10-10-00Z', 100), // ... the next file at its end
    f('cam0', '2026-12-06T11-00-00Z', 30), // stopped, later started again
  ];
  const sessions = groupBySession(files);
  assert.equal(sessions.length, 2);
  assert.equal(sessions[0].started, '2026-12-06T11-00-00Z', 'newest first');
  assert.equal(sessions[0].seconds, 30);
  assert.equal(sessions[1].started, '2026-12-06T10-00-00Z');
  assert.equal(sessions[1].seconds, 701);
  assert.deepEqual(sessions[1].streams.map(([s, list]) => [s, list.length]), [['cam0', 2], ['cam1', 1]]);
  // A start two seconds after the last file ended is a new session; one within a second is not.
  assert.equal(groupBySession([f('cam0', '2026-12-06T10-00-00Z', 5), f('cam0', '2026-12-06T10-00-07Z', 5)]).length, 2);
  assert.equal(groupBySession([f('cam0', '2026-12-06T10-00-00Z', 5), f('cam0', '2026-12-06T10-00-06Z', 5)]).length, 1);
  assert.deepEqual(groupBySession([]), []);
});

test('starts, durations and sizes read as people write them', () => {
  assert.equal(startLabel('2026-12-06T14-03-22Z'), '2026-12-06 14:03:22');
  assert.equal(startLabel('odd'), 'odd');
  assert.equal(durationLabel(7400), '0:07');
  assert.equal(durationLabel(725000), '12:05');
  assert.equal(durationLabel(3723000), '1:02:03');
  assert.equal(durationLabel(null), '–');
  assert.equal(durationLabel(-1), '–');
  assert.equal(sizeLabel(812000), '812 KB');
  assert.equal(sizeLabel(10), '1 KB');
  assert.equal(sizeLabel(3_400_000), '3.4 MB');
  assert.equal(sizeLabel(1_204_000_000), '1.20 GB');
});

test('the disk line gives space and time left, and warns under ten minutes', () => {
  assert.deepEqual(diskLine({ usable_bytes: 2_000_000_000, time_left_secs: 3600 }),
    { text: '2.00 GB free for recordings, 1:00:00 left at the current rate', low: false });
  assert.deepEqual(diskLine({ usable_bytes: 50_000_000, time_left_secs: 120 }),
    { text: '50.0 MB free for recordings, 2:00 left at the current rate', low: true });
  assert.deepEqual(diskLine({ usable_bytes: 50_000_000, time_left_secs: null }),
    { text: '50.0 MB free for recordings', low: false }, 'nothing being written: no time');
  assert.deepEqual(diskLine(undefined), { text: 'disk: unknown', low: false });
});

test('a refusal says what it means on this page', () => {
  assert.match(refusalMessage('Deleting x.mp4', 401, 'admin token required'), /^Deleting x\.mp4 refused \(401\): recordings are for operators with admin rights.*: admin token required$/);
  assert.match(refusalMessage('Deleting x.mp4', 403, ''), /refused \(403\).*admin rights/);
  assert.equal(refusalMessage('Deleting x.mp4', 409, 'x.mp4 is being written'), 'Deleting x.mp4 refused (409): x.mp4 is being written');
  assert.equal(refusalMessage('Listing recordings', 0, 'Failed to fetch'), 'Listing recordings failed (no answer): Failed to fetch');
});

test('the REC control: tally, button, inputs being written and the disk while armed', () => {
  const on = recView({
    recording: true,
    streams: [{ name: 'cam0', file: 'cam0/cam0_2026-12-06T10-00-00Z.mp4' }, { name: 'guest1', file: null }],
    usable_mib: 2048,
    time_left_secs: 7200,
    last_event: { kind: 'started', stream: null, detail: 'recording all' },
  });
  assert.equal(on.recording, true);
  assert.equal(on.button, 'Stop recording');
  assert.deepEqual([...on.writing], ['cam0'], 'a stream waiting for its first keyframe has no file yet');
  assert.deepEqual([...on.armed], ['cam0', 'guest1'], 'both armed');
  assert.equal(on.disk, '2.15 GB free for recordings, 2:00:00 left at the current rate');
  assert.equal(on.stopped, null);
  const off = recView({ recording: false, streams: [], usable_mib: 2048, time_left_secs: 7200, last_event: null });
  assert.equal(off.button, 'Record all');
  assert.equal(off.disk, '2.15 GB free for recordings', 'no time left while nothing records');
  assert.equal(recView(undefined).recording, false);
});

test("the disk guard's stop is said plainly, and only while stopped", () => {
  const last = { kind: 'disk_low_stopped', stream: null, detail: 'free 3 MiB below the reserve' };
  const stopped = recView({ recording: false, streams: [], usable_mib: 0, time_left_secs: null, last_event: last });
  assert.equal(stopped.stopped, 'Recording stopped: the disk reached its reserve (free 3 MiB below the reserve)');
  assert.equal(recView({ recording: true, streams: [], usable_mib: 0, last_event: last }).stopped, null);
  assert.equal(recView({ recording: false, streams: [], last_event: { kind: 'stopped', detail: 'x' } }).stopped, null);
});

test("GET /api/recordings' status reads as the recording event", () => {
  const status = {
    recording: true,
    streams: [{ name: 'cam0', sink: { current: 'cam0/cam0_x.mp4', bytes_written: 5 } }],
    disk: { usable_bytes: 3 * 2 ** 20 + 5, time_left_secs: 42.5 },
    events: [{ kind: 'started', stream: 'cam0', detail: 'recording cam0', at: 1 }, { kind: 'file_deleted', stream: 'cam1', detail: 'd', at: 2 }],
  };
  assert.deepEqual(summaryFromStatus(status), {
    recording: true,
    streams: [{ name: 'cam0', file: 'cam0/cam0_x.mp4' }],
    usable_mib: 3,
    time_left_secs: 42.5,
    last_event: { kind: 'file_deleted', stream: 'cam1', detail: 'd' },
  });
  assert.deepEqual(summaryFromStatus({ recording: false, streams: [], disk: {}, events: [] }),
    { recording: false, streams: [], usable_mib: null, time_left_secs: null, last_event: null });
});
