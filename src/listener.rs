//! The HTTP(S) accept loop. `axum::serve` has no deadline for request headers, so a client
//! that trickles a header byte at a time (slow-loris) would hold its connection and task
//! forever; here hyper's HTTP/1.1 server runs with a header read timeout, a bound on the
//! header size (431 beyond it), a deadline for request bodies (408), and optionally TLS
//! (rustls, aws-lc-rs provider, the one already in the tree for DTLS).

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tower::ServiceExt;
use tracing::debug;

use crate::config::Limits;

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {message}")]
    Read { path: String, message: String },
    #[error("TLS certificate file {0} holds no certificate")]
    NoCertificate(String),
    #[error("TLS certificate and key do not make a usable server configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Largest request body (an SDP offer or trickle fragment, a JSON selection) accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Counters of connections the server cut off, for /metrics.
#[derive(Debug, Default)]
pub struct HttpStats {
    pub header_timeouts: AtomicU64,
    pub body_timeouts: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub connections: AtomicU64,
}

/// What the accept loop needs besides the router.
#[derive(Clone)]
pub struct HttpOptions {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_header_bytes: usize,
    pub tls: Option<TlsAcceptor>,
    pub stats: Arc<HttpStats>,
}

impl HttpOptions {
    pub fn new(limits: &Limits, tls: Option<TlsAcceptor>, stats: Arc<HttpStats>) -> Self {
        Self {
            header_timeout: limits.header_timeout,
            body_timeout: limits.body_timeout,
            max_header_bytes: limits.max_header_bytes,
            tls,
            stats,
        }
    }
}

/// A TLS acceptor for the PEM certificate chain and key files (HTTP/1.1 over TLS 1.2/1.3).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let read_err = |path: &Path, e: &dyn std::fmt::Display| TlsError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| read_err(cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_err(cert, &e))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.display().to_string()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| read_err(key, &e))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until accepting fails for good.
pub async fn serve(listener: TcpListener, app: Router, options: HttpOptions) -> io::Result<()> {
    let body_timeout = options.body_timeout;
    let stats = options.stats.clone();
    let app = app.layer(middleware::from_fn(move |request: Request, next: Next| {
        let stats = stats.clone();
        async move { read_body_in_time(request, next, body_timeout, &stats).await }
    }));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        options.stats.connections.fetch_add(1, Ordering::Relaxed);
        let app = app.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let service = app.map_request(move |mut request: Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
            let service = TowerToHyperService::new(service);
            match &options.tls {
                None => serve_connection(TokioIo::new(stream), service, &options).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(options.header_timeout, acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => serve_connection(TokioIo::new(tls), service, &options).await,
                        Ok(Err(e)) => {
                            options
                                .stats
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            debug!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            options
                                .stats
                                .tls_handshake_failures
                                .fetch_add(1, Ordering::Relaxed);
                            debug!(%peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
}

async fn serve_connection<I, S>(io: TokioIo<I>, service: TowerToHyperService<S>, opts: &HttpOptions)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<hyper::body::Incoming>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_timeout)
        .max_buf_size(opts.max_header_bytes.max(8192));
    if let Err(e) = builder.serve_connection(io, service).with_upgrades().await {
        if e.is_timeout() {
            opts.stats.header_timeouts.fetch_add(1, Ordering::Relaxed);
        }
        debug!(error = %e, "HTTP connection ended with an error");
    }
}

/// Reads a request body completely before the handler runs, within `timeout`: a client that
/// sends headers and then trickles (or withholds) its body gets 408 instead of holding a task.
/// Bodies are small here (SDP, JSON), so buffering them costs nothing extra: the handlers
/// buffer them anyway.
async fn read_body_in_time(
    request: Request,
    next: Next,
    timeout: Duration,
    stats: &HttpStats,
) -> Response {
    let has_body = match request.headers().get(header::CONTENT_LENGTH) {
        Some(length) => length.as_bytes() != b"0",
        None => request.headers().contains_key(header::TRANSFER_ENCODING),
    };
    if !has_body {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    // One byte over the limit is enough to know it is too large.
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES + 1);
    let bytes: Bytes = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            );
        }
        Ok(Err(_)) => return refuse(StatusCode::BAD_REQUEST, "the request body is malformed"),
        Err(_) => {
            stats.body_timeouts.fetch_add(1, Ordering::Relaxed);
            let mut response = refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the request body did not arrive in time",
            );
            response.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            return response;
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn refuse(status: StatusCode, reason: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{reason}\n"),
    )
        .into_response()
}

/// Accept errors that concern one connection, not the listener.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}
