//! The per-packet formats of the relay's data path, written by hand so that no packet
//! allocates: ChannelData (RFC 8656 §12.4), the Send indication (§11.4) and the Data indication
//! (§11.6). Encoders append to the caller's buffer; decoders return slices of the input.
//!
//! rtc-turn's `ChannelData` copies the payload into a `Vec` on both encode and decode, and
//! rtc-stun's `Message` copies every attribute value on decode; at one call per media packet
//! through the relay those copies would be the relay path's main cost, hence this module.
//! Control messages (Allocate, Refresh, ...) are rare and go through rtc-stun.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// STUN's magic cookie (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// A STUN header: type, length, cookie, transaction id.
pub const STUN_HEADER: usize = 20;
/// ChannelData header: channel number and length.
pub const CHANNEL_HEADER: usize = 4;
/// The first channel number a client may bind (RFC 8656 §12).
pub const CHANNEL_MIN: u16 = 0x4000;
/// The last one: 0x5000..=0x7FFF are reserved by RFC 8656 (RFC 5766 allowed up to 0x7FFF).
pub const CHANNEL_MAX: u16 = 0x4FFF;

const SEND_INDICATION: u16 = 0x0016;
const DATA_INDICATION: u16 = 0x0017;
const ATTR_XOR_PEER_ADDRESS: u16 = 0x0012;
const ATTR_DATA: u16 = 0x0013;
const FAMILY_V4: u8 = 0x01;
const FAMILY_V6: u8 = 0x02;

/// Why bytes from the server are not a valid data-path message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum WireError {
    #[error("{what} is truncated: {have} bytes, {need} needed")]
    Truncated {
        what: &'static str,
        have: usize,
        need: usize,
    },
    #[error("channel number {0:#06x} is outside 0x4000..=0x4FFF")]
    BadChannel(u16),
    #[error("not a STUN message (magic cookie {0:#010x})")]
    BadCookie(u32),
    #[error("STUN length {0} is not a multiple of 4")]
    BadStunLength(usize),
    #[error("a Data indication without {0}")]
    MissingAttribute(&'static str),
    #[error("XOR-PEER-ADDRESS has family {family} and {len} bytes")]
    BadAddress { family: u8, len: usize },
    #[error("payload of {0} bytes does not fit one TURN message")]
    TooLarge(usize),
}

/// Whether a datagram or frame from the server is ChannelData (first two bits 01) rather than
/// STUN (00): RFC 8656 §12 demultiplexes on exactly these bits.
pub fn is_channel_data(buf: &[u8]) -> bool {
    buf.first().is_some_and(|b| b >> 6 == 0b01)
}

fn padded(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends a ChannelData message to `out`; returns its length. `pad` adds the zero padding to
/// a multiple of 4 that streams require (RFC 8656 §12.5) and UDP does not.
pub fn encode_channel_data(
    channel: u16,
    payload: &[u8],
    pad: bool,
    out: &mut Vec<u8>,
) -> Result<usize, WireError> {
    let len = u16::try_from(payload.len()).map_err(|_| WireError::TooLarge(payload.len()))?;
    let start = out.len();
    out.extend_from_slice(&channel.to_be_bytes());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    if pad {
        out.resize(start + CHANNEL_HEADER + padded(payload.len()), 0);
    }
    Ok(out.len() - start)
}

/// A ChannelData message's channel number and payload (borrowed; padding and anything after
/// the declared length are ignored, as a datagram may carry padding).
pub fn decode_channel_data(buf: &[u8]) -> Result<(u16, &[u8]), WireError> {
    if buf.len() < CHANNEL_HEADER {
        return Err(WireError::Truncated {
            what: "ChannelData header",
            have: buf.len(),
            need: CHANNEL_HEADER,
        });
    }
    let channel = u16::from_be_bytes([buf[0], buf[1]]);
    if !(CHANNEL_MIN..=CHANNEL_MAX).contains(&channel) {
        return Err(WireError::BadChannel(channel));
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    let payload = buf
        .get(CHANNEL_HEADER..CHANNEL_HEADER + len)
        .ok_or(WireError::Truncated {
            what: "ChannelData payload",
            have: buf.len(),
            need: CHANNEL_HEADER + len,
        })?;
    Ok((channel, payload))
}

fn address_value_len(peer: &SocketAddr) -> usize {
    if peer.is_ipv4() { 8 } else { 20 }
}

/// The largest payload a Send indication to `peer` can carry (the STUN length is 16 bits).
pub fn max_indication_payload(peer: &SocketAddr) -> usize {
    // Header and value of XOR-PEER-ADDRESS, DATA's header; the result rounded down to 4 so the
    // padded DATA value still fits.
    (usize::from(u16::MAX) - (4 + address_value_len(peer)) - 4) & !3
}

/// Appends a Send indication carrying `payload` to `peer` to `out`; returns its length.
/// Without FINGERPRINT: it is optional for TURN (RFC 8656 §11.4) and would cost a CRC over the
/// whole packet.
pub fn encode_send_indication(
    transaction: [u8; 12],
    peer: SocketAddr,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<usize, WireError> {
    if payload.len() > max_indication_payload(&peer) {
        return Err(WireError::TooLarge(payload.len()));
    }
    let addr_len = address_value_len(&peer);
    let body = 4 + addr_len + 4 + padded(payload.len());
    let start = out.len();
    out.reserve(STUN_HEADER + body);
    out.extend_from_slice(&SEND_INDICATION.to_be_bytes());
    // Cannot truncate: `max_indication_payload` bounds `body` below 65536.
    out.extend_from_slice(&(body as u16).to_be_bytes());
    out.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out.extend_from_slice(&transaction);
    out.extend_from_slice(&ATTR_XOR_PEER_ADDRESS.to_be_bytes());
    out.extend_from_slice(&(addr_len as u16).to_be_bytes());
    write_xor_address(peer, &transaction, out);
    out.extend_from_slice(&ATTR_DATA.to_be_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(start + STUN_HEADER + body, 0);
    Ok(out.len() - start)
}

fn xor_key(transaction: &[u8; 12]) -> [u8; 16] {
    let mut key = [0; 16];
    key[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    key[4..].copy_from_slice(transaction);
    key
}

fn write_xor_address(peer: SocketAddr, transaction: &[u8; 12], out: &mut Vec<u8>) {
    let key = xor_key(transaction);
    let port = peer.port() ^ (MAGIC_COOKIE >> 16) as u16;
    match peer.ip() {
        IpAddr::V4(ip) => {
            out.extend_from_slice(&[0, FAMILY_V4]);
            out.extend_from_slice(&port.to_be_bytes());
            out.extend(ip.octets().iter().zip(&key).map(|(a, k)| a ^ k));
        }
        IpAddr::V6(ip) => {
            out.extend_from_slice(&[0, FAMILY_V6]);
            out.extend_from_slice(&port.to_be_bytes());
            out.extend(ip.octets().iter().zip(&key).map(|(a, k)| a ^ k));
        }
    }
}

fn read_xor_address(value: &[u8], transaction: &[u8; 12]) -> Result<SocketAddr, WireError> {
    let bad = || WireError::BadAddress {
        family: value.get(1).copied().unwrap_or(0),
        len: value.len(),
    };
    if value.len() < 4 {
        return Err(bad());
    }
    let key = xor_key(transaction);
    let port = u16::from_be_bytes([value[2], value[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
    let ip = match (value[1], value.len()) {
        (FAMILY_V4, 8) => {
            let mut o = [0u8; 4];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            IpAddr::V4(Ipv4Addr::from(o))
        }
        (FAMILY_V6, 20) => {
            let mut o = [0u8; 16];
            for (i, b) in o.iter_mut().enumerate() {
                *b = value[4 + i] ^ key[i];
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return Err(bad()),
    };
    Ok(SocketAddr::new(ip, port))
}

/// The STUN message type and transaction id of a buffer that is a whole STUN message, after
/// checking the header (cookie, length within the buffer, length a multiple of 4).
pub fn stun_header(buf: &[u8]) -> Result<(u16, [u8; 12], &[u8]), WireError> {
    if buf.len() < STUN_HEADER {
        return Err(WireError::Truncated {
            what: "STUN header",
            have: buf.len(),
            need: STUN_HEADER,
        });
    }
    let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if cookie != MAGIC_COOKIE {
        return Err(WireError::BadCookie(cookie));
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if !len.is_multiple_of(4) {
        return Err(WireError::BadStunLength(len));
    }
    let body = buf
        .get(STUN_HEADER..STUN_HEADER + len)
        .ok_or(WireError::Truncated {
            what: "STUN message",
            have: buf.len(),
            need: STUN_HEADER + len,
        })?;
    let mut transaction = [0; 12];
    transaction.copy_from_slice(&buf[8..STUN_HEADER]);
    Ok((u16::from_be_bytes([buf[0], buf[1]]), transaction, body))
}

/// Whether a STUN message type is a Data indication.
pub fn is_data_indication(message_type: u16) -> bool {
    message_type == DATA_INDICATION
}

/// The peer and payload of a Data indication (borrowed from `buf`). Other attributes
/// (FINGERPRINT, ICMP, unknown ones) are skipped: an indication with an attribute we do not
/// know is still delivered, as RFC 8489 §6.3.3 lets an indication's receiver ignore them.
pub fn decode_data_indication(buf: &[u8]) -> Result<(SocketAddr, &[u8]), WireError> {
    let (_, transaction, mut body) = stun_header(buf)?;
    let mut peer = None;
    let mut data = None;
    while !body.is_empty() {
        if body.len() < 4 {
            return Err(WireError::Truncated {
                what: "STUN attribute header",
                have: body.len(),
                need: 4,
            });
        }
        let kind = u16::from_be_bytes([body[0], body[1]]);
        let len = usize::from(u16::from_be_bytes([body[2], body[3]]));
        let value = body.get(4..4 + len).ok_or(WireError::Truncated {
            what: "STUN attribute",
            have: body.len(),
            need: 4 + len,
        })?;
        match kind {
            // The first occurrence counts (RFC 8489 §14: later duplicates are ignored).
            ATTR_XOR_PEER_ADDRESS if peer.is_none() => {
                peer = Some(read_xor_address(value, &transaction)?)
            }
            ATTR_DATA if data.is_none() => data = Some(value),
            _ => {}
        }
        body = body.get(4 + padded(len)..).unwrap_or(&[]);
    }
    let peer = peer.ok_or(WireError::MissingAttribute("XOR-PEER-ADDRESS"))?;
    let data = data.ok_or(WireError::MissingAttribute("DATA"))?;
    Ok((peer, data))
}

/// The length of the frame at the start of a stream's buffered bytes, once enough of it is
/// there to tell (4 bytes; 8 for STUN, to check the cookie). `Ok(None)`: need more bytes.
/// An error means the stream is not TURN and cannot be resynchronised.
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, WireError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    match buf[0] >> 6 {
        0b00 => {
            if !len.is_multiple_of(4) {
                return Err(WireError::BadStunLength(len));
            }
            if buf.len() >= 8 {
                let cookie = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
                if cookie != MAGIC_COOKIE {
                    return Err(WireError::BadCookie(cookie));
                }
                Ok(Some(STUN_HEADER + len))
            } else {
                Ok(None)
            }
        }
        0b01 => {
            let channel = u16::from_be_bytes([buf[0], buf[1]]);
            if channel > CHANNEL_MAX {
                return Err(WireError::BadChannel(channel));
            }
            // Over a stream the padding is part of the frame (RFC 8656 §12.5).
            Ok(Some(CHANNEL_HEADER + padded(len)))
        }
        _ => Err(WireError::BadChannel(u16::from_be_bytes([buf[0], buf[1]]))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 44], port))
    }

    #[test]
    fn channel_data_round_trip_with_and_without_padding() {
        for len in 0..9usize {
            let payload: Vec<u8> = (0..len as u8).collect();
            for pad in [false, true] {
                let mut out = vec![0xEE]; // appends after what is there
                let n = encode_channel_data(0x4001, &payload, pad, &mut out).unwrap();
                assert_eq!(n, out.len() - 1);
                assert_eq!(n.is_multiple_of(4), pad || len.is_multiple_of(4));
                assert!(stream_frame_len(&out[1..]).unwrap().is_some());
                let (ch, got) = decode_channel_data(&out[1..]).unwrap();
                assert_eq!((ch, got), (0x4001, &payload[..]));
            }
        }
    }

    #[test]
    fn channel_data_rejects_bad_numbers_and_short_buffers() {
        assert_eq!(
            decode_channel_data(&[0x50, 0, 0, 0]),
            Err(WireError::BadChannel(0x5000))
        );
        assert!(matches!(
            decode_channel_data(&[0x40, 0, 0, 5, 1, 2]),
            Err(WireError::Truncated { .. })
        ));
        assert!(decode_channel_data(&[0x40]).is_err());
        assert!(encode_channel_data(0x4000, &vec![0; 70_000], false, &mut Vec::new()).is_err());
    }

    #[test]
    fn send_indication_is_what_rtc_stun_reads() {
        use rtc_stun::attributes::{ATTR_DATA, ATTR_XOR_PEER_ADDRESS};
        use rtc_stun::message::{CLASS_INDICATION, METHOD_SEND, Message, MessageType};
        use rtc_stun::xoraddr::XorMappedAddress;
        let peers = [v4(5000), "[2001:db8::7]:61000".parse().unwrap()];
        for peer in peers {
            for len in [0usize, 1, 3, 4, 5, 1200] {
                let payload = vec![0xA5; len];
                let mut out = Vec::new();
                encode_send_indication([7; 12], peer, &payload, &mut out).unwrap();
                let mut m = Message::new();
                m.unmarshal_binary(&out).unwrap();
                assert_eq!(m.typ, MessageType::new(METHOD_SEND, CLASS_INDICATION));
                assert_eq!(m.get(ATTR_DATA).unwrap(), payload);
                let mut addr = XorMappedAddress::default();
                addr.get_from_as(&m, ATTR_XOR_PEER_ADDRESS).unwrap();
                assert_eq!(SocketAddr::new(addr.ip, addr.port), peer);
            }
        }
    }

    #[test]
    fn data_indication_built_by_rtc_stun_decodes_borrowed() {
        use rtc_stun::attributes::{ATTR_DATA, ATTR_XOR_PEER_ADDRESS};
        use rtc_stun::fingerprint::FINGERPRINT;
        use rtc_stun::message::{
            CLASS_INDICATION, METHOD_DATA, Message, MessageType, Setter, TransactionId,
        };
        use rtc_stun::xoraddr::XorMappedAddress;
        let peer: SocketAddr = "[2001:db8::9]:3478".parse().unwrap();
        let mut m = Message::new();
        m.set_type(MessageType::new(METHOD_DATA, CLASS_INDICATION));
        m.transaction_id = TransactionId::new();
        m.write_header();
        XorMappedAddress {
            ip: peer.ip(),
            port: peer.port(),
        }
        .add_to_as(&mut m, ATTR_XOR_PEER_ADDRESS)
        .unwrap();
        m.add(ATTR_DATA, b"hello");
        FINGERPRINT.add_to(&mut m).unwrap();
        let (got_peer, data) = decode_data_indication(&m.raw).unwrap();
        assert_eq!((got_peer, data), (peer, &b"hello"[..]));
        let (kind, _, _) = stun_header(&m.raw).unwrap();
        assert!(is_data_indication(kind));
    }

    #[test]
    fn data_indication_without_attributes_is_an_error() {
        let mut out = Vec::new();
        encode_send_indication([1; 12], v4(1), b"x", &mut out).unwrap();
        // Keep only the address attribute.
        out.truncate(STUN_HEADER + 12);
        out[2..4].copy_from_slice(&12u16.to_be_bytes());
        assert_eq!(
            decode_data_indication(&out),
            Err(WireError::MissingAttribute("DATA"))
        );
    }

    #[test]
    fn largest_indication_fits_and_one_more_byte_does_not() {
        for peer in [v4(9), "[::1]:9".parse().unwrap()] {
            let max = max_indication_payload(&peer);
            let mut out = Vec::new();
            encode_send_indication([0; 12], peer, &vec![1; max], &mut out).unwrap();
            assert_eq!(decode_data_indication(&out).unwrap().1.len(), max);
            assert!(encode_send_indication([0; 12], peer, &vec![1; max + 1], &mut out).is_err());
        }
    }

    #[test]
    fn stream_frame_len_needs_enough_bytes_and_refuses_garbage() {
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00]), Ok(None));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x05]), Ok(Some(12)));
        assert_eq!(stream_frame_len(&[0x01, 0x01, 0x00, 0x08]), Ok(None));
        assert_eq!(
            stream_frame_len(&[0x01, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42]),
            Ok(Some(28))
        );
        assert!(stream_frame_len(&[0x01, 0x01, 0x00, 0x07]).is_err());
        assert!(stream_frame_len(&[0x01, 0x01, 0x00, 0x08, 1, 2, 3, 4]).is_err());
        assert!(stream_frame_len(&[0x80, 0, 0, 0]).is_err());
        // A TLS record (a TLS server on a port configured as plain TCP) fails the cookie check.
        // (ASCII text starting with 'A'..'O' looks like ChannelData and is refused later, by
        // the client, as a channel it never bound.)
        assert!(stream_frame_len(b"\x16\x03\x03\x00\x7a\x02\x00\x00").is_err());
        assert!(stream_frame_len(&[0x50, 0, 0, 0]).is_err());
    }
}
