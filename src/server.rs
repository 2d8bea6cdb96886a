//! Wiring: bind the sockets, build the engine, run the UDP driver and the HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;

use sfu::capture::mpp::MppOptions;
use sfu::capture::packetizer::DEFAULT_MTU_PAYLOAD;
use sfu::capture::v4l2::V4l2Settings;
use sfu::capture::{CameraError, CameraHandle, CameraSettings, DeviceCamera, EncoderSettings};
use sfu::engine::SharedEngine;
use sfu::engine::{Engine, EngineConfig};
use sfu::net::driver;
use sfu::turn::TurnService;
use tokio::net::{TcpListener, UdpSocket};
use tracing::info;

use crate::config::{CameraConfig, Config, TestCameras};
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
        ));
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
    let app = router(state, &config.cors_allowed_origins);
    // Kept until the server stops; dropping them ends the camera streams and threads.
    let _cameras = start_test_cameras(&engine, &config.test_cameras)?;
    let _devices = start_device_cameras(&engine, &config.cameras)?;
    // The media driver gets a thread of its own so a busy data plane cannot hold up the HTTP
    // runtime (see sfu::net::driver).
    let relay = if crate::relay::wanted(
        config.turn.server_relay,
        &config.turn.service.provider,
        &candidates,
    ) {
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
            config.auth.clone(),
            config.limits.clone(),
            config.max_sessions,
            &config.rtsp,
        );
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
    // Every socket is bound: systemd may start what comes after r58 (docs/packaging.md).
    crate::notify::ready(&format!("serving HTTP on {}", http.local_addr()?));
    let _watchdog = crate::notify::spawn_watchdog(heartbeat);
    tokio::select! {
        served = serve(http, app, HttpOptions::new(&config.limits, tls, http_stats)) => served?,
        media = media => media.map_err(std::io::Error::other)??,
        () = crate::notify::terminated() => {
            crate::notify::stopping();
            crate::shutdown::stop_gracefully(&engine, recordings).await;
        }
    }
    Ok(())
}

/// Starts the configured synthetic cameras (each on its own thread, off the async runtime).
fn start_test_cameras(
    engine: &SharedEngine,
    cams: &TestCameras,
) -> Result<Vec<CameraHandle>, CameraError> {
    let settings: Vec<CameraSettings> = cams
        .names()
        .into_iter()
        .map(|name| CameraSettings {
            name,
            encoder: EncoderSettings {
                width: cams.width,
                height: cams.height,
                fps: cams.fps,
                bitrate: cams.bitrate,
                // One keyframe per second: a viewer joining waits at most that long, and the
                // keyframe cache a joiner replays stays short.
                keyframe_interval: cams.fps,
            },
            mtu_payload: DEFAULT_MTU_PAYLOAD,
        })
        .collect();
    let handles = sfu::capture::start_test_cameras(engine, &settings)?;
    if !handles.is_empty() {
        info!(
            cameras = ?cams.names(),
            width = cams.width,
            height = cams.height,
            fps = cams.fps,
            "test cameras started"
        );
    }
    Ok(handles)
}

/// Starts the `[[camera]]` V4L2 cameras, each on its own thread beside the test cameras.
fn start_device_cameras(
    engine: &SharedEngine,
    cams: &[CameraConfig],
) -> Result<Vec<CameraHandle>, CameraError> {
    let cameras: Vec<DeviceCamera> = cams.iter().map(device_camera).collect();
    let handles = sfu::capture::start_device_cameras(engine, &cameras)?;
    for c in cams {
        info!(
            camera = %c.name,
            device = %c.device.display(),
            width = c.width,
            height = c.height,
            fps = c.fps,
            format = ?c.format,
            encoder = ?c.encoder,
            "camera configured"
        );
    }
    Ok(handles)
}

fn device_camera(c: &CameraConfig) -> DeviceCamera {
    DeviceCamera {
        camera: CameraSettings {
            name: c.name.clone(),
            encoder: EncoderSettings {
                width: c.width,
                height: c.height,
                fps: c.fps,
                bitrate: c.bitrate,
                keyframe_interval: c.gop,
            },
            mtu_payload: DEFAULT_MTU_PAYLOAD,
        },
        device: V4l2Settings {
            device: c.device.clone(),
            width: c.width,
            height: c.height,
            fps: c.fps,
            format: c.format,
        },
        encoder: c.encoder,
        mpp: MppOptions::default(),
    }
}
