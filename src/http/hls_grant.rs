//! LL-HLS under a signed path prefix, `/hls/g/{grant}/{name}/...`: the same playlists and
//! parts as `/hls/{name}/...` ([`super::hls`]), for remote viewers behind a CDN. The gate
//! checks the grant ([`super::signin::hls`]); these handlers only drop it from the path.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::Response;

use super::access::{Access, Routes};
use super::hls::{self, PlaylistQuery};
use super::state::AppState;

pub fn routes(state: &AppState) -> Routes {
    Routes::new(state)
        .get(
            "/hls/g/{grant}/{name}/index.m3u8",
            Access::HlsGrant,
            multivariant,
        )
        .get(
            "/hls/g/{grant}/{name}/{instance}/{file}",
            Access::HlsGrant,
            resource,
        )
}

async fn multivariant(
    state: State<AppState>,
    Path((_grant, name)): Path<(String, String)>,
) -> Response {
    hls::multivariant(state, Path(name)).await
}

async fn resource(
    state: State<AppState>,
    Path((_grant, name, instance, file)): Path<(String, String, String, String)>,
    query: Result<Query<PlaylistQuery>, QueryRejection>,
) -> Response {
    hls::resource(state, Path((name, instance, file)), query).await
}
