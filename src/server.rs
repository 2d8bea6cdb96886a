//! Wiring: bind the sockets, build the engine, run the UDP driver and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use sfu::capture::CameraError;
use sfu::engine::SharedEngine;
use sfu::engine::{Engine, EngineConfig};
use sfu::net::driver;
use sfu::turn::TurnService;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::camera_set::CameraSet;
use crate::config::Config;
use crate::http::guard::Guard;
use crate::http::turn::TurnEndpoint;
use crate::http::{AppState, router};
use crate::listener::{HttpOptions, HttpStats, serve};

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
    Engine(#[from] sfu::engine::EngineError),
    #[error("cannot start the cameras: {0}")]
    Camera(#[from] CameraError),
    #[error("{0}")]
    Tls(#[from] crate::listener::TlsError),
    #[error("{0}")]
    LanTls(#[from] crate::lan_tls::LanTlsError),
    #[error("{0}")]
    Mdns(#[from] crate::mdns::MdnsError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Kernel buffer asked for on the media socket, each way.
const UDP_BUFFER_BYTES: usize = 4 << 20;

/// Runs the server until the HTTP server or the media socket fails.
pub async fn run(config: Config) -> Result<(), ServerError> {
    // Read the certificate first: a bad file should stop the server before it binds anything.
    let tls = config
        .tls
        .as_ref()
        .map(|files| crate::listener::tls_acceptor(&files.cert, &files.key))
        .transpose()?;
    let udp = UdpSocket::bind(config.webrtc_udp)
        .await
        .map_err(|source| ServerError::BindUdp {
            addr: config.webrtc_udp,
            source,
        })?;
    // Every peer's media shares this one socket: a big kernel buffer rides out a moment when
    // the process is not scheduled (a busy box) instead of dropping what arrives meanwhile.
    // The kernel caps it at net.core.rmem_max / wmem_max.
    let sock = socket2::SockRef::from(&udp);
    let _ = sock.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = sock.set_send_buffer_size(UDP_BUFFER_BYTES);
    let udp_port = udp.local_addr()?.port();
    let candidates: Vec<SocketAddr> = config
        .candidate_ips()
        .into_iter()
        .map(|ip| SocketAddr::new(ip, udp_port))
        .collect();
    let engine = SharedEngine::new(Engine::new(EngineConfig {
        candidates: candidates.clone(),
        max_sessions: config.max_sessions,
        max_viewers_per_stream: config.limits.viewers_per_stream,
        publisher_bitrate_bps: config.limits.publisher_bitrate,
        publisher_bitrate_cap_bps: config.limits.publisher_bitrate_cap,
        max_forward_delay: config.limits.max_forward_delay,
        ..EngineConfig::default()
    })?);
    let http = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServerError::BindHttp {
            addr: config.listen,
            source,
        })?;
    // HTTPS on the LAN beside HTTP with the local CA's certificate (`[tls] auto`), unless the
    // operator's own certificate is in use.
    let lan_https = match (&tls, config.auto_tls.enabled) {
        (None, true) => Some(start_lan_https(&config).await?),
        (Some(_), true) => {
            info!("[tls] auto: the operator's certificate takes precedence; no local CA");
            None
        }
        (_, false) => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    info!(http = %http.local_addr()?, scheme, udp = %udp.local_addr()?, ?candidates, media_threads = config.media_threads(), "r58 serving");
    let turn = TurnEndpoint::new(
        TurnService::start(config.turn.service.clone()),
        config.turn.clone(),
    );
    // The relay's credentials come from the same provider (and cache) as the clients'.
    let state_turn_service = turn.service.clone();
    info!(
        provider = turn.service.config().provider.name(),
        "TURN credentials"
    );
    let http_stats = Arc::new(HttpStats::default());
    let state = AppState::new(engine.clone(), config.auth.clone())
        .with_hls(config.hls)
        .with_switcher(config.switcher.clone())
        .with_turn(turn)
        .with_guard(Guard::new(
            config.limits.clone(),
            config.admin.clone(),
            http_stats.clone(),
        ))
        .with_gatekeeper(r58_gatekeeper(&config));
    let state = match &lan_https {
        Some((_, _, info)) => state.with_lan_https(info.clone()),
        None => state,
    };
    // Shared by the RTSP server (started below) and /metrics.
    let rtsp_stats = Arc::new(crate::rtsp::RtspStats::default());
    let state = if config.rtsp.enabled {
        state.with_rtsp(rtsp_stats.clone())
    } else {
        state
    };
    // Kept for the graceful stop (its last fragments written).
    let mut recordings = None;
    let state = match &config.recording {
        Some(recording) => {
            let service = sfu::record::RecordService::new(engine.clone(), recording.clone())
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("recording dir {}: {e}", recording.dir.display()),
                    )
                })?;
            tokio::spawn(service.clone().run());
            recordings = Some(service.clone());
            state.with_recordings(service)
        }
        None => state,
    };
    tokio::spawn(state.hls.clone().run());
    tokio::spawn(state.switcher.clone().run());
    // The cameras live in the reload task, which stops, starts and restarts them by name;
    // they run until the server stops.
    let cameras = CameraSet::start(&engine, &crate::config::camera_entries(&config))?;
    let relay_running = crate::relay::wanted(
        config.turn.server_relay,
        &config.turn.service.provider,
        &candidates,
    );
    let (reload_requests, reload_queue) = tokio::sync::mpsc::channel(4);
    let state = state.with_reload(reload_requests);
    let reloader = crate::reload::Reloader::new(
        Box::new(Config::load),
        config.clone(),
        &state,
        cameras,
        relay_running,
    );
    tokio::spawn(crate::reload::serve(reloader, reload_queue));
    let rtsp_auth = state.auth.clone();
    let rtsp_limits = state.guard.limits.clone();
    let app = router(state, &config.cors_allowed_origins);
    // The media driver gets a thread of its own so a busy data plane cannot hold up the HTTP
    // runtime (see sfu::net::driver).
    let relay = if relay_running {
        let (settings, watch) = tokio::sync::watch::channel(None);
        tokio::spawn(crate::relay::feed(
            state_turn_service,
            config.turn.relay_ca.clone(),
            settings,
        ));
        Some(watch)
    } else {
        None
    };
    // IP cameras over RTSP, each a tokio task; kept until the server stops.
    let _rtsp_sources: Vec<_> = config
        .sources
        .iter()
        .map(|source| {
            info!(stream = %source.name, url = %sfu::capture::rtsp_source::redacted(&source.url), transport = ?source.transport, "RTSP source configured");
            sfu::capture::start_rtsp_source(engine.clone(), source.clone())
        })
        .collect();
    // RTSP readers of every stream (docs/rtsp.md); off with [rtsp] enabled = false.
    if let Some(sockets) = crate::rtsp::bind(&config.rtsp).await? {
        let rtsp = crate::rtsp::RtspServer::new(
            engine.clone(),
            rtsp_auth,
            rtsp_limits,
            config.max_sessions,
            &config.rtsp,
        )
        .with_stats(rtsp_stats);
        tokio::spawn(async move {
            if let Err(e) = rtsp.serve(sockets).await {
                tracing::error!(error = %e, "RTSP server stopped");
            }
        });
    }
    let heartbeat = driver::Heartbeat::default();
    let media = driver::spawn_with_relay(
        engine.clone(),
        udp.into_std()?,
        config.media_threads(),
        relay,
        heartbeat.clone(),
    )?;
    // `r58.local` and the pages' services on the LAN; withdrawn when the server stops.
    let _mdns = if config.mdns.enabled {
        let https_port = lan_https.as_ref().map(|(_, _, info)| info.port);
        Some(crate::mdns::advertise(
            &config.mdns,
            http.local_addr()?.port(),
            https_port,
        )?)
    } else {
        None
    };
    let (http_app, https) = match lan_https {
        Some((listener, acceptor, info)) => {
            let options = HttpOptions::new(&config.limits, Some(acceptor), http_stats.clone());
            let https = serve(listener, app.clone(), options);
            let app = crate::http::lan::redirect_to_https(app, info.port);
            (app, Some(https))
        }
        None => (app, None),
    };
    let https = async move {
        match https {
            Some(https) => https.await,
            None => std::future::pending().await,
        }
    };
    // Every socket is bound: systemd may start what comes after r58 (docs/packaging.md).
    crate::notify::ready(&format!("serving HTTP on {}", http.local_addr()?));
    let _watchdog = crate::notify::spawn_watchdog(heartbeat);
    tokio::select! {
        served = serve(http, http_app, HttpOptions::new(&config.limits, tls, http_stats)) => served?,
        served = https => served?,
        media = media => media.map_err(std::io::Error::other)??,
        () = crate::notify::terminated() => {
            crate::notify::stopping();
            crate::shutdown::stop_gracefully(&engine, recordings).await;
        }
    }
    Ok(())
}

/// How often the LAN certificate is checked against the box's addresses and its expiry.
const LAN_CERT_CHECK: std::time::Duration = std::time::Duration::from_secs(600);

/// Makes or reads the local CA and the LAN certificate, binds the HTTPS listener, and starts
/// the task that issues a new certificate when the box's addresses change or expiry nears.
async fn start_lan_https(
    config: &Config,
) -> Result<
    (
        TcpListener,
        tokio_rustls::TlsAcceptor,
        crate::http::lan::LanHttps,
    ),
    ServerError,
> {
    let auto = config.auto_tls.clone();
    let addresses = |config: &Config| -> Vec<std::net::IpAddr> {
        config
            .candidate_ips()
            .into_iter()
            .filter(|ip| crate::http::lan::certifiable(*ip))
            .collect()
    };
    let ips = addresses(config);
    let lan = crate::lan_tls::ensure(&auto.dir, &auto.names, &ips, std::time::SystemTime::now())?;
    if lan.new_ca {
        info!(dir = %auto.dir.display(), "local CA made: devices trust it once (/trust, /ca.crt)");
    }
    if let Some(why) = &lan.issued {
        info!(names = ?auto.names, ?ips, reason = %why, "LAN certificate issued");
    }
    let key = crate::live::Live::new(lan.certified_key()?);
    let acceptor = crate::lan_tls::acceptor(crate::lan_tls::LanCertResolver(key.clone()))?;
    let listener = TcpListener::bind(auto.https_listen)
        .await
        .map_err(|source| ServerError::BindHttp {
            addr: auto.https_listen,
            source,
        })?;
    let port = listener.local_addr()?.port();
    info!(https = %listener.local_addr()?, names = ?auto.names, "LAN HTTPS serving");
    let watched = config.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(LAN_CERT_CHECK).await;
            let (auto, config, key) = (auto.clone(), watched.clone(), key.clone());
            let renewed = tokio::task::spawn_blocking(move || {
                let ips = addresses(&config);
                let lan = crate::lan_tls::ensure(
                    &auto.dir,
                    &auto.names,
                    &ips,
                    std::time::SystemTime::now(),
                )?;
                if let Some(why) = &lan.issued {
                    key.store(lan.certified_key()?);
                    info!(?ips, reason = %why, "LAN certificate issued");
                }
                Ok::<_, crate::lan_tls::LanTlsError>(())
            })
            .await;
            match renewed {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "LAN certificate check failed; the current one stays")
                }
                Err(e) => tracing::error!(error = %e, "LAN certificate check panicked"),
            }
        }
    });
    let info = crate::http::lan::LanHttps {
        ca_pem: lan.ca_pem,
        port,
    };
    Ok((listener, acceptor, info))
}

/// `[access]` and its users; HTTPS when the listener speaks TLS.
fn r58_gatekeeper(config: &Config) -> crate::auth::Gatekeeper {
    crate::auth::Gatekeeper::new(config.access.clone(), config.tls.is_some())
}
