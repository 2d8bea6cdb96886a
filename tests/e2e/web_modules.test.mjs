// The pages' pure modules, run in node: access-mode detection, the mode line, and trickle-ICE
// fragments.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accessMode, describeMode, isLocalHostname, transportLabel } from '../../web/static/js/mode.js';
import {
  applyRestartAnswer, candidateFragment, iceCredentials, restartFragment,
} from '../../web/static/js/sdpfrag.js';
import { preferH264 } from '../../web/static/js/whip.js';

test('LAN hostnames are LOCAL, everything else REMOTE', () => {
  const local = ['localhost', 'LOCALHOST', 'r58.localhost', '127.0.0.1', '127.8.9.10', '10.1.2.3',
    '172.16.0.1', '172.31.255.254', '192.168.1.58', '169.254.10.20', 'recorder.local', 'recorder.local.',
    '[::1]', '[fe80::1]', '[fd12:3456::1]', '[::ffff:c0a8:13a]'];
  const remote = ['recorder.itagenten.no', 'example.com', '8.8.8.8', '172.32.0.1', '172.15.255.255',
    '192.169.0.1', '11.0.0.1', '[2001:db8::1]', '[::ffff:808:808]', 'local', 'notlocal', '1.2.3',
    '256.1.1.1', 'localhost.example.com', '10.0.0.1.example.com'];
  for (const h of local) assert.equal(isLocalHostname(h), true, h);
  for (const h of remote) assert.equal(isLocalHostname(h), false, h);
});

test('?mode= overrides the detection and the description says so', () => {
  assert.deepEqual(accessMode('http://192.168.1.58:8000/'), { mode: 'LOCAL', forced: false });
  assert.deepEqual(accessMode('https://recorder.itagenten.no/guest_join'), { mode: 'REMOTE', forced: false });
  assert.deepEqual(accessMode('http://localhost:8000/?mode=remote'), { mode: 'REMOTE', forced: true });
  assert.deepEqual(accessMode('https://recorder.itagenten.no/?mode=LOCAL'), { mode: 'LOCAL', forced: true });
  assert.deepEqual(accessMode('http://localhost:8000/?mode=bogus'), { mode: 'LOCAL', forced: false });
  assert.equal(describeMode({ mode: 'REMOTE', forced: false }, 'HLS'), 'Access mode: REMOTE (using HLS)');
  assert.equal(describeMode({ mode: 'LOCAL', forced: true }, 'WebRTC/WHEP'),
    'Access mode: LOCAL (using WebRTC/WHEP) [set by ?mode=]');
});

test('the mode line says how the players play: REMOTE · WebRTC via TURN, REMOTE · HLS, or both', () => {
  assert.equal(transportLabel('LOCAL', null, []), 'WebRTC/WHEP');
  assert.equal(transportLabel('LOCAL', 'hls', ['hls']), 'WebRTC/WHEP', 'LOCAL is unchanged');
  assert.equal(transportLabel('REMOTE', 'hls', []), 'HLS');
  assert.equal(transportLabel('REMOTE', 'hls', ['whep']), 'HLS');
  assert.equal(transportLabel('REMOTE', null, []), 'WebRTC via TURN or HLS', 'nothing settled yet');
  assert.equal(transportLabel('REMOTE', null, [null, null]), 'WebRTC via TURN or HLS');
  assert.equal(transportLabel('REMOTE', null, ['whep', null, 'whep']), 'WebRTC via TURN');
  assert.equal(transportLabel('REMOTE', null, ['hls', null]), 'HLS');
  assert.equal(transportLabel('REMOTE', null, ['whep', 'hls']), 'WebRTC via TURN + HLS');
  assert.equal(describeMode({ mode: 'REMOTE', forced: true }, transportLabel('REMOTE', null, ['whep'])),
    'Access mode: REMOTE (using WebRTC via TURN) [set by ?mode=]');
});

const OFFER = [
  'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1',
  'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:0123456789012345678901',
  'a=mid:0', 'a=sendonly', 'a=rtpmap:111 opus/48000/2',
  'm=video 9 UDP/TLS/RTP/SAVPF 96', 'c=IN IP4 0.0.0.0', 'a=ice-ufrag:abcd', 'a=ice-pwd:0123456789012345678901',
  'a=mid:1', 'a=sendonly', 'a=rtpmap:96 H264/90000', '',
].join('\r\n');

test('candidates trickle under the offer\'s credentials, grouped by mid', () => {
  assert.deepEqual(iceCredentials(OFFER), { ufrag: 'abcd', pwd: '0123456789012345678901' });
  const frag = candidateFragment(OFFER, [
    { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 50000 typ host', sdpMid: '0' },
    { candidate: 'candidate:2 1 udp 41885439 203.0.113.5 60000 typ relay raddr 0.0.0.0 rport 0', sdpMid: '0' },
  ], true);
  assert.equal(frag, [
    'a=ice-ufrag:abcd', 'a=ice-pwd:0123456789012345678901',
    'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'a=mid:0',
    'a=candidate:1 1 udp 2122260223 192.168.1.2 50000 typ host',
    'a=candidate:2 1 udp 41885439 203.0.113.5 60000 typ relay raddr 0.0.0.0 rport 0',
    'a=end-of-candidates', '',
  ].join('\r\n'));
  // Only the end of gathering: still a section to carry a=end-of-candidates.
  assert.match(candidateFragment(OFFER, [], true), /m=audio 9 UDP\/TLS\/RTP\/SAVPF 0\r\na=mid:0\r\na=end-of-candidates\r\n$/);
});

test('an ICE restart sends new credentials and applies the server\'s', () => {
  const restarted = OFFER.replaceAll('abcd', 'wxyz');
  assert.equal(restartFragment(restarted), [
    'a=ice-ufrag:wxyz', 'a=ice-pwd:0123456789012345678901',
    'm=audio 9 UDP/TLS/RTP/SAVPF 0', 'a=mid:0', 'm=video 9 UDP/TLS/RTP/SAVPF 0', 'a=mid:1', '',
  ].join('\r\n'));
  const answer = [
    'v=0', 'o=- 1 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=ice-lite', 'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=ice-ufrag:OLDU', 'a=ice-pwd:oldpasswordoldpassword', 'a=mid:0',
    'a=candidate:1 1 udp 2130706431 10.0.0.1 8189 typ host',
    'm=video 9 UDP/TLS/RTP/SAVPF 96', 'a=ice-ufrag:OLDU', 'a=ice-pwd:oldpasswordoldpassword', 'a=mid:1', '',
  ].join('\r\n');
  const serverFrag = [
    'a=ice-lite', 'a=ice-ufrag:NEWU', 'a=ice-pwd:newpasswordnewpassword', 'a=group:BUNDLE 0 1',
    'm=audio 9 UDP/TLS/RTP/SAVPF 111', 'a=mid:0', 'a=candidate:1 1 udp 2130706431 10.0.0.2 8189 typ host',
    'a=end-of-candidates', '',
  ].join('\r\n');
  const updated = applyRestartAnswer(answer, serverFrag);
  assert.equal((updated.match(/a=ice-ufrag:NEWU/g) ?? []).length, 2);
  assert.equal((updated.match(/a=ice-pwd:newpasswordnewpassword/g) ?? []).length, 2);
  assert.doesNotMatch(updated, /OLDU|oldpassword|10\.0\.0\.1/);
  assert.match(updated, /a=mid:0\r\na=candidate:1 1 udp 2130706431 10\.0\.0\.2 8189 typ host\r\nm=video/);
  assert.throws(() => applyRestartAnswer(answer, 'a=ice-lite\r\n'), /no ice-ufrag/);
});

test('H.264 constrained baseline is preferred for publishing', () => {
  const codecs = [
    { mimeType: 'video/VP8' },
    { mimeType: 'video/rtx' },
    { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034' },
    { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f' },
    { mimeType: 'video/H264', sdpFmtpLine: 'level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f' },
  ];
  assert.deepEqual(preferH264(codecs).map((c) => `${c.mimeType} ${c.sdpFmtpLine ?? ''}`.trim()), [
    'video/H264 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f',
    'video/H264 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034',
    'video/H264 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f',
    'video/rtx',
    'video/VP8',
  ]);
});
