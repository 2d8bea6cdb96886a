//! The allocation state machine; see the module documentation of [`super`].

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_stun::error_code::{CODE_ALLOC_MISMATCH, CODE_STALE_NONCE, CODE_UNAUTHORIZED};

use super::peers::{CHANNEL_REFRESH, Entry, PERMISSION_REFRESH, Peers};
use super::proto::{self, Answer, Auth};
use super::transaction::{Due, Method, Request, Transaction};
use super::wire;
use super::{
    ClientConfig, ClientError, Event, Failure, FailureKind, Inbound, InputError, MAX_BACKOFF,
    SendError, Stats, TxId,
};
use crate::turn::Secret;

/// How many times in a row one request may be re-signed with a new nonce before it fails: a
/// server that hands out a fresh nonce on every request would otherwise loop forever.
const MAX_NONCE_RENEWALS: u8 = 3;
/// Shortest refresh interval, so a tiny granted lifetime cannot make the timer spin.
const MIN_REFRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
struct Allocation {
    relayed: SocketAddr,
    mapped: Option<SocketAddr>,
    refresh_at: Instant,
    expires_at: Instant,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Not started, or stopped after the connection was lost: waiting for `allocate`.
    Idle,
    Allocating,
    Allocated(Allocation),
    /// A failed Allocate is retried at the instant.
    Waiting(Instant),
    /// Deleting the allocation (Refresh with lifetime 0).
    Closing,
    Closed,
}

/// See the module documentation of [`super`].
pub struct TurnClient {
    config: ClientConfig,
    crypto: Arc<dyn RTCCryptoProvider>,
    /// Credentials to switch to at the next Allocate: RFC 8656 §5 ties an allocation to the
    /// username that created it, so a new username cannot sign this allocation's refreshes.
    next_credentials: Option<(String, Secret)>,
    auth: Option<Auth>,
    state: State,
    transactions: Vec<Transaction>,
    peers: Peers,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<Event>,
    stats: Stats,
    /// Allocate failures since the last success, for the backoff.
    failures_in_row: u32,
    /// Send indications need a transaction id but no reply: a random prefix and a counter are
    /// as good as random bytes per packet and cost nothing.
    indication_id: [u8; 12],
    indication_count: u32,
}

impl std::fmt::Debug for TurnClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TurnClient")
            .field("server", &self.config.server)
            .field("transport", &self.config.transport)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl TurnClient {
    /// A client that does nothing until [`Self::allocate`].
    pub fn new(config: ClientConfig) -> Result<Self, ClientError> {
        let crypto = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| ClientError::Crypto(e.to_string()))?;
        Ok(Self::with_crypto(config, crypto))
    }

    pub fn with_crypto(config: ClientConfig, crypto: Arc<dyn RTCCryptoProvider>) -> Self {
        Self {
            config,
            crypto,
            next_credentials: None,
            auth: None,
            state: State::Idle,
            transactions: Vec::new(),
            peers: Peers::default(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
            failures_in_row: 0,
            indication_id: rtc_stun::message::TransactionId::new().0,
            indication_count: 0,
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.config.server
    }

    pub fn transport(&self) -> super::Transport {
        self.config.transport
    }

    /// The relayed address, while allocated.
    pub fn relayed(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated(a) => Some(a.relayed),
            _ => None,
        }
    }

    /// Our address as the server sees it, while allocated and if the server said.
    pub fn mapped(&self) -> Option<SocketAddr> {
        match self.state {
            State::Allocated(a) => a.mapped,
            _ => None,
        }
    }

    /// The channel bound to `peer`, if the server confirmed it.
    pub fn channel(&self, peer: SocketAddr) -> Option<u16> {
        let channel = self.peers.channels.get(&peer)?;
        channel.entry.installed().then_some(channel.number)
    }

    /// Whether the server confirmed a permission for `peer`.
    pub fn has_permission(&self, peer: IpAddr) -> bool {
        self.peers
            .permissions
            .get(&peer)
            .is_some_and(|e| e.installed())
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.stats.clone();
        stats.permissions = self.peers.installed_permissions() as u64;
        stats.channels = self.peers.bound_channels() as u64;
        stats
    }

    /// Starts allocating (first call; after a lost connection; or to retry a failure now).
    /// Does nothing while allocating or allocated, or once closed.
    pub fn allocate(&mut self, now: Instant) {
        if matches!(self.state, State::Idle | State::Waiting(_)) {
            self.start_allocate(now);
        }
    }

    /// New credentials (e.g. TURN REST ones before the old expire). The same username keeps the
    /// allocation and signs its next requests with the new password; a different one is used
    /// from the next Allocate on (a failed one is retried with it at once).
    pub fn set_credentials(&mut self, now: Instant, username: String, password: Secret) {
        if username == self.config.username {
            self.config.password = password;
            self.next_credentials = None;
            self.rekey();
            return;
        }
        self.next_credentials = Some((username, password));
        if matches!(self.state, State::Waiting(_)) {
            self.start_allocate(now);
        }
    }

    /// The TCP/TLS connection to the server is gone, and the allocation with it. Queued
    /// messages are dropped; call [`Self::allocate`] once a new connection is up.
    pub fn handle_connection_lost(&mut self, _now: Instant) {
        self.transactions.clear();
        self.transmits.clear();
        self.peers.reset();
        match self.state {
            State::Allocated(a) => {
                let failure = self.failure(Method::Refresh, None, FailureKind::ConnectionLost);
                self.stats.allocations_lost.count(&failure.kind);
                self.events.push_back(Event::AllocationLost {
                    relayed: a.relayed,
                    failure,
                });
            }
            State::Allocating => {
                let failure = self.failure(Method::Allocate, None, FailureKind::ConnectionLost);
                self.stats.allocation_failures.count(&failure.kind);
                self.events.push_back(Event::AllocationFailed {
                    failure,
                    retry_at: None,
                });
            }
            State::Closing => self.events.push_back(Event::Closed),
            State::Idle | State::Waiting(_) | State::Closed => {}
        }
        self.state = match self.state {
            State::Closing | State::Closed => State::Closed,
            _ => State::Idle,
        };
    }

    /// Deletes the allocation (Refresh with lifetime 0); [`Event::Closed`] follows.
    pub fn close(&mut self, now: Instant) {
        self.transactions.clear();
        self.peers = Peers::default();
        if matches!(self.state, State::Allocated(_)) {
            self.state = State::Closing;
            self.send_request(
                now,
                Request::Refresh {
                    lifetime: Duration::ZERO,
                },
                0,
            );
        } else if !matches!(self.state, State::Closing | State::Closed) {
            self.state = State::Closed;
            self.events.push_back(Event::Closed);
        }
    }

    /// Asks for a permission for `peer` (the relay drops everything from and to addresses
    /// without one) and keeps it refreshed until [`Self::remove_permission`].
    pub fn create_permission(&mut self, now: Instant, peer: IpAddr) -> Result<(), ClientError> {
        self.check_open()?;
        if self.peers.permissions.contains_key(&peer) {
            return Ok(());
        }
        self.peers.permissions.insert(peer, Entry::Wanted);
        self.send_due(now);
        Ok(())
    }

    /// Stops refreshing `peer`'s permission (the server drops it within 5 minutes).
    pub fn remove_permission(&mut self, peer: IpAddr) {
        self.peers.permissions.remove(&peer);
    }

    /// Binds a channel to `peer` (and asks for its address's permission) so data goes as
    /// ChannelData; returns the channel number. Until the server confirms, data goes as Send
    /// indications.
    pub fn bind_channel(&mut self, now: Instant, peer: SocketAddr) -> Result<u16, ClientError> {
        self.check_open()?;
        let server = self.config.server;
        let number = self
            .peers
            .assign(now, peer)
            .ok_or(ClientError::ChannelsExhausted { server })?;
        self.peers
            .permissions
            .entry(peer.ip())
            .or_insert(Entry::Wanted);
        self.send_due(now);
        Ok(number)
    }

    /// Stops refreshing `peer`'s channel; data to it goes as Send indications.
    pub fn remove_channel(&mut self, now: Instant, peer: SocketAddr) {
        self.peers.release(now, peer);
    }

    /// Appends the message that carries `payload` to `peer` through the relay to `out` (to be
    /// sent to the server); returns its length. ChannelData when the channel is bound, else a
    /// Send indication.
    pub fn send_to(
        &mut self,
        peer: SocketAddr,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<usize, SendError> {
        let server = self.config.server;
        if !matches!(self.state, State::Allocated(_)) {
            return Err(SendError::NotAllocated { server });
        }
        let encode = |source| SendError::Encode { server, source };
        if let Some(channel) = self.peers.channels.get(&peer)
            && channel.entry.installed()
        {
            let pad = self.config.transport.is_stream();
            let n = wire::encode_channel_data(channel.number, payload, pad, out).map_err(encode)?;
            self.stats.sent_channel.add(payload.len());
            return Ok(n);
        }
        if !self.peers.permissions.contains_key(&peer.ip()) {
            return Err(SendError::NoPermission { server, peer });
        }
        self.indication_count = self.indication_count.wrapping_add(1);
        self.indication_id[8..].copy_from_slice(&self.indication_count.to_be_bytes());
        let n =
            wire::encode_send_indication(self.indication_id, peer, payload, out).map_err(encode)?;
        self.stats.sent_indication.add(payload.len());
        Ok(n)
    }

    /// One datagram (UDP) or frame ([`super::StreamFramer`]) from the server.
    pub fn handle_input<'a>(
        &mut self,
        now: Instant,
        input: &'a [u8],
    ) -> Result<Inbound<'a>, InputError> {
        let result = self.classify(now, input);
        if result.is_err() {
            self.stats.input_errors += 1;
        }
        result
    }

    fn classify<'a>(&mut self, now: Instant, input: &'a [u8]) -> Result<Inbound<'a>, InputError> {
        let server = self.config.server;
        let wire_error = |source| InputError::Wire { server, source };
        if wire::is_channel_data(input) {
            let (channel, payload) = wire::decode_channel_data(input).map_err(wire_error)?;
            let peer = self
                .peers
                .peer_of(channel)
                .ok_or(InputError::UnknownChannel { server, channel })?;
            self.stats.received_channel.add(payload.len());
            return Ok(Inbound::Data {
                peer,
                payload,
                channel: Some(channel),
            });
        }
        let first = input.first().copied().unwrap_or(0);
        if first >> 6 != 0 || input.len() < 8 {
            return Err(InputError::NotTurn { server, first });
        }
        let (kind, transaction, _) = wire::stun_header(input).map_err(wire_error)?;
        if wire::is_data_indication(kind) {
            let (peer, payload) = wire::decode_data_indication(input).map_err(wire_error)?;
            self.stats.received_indication.add(payload.len());
            return Ok(Inbound::Data {
                peer,
                payload,
                channel: None,
            });
        }
        // The class is spread over bits 4 and 8 of the type (RFC 8489 §5).
        match (kind >> 4) & 1 | (kind >> 7) & 2 {
            0 => Err(InputError::UnexpectedRequest { server, kind }),
            1 => Ok(Inbound::Handled),
            _ => {
                self.handle_answer(now, TxId(transaction), input)?;
                Ok(Inbound::Handled)
            }
        }
    }

    fn handle_answer(&mut self, now: Instant, id: TxId, input: &[u8]) -> Result<(), InputError> {
        let Some(index) = self.transactions.iter().position(|t| t.id.0 == id.0) else {
            self.stats.late_answers += 1;
            return Ok(());
        };
        let server = self.config.server;
        let bad = |detail: String| InputError::BadAnswer {
            server,
            transaction: id,
            detail,
        };
        let method = self.transactions[index].request.method();
        let mut message = proto::decode(input).map_err(bad)?;
        if !proto::method_matches(&message, method) {
            return Err(bad(format!("not a {method} answer ({})", message.typ)));
        }
        proto::check_integrity(&mut message, self.auth.as_ref(), self.crypto.crypto())
            .map_err(|e| bad(format!("MESSAGE-INTEGRITY: {e}")))?;
        let tx = self.transactions.swap_remove(index);
        match proto::answer(message) {
            Answer::Success(m) => self.on_success(now, &tx, &m),
            Answer::Error {
                code,
                reason,
                realm,
                nonce,
            } => self.on_error(now, tx, code, reason, realm, nonce),
        }
        Ok(())
    }

    fn on_success(&mut self, now: Instant, tx: &Transaction, m: &rtc_stun::message::Message) {
        let malformed = |e: String| FailureKind::Malformed(e);
        match tx.request {
            Request::Allocate { lifetime } => {
                let parsed = proto::allocated(m).and_then(|(relayed, mapped)| {
                    let granted = proto::lifetime(m)?.unwrap_or(lifetime);
                    Ok((relayed, mapped, granted))
                });
                match parsed {
                    Ok((_, _, granted)) if granted.is_zero() => {
                        let kind = malformed("LIFETIME 0 in an Allocate success".into());
                        self.fail(now, tx, kind);
                    }
                    Ok((relayed, mapped, granted)) => {
                        self.on_allocated(now, relayed, mapped, granted)
                    }
                    Err(e) => self.fail(now, tx, malformed(e)),
                }
            }
            Request::Refresh { lifetime } => {
                if matches!(self.state, State::Closing) {
                    self.state = State::Closed;
                    self.events.push_back(Event::Closed);
                    return;
                }
                match proto::lifetime(m).map(|l| l.unwrap_or(lifetime)) {
                    Ok(l) if !l.is_zero() => {
                        if let State::Allocated(a) = &mut self.state {
                            a.refresh_at = now + (l / 2).max(MIN_REFRESH);
                            a.expires_at = now + l;
                        }
                        self.stats.refreshes += 1;
                        self.events.push_back(Event::Refreshed { lifetime: l });
                    }
                    Ok(_) => self.fail(now, tx, malformed("LIFETIME 0: allocation gone".into())),
                    Err(e) => self.fail(now, tx, malformed(e)),
                }
            }
            Request::Permission { peer } => {
                let Some(entry) = self.peers.permissions.get_mut(&peer) else {
                    return;
                };
                let first = !entry.installed();
                *entry = Entry::Installed {
                    refresh_at: now + PERMISSION_REFRESH,
                };
                if first {
                    self.stats.permissions_created += 1;
                    self.events.push_back(Event::PermissionCreated { peer });
                } else {
                    self.stats.permission_refreshes += 1;
                }
            }
            Request::ChannelBind { peer, channel } => {
                let Some(c) = self.peers.channels.get_mut(&peer) else {
                    return;
                };
                if c.number != channel {
                    return;
                }
                let first = !c.entry.installed();
                c.entry = Entry::Installed {
                    refresh_at: now + CHANNEL_REFRESH,
                };
                if first {
                    self.stats.channels_bound += 1;
                    self.events.push_back(Event::ChannelBound { peer, channel });
                } else {
                    self.stats.channel_refreshes += 1;
                }
            }
        }
    }

    fn on_error(
        &mut self,
        now: Instant,
        tx: Transaction,
        code: u16,
        reason: String,
        realm: Option<String>,
        nonce: Option<String>,
    ) {
        let code = rtc_stun::error_code::ErrorCode(code);
        // 438, or 401 carrying a nonce other than the one we signed with (some servers answer
        // an expired nonce that way), or the unauthenticated first Allocate's 401: sign (again)
        // with what the server sent.
        let renew = code == CODE_STALE_NONCE
            || (code == CODE_UNAUTHORIZED
                && nonce.is_some()
                && (!tx.authenticated || nonce != tx.nonce));
        if renew {
            let (Some(nonce), Some(realm)) = (
                nonce,
                realm.or_else(|| self.auth.as_ref().map(|a| a.realm.clone())),
            ) else {
                let kind = FailureKind::Malformed(format!("{} without REALM or NONCE", code.0));
                return self.fail(now, &tx, kind);
            };
            // Kept even when this request gives up, so the next one starts with it.
            match Auth::new(
                &self.config.username,
                self.config.password.expose(),
                realm,
                nonce,
                self.crypto.crypto(),
            ) {
                Ok(auth) => self.auth = Some(auth),
                Err(e) => return self.fail(now, &tx, FailureKind::Malformed(e)),
            }
            if tx.renewals >= MAX_NONCE_RENEWALS {
                // A server that answers a wrong password with a fresh nonce each time ends
                // here too; say what it said.
                let kind = if code == CODE_UNAUTHORIZED {
                    FailureKind::Unauthorized(reason)
                } else {
                    FailureKind::NonceLoop(tx.renewals)
                };
                return self.fail(now, &tx, kind);
            }
            if tx.authenticated {
                self.stats.nonce_renewals += 1;
            }
            return self.send_request(now, tx.request, tx.renewals + 1);
        }
        let kind = match code {
            CODE_UNAUTHORIZED => FailureKind::Unauthorized(reason),
            CODE_ALLOC_MISMATCH => FailureKind::Mismatch,
            _ => FailureKind::Refused {
                code: code.0,
                reason,
            },
        };
        self.fail(now, &tx, kind);
    }

    /// A request failed for good: what that means depends on what it asked for.
    fn fail(&mut self, now: Instant, tx: &Transaction, kind: FailureKind) {
        self.fail_request(now, tx.request, Some(TxId(tx.id.0)), kind);
    }

    fn fail_request(
        &mut self,
        now: Instant,
        request: Request,
        transaction: Option<TxId>,
        kind: FailureKind,
    ) {
        let failure = self.failure(request.method(), transaction, kind);
        match request {
            Request::Allocate { .. } => {
                self.failures_in_row = self.failures_in_row.saturating_add(1);
                let shift = (self.failures_in_row - 1).min(6);
                let retry_at = now + Duration::from_secs(1 << shift).min(MAX_BACKOFF);
                self.stats.allocation_failures.count(&failure.kind);
                self.state = State::Waiting(retry_at);
                self.events.push_back(Event::AllocationFailed {
                    failure,
                    retry_at: Some(retry_at),
                });
            }
            Request::Refresh { .. } if matches!(self.state, State::Closing) => {
                self.state = State::Closed;
                self.events.push_back(Event::Closed);
            }
            Request::Refresh { .. } => self.lose(now, failure),
            Request::Permission { peer } => {
                self.peers.permissions.remove(&peer);
                self.stats.permission_failures += 1;
                self.events
                    .push_back(Event::PermissionFailed { peer, failure });
            }
            Request::ChannelBind { peer, channel } => {
                if self
                    .peers
                    .channels
                    .get(&peer)
                    .is_some_and(|c| c.number == channel)
                {
                    self.peers.release(now, peer);
                }
                self.stats.channel_failures += 1;
                self.events.push_back(Event::ChannelFailed {
                    peer,
                    channel,
                    failure,
                });
            }
        }
    }

    /// The allocation is gone: say so and allocate again at once.
    fn lose(&mut self, now: Instant, failure: Failure) {
        if let State::Allocated(a) = self.state {
            self.stats.allocations_lost.count(&failure.kind);
            self.events.push_back(Event::AllocationLost {
                relayed: a.relayed,
                failure,
            });
        }
        self.start_allocate(now);
    }

    fn on_allocated(
        &mut self,
        now: Instant,
        relayed: SocketAddr,
        mapped: Option<SocketAddr>,
        lifetime: Duration,
    ) {
        self.failures_in_row = 0;
        self.stats.allocations += 1;
        self.state = State::Allocated(Allocation {
            relayed,
            mapped,
            refresh_at: now + (lifetime / 2).max(MIN_REFRESH),
            expires_at: now + lifetime,
        });
        self.events.push_back(Event::Allocated {
            relayed,
            mapped,
            lifetime,
        });
        self.send_due(now);
    }

    fn start_allocate(&mut self, now: Instant) {
        if let Some((username, password)) = self.next_credentials.take() {
            self.config.username = username;
            self.config.password = password;
            self.rekey();
        }
        // Requests of the old allocation mean nothing for the new one.
        self.transactions.clear();
        self.peers.reset();
        self.state = State::Allocating;
        let lifetime = self.config.lifetime;
        self.send_request(now, Request::Allocate { lifetime }, 0);
    }

    fn rekey(&mut self) {
        if let Some(auth) = self.auth.take() {
            self.auth = Auth::new(
                &self.config.username,
                self.config.password.expose(),
                auth.realm,
                auth.nonce,
                self.crypto.crypto(),
            )
            .ok();
        }
    }

    fn check_open(&self) -> Result<(), ClientError> {
        match self.state {
            State::Closing | State::Closed => Err(ClientError::Closed {
                server: self.config.server,
            }),
            _ => Ok(()),
        }
    }

    fn failure(&self, method: Method, transaction: Option<TxId>, kind: FailureKind) -> Failure {
        Failure {
            server: self.config.server,
            transport: self.config.transport,
            method,
            transaction,
            kind,
        }
    }

    /// Builds, queues and tracks a request. `renewals` carries over nonce renewals.
    fn send_request(&mut self, now: Instant, request: Request, renewals: u8) {
        // The first Allocate goes without credentials: the realm and nonce come with the 401.
        let auth = self.auth.as_ref();
        match proto::build(&request, &self.config.username, auth, self.crypto.crypto()) {
            Ok(built) => {
                self.stats.requests += 1;
                self.transmits.push_back(built.raw.clone());
                let reliable = self.config.transport.is_stream();
                let timing = &self.config.retransmission;
                let mut tx = Transaction::new(now, timing, reliable, request, built);
                tx.renewals = renewals;
                if let Request::Permission { peer } = request
                    && let Some(e) = self.peers.permissions.get_mut(&peer)
                {
                    *e = Entry::Pending {
                        installed: e.installed(),
                    };
                }
                if let Request::ChannelBind { peer, .. } = request
                    && let Some(c) = self.peers.channels.get_mut(&peer)
                {
                    c.entry = Entry::Pending {
                        installed: c.entry.installed(),
                    };
                }
                self.transactions.push(tx);
            }
            Err(e) => {
                // Only an over-long username or nonce gets here; failing the request reports it.
                let kind = FailureKind::Malformed(format!("cannot encode: {e}"));
                self.fail_request(now, request, None, kind);
            }
        }
    }

    /// Sends the permission and channel requests that are due (while allocated).
    fn send_due(&mut self, now: Instant) {
        if !matches!(self.state, State::Allocated(_)) {
            return;
        }
        let (permissions, channels) = self.peers.due(now);
        for peer in permissions {
            self.send_request(now, Request::Permission { peer }, 0);
        }
        for (peer, channel) in channels {
            self.send_request(now, Request::ChannelBind { peer, channel }, 0);
        }
    }

    /// Retransmissions, timeouts, refreshes and retries due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let timing = self.config.retransmission;
        let mut failed = Vec::new();
        let mut i = 0;
        while i < self.transactions.len() {
            match self.transactions[i].on_timer(now, &timing) {
                Due::Nothing => i += 1,
                Due::Resend => {
                    self.stats.retransmissions += 1;
                    self.transmits.push_back(self.transactions[i].raw.clone());
                    i += 1;
                }
                Due::Failed(after) => failed.push((self.transactions.swap_remove(i), after)),
            }
        }
        // A lost allocation first: it makes the other requests moot (and keeps what they
        // asked for, to ask again on the new allocation).
        failed.sort_by_key(|(tx, _)| !matches!(tx.request, Request::Refresh { .. }));
        for (tx, after) in failed {
            // An earlier failure in this batch (a lost allocation) may have cleared the rest.
            if matches!(tx.request, Request::Allocate { .. })
                || !matches!(self.state, State::Allocating | State::Waiting(_))
            {
                self.fail(now, &tx, FailureKind::Timeout(after));
            }
        }
        match self.state {
            State::Waiting(at) if now >= at => self.start_allocate(now),
            State::Allocated(a) if now >= a.expires_at => {
                let failure = self.failure(Method::Refresh, None, FailureKind::Expired);
                self.lose(now, failure);
            }
            State::Allocated(a) if now >= a.refresh_at && !self.refreshing() => {
                let lifetime = self.config.lifetime;
                self.send_request(now, Request::Refresh { lifetime }, 0);
            }
            _ => {}
        }
        self.send_due(now);
    }

    /// Refreshes the allocation now (unless a Refresh is already out): a liveness probe for a
    /// driver that has heard nothing from the server for a while. A server that restarted
    /// answers 437 and the allocation is reported lost (and made again) at once, instead of at
    /// the next scheduled refresh, minutes later.
    pub fn probe(&mut self, now: Instant) {
        if matches!(self.state, State::Allocated(_)) && !self.refreshing() {
            let lifetime = self.config.lifetime;
            self.send_request(now, Request::Refresh { lifetime }, 0);
        }
    }

    fn refreshing(&self) -> bool {
        self.transactions
            .iter()
            .any(|t| matches!(t.request, Request::Refresh { .. }))
    }

    /// The next message for the server.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Self::handle_timeout`] is next needed; `None`: only input or a call can change
    /// anything.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let transactions = self.transactions.iter().map(Transaction::deadline).min();
        let state = match self.state {
            State::Waiting(at) => Some(at),
            State::Allocated(a) if self.refreshing() => Some(a.expires_at),
            State::Allocated(a) => Some(a.refresh_at.min(a.expires_at)),
            _ => None,
        };
        let peers = match self.state {
            State::Allocated(_) => self.peers.next_refresh(),
            _ => None,
        };
        [transactions, state, peers].into_iter().flatten().min()
    }
}
