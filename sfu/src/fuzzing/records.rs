//! The record format the stream fuzz entries ([`super::hls_ingest`], [`super::h265_depacketizer`])
//! read a hub reader's packets from: a series of records `flags, seq delta, ts delta (2 bytes,
//! big-endian, x 100 ticks), arrival delta (ms), len`, then `len` payload bytes. Flags: bit 0
//! video (track 1, else audio on track 0), bit 1 marker, bit 2 new epoch, bit 3 the timestamp
//! delta goes backwards. A last record shorter than its header is ignored; a `len` past the end
//! takes what is there.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::hub::ReaderPacket;

/// Bytes of one record header.
const RECORD_HEADER: usize = 6;

/// Appends one record to `out` (sequence delta 1): the writer seeds use.
pub(super) fn push_record(
    out: &mut Vec<u8>,
    flags: u8,
    ts_delta: u16,
    arrival_ms: u8,
    payload: &[u8],
) {
    out.extend_from_slice(&[flags, 1]);
    out.extend_from_slice(&ts_delta.to_be_bytes());
    out.extend_from_slice(&[arrival_ms, payload.len() as u8]);
    out.extend_from_slice(payload);
}

/// The packets `data` describes, the first arriving at `start`.
pub(super) fn reader_packets(mut data: &[u8], start: Instant) -> Vec<ReaderPacket> {
    let (mut epoch, mut arrival) = (1u32, start);
    let mut seq = [0u16; 2];
    let mut ts = [0u32; 2];
    let mut out = Vec::new();
    while data.len() >= RECORD_HEADER {
        let (header, body) = data.split_at(RECORD_HEADER);
        let flags = header[0];
        let len = usize::from(header[5]).min(body.len());
        let track = usize::from(flags & 1);
        if flags & 4 != 0 {
            epoch = epoch.wrapping_add(1);
        }
        seq[track] = seq[track].wrapping_add(u16::from(header[1]));
        let delta = u32::from(u16::from_be_bytes([header[2], header[3]])) * 100;
        ts[track] = if flags & 8 != 0 {
            ts[track].wrapping_sub(delta)
        } else {
            ts[track].wrapping_add(delta)
        };
        arrival += Duration::from_millis(u64::from(header[4]));
        out.push(ReaderPacket {
            track,
            epoch,
            sequence: seq[track],
            timestamp: ts[track],
            marker: flags & 2 != 0,
            keyframe_start: false,
            arrival,
            payload: Bytes::copy_from_slice(&body[..len]),
        });
        data = &body[len..];
    }
    out
}
