//! Where a peer is, and which of our transports reaches it: ICE pairs a remote address with a
//! local candidate, and r58 has two kinds of local candidate: its own UDP socket (host
//! candidates) and a TURN allocation it holds (the relay candidate). A check or media from the
//! same remote address can arrive both ways, and each way is a different path.

use std::fmt;
use std::net::SocketAddr;

/// Which of our transports a peer's datagrams come in on and ours go out by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Via {
    /// The media socket itself: a host candidate.
    #[default]
    Direct,
    /// Our TURN allocation: the relay candidate. The address is the peer as the TURN server
    /// sees it (XOR-PEER-ADDRESS).
    Relay,
}

/// A remote transport address and the local transport it pairs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr {
    pub addr: SocketAddr,
    pub via: Via,
}

impl PeerAddr {
    pub fn direct(addr: SocketAddr) -> Self {
        Self {
            addr,
            via: Via::Direct,
        }
    }

    pub fn relayed(addr: SocketAddr) -> Self {
        Self {
            addr,
            via: Via::Relay,
        }
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.via {
            Via::Direct => write!(f, "{}", self.addr),
            Via::Relay => write!(f, "{} via relay", self.addr),
        }
    }
}
