//! The I/O around the sans-IO engine: the media socket's reader with kernel receive times
//! ([`udp_recv`]), the batched sender ([`udp_batch`], GSO and `sendmmsg`: the one module of the
//! data plane allowed `unsafe`), and the driver thread that feeds the engine datagrams and
//! timeouts and sends what it produces ([`driver`]), and the TURN allocation it may hold for
//! the engine's relay candidate ([`relay`]).

pub mod driver;
pub mod relay;
mod relay_tls;
pub mod udp_batch;
pub mod udp_recv;
