//! The operator pages and their assets, embedded into the binary by build.rs from web/.
//!
//! `/` (multiview), `/guest_join`, `/switcher`, `/recordings` (play, download and delete the
//! recordings; the API it calls is admin-only) and `/trust` (how to trust the LAN HTTPS
//! certificate's CA, docs/lan.md) are HTML pages; `/static/...` serves their modules and
//! styles, and hls.js at `/static/vendor/hls.min.mjs` when it was built in. Every response
//! carries a content ETag and `Cache-Control: no-cache`: browsers revalidate (a 304 costs
//! nothing) so an upgraded box never runs yesterday's scripts against today's API.
//!
//! In debug builds, `R58_WEB_DIR=web` serves the files from disk instead (edit, reload, no
//! rebuild); only files that were embedded are served, so the set of paths stays fixed.

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::access::{Access, Routes};
use super::state::AppState;

/// One embedded file.
struct Asset {
    /// Path relative to web/, '/'-separated (`index.html`, `static/js/whip.js`).
    path: &'static str,
    bytes: &'static [u8],
    /// Strong ETag of the content, quoted.
    etag: &'static str,
}

static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// Whether hls.js (web/node_modules, from `npm ci --prefix web`) was found at build time.
pub const HLS_JS_EMBEDDED: bool = include!(concat!(env!("OUT_DIR"), "/web_hls_embedded.rs"));

/// Where the pages load hls.js from.
pub const HLS_JS_PATH: &str = "static/vendor/hls.min.mjs";

/// Media over MSE plays from blob: URLs and hls.js runs its demuxer in a blob: worker; WHIP,
/// WHEP, HLS and the event stream are all same-origin.
const PAGE_CSP: &str = "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; \
     worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'self'";

/// The pages follow `[access]` (from outside, a signed-in user; `/guest_join` a signed-in
/// operator); their files hold no stream data (they fetch it from the routes that do) and
/// are open, so the sign-in page can use them.
pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get("/", Access::ViewPage, |h: HeaderMap| async move {
            serve("index.html", &h)
        })
        .get(
            "/guest_join",
            Access::PublishPage,
            |h: HeaderMap| async move { serve("guest_join.html", &h) },
        )
        .get("/switcher", Access::ViewPage, |h: HeaderMap| async move {
            serve("switcher.html", &h)
        })
        .get("/recordings", Access::ViewPage, |h: HeaderMap| async move {
            serve("recordings.html", &h)
        })
        .get("/trust", Access::Open, |h: HeaderMap| async move {
            serve("trust.html", &h)
        })
        .get("/static/{*path}", Access::Open, static_file)
}

async fn static_file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    // Embedded paths are plain; refuse anything that could climb out of a folder on disk.
    let plain = path
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0']));
    if !plain {
        return not_found();
    }
    let full = format!("static/{path}");
    if full == HLS_JS_PATH && !HLS_JS_EMBEDDED {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "hls.js is not built into this server: run `npm ci --prefix web` and build again\n",
        )
            .into_response();
    }
    serve(&full, &headers)
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such file\n",
    )
        .into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    }
}

pub(super) fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return not_found();
    };
    let (body, etag) = match dev_file(asset) {
        Some((bytes, etag)) => (Body::from(bytes), etag),
        None => (Body::from(asset.bytes), asset.etag.to_owned()),
    };
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = body.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(content_type(path)),
        );
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if path.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

/// The file from `R58_WEB_DIR` (debug builds only), with an ETag of its length and mtime.
fn dev_file(asset: &Asset) -> Option<(Vec<u8>, String)> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let dir = std::env::var_os("R58_WEB_DIR")?;
    let path = if asset.path == HLS_JS_PATH {
        std::path::Path::new(&dir).join("node_modules/hls.js/dist/hls.min.mjs")
    } else {
        std::path::Path::new(&dir).join(asset.path)
    };
    let meta = std::fs::metadata(&path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    let bytes = std::fs::read(&path).ok()?;
    Some((
        bytes,
        format!("\"dev-{:x}-{:x}\"", modified.as_nanos(), meta.len()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_file_has_a_known_content_type() {
        assert!(ASSETS.iter().any(|a| a.path == "index.html"));
        assert!(ASSETS.iter().any(|a| a.path == "guest_join.html"));
        assert!(ASSETS.iter().any(|a| a.path == "switcher.html"));
        for a in ASSETS {
            assert_ne!(
                content_type(a.path),
                "application/octet-stream",
                "{} would be served as octet-stream",
                a.path
            );
            assert!(
                a.path == "index.html"
                    || a.path == "login.html"
                    || a.path == "guest_join.html"
                    || a.path == "switcher.html"
                    || a.path == "trust.html"
                    || a.path == "recordings.html"
                    || a.path.starts_with("static/"),
                "{} is embedded but no route serves it",
                a.path
            );
        }
    }
}
