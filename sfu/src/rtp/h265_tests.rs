use super::*;

/// A NAL unit of type `t` (layer 0, temporal id 0) with `body`.
fn nal(t: u8, body: &[u8]) -> Vec<u8> {
    [&[t << 1, 1][..], body].concat()
}

/// An aggregation packet of `nals`.
fn ap(nals: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![AP << 1, 1];
    for nal in nals {
        out.extend((nal.len() as u16).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// `nal` as fragmentation units of `pieces` parts of its body.
fn fu(nal: &[u8], pieces: usize) -> Vec<Vec<u8>> {
    let body = &nal[2..];
    let step = body.len().div_ceil(pieces);
    let chunks: Vec<&[u8]> = body.chunks(step).collect();
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let mut header = nal_type_of(nal[0]);
            if i == 0 {
                header |= 0x80;
            }
            if i + 1 == chunks.len() {
                header |= 0x40;
            }
            [&[(nal[0] & 0x81) | (FU << 1), nal[1], header][..], chunk].concat()
        })
        .collect()
}

const VPS_NAL: &[u8] = &[0x40, 0x01, 0x0c, 0x01];
const SPS_NAL: &[u8] = &[0x42, 0x01, 0x01, 0x01, 0x60];
const PPS_NAL: &[u8] = &[0x44, 0x01, 0xc1];

/// What came out of one push: (timestamp, keyframe, VPS, SPS, PPS, sample).
type Out = (
    u32,
    bool,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<u8>,
);

struct Feed {
    depacketizer: H265Depacketizer,
    sequence: u16,
}

impl Feed {
    fn new(format: H265Format) -> Self {
        Self {
            depacketizer: H265Depacketizer::new(format),
            sequence: 100,
        }
    }

    /// Pushes the next packet (sequence numbers count up; `skip` leaves a gap first).
    fn push(
        &mut self,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> Result<Option<Out>, DepacketizeError> {
        self.sequence = self.sequence.wrapping_add(1);
        let unit = self
            .depacketizer
            .push_avcc(self.sequence, timestamp, marker, payload)?;
        Ok(unit.map(|u| {
            let (sps, pps) = u.sps_pps();
            let mut sample = Vec::new();
            u.write_avcc(&mut sample);
            (
                u.timestamp,
                u.is_keyframe(),
                u.vps().map(<[u8]>::to_vec),
                sps.map(<[u8]>::to_vec),
                pps.map(<[u8]>::to_vec),
                sample,
            )
        }))
    }

    /// Pushes a picture's packets (the marker on the last); what the last one gave.
    fn picture(&mut self, timestamp: u32, packets: &[impl AsRef<[u8]>]) -> Option<Out> {
        let mut out = None;
        for (i, packet) in packets.iter().enumerate() {
            out = self
                .push(timestamp, i + 1 == packets.len(), packet.as_ref())
                .unwrap();
        }
        out
    }
}

/// An AVCC sample of `nals`.
fn sample(nals: &[&[u8]]) -> Vec<u8> {
    nals.iter()
        .flat_map(|n| [&(n.len() as u32).to_be_bytes()[..], n].concat())
        .collect()
}

#[test]
fn single_nal_units_aggregation_and_fragments() {
    let mut feed = Feed::new(H265Format::default());
    let idr = nal(19, &(0..=200).collect::<Vec<u8>>());
    // Single NAL unit packets: VPS, SPS, PPS, then the IDR in three fragments.
    let mut packets = vec![VPS_NAL.to_vec(), SPS_NAL.to_vec(), PPS_NAL.to_vec()];
    let fragments = fu(&idr, 3);
    assert_eq!(fragments.len(), 3, "start, middle, end");
    packets.extend(fragments);
    let key = feed.picture(0, &packets).expect("a picture");
    assert_eq!(
        key,
        (
            0,
            true,
            Some(VPS_NAL.to_vec()),
            Some(SPS_NAL.to_vec()),
            Some(PPS_NAL.to_vec()),
            // The fragments rejoined with the NAL header rebuilt from the FU headers; the
            // parameter sets stay out of the sample.
            sample(&[&idr]),
        )
    );
    // An aggregation packet with the parameter sets and a small CRA.
    let cra = nal(21, &[5, 6, 7]);
    let out = feed
        .picture(3000, &[ap(&[VPS_NAL, SPS_NAL, PPS_NAL, &cra])])
        .expect("a picture");
    assert!(out.1, "a CRA is a keyframe");
    assert_eq!(out.3.as_deref(), Some(SPS_NAL));
    assert_eq!(out.5, sample(&[&cra]));
    // Trailing pictures: one whole, one as fragments, one aggregated with an SEI.
    let trail = nal(1, &[9; 40]);
    let sei = nal(39, &[1, 2]);
    let outs: Vec<Out> = [
        vec![trail.clone()],
        fu(&trail, 4),
        vec![ap(&[&sei, &trail])],
    ]
    .iter()
    .enumerate()
    .map(|(i, packets)| feed.picture(6000 + 3000 * i as u32, packets).unwrap())
    .collect();
    for (i, out) in outs.iter().enumerate() {
        assert!(!out.1 && out.2.is_none() && out.3.is_none(), "{i}: {out:?}");
    }
    assert_eq!(outs[0].5, sample(&[&trail]));
    assert_eq!(outs[1].5, sample(&[&trail]));
    assert_eq!(outs[2].5, sample(&[&sei, &trail]));
    // A picture that ends without a marker ends at the next timestamp.
    assert_eq!(feed.push(15_000, false, &trail).unwrap(), None);
    let out = feed.push(18_000, true, &cra).unwrap().unwrap();
    assert_eq!(
        out.0, 18_000,
        "the later of the two pictures ended by this packet"
    );
}

#[test]
fn a_lost_fragment_drops_the_picture_until_the_next_keyframe() {
    let mut feed = Feed::new(H265Format::default());
    let idr = nal(20, &[1; 30]);
    let key = [vec![ap(&[VPS_NAL, SPS_NAL, PPS_NAL])], fu(&idr, 2)].concat();
    assert!(feed.picture(0, &key).is_some());
    let trail = nal(1, &[7; 90]);
    let fragments = fu(&trail, 3);
    // Start, then the middle is lost: the end names the gap.
    assert_eq!(feed.push(3000, false, &fragments[0]).unwrap(), None);
    feed.sequence = feed.sequence.wrapping_add(1);
    assert_eq!(
        feed.push(3000, true, &fragments[2]),
        Err(DepacketizeError::Loss {
            sequence: feed.sequence,
            missing: 1
        })
    );
    // The next trailing picture refers to the lost one: dropped, its lone end fragment too.
    assert_eq!(feed.picture(6000, &[&trail]), None);
    assert_eq!(feed.push(9000, true, &fu(&trail, 2)[1]).unwrap(), None);
    // The next IRAP picture comes out, and what follows it.
    let out = feed.picture(12_000, &key).expect("the keyframe");
    assert!(out.1);
    assert!(feed.picture(15_000, &[&trail]).is_some());
}

#[test]
fn kept_parameter_sets_go_before_an_irap_picture_without_them() {
    let sprop = |nal: &[u8]| BASE64.encode(nal);
    let fmtp = format!(
        "profile-id=1; sprop-vps={};sprop-sps={},{};sprop-pps={}",
        sprop(VPS_NAL),
        sprop(SPS_NAL),
        sprop(&[0x42, 0x01, 9]),
        sprop(PPS_NAL)
    );
    let format = H265Format::from_fmtp(&fmtp).unwrap();
    assert_eq!(format.sps.as_deref(), Some(SPS_NAL), "the first of a list");
    let mut feed = Feed::new(format);
    let idr = nal(19, &[3; 10]);
    let out = feed.picture(0, &[&idr]).expect("a keyframe");
    assert_eq!(
        (out.2.as_deref(), out.3.as_deref(), out.4.as_deref()),
        (Some(VPS_NAL), Some(SPS_NAL), Some(PPS_NAL)),
        "from the SDP"
    );
    assert_eq!(out.5, sample(&[&idr]));

    // In-band sets win: a new SPS, sent as a picture of its own (its own timestamp), is kept
    // and not given out, and the next keyframe without sets gets it.
    let new_sps = nal(SPS, &[1, 1, 2, 0x70]);
    assert_eq!(feed.picture(3000, &[&new_sps]), None);
    let out = feed
        .picture(6000, &[fu(&idr, 2), vec![nal(1, &[1])]].concat())
        .expect("a keyframe");
    assert_eq!(out.3, Some(new_sps.clone()));
    assert_eq!(out.2.as_deref(), Some(VPS_NAL));
    // A keyframe with its own SPS keeps it; the missing PPS comes from the kept ones.
    let out = feed
        .picture(9000, &[ap(&[VPS_NAL, SPS_NAL]), idr.clone()])
        .unwrap();
    assert_eq!(
        (out.3.as_deref(), out.4.as_deref()),
        (Some(SPS_NAL), Some(PPS_NAL))
    );
    // Restarting goes back to the SDP's sets.
    feed.depacketizer.restart();
    feed.picture(12_000, &[new_sps]);
    feed.depacketizer.restart();
    let out = feed.picture(15_000, &[idr]).unwrap();
    assert_eq!(out.3.as_deref(), Some(SPS_NAL));
}

#[test]
fn decoding_order_numbers_and_bad_format_parameters_are_refused() {
    assert_eq!(
        H265Format::from_fmtp("sprop-max-don-diff=2;sprop-depack-buf-nalus=3"),
        Err(H265FormatError::DecodingOrderNumbers(2))
    );
    assert_eq!(
        H265Format::from_fmtp("sprop-max-don-diff=0"),
        Ok(H265Format::default())
    );
    assert_eq!(
        H265Format::from_fmtp("SPROP-MAX-DON-DIFF=-1"),
        Err(H265FormatError::BadMaxDonDiff("-1".into()))
    );
    assert_eq!(
        H265Format::from_fmtp("sprop-sps=!!"),
        Err(H265FormatError::BadParameterSet("sprop-sps"))
    );
    assert_eq!(
        H265Format::from_fmtp("sprop-pps=QA=="),
        Err(H265FormatError::BadParameterSet("sprop-pps")),
        "one byte is no NAL header"
    );
    assert_eq!(H265Format::from_fmtp(""), Ok(H265Format::default()));
    let message = H265FormatError::DecodingOrderNumbers(2).to_string();
    assert!(message.contains("DONL"), "{message}");
}

#[test]
fn malformed_packets_are_errors_not_panics() {
    type Case = (&'static [u8], fn(u16) -> DepacketizeError);
    let cases: [Case; 9] = [
        (&[], |sequence| DepacketizeError::Empty { sequence }),
        (&[0x26], |sequence| DepacketizeError::ShortH265Header {
            sequence,
        }),
        (&[AP << 1, 1], |sequence| DepacketizeError::BadAp {
            sequence,
        }),
        (&[AP << 1, 1, 0, 9, 0x26, 1], |sequence| {
            DepacketizeError::BadAp { sequence }
        }),
        (&[AP << 1, 1, 0, 1, 0x26], |sequence| {
            DepacketizeError::BadAp { sequence }
        }),
        (&[FU << 1, 1], |sequence| DepacketizeError::BadFu {
            sequence,
        }),
        (&[FU << 1, 1, 0xc0 | 19, 1], |sequence| {
            DepacketizeError::BadFu { sequence }
        }),
        (&[FU << 1, 1, 0x80 | FU, 1], |sequence| {
            DepacketizeError::BadFu { sequence }
        }),
        (&[PACI << 1, 1, 0, 0], |sequence| {
            DepacketizeError::UnsupportedH265 {
                sequence,
                payload_type: PACI,
            }
        }),
    ];
    for (i, (payload, expected)) in cases.into_iter().enumerate() {
        // A new depacketizer each: no loss context between the cases.
        let mut d = H265Depacketizer::new(H265Format::default());
        let sequence = i as u16;
        assert_eq!(
            d.push_avcc(sequence, 0, true, payload),
            Err(expected(sequence)),
            "{payload:?}"
        );
    }
    // A middle fragment with nothing started (not after a loss): an error too.
    let mut d = H265Depacketizer::new(H265Format::default());
    assert_eq!(
        d.push_avcc(1, 0, true, &[FU << 1, 1, 1, 5]),
        Err(DepacketizeError::FuWithoutStart { sequence: 1 })
    );
}
