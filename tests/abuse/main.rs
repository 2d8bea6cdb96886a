//! Bad input and abuse against the real `r58` binary (spawned on loopback ports, talked to
//! over real sockets): every case asserts the exact status (or how the connection ends) and
//! that the server still serves the next good request.
//!
//! `docs/reliability.md` lists the cases; the numbers the flood tests print (CPU per datagram)
//! are recorded there too.

mod admin_tls;
mod http_input;
mod http_transport;
mod limits;
mod media;
mod server;
mod signin;
