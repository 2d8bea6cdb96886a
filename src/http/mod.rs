//! The HTTP control plane: WHIP/WHEP resources, the JSON API, metrics and health.
//!
//! `router(state)` builds every route; tests drive it with `oneshot` requests.

mod api;
mod auth;
mod events;
pub mod pages;
mod whip;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::routing::get;
use sfu::webrtc::driver::SharedEngine;
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
    let routes = Router::new()
        .route("/healthz", get(api::healthz))
        .route("/api/streams", get(api::streams))
        .route("/metrics", get(api::metrics))
        .merge(whip::routes())
        .merge(pages::routes())
        .merge(events::routes())
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
