//! One HTTPS (or plain HTTP, for tests on loopback) POST with a JSON body: hyper's HTTP/1
//! client over tokio-rustls, Mozilla's root certificates compiled in (webpki-roots), so no
//! system certificate store or OpenSSL is needed. A request every few hours needs no pool.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::header;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::ProviderError;

fn connect_error(what: impl std::fmt::Display) -> ProviderError {
    ProviderError::Connect(what.to_string())
}

fn tls_config() -> Result<Arc<ClientConfig>, ProviderError> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
            .map_err(|e| format!("TLS setup: {e}"))
        })
        .clone()
        .map_err(connect_error)
}

/// POSTs `body` as JSON to `url` with a bearer token; returns the status and at most
/// `max_bytes` of body. The whole exchange (DNS, connect, TLS, answer) is bounded by `timeout`.
pub(super) async fn post_json(
    url: &str,
    bearer: &str,
    body: String,
    timeout: Duration,
    max_bytes: usize,
) -> Result<(u16, Bytes), ProviderError> {
    match tokio::time::timeout(timeout, post(url, bearer, body, max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(ProviderError::Timeout(timeout)),
    }
}

async fn post(
    url: &str,
    bearer: &str,
    body: String,
    max_bytes: usize,
) -> Result<(u16, Bytes), ProviderError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|_| connect_error("the API URL is not valid"))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => {
            return Err(connect_error(
                "the API URL must start with https:// or http://",
            ));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| connect_error("the API URL has no host"))?;
    // `Uri::host` keeps the brackets of an IPv6 literal; sockets and TLS want it bare.
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|| host.to_owned());
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    let request = http::Request::post(path)
        .header(header::HOST, authority)
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(
            header::USER_AGENT,
            concat!("r58/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| connect_error("cannot build the request (bad API token characters?)"))?;

    let tcp = TcpStream::connect((bare_host.as_str(), port))
        .await
        .map_err(|e| connect_error(format!("{bare_host}:{port}: {e}")))?;
    if https {
        let name = ServerName::try_from(bare_host.clone())
            .map_err(|_| connect_error(format!("'{bare_host}' is not a valid TLS server name")))?;
        let tls = TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| connect_error(format!("TLS with {bare_host}: {e}")))?;
        exchange(TokioIo::new(tls), request, max_bytes).await
    } else {
        exchange(TokioIo::new(tcp), request, max_bytes).await
    }
}

async fn exchange<T>(
    io: T,
    request: http::Request<Full<Bytes>>,
    max_bytes: usize,
) -> Result<(u16, Bytes), ProviderError>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| connect_error(format!("HTTP: {e}")))?;
    let response = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| connect_error(format!("HTTP: {e}")))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| connect_error(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, body))
    };
    // The connection future does the socket I/O; drive it alongside the exchange. If it ends
    // first (the server closed after answering) the answer is already buffered.
    let mut response = std::pin::pin!(response);
    let mut conn = std::pin::pin!(conn);
    tokio::select! {
        biased;
        result = &mut response => result,
        closed = &mut conn => {
            closed.map_err(|e| connect_error(format!("HTTP: {e}")))?;
            response.await
        }
    }
}
