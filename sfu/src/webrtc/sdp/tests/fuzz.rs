use super::trickle::CHROME_FRAG;
use super::*;

/// Small deterministic PRNG (xorshift64) so the mutation corpus is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }
    }
}

/// Fragments that are interesting to splice into SDP.
const TOKENS: [&[u8]; 16] = [
    b"\r\n",
    b"\n",
    b"a=",
    b"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n",
    b"m=audio 0 UDP/TLS/RTP/SAVPF 0\r\n",
    b"a=rtpmap:96 H264/90000\r\n",
    b"a=fmtp:96 apt=96;packetization-mode=1;profile-level-id=640c1f\r\n",
    b"a=ssrc-group:FID 1 1\r\n",
    b"a=setup:passive\r\n",
    b"a=candidate:1 1 udp 1 ::1 1 typ host\r\n",
    b":",
    b"/",
    b" ",
    b"4294967296",
    b"\xff\xfe",
    b"a=extmap:256/sendonly x\r\n",
];

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = data.len();
        let pos = rng.below(len + 1);
        match rng.below(6) {
            0 => {
                if let Some(b) = data.get_mut(pos) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                let end = (pos + rng.below(64)).min(len);
                data.drain(pos..end);
            }
            2 => {
                let end = (pos + rng.below(256)).min(len);
                let chunk = data[pos..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, chunk);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(pos..pos, token.iter().copied());
            }
            4 => data.truncate(pos),
            _ => {
                if let Some(b) = data.get_mut(pos) {
                    *b = u8::try_from(rng.below(256)).unwrap_or(0);
                }
            }
        }
    }
    data
}

fn corpus() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for (_, text) in ALL {
        out.push(text.as_bytes().to_vec());
        out.push(crlf(text).into_bytes());
    }
    out.push(CHROME_FRAG.as_bytes().to_vec());
    out
}

#[test]
fn fuzz_entry_on_corpus() {
    for input in corpus() {
        fuzz_entry(&input);
    }
    fuzz_entry(b"");
    fuzz_entry(&[0xff; 64]);
}

#[test]
fn fuzz_entry_on_mutations() {
    let corpus = corpus();
    let mut rng = XorShift(0x5eed_f5d9_2024_0f0f);
    let mut parsed = 0;
    for i in 0..2000 {
        let base = &corpus[i % corpus.len()];
        let input = mutate(&mut rng, base);
        fuzz_entry(&input);
        if parse_offer(&String::from_utf8_lossy(&input)).is_ok() {
            parsed += 1;
        }
    }
    // The mutations must not be so destructive that nothing gets past the parser.
    assert!(parsed > 100, "only {parsed} mutated offers parsed");
}
