//! The HTTP control plane: WHIP/WHEP resources, LL-HLS, the JSON API, the pages, metrics and
//! health.
//!
//! [`router`] builds every route; tests drive it with `oneshot` requests. Modules, bottom up
//! (none uses one above it):
//!
//! - [`client`]: who is asking (address through proxies, local or not, bearer token);
//!   [`metrics`]: the Prometheus text format.
//! - [`guard`]: limits, the admin policy and their counters; [`turn`]: the TURN endpoint's
//!   state and checks; [`state`]: [`AppState`], what the handlers share.
//! - [`signin`]: the `[access]` decisions for viewing and publishing and what a signed-in
//!   session may do; [`access`]: who may call which route, declared with each route
//!   ([`access::Routes`]).
//! - the handlers: [`whip`], [`hls`], [`api`], [`events`], [`switcher`], [`pages`],
//!   [`recordings`], [`reload`] (asks the server's reload task), [`login`] (signing in and
//!   out), [`invites`] (guest invites), and the
//!   credentials in [`turn`].

pub mod access;
mod api;
pub mod client;
mod events;
pub mod guard;
mod hls;
mod hls_grant;
mod invites;
pub mod lan;
mod login;
pub mod metrics;
pub mod pages;
mod recordings;
mod refusal;
mod reload;
pub mod signin;
mod state;
mod switcher;
pub mod turn;
mod whip;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use crate::listener::MAX_BODY_BYTES;
pub use access::{Access, RouteAccess};
pub use state::{AppState, ReloadRequest};

/// Every route with who may call it: the single declaration [`router`] serves.
pub fn routes(state: &AppState) -> access::Routes {
    access::Routes::new(state)
        .merge(api::routes(state))
        .merge(whip::routes(state))
        .merge(hls::routes(state))
        .merge(hls_grant::routes(state))
        .merge(switcher::routes(state))
        .merge(pages::routes(state))
        .merge(events::routes(state))
        .merge(recordings::routes(state))
        .merge(reload::routes(state))
        .merge(lan::routes(state))
        .merge(login::routes(state))
        .merge(invites::routes(state))
}

/// Every route of the server.
pub fn router(state: AppState, cors_origins: &[String]) -> Router {
    let routes = routes(&state)
        .into_router()
        .fallback(not_found)
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

/// Response headers a browser client may read. `age`: hls.js reads it from a cached playlist
/// to ask for the part that is live now (RFC 8216bis Appendix C, "CDN Tune-in").
const EXPOSED_HEADERS: &str = "location,etag,link,accept-post,accept-patch,retry-after,age";

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
