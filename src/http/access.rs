//! Who may call which route, decided in one place: every route is added through [`Routes`]
//! with its [`Access`], and [`Routes::table`] lists them all (a test walks that list and tries
//! each route with and without credentials). A route cannot be added without saying who may
//! call it, and no handler checks tokens itself.
//!
//! The checks, by [`Access`]:
//! - the admin gate (`[admin]`): the admin bearer token, or a client on this box or the LAN
//!   that did not come through a proxy or tunnel ([`admin_decision`]);
//! - the path's `[[auth]]` rule, when one covers it: its bearer token ([`path_token_ok`]);
//! - for requests that create a WHIP/WHEP session, the per-client session limit
//!   ([`limit_sessions`], `[limits] sessions_per_ip`, 429 with `Retry-After`);
//! - for the TURN credentials, the endpoint's own order: origin, rate, token
//!   ([`super::turn::TurnEndpoint::refusal`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::client::{self, bearer, client_ip, constant_time_eq, path_token_ok};
use super::invites;
use super::refusal::{refuse, unauthorized};
use super::signin;
use super::state::AppState;
use crate::auth::users::Role;
use crate::config::{Admin, AdminOpen};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Anyone: the health check, static files, the sign-in page, and the WHIP/WHEP resources'
    /// OPTIONS and GET. (A session resource's last segment is an unguessable token only its
    /// creator learns; PATCH and DELETE on it also follow the path's rule.)
    Open,
    /// Signing in and out (`/api/login`, `/api/logout`): open, but refused from another
    /// origin, and sign-in attempts are rate-limited ([`super::login`]).
    SignIn,
    /// Viewing (`[access]`: `lan` or `remote_view` by where the request comes from): LL-HLS,
    /// the stream list and the events (whose switcher part follows `GET /api/switcher`'s rule,
    /// see [`super::events`]). When sign-in is needed: a signed-in user, the token of an
    /// `[[auth]]` rule covering the path, or the admin token.
    View,
    /// [`Access::View`] for the LL-HLS multivariant playlist: a remote signed-in viewer is
    /// sent (302) into a signed path prefix ([`Access::HlsGrant`]) that a CDN can cache.
    HlsEntry,
    /// LL-HLS under a signed path prefix (`/hls/g/{grant}/...`): the grant admits while it
    /// lasts, else [`Access::View`]'s rule (docs/security.md, "Remote viewing behind a CDN").
    HlsGrant,
    /// [`Access::View`] for a page: refused by sending the browser to the sign-in page.
    ViewPage,
    /// Publishing (`[access]`: `lan` or `remote_publish`): a signed-in operator, a covering
    /// `[[auth]]` token or the admin token when sign-in is needed; refused by sending the
    /// browser to the sign-in page (`/guest_join`).
    PublishPage,
    /// The bearer token of the `[[auth]]` rule covering the path, if any, or a signed-in user.
    PathToken,
    /// [`Access::View`], [`Access::PathToken`], then the per-client session limit
    /// (`[limits] sessions_per_ip`): `POST /whep/{name}`.
    ViewSession,
    /// Publishing as for [`Access::PublishPage`] (refused with 401), [`Access::PathToken`],
    /// then the per-client session limit: `POST /whip/{name}`.
    PublishSession,
    /// The admin gate (`[admin]`), or a signed-in operator.
    Admin,
    /// The admin gate, then the path's `[[auth]]` rule unless the admin token was shown (a
    /// remote operator needs one token, not two in one header); or a signed-in operator.
    AdminAndPathToken,
    /// The TURN credentials endpoint's checks: origin, rate limit, its own token and the
    /// path's `[[auth]]` rule.
    TurnCredentials,
}

/// One declared route: a method, a path pattern (axum's syntax) and who may call it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouteAccess {
    pub method: String,
    pub path: &'static str,
    pub access: Access,
}

/// Routes being declared: the router and, beside it, the table of who may call what.
pub struct Routes {
    state: AppState,
    router: Router<AppState>,
    table: Vec<RouteAccess>,
}

impl Routes {
    pub fn new(state: &AppState) -> Self {
        Self {
            state: state.clone(),
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Adds `handler` for `method` on `path`, behind the checks of `access`.
    pub fn add<H, T>(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone())
            .unwrap_or_else(|_| panic!("{method} is not a method axum routes"));
        let gate = middleware::from_fn_with_state((self.state.clone(), access), gate);
        let endpoint: MethodRouter<AppState, Infallible> = on(filter, handler).route_layer(gate);
        self.router = self.router.route(path, endpoint);
        self.table.push(RouteAccess {
            method: method.to_string(),
            path,
            access,
        });
        self
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::GET, path, access, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::POST, path, access, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        access: Access,
        handler: H,
    ) -> Self {
        self.add(Method::DELETE, path, access, handler)
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Every route declared, in order.
    pub fn table(&self) -> &[RouteAccess] {
        &self.table
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// The middleware in front of every declared route.
async fn gate(
    State((state, access)): State<(AppState, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let peer = client::peer(&request);
    let path_rule = |request: &Request| -> Result<bool, signin::CsrfRefused> {
        if path_token_ok(&state.auth.load(), request.uri().path(), request.headers())
            || invites::invite_matches_path(&state, request)
        {
            return Ok(true);
        }
        signin::session_admits(&state, request, Role::Viewer)
    };
    let refused_path = |admitted: Result<bool, signin::CsrfRefused>| match admitted {
        Ok(true) => None,
        Ok(false) => Some(unauthorized()),
        Err(refusal) => Some(refusal.into_response()),
    };
    match access {
        Access::Open | Access::SignIn => next.run(request).await,
        Access::HlsEntry | Access::HlsGrant => signin::hls(&state, request, access, next).await,
        Access::View | Access::ViewPage | Access::ViewSession => {
            // A guest's invite also plays their own studio return (`/whep/{name}.return`).
            let guest_return =
                access == Access::ViewSession && invites::invite_matches_path(&state, &request);
            if !guest_return && let Some(refusal) = signin::view_refusal(&state, &request, access) {
                return refusal;
            }
            if access != Access::ViewSession {
                let private = signin::view_needs_sign_in(&state, &request);
                let mut response = next.run(request).await;
                if private {
                    signin::keep_private(&mut response);
                }
                return response;
            }
            if let Some(refusal) = refused_path(path_rule(&request)) {
                return refusal;
            }
            limit_sessions(&state, peer, request, next).await
        }
        Access::PublishPage => {
            match invites::guest_page(&state, &request) {
                invites::GuestPage::Valid => return next.run(request).await,
                invites::GuestPage::Refused(page) => return *page,
                invites::GuestPage::NoInvite => {}
            }
            if let Some(refusal) = signin::publish_refusal(&state, &request, access) {
                return refusal;
            }
            next.run(request).await
        }
        Access::PublishSession => {
            // A guest's invite: publishing under its name only, from anywhere.
            if let Some(invite) = invites::invite_for_whip(&state, &request) {
                let id = match invite {
                    Ok(id) => id,
                    Err(refusal) => return refusal,
                };
                let client = client_ip(
                    peer,
                    request.headers(),
                    &state.turn.load().settings.trusted_proxies,
                );
                let response = limit_sessions(&state, peer, request, next).await;
                invites::record_use(&state, &id, &client.to_string(), &response);
                return response;
            }
            if let Some(refusal) = signin::publish_refusal(&state, &request, access) {
                return refusal;
            }
            if let Some(refusal) = refused_path(path_rule(&request)) {
                return refusal;
            }
            limit_sessions(&state, peer, request, next).await
        }
        Access::PathToken => {
            if let Some(refusal) = refused_path(path_rule(&request)) {
                return refusal;
            }
            next.run(request).await
        }
        Access::Admin | Access::AdminAndPathToken => {
            let pass = match admin_decision(&state.guard.admin.load(), peer, request.headers()) {
                Ok(pass) => pass,
                Err((status, reason)) => {
                    match signin::session_admits(&state, &request, Role::Operator) {
                        Ok(true) => AdminPass::Token,
                        Err(refusal) => return refusal.into_response(),
                        Ok(false) => {
                            state.guard.admin_refused.fetch_add(1, Ordering::Relaxed);
                            let mut response = refuse(status, reason);
                            if status == StatusCode::UNAUTHORIZED {
                                response.headers_mut().insert(
                                    header::WWW_AUTHENTICATE,
                                    HeaderValue::from_static("Bearer"),
                                );
                            }
                            return response;
                        }
                    }
                }
            };
            if access == Access::AdminAndPathToken
                && pass != AdminPass::Token
                && let Some(refusal) = refused_path(path_rule(&request))
            {
                return refusal;
            }
            next.run(request).await
        }
        Access::TurnCredentials => {
            match state
                .turn
                .load()
                .refusal(&state.auth.load(), peer, request.headers())
            {
                None => next.run(request).await,
                Some(refusal) => refusal,
            }
        }
    }
}

/// Seconds a client refused for holding too many sessions is told to wait.
const PER_IP_RETRY_AFTER: &str = "10";

/// Creates the session (`next`) unless the client already holds `sessions_per_ip` sessions;
/// remembers the new session's owner.
async fn limit_sessions(
    state: &AppState,
    peer: Option<IpAddr>,
    request: Request,
    next: Next,
) -> Response {
    let guard = &state.guard;
    // Held across the creation so concurrent requests of one client cannot overshoot.
    let mut owners = guard.owners.lock().await;
    forget_ended(state, &mut owners);
    let limits = guard.limits.load();
    let limit = limits.sessions_per_ip;
    let client = peer.map(|peer| {
        client_ip(
            Some(peer),
            request.headers(),
            &state.turn.load().settings.trusted_proxies,
        )
    });
    let Some(client) = client.filter(|c| limit > 0 && !limits.unlimited_ips.contains(c)) else {
        drop(owners);
        return next.run(request).await;
    };
    let held = owners.values().filter(|ip| **ip == client).count();
    if held >= limit {
        drop(owners);
        guard.per_ip_refused.fetch_add(1, Ordering::Relaxed);
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            &format!("this client already holds {held} sessions (the limit is {limit})"),
        );
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_static(PER_IP_RETRY_AFTER),
        );
        return response;
    }
    let response = next.run(request).await;
    if response.status() == StatusCode::CREATED
        && let Some(token) = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
    {
        owners.insert(token.to_owned(), client);
    }
    response
}

/// Drops owners (and resource tokens) of sessions the engine no longer has: sessions also end
/// without a DELETE (timeouts, a publisher's viewers), and their tokens must not pile up.
fn forget_ended(state: &AppState, owners: &mut HashMap<String, IpAddr>) {
    let mut tokens = state.session_tokens();
    let engine = state.engine.lock();
    tokens.retain(|_, id| engine.session_summary(*id).is_some());
    owners.retain(|token, _| tokens.contains_key(token));
}

/// Why the admin gate let a request in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminPass {
    Token,
    Local,
}

/// How an admin request is let in, or the status and reason that refuse it.
///
/// A bearer that is not the admin token does not refuse a local client: the same
/// `Authorization` header also carries `[[auth]]` tokens (an operator page opened with `?token=`).
/// Requests with no peer were not accepted from a socket (in-process tests) and count as local.
pub fn admin_decision(
    admin: &Admin,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
) -> Result<AdminPass, (StatusCode, &'static str)> {
    let presented = bearer(headers);
    if let (Some(token), Some(presented)) = (&admin.token, presented)
        && constant_time_eq(presented.as_bytes(), token.expose().as_bytes())
    {
        return Ok(AdminPass::Token);
    }
    let Some(peer) = peer else {
        return Ok(AdminPass::Local);
    };
    let local = !client::proxied(headers)
        && match admin.allow_without_token {
            AdminOpen::Local => client::is_private(peer),
            AdminOpen::Loopback => client::is_loopback(peer),
            AdminOpen::None => false,
        };
    match (local, &admin.token, presented) {
        (true, _, _) => Ok(AdminPass::Local),
        (false, Some(_), Some(_)) => Err((StatusCode::UNAUTHORIZED, "wrong admin token")),
        (false, Some(_), None) => Err((
            StatusCode::UNAUTHORIZED,
            "this endpoint needs the admin bearer token",
        )),
        (false, None, _) => Err((
            StatusCode::FORBIDDEN,
            "this endpoint is only open to local clients (set an [admin] token for others)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sfu::turn::Secret;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().expect("ip"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn local_clients_tokens_and_proxies() {
        let open = Admin::default();
        let none = HeaderMap::new();
        assert!(admin_decision(&open, ip("127.0.0.1"), &none).is_ok());
        assert!(admin_decision(&open, ip("192.168.1.20"), &none).is_ok());
        assert!(admin_decision(&open, ip("fd00::5"), &none).is_ok());
        assert!(admin_decision(&open, ip("::ffff:10.0.0.2"), &none).is_ok());
        assert_eq!(
            admin_decision(&open, ip("203.0.113.7"), &none)
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        // A tunnel daemon connects from loopback but says who the client is.
        let tunneled = headers(&[("cf-connecting-ip", "203.0.113.7")]);
        assert!(admin_decision(&open, ip("127.0.0.1"), &tunneled).is_err());
        let xff = headers(&[("x-forwarded-for", "10.0.0.1")]);
        assert!(admin_decision(&open, ip("127.0.0.1"), &xff).is_err());

        let loopback = Admin {
            allow_without_token: AdminOpen::Loopback,
            ..Admin::default()
        };
        assert!(admin_decision(&loopback, ip("127.0.0.1"), &none).is_ok());
        assert!(admin_decision(&loopback, ip("192.168.1.20"), &none).is_err());

        let token = Admin {
            token: Some(Secret::new("t0ken")),
            allow_without_token: AdminOpen::None,
        };
        let good = headers(&[("authorization", "Bearer t0ken")]);
        let bad = headers(&[("authorization", "Bearer t0kem")]);
        assert_eq!(
            admin_decision(&token, ip("203.0.113.7"), &good),
            Ok(AdminPass::Token)
        );
        assert_eq!(
            admin_decision(&token, ip("127.0.0.1"), &bad).unwrap_err(),
            (StatusCode::UNAUTHORIZED, "wrong admin token")
        );
        // Another token (an [[auth]] one) does not lock out a client that is local anyway.
        let local_with_token = Admin {
            token: Some(Secret::new("t0ken")),
            allow_without_token: AdminOpen::Local,
        };
        assert_eq!(
            admin_decision(&local_with_token, ip("127.0.0.1"), &bad),
            Ok(AdminPass::Local)
        );
        assert_eq!(
            admin_decision(&local_with_token, ip("203.0.113.7"), &bad).unwrap_err(),
            (StatusCode::UNAUTHORIZED, "wrong admin token")
        );
        assert_eq!(
            admin_decision(&token, ip("127.0.0.1"), &none)
                .unwrap_err()
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
}
