//! The HTTP control plane: WHIP/WHEP resources, the JSON API, metrics and health.
//!
//! `router(state)` builds every route; tests drive it with `oneshot` requests.

mod api;
mod auth;
mod whip;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::get;
use sfu::webrtc::driver::SharedEngine;
use sfu::webrtc::session::SessionId;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Largest SDP offer or trickle fragment we accept.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: SharedEngine,
    /// Bearer tokens by path pattern, checked in constant time.
    pub auth: Arc<Vec<crate::config::AuthRule>>,
    /// Session resource tokens (the unguessable last path segment) to engine sessions.
    sessions: Arc<Mutex<HashMap<String, SessionId>>>,
}

impl AppState {
    pub fn new(engine: SharedEngine, auth: Vec<crate::config::AuthRule>) -> Self {
        Self {
            engine,
            auth: Arc::new(auth),
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn session_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionId>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Every route of the server.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/streams", get(api::streams))
        .route("/metrics", get(api::metrics))
        .merge(whip::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors_layer(cors_origins))
        .with_state(state)
}

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
        .expose_headers([
            header::LOCATION,
            header::ETAG,
            header::LINK,
            HeaderName::from_static("accept-post"),
            header::RETRY_AFTER,
        ])
}
