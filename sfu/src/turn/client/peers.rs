//! The permissions and channel bindings the client keeps on its allocation: what the caller
//! asked for, what the server confirmed, when each is due for refresh, and the channel-number
//! table the data path looks peers up in.
//!
//! Entries outlive the allocation: after a re-allocation every one is requested again on the
//! new allocation, so the caller does not have to replay them.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::wire::{CHANNEL_MAX, CHANNEL_MIN};

/// A permission lives 300 s on the server (RFC 8656 §9); refreshed a minute early so one lost
/// answer over UDP (39.5 s of retransmissions) still lands in time.
pub const PERMISSION_REFRESH: Duration = Duration::from_secs(240);
/// A channel binding lives 600 s (RFC 8656 §12); refreshed two minutes early, for the same
/// reason.
pub const CHANNEL_REFRESH: Duration = Duration::from_secs(480);
/// A channel number given up is not handed to another peer for this long: the server may still
/// hold the old binding for its 10 minutes, and RFC 8656 §12 keeps the number from being rebound
/// to a different peer for 5 minutes after that.
pub const CHANNEL_COOLDOWN: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    /// Not (yet) on this allocation and no request in flight.
    Wanted,
    /// A request is in flight; `installed` says whether an earlier one succeeded.
    Pending { installed: bool },
    /// Confirmed; refresh due at the instant.
    Installed { refresh_at: Instant },
}

impl Entry {
    pub(super) fn installed(self) -> bool {
        matches!(
            self,
            Entry::Installed { .. } | Entry::Pending { installed: true }
        )
    }

    fn due(self) -> Option<Instant> {
        match self {
            Entry::Installed { refresh_at } => Some(refresh_at),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Channel {
    pub(super) number: u16,
    pub(super) entry: Entry,
}

#[derive(Debug)]
pub(super) struct Peers {
    pub(super) permissions: FxHashMap<IpAddr, Entry>,
    pub(super) channels: FxHashMap<SocketAddr, Channel>,
    by_number: FxHashMap<u16, SocketAddr>,
    /// The next never-used channel number; past `CHANNEL_MAX`, numbers come from `cooling`.
    next_number: u32,
    cooling: VecDeque<(u16, Instant)>,
}

impl Default for Peers {
    fn default() -> Self {
        Self {
            permissions: FxHashMap::default(),
            channels: FxHashMap::default(),
            by_number: FxHashMap::default(),
            next_number: u32::from(CHANNEL_MIN),
            cooling: VecDeque::new(),
        }
    }
}

impl Peers {
    /// The peer a channel number is bound (or being bound) to.
    pub(super) fn peer_of(&self, number: u16) -> Option<SocketAddr> {
        self.by_number.get(&number).copied()
    }

    /// A number for `peer`: its own if it has one, else a fresh or cooled-down one.
    pub(super) fn assign(&mut self, now: Instant, peer: SocketAddr) -> Option<u16> {
        if let Some(channel) = self.channels.get(&peer) {
            return Some(channel.number);
        }
        let number = if self.next_number <= u32::from(CHANNEL_MAX) {
            let n = self.next_number as u16;
            self.next_number += 1;
            n
        } else if self
            .cooling
            .front()
            .is_some_and(|&(_, free_at)| free_at <= now)
        {
            self.cooling.pop_front()?.0
        } else {
            return None;
        };
        self.channels.insert(
            peer,
            Channel {
                number,
                entry: Entry::Wanted,
            },
        );
        self.by_number.insert(number, peer);
        Some(number)
    }

    /// Forgets `peer`'s channel; its number cools down before reuse.
    pub(super) fn release(&mut self, now: Instant, peer: SocketAddr) -> Option<u16> {
        let channel = self.channels.remove(&peer)?;
        self.by_number.remove(&channel.number);
        self.cooling
            .push_back((channel.number, now + CHANNEL_COOLDOWN));
        Some(channel.number)
    }

    /// A new allocation has none of our permissions and bindings, and every number is free.
    pub(super) fn reset(&mut self) {
        for entry in self.permissions.values_mut() {
            *entry = Entry::Wanted;
        }
        for channel in self.channels.values_mut() {
            channel.entry = Entry::Wanted;
        }
        // Numbers in use stay with their peers; the cooling ones are free again.
        for (number, _) in self.cooling.drain(..) {
            debug_assert!(!self.by_number.contains_key(&number));
        }
        let highest = self
            .by_number
            .keys()
            .max()
            .copied()
            .unwrap_or(CHANNEL_MIN - 1);
        self.next_number = u32::from(highest) + 1;
        // Numbers below `highest` that nobody holds are lost until the next reset; with 4096
        // numbers and a handful of peers that is of no consequence, and it keeps this simple.
    }

    /// Permissions and channels whose next request is due at `now` (refresh, or first
    /// request after a re-allocation).
    pub(super) fn due(&self, now: Instant) -> (Vec<IpAddr>, Vec<(SocketAddr, u16)>) {
        let wanted = |e: Entry| e == Entry::Wanted || e.due().is_some_and(|t| t <= now);
        let permissions = self
            .permissions
            .iter()
            .filter(|(_, e)| wanted(**e))
            .map(|(ip, _)| *ip)
            .collect();
        let channels = self
            .channels
            .iter()
            .filter(|(_, c)| wanted(c.entry))
            .map(|(peer, c)| (*peer, c.number))
            .collect();
        (permissions, channels)
    }

    /// The earliest refresh deadline of an installed entry. (`Wanted` entries are sent the
    /// moment they appear while allocated, so they never wait for a timer.)
    pub(super) fn next_refresh(&self) -> Option<Instant> {
        self.permissions
            .values()
            .filter_map(|e| e.due())
            .chain(self.channels.values().filter_map(|c| c.entry.due()))
            .min()
    }

    pub(super) fn installed_permissions(&self) -> usize {
        self.permissions.values().filter(|e| e.installed()).count()
    }

    pub(super) fn bound_channels(&self) -> usize {
        self.channels
            .values()
            .filter(|c| c.entry.installed())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 51, 100, 1], port))
    }

    #[test]
    fn numbers_run_through_the_range_then_reuse_only_cooled_ones() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let count = usize::from(CHANNEL_MAX - CHANNEL_MIN) + 1;
        for i in 0..count {
            let n = peers.assign(now, peer(i as u16 + 1)).unwrap();
            assert_eq!(n, CHANNEL_MIN + i as u16);
        }
        // The same peer keeps its number; a new one finds none free.
        assert_eq!(peers.assign(now, peer(1)), Some(CHANNEL_MIN));
        assert_eq!(peers.assign(now, peer(60_000)), None);
        assert_eq!(peers.release(now, peer(5)), Some(CHANNEL_MIN + 4));
        assert_eq!(peers.peer_of(CHANNEL_MIN + 4), None);
        assert_eq!(peers.assign(now + CHANNEL_COOLDOWN / 2, peer(60_000)), None);
        let later = now + CHANNEL_COOLDOWN;
        assert_eq!(peers.assign(later, peer(60_000)), Some(CHANNEL_MIN + 4));
        assert_eq!(peers.peer_of(CHANNEL_MIN + 4), Some(peer(60_000)));
    }

    #[test]
    fn reset_makes_everything_wanted_and_keeps_numbers() {
        let now = Instant::now();
        let mut peers = Peers::default();
        let a = peers.assign(now, peer(1)).unwrap();
        peers.assign(now, peer(2)).unwrap();
        peers.release(now, peer(2));
        peers.channels.get_mut(&peer(1)).unwrap().entry = Entry::Installed {
            refresh_at: now + CHANNEL_REFRESH,
        };
        peers.permissions.insert(
            peer(1).ip(),
            Entry::Installed {
                refresh_at: now + PERMISSION_REFRESH,
            },
        );
        assert_eq!(peers.next_refresh(), Some(now + PERMISSION_REFRESH));
        peers.reset();
        assert_eq!(peers.channels[&peer(1)].number, a);
        assert_eq!(peers.next_refresh(), None);
        let (perms, chans) = peers.due(now);
        assert_eq!((perms.len(), chans), (1, vec![(peer(1), a)]));
        // The released number is free again on the new allocation.
        assert_eq!(peers.assign(now, peer(3)), Some(a + 1));
    }
}
