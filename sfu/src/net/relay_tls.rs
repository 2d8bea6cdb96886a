//! TURN over TLS (`turns:`) for the relay link. tokio-rustls's stream is async only, while the
//! link reads and writes its connection from the driver's synchronous code, so a task owns the
//! TLS stream and the link exchanges bytes with it: what arrives is queued for
//! [`TlsPipe::take`] (and wakes [`TlsPipe::ready`]), what the link writes goes to the task
//! through a channel. A copy per message each way: TLS is the last fallback, for venues that
//! let nothing but TLS out, not the fast path.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// Bytes written and not yet taken by the task at most (as for TCP).
const MAX_BACKLOG: usize = 4 << 20;

/// What the task received, for the link.
#[derive(Default)]
struct Inbox {
    chunks: VecDeque<Vec<u8>>,
    /// The connection ended (closed, or failed).
    closed: bool,
}

/// A TLS connection to the TURN server, run by a task.
pub(super) struct TlsPipe {
    inbox: Arc<Mutex<Inbox>>,
    arrived: Arc<Notify>,
    outgoing: mpsc::UnboundedSender<Vec<u8>>,
    backlog: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TlsPipe {
    /// Connects to `addr`, verifying its certificate for `name` against the public roots and
    /// `extra_roots` (DER, e.g. the private CA of a self-hosted coturn).
    pub(super) async fn connect(
        addr: SocketAddr,
        name: &str,
        extra_roots: &[Vec<u8>],
    ) -> io::Result<Self> {
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in extra_roots {
            roots
                .add(CertificateDer::from(der.clone()))
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
        let config = ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let server_name = ServerName::try_from(name.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let handshake = async {
            let tcp = TcpStream::connect(addr).await?;
            tcp.set_nodelay(true)?;
            TlsConnector::from(Arc::new(config))
                .connect(server_name, tcp)
                .await
        };
        let stream = tokio::time::timeout(Duration::from_secs(5), handshake)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS connect timed out"))??;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let arrived = Arc::new(Notify::new());
        let backlog = Arc::new(AtomicUsize::new(0));
        let (outgoing, mut to_send) = mpsc::unbounded_channel::<Vec<u8>>();
        let task = {
            let (inbox, arrived, backlog) = (inbox.clone(), arrived.clone(), backlog.clone());
            tokio::spawn(async move {
                let (mut reader, mut writer) = tokio::io::split(stream);
                let mut buf = vec![0u8; 16 * 1024];
                let end = |inbox: &Mutex<Inbox>| {
                    inbox.lock().unwrap_or_else(PoisonError::into_inner).closed = true;
                    arrived.notify_one();
                };
                loop {
                    tokio::select! {
                        read = reader.read(&mut buf) => match read {
                            Ok(0) | Err(_) => return end(&inbox),
                            Ok(n) => {
                                inbox
                                    .lock()
                                    .unwrap_or_else(PoisonError::into_inner)
                                    .chunks
                                    .push_back(buf[..n].to_vec());
                                arrived.notify_one();
                            }
                        },
                        message = to_send.recv() => match message {
                            Some(message) => {
                                backlog.fetch_sub(message.len(), Ordering::Relaxed);
                                if writer.write_all(&message).await.is_err() {
                                    return end(&inbox);
                                }
                            }
                            // The link is gone.
                            None => return,
                        },
                    }
                }
            })
        };
        Ok(Self {
            inbox,
            arrived,
            outgoing,
            backlog,
            task,
        })
    }

    /// Completes when bytes arrived (or the connection ended) since they were last taken.
    pub(super) async fn ready(&self) {
        let waiting = {
            let inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
            inbox.chunks.is_empty() && !inbox.closed
        };
        if waiting {
            self.arrived.notified().await;
        }
    }

    /// What arrived since the last call, and whether the connection ended.
    pub(super) fn take(&self) -> (Vec<Vec<u8>>, bool) {
        let mut inbox = self.inbox.lock().unwrap_or_else(PoisonError::into_inner);
        (inbox.chunks.drain(..).collect(), inbox.closed)
    }

    /// Queues `message` for the server; false when the backlog is full or the task ended.
    pub(super) fn write(&self, message: &[u8]) -> bool {
        if self.backlog.load(Ordering::Relaxed) + message.len() > MAX_BACKLOG {
            return false;
        }
        self.backlog.fetch_add(message.len(), Ordering::Relaxed);
        self.outgoing.send(message.to_vec()).is_ok()
    }
}

impl Drop for TlsPipe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
