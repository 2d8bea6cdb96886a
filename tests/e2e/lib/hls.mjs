// A live HLS stream (fMP4, 1 s segments) from ffmpeg's test source, written to a folder, and a
// Playwright route that answers /hls/{name}/... from it. Stands in for r58's /hls routes until
// they exist, so the REMOTE multiview (hls.js in the page) is exercised against a real encoder
// and a real HLS packager.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

export async function startFfmpegHls() {
  const dir = mkdtempSync(join(tmpdir(), 'r58-hls-'));
  const args = [
    '-hide_banner', '-loglevel', 'error', '-re',
    '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=15',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', '15', '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'hls', '-hls_time', '1', '-hls_list_size', '6',
    '-hls_flags', 'delete_segments+independent_segments+temp_file', '-hls_segment_type', 'fmp4',
    '-hls_fmp4_init_filename', 'init.mp4', '-hls_segment_filename', join(dir, 'seg_%05d.m4s'),
    join(dir, 'index.m3u8'),
  ];
  const child = spawn('ffmpeg', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  const playlist = join(dir, 'index.m3u8');
  const deadline = Date.now() + 15000;
  // hls.js wants a few segments to start at the live edge.
  while (!(existsSync(playlist) && (readFileSync(playlist, 'utf8').match(/#EXTINF/g) ?? []).length >= 3)) {
    if (child.exitCode !== null) throw new Error(`ffmpeg exited:\n${log}`);
    if (Date.now() > deadline) throw new Error(`ffmpeg wrote no HLS in 15 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    dir,
    /** Answers every /hls/{name}/{file} request of `page` from the ffmpeg folder. */
    async route(page) {
      await page.route(/\/hls\/[^/]+\/[^/?]+(\?.*)?$/, (route) => {
        const file = join(dir, basename(new URL(route.request().url()).pathname));
        if (!existsSync(file)) return route.fulfill({ status: 404, body: 'not found\n' });
        const type = file.endsWith('.m3u8') ? 'application/vnd.apple.mpegurl' : 'video/mp4';
        return route.fulfill({ status: 200, contentType: type, body: readFileSync(file) });
      });
    },
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}
