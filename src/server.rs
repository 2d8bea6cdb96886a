//! Wiring: bind the sockets, build the engine, run the UDP driver and the HTTP server.

use std::net::SocketAddr;

use sfu::webrtc::driver::{self, SharedEngine};
use sfu::webrtc::engine::{Engine, EngineConfig};
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::config::Config;
use crate::http::{AppState, router};

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot bind the WebRTC UDP socket {addr}: {source}")]
    BindUdp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot listen for HTTP on {addr}: {source}")]
    BindHttp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the media engine: {0}")]
    Engine(#[from] sfu::webrtc::engine::EngineError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs the server until the HTTP server or the media socket fails.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let udp = UdpSocket::bind(config.webrtc_udp)
        .await
        .map_err(|source| ServerError::BindUdp {
            addr: config.webrtc_udp,
            source,
        })?;
    let udp_port = udp.local_addr()?.port();
    let candidates: Vec<SocketAddr> = config
        .candidate_ips()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, udp_port))
        .collect();
    let engine = SharedEngine::new(Engine::new(EngineConfig {
        candidates: candidates.clone(),
        max_sessions: config.max_sessions,
        ..EngineConfig::default()
    })?);
    let http = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::BindHttp {
            addr: config.listen,
            source,
        })?;
    info!(http = %http.local_addr()?, udp = %udp.local_addr()?, ?candidates, "r58 serving");
    let app = router(
        AppState::new(engine.clone(), config.auth.clone()),
        &config.cors_allowed_origins,
    );
    let media = tokio::spawn(driver::run(engine, udp));
    tokio::select! {
        served = axum::serve(http, app) => served?,
        media = media => media.map_err(std::io::Error::other)??,
    }
    Ok(())
}
