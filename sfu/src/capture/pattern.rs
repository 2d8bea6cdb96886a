//! The synthetic test camera: colour bars with a moving box, the camera name, a frame counter
//! and the wall-clock time drawn in, and the counter also as a row of black/white blocks that a
//! test can read back from a decoded picture.
//!
//! Layout from the top: a grey strip holding the counter code, a black band with two text lines
//! (`NAME  #COUNTER` and `HH:MM:SS.mmm UTC`), then 75% colour bars with a box sliding across,
//! and at the bottom a band of faint noise, new every frame: without it the picture compresses to
//! a twentieth of the configured bitrate and would not load the forwarding path the way a real
//! camera does. Its size and strength are tuned so that OpenH264 (whose rate control cannot cap
//! the bitrate while frame skipping is off) lands near the target: 2.5 Mbit/s at 720p30.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::frame::{FrameError, I420Frame};
use super::source::{Captured, FrameSource, Picture, SourceError};

/// Value bits of the counter code (the counter wraps at 2^24: six days at 30 fps).
pub const CODE_VALUE_BITS: usize = 24;
/// Check bits after the value bits, so a misread (a block smeared by a lossy frame) is rejected
/// instead of returning a wrong counter.
pub const CODE_CHECK_BITS: usize = 4;
/// Blocks in the code row.
pub const CODE_BLOCKS: usize = CODE_VALUE_BITS + CODE_CHECK_BITS;
/// Left and top margin of the code row, pixels.
pub const CODE_MARGIN: usize = 8;
/// Luma of a 1 block and a 0 block (video range white and black).
const WHITE: u8 = 235;
const BLACK: u8 = 16;
const GREY: u8 = 128;

/// 75% colour bars (white, yellow, cyan, green, magenta, red, blue) in BT.601 video range.
const BARS: [(u8, u8, u8); 7] = [
    (180, 128, 128),
    (162, 44, 142),
    (131, 156, 44),
    (112, 72, 58),
    (84, 184, 198),
    (65, 100, 212),
    (35, 212, 114),
];

/// Horizontal speed of the moving box, pixels per frame (fast enough that a frozen stream shows).
const BOX_SPEED: usize = 8;

/// Side of one code block for a picture `width` wide: 16 px from 480 px up, smaller below so
/// the row still fits.
pub fn code_block_size(width: usize) -> usize {
    (width.saturating_sub(2 * CODE_MARGIN) / CODE_BLOCKS).clamp(1, 16)
}

/// The check bits of a counter value.
pub fn code_check(value: u32) -> u32 {
    let mut x = value & ((1 << CODE_VALUE_BITS) - 1);
    let mut check = 0b0101; // so an all-black row does not read as counter 0
    while x != 0 {
        check ^= x & 0xf;
        x >>= 4;
    }
    check
}

/// Where a camera's counter starts: the number its name ends with (mod 16) times 2^20, so a
/// decoded picture tells which camera it came from (`counter >> 20`) for the first ~9.7 hours.
pub fn counter_start(name: &str) -> u32 {
    // The last two digits, read from the right.
    let number = name
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .take(2)
        .enumerate()
        .fold(0u32, |n, (i, d)| {
            n + u32::from(d - b'0') * 10u32.pow(i as u32)
        });
    (number % 16) << 20
}

/// Reads the counter code from the luma plane of a (decoded) picture; `None` when the check
/// bits do not match. Samples the middle half of each block, so compression blur at the edges
/// does not matter.
pub fn read_counter(y: &[u8], width: usize, height: usize) -> Option<u32> {
    let block = code_block_size(width);
    if CODE_MARGIN + block > height || CODE_MARGIN + CODE_BLOCKS * block > width {
        return None;
    }
    let inset = block / 4;
    let span = (block - 2 * inset).max(1);
    let mut word: u32 = 0;
    for i in 0..CODE_BLOCKS {
        let x0 = CODE_MARGIN + i * block + inset;
        let mut sum = 0usize;
        for row in CODE_MARGIN + inset..CODE_MARGIN + inset + span {
            sum += y
                .get(row * width + x0..row * width + x0 + span)?
                .iter()
                .map(|&p| usize::from(p))
                .sum::<usize>();
        }
        if sum / (span * span) > usize::from(GREY) {
            word |= 1 << i;
        }
    }
    let value = word & ((1 << CODE_VALUE_BITS) - 1);
    (word >> CODE_VALUE_BITS == code_check(value)).then_some(value)
}

/// The test-pattern frame source.
pub struct PatternSource {
    name: String,
    frame: I420Frame,
    counter: u32,
    bar_row: [Vec<u8>; 3],
    scale: usize,
    /// Faint random luma (124..=131) the noise band's rows are copied from, and the xorshift
    /// state that picks where (reproducible, not cryptographic).
    noise_table: Vec<u8>,
    noise: u64,
}

impl PatternSource {
    pub fn new(name: &str, width: u32, height: u32) -> Result<Self, FrameError> {
        let frame = I420Frame::new(width, height)?;
        let w = width as usize;
        let bar_of = |x: usize| BARS[x * BARS.len() / w];
        let cw = frame.chroma_width();
        let bar_row = [
            (0..w).map(|x| bar_of(x).0).collect(),
            (0..cw).map(|x| bar_of(2 * x).1).collect(),
            (0..cw).map(|x| bar_of(2 * x).2).collect(),
        ];
        Ok(Self {
            name: name.to_owned(),
            scale: (height as usize / 180).max(1),
            frame,
            counter: counter_start(name),
            bar_row,
            noise_table: {
                let mut state = NOISE_SEED;
                (0..NOISE_TABLE + w)
                    .map(|_| 124 + (xorshift(&mut state) % 8) as u8)
                    .collect()
            },
            noise: NOISE_SEED,
        })
    }

    /// The counter the next frame will carry.
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// Starts counting at `counter` (tests tell cameras apart this way).
    pub fn set_counter(&mut self, counter: u32) {
        self.counter = counter & ((1 << CODE_VALUE_BITS) - 1);
    }

    /// Draws the picture for the current counter and wall-clock time.
    fn draw(&mut self, wall_ms: u64) {
        let (w, h) = (self.frame.width() as usize, self.frame.height() as usize);
        let block = code_block_size(w);
        let strip_h = (2 * CODE_MARGIN + block).min(h);
        let s = self.scale;
        let line_h = 10 * s;
        let band_h = (2 * line_h + 4 * s).min(h - strip_h);
        let bars_top = strip_h + band_h;

        let frame = &mut self.frame;
        fill_rect(&mut frame.y, w, 0, 0, w, strip_h, GREY);
        fill_rect(&mut frame.y, w, 0, strip_h, w, band_h, BLACK);
        let cw = w / 2;
        fill_rect(&mut frame.u, cw, 0, 0, cw, bars_top / 2, 128);
        fill_rect(&mut frame.v, cw, 0, 0, cw, bars_top / 2, 128);
        for row in bars_top..h {
            frame.y[row * w..][..w].copy_from_slice(&self.bar_row[0]);
        }
        for row in bars_top / 2..h / 2 {
            frame.u[row * cw..][..cw].copy_from_slice(&self.bar_row[1]);
            frame.v[row * cw..][..cw].copy_from_slice(&self.bar_row[2]);
        }

        // The noise band: each row a slice of the table from a random place, so no row matches
        // anything near it in the previous frame (motion search finds nothing to reuse). One
        // copy per row keeps it cheap even in a debug build.
        for row in (h - h / 12).max(bars_top)..h {
            let from = (xorshift(&mut self.noise) % NOISE_TABLE as u64) as usize;
            frame.y[row * w..][..w].copy_from_slice(&self.noise_table[from..from + w]);
        }

        // The moving box: black frame, white inside, neutral chroma.
        let box_w = (w / 10).max(2) & !1;
        let box_h = ((h - bars_top) / 3).max(2) & !1;
        let travel = w.saturating_sub(box_w).max(1);
        let box_x = (self.counter as usize * BOX_SPEED % travel) & !1;
        let box_y = (bars_top + (h - bars_top).saturating_sub(box_h) / 2) & !1;
        fill_rect(&mut frame.y, w, box_x, box_y, box_w, box_h, BLACK);
        let border = (box_w / 8).max(1);
        fill_rect(
            &mut frame.y,
            w,
            box_x + border,
            box_y + border,
            box_w.saturating_sub(2 * border),
            box_h.saturating_sub(2 * border),
            WHITE,
        );
        fill_rect(
            &mut frame.u,
            cw,
            box_x / 2,
            box_y / 2,
            box_w / 2,
            box_h / 2,
            128,
        );
        fill_rect(
            &mut frame.v,
            cw,
            box_x / 2,
            box_y / 2,
            box_w / 2,
            box_h / 2,
            128,
        );

        let word = self.counter | (code_check(self.counter) << CODE_VALUE_BITS);
        for i in 0..CODE_BLOCKS {
            let luma = if word >> i & 1 == 1 { WHITE } else { BLACK };
            let x = CODE_MARGIN + i * block;
            fill_rect(&mut frame.y, w, x, CODE_MARGIN, block, block, luma);
        }

        let text_x = CODE_MARGIN;
        let first = format!("{}  #{}", self.name, self.counter);
        draw_text(&mut frame.y, w, text_x, strip_h + 2 * s, s, &first);
        draw_text(
            &mut frame.y,
            w,
            text_x,
            strip_h + 2 * s + line_h,
            s,
            &clock_text(wall_ms),
        );
    }
}

impl FrameSource for PatternSource {
    fn next_frame(&mut self, now: Instant) -> Result<Captured<'_>, SourceError> {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.draw(wall_ms);
        self.counter = (self.counter + 1) & ((1 << CODE_VALUE_BITS) - 1);
        Ok(Captured {
            image: Picture::I420(&self.frame),
            at: now,
        })
    }
}

const NOISE_TABLE: usize = 1 << 16;
const NOISE_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `HH:MM:SS.mmm UTC` of a Unix time in milliseconds.
pub fn clock_text(unix_ms: u64) -> String {
    let ms = unix_ms % 1000;
    let secs = unix_ms / 1000 % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{ms:03} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Fills a rectangle of a plane (`stride` bytes per row), clipped to the plane.
fn fill_rect(plane: &mut [u8], stride: usize, x: usize, y: usize, w: usize, h: usize, v: u8) {
    if stride == 0 || x >= stride {
        return;
    }
    let w = w.min(stride - x);
    let rows = plane.len() / stride;
    for row in y..(y + h).min(rows) {
        plane[row * stride + x..][..w].fill(v);
    }
}

/// Draws `text` in white with the 8x8 font scaled by `scale`, top-left at (x, y), clipped.
fn draw_text(plane: &mut [u8], stride: usize, x: usize, y: usize, scale: usize, text: &str) {
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY
            .get(ch as usize)
            .copied()
            .unwrap_or([0; 8]);
        let gx = x + i * 8 * scale;
        if gx + 8 * scale > stride {
            break;
        }
        for (r, bits) in glyph.iter().enumerate() {
            for c in 0..8 {
                // font8x8 keeps the leftmost pixel in the lowest bit.
                if bits >> c & 1 == 1 {
                    fill_rect(
                        plane,
                        stride,
                        gx + c * scale,
                        y + r * scale,
                        scale,
                        scale,
                        WHITE,
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_count_from_their_number() {
        assert_eq!(counter_start("cam0"), 0);
        assert_eq!(counter_start("cam1"), 1 << 20);
        assert_eq!(counter_start("cam12"), 12 << 20);
        assert_eq!(counter_start("cam17"), 1 << 20, "mod 16");
        assert_eq!(counter_start("front"), 0);
        assert_eq!(counter_start("x123"), (23 % 16) << 20, "last two digits");
    }

    #[test]
    fn the_counter_reads_back_from_the_picture() {
        for (w, h) in [(1280, 720), (320, 240), (1920, 1080)] {
            let mut p = PatternSource::new("cam0", w, h).expect("pattern");
            p.set_counter(0x00ab_cdef - 1);
            for expected in [0x00ab_cdef - 1, 0x00ab_cdef] {
                let frame = p.next_frame(Instant::now()).expect("frame");
                let i420 = frame.image.i420().expect("I420");
                let (w, h) = (i420.width() as usize, i420.height() as usize);
                assert_eq!(read_counter(&i420.y, w, h), Some(expected), "{w}x{h}");
            }
        }
    }

    #[test]
    fn a_corrupted_code_is_rejected() {
        let mut p = PatternSource::new("cam0", 640, 360).expect("pattern");
        p.set_counter(12345);
        let frame = p.next_frame(Instant::now()).expect("frame");
        let mut y = frame.image.i420().expect("I420").y.clone();
        let block = code_block_size(640);
        // Flip bit 3's block to its opposite colour.
        let x = CODE_MARGIN + 3 * block;
        let flipped = if y[CODE_MARGIN * 640 + x + 2] > GREY {
            BLACK
        } else {
            WHITE
        };
        fill_rect(&mut y, 640, x, CODE_MARGIN, block, block, flipped);
        assert_eq!(read_counter(&y, 640, 360), None);
        assert_eq!(read_counter(&[0; 640 * 360], 640, 360), None, "all black");
        assert_eq!(read_counter(&[], 640, 360), None, "no data");
    }

    #[test]
    fn the_picture_moves_and_tiny_sizes_do_not_panic() {
        let mut p = PatternSource::new("cam0", 320, 240).expect("pattern");
        let a = p
            .next_frame(Instant::now())
            .expect("frame")
            .image
            .i420()
            .expect("I420")
            .y
            .clone();
        let b = p
            .next_frame(Instant::now())
            .expect("frame")
            .image
            .i420()
            .expect("I420")
            .y
            .clone();
        // Beyond the counter strip, the box has moved.
        let below = 240 / 3 * 320;
        assert_ne!(a[below..], b[below..]);
        for (w, h) in [(2, 2), (16, 8), (64, 32), (8192, 2)] {
            let mut p = PatternSource::new("a-long-camera-name", w, h).expect("pattern");
            p.next_frame(Instant::now()).expect("frame");
        }
    }

    #[test]
    fn clock_text_format() {
        assert_eq!(clock_text(0), "00:00:00.000 UTC");
        assert_eq!(clock_text(86_400_000 + 3_723_045), "01:02:03.045 UTC");
    }
}
