//! The HTTP control plane: WHIP/WHEP resources, the JSON API, metrics and health.
//!
//! `router(state)` builds every route; tests drive it with `oneshot` requests.

mod api;
mod auth;
mod events;
pub mod guard;
mod hls;
pub mod pages;
mod switcher;
pub mod turn;
mod whip;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::routing::get;
use sfu::engine::SharedEngine;
use sfu::hls::{HlsService, LiveConfig};
use sfu::switch::{Switcher, SwitcherConfig};
use sfu::webrtc::session::SessionId;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest SDP offer or trickle fragment we accept.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: SharedEngine,
    /// Bearer tokens by path pattern, checked in constant time.
    pub auth: Arc<Vec<crate::config::AuthRule>>,
    /// Every stream's LL-HLS muxer (its watcher task is started by the server).
    pub hls: HlsService,
    /// The production switcher and its program bus (its timer task is started by the server).
    pub switcher: Switcher,
    /// Session resource tokens (the unguessable last path segment) to engine sessions.
    sessions: Arc<Mutex<HashMap<String, SessionId>>>,
    /// ICE servers for clients and the credentials endpoint's protection.
    pub turn: Arc<turn::TurnEndpoint>,
    /// Limits, the admin policy and their counters.
    pub guard: Arc<guard::Guard>,
}

impl AppState {
    pub fn new(engine: SharedEngine, auth: Vec<crate::config::AuthRule>) -> Self {
        Self {
            hls: HlsService::new(engine.clone(), LiveConfig::default()),
            switcher: Switcher::new(engine.clone(), SwitcherConfig::default()),
            engine,
            auth: Arc::new(auth),
            sessions: Arc::new(Mutex::new(HashMap::new())),
            turn: Arc::new(turn::TurnEndpoint::disabled()),
            guard: Arc::new(guard::Guard::default()),
        }
    }

    /// The same state with LL-HLS muxers configured by `config`.
    pub fn with_hls(mut self, config: LiveConfig) -> Self {
        self.hls = HlsService::new(self.engine.clone(), config);
        self
    }

    /// The same state with the switcher configured by `config`.
    pub fn with_switcher(mut self, config: SwitcherConfig) -> Self {
        self.switcher = Switcher::new(self.engine.clone(), config);
        self
    }

    /// Hands out ICE servers from `turn` (the default is none).
    pub fn with_turn(mut self, turn: turn::TurnEndpoint) -> Self {
        self.turn = Arc::new(turn);
        self
    }

    /// Enforces `guard`'s limits and admin policy (the default: built-in limits, admin open to
    /// local clients).
    pub fn with_guard(mut self, guard: guard::Guard) -> Self {
        self.guard = Arc::new(guard);
        self
    }

    fn session_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionId>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every route of the server.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let routes = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/streams", get(api::streams))
        .route("/metrics", get(api::metrics))
        .merge(whip::routes())
        .merge(hls::routes())
        .merge(switcher::routes())
        .merge(turn::routes())
        .merge(pages::routes())
        .merge(events::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), guard::gate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // tower-http's CorsLayer answers every OPTIONS itself as a preflight, so a plain OPTIONS
    // (no Access-Control-Request-Method) would never see the handlers' `Accept-Post`. Send
    // those past the CORS layer, adding the simple-request CORS headers ourselves.
    let plain = routes.clone();
    let origins: Arc<[String]> = cors_origins.into();
    routes
        .layer(cors_layer(cors_origins))
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            let plain = plain.clone();
            let origins = origins.clone();
            async move {
                let preflight = request
                    .headers()
                    .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
                if request.method() != Method::OPTIONS || preflight {
                    return next.run(request).await;
                }
                let origin = request.headers().get(header::ORIGIN).cloned();
                let Ok(mut response) = plain.oneshot(request).await;
                add_simple_cors(&origins, origin, response.headers_mut());
                response
            }
        }))
}

/// Any path no route serves (including `..` tricks, which never match a route).
async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "no such resource\n")
}

/// The headers CorsLayer puts on a non-preflight response, for the requests that bypass it.
fn add_simple_cors(origins: &[String], origin: Option<HeaderValue>, headers: &mut HeaderMap) {
    let any = origins.is_empty() || origins.iter().any(|o| o == "*");
    if !any {
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    let allowed = if any {
        Some(HeaderValue::from_static("*"))
    } else {
        origin.filter(|o| {
            origins
                .iter()
                .any(|allowed| allowed.as_bytes() == o.as_bytes())
        })
    };
    let Some(allowed) = allowed else {
        return;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSED_HEADERS),
    );
}

/// Response headers a browser client may read.
const EXPOSED_HEADERS: &str = "location,etag,link,accept-post,accept-patch,retry-after";

fn cors_layer(origins: &[String]) -> CorsLayer {
    let allow_origin = if origins.is_empty() || origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::IF_MATCH,
        ])
        .expose_headers(
            EXPOSED_HEADERS
                .split(',')
                .map(HeaderName::from_static)
                .collect::<Vec<_>>(),
        )
}
