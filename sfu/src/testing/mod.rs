//! Test support, compiled only for tests and with the `test-support` feature (benchmarks, the
//! load generator, fuzzing): a minimal sans-IO WebRTC client ([`client`]) and a harness that
//! runs clients against an [`crate::engine::Engine`] on a virtual clock ([`harness`]), an
//! allocation-counting global allocator ([`alloc`]) and small test camera settings
//! ([`cameras`]), and real H.265 parameter sets ([`h265`]).

pub mod alloc;
pub mod cameras;
pub mod client;
pub mod h265;
pub mod harness;
