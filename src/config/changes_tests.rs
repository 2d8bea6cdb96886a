use super::*;
use crate::config::{AuthRule, TestCameras};

fn base() -> Config {
    Config {
        test_cameras: TestCameras {
            count: 1,
            ..TestCameras::default()
        },
        ..Config::default()
    }
}

#[test]
fn the_same_configuration_changes_nothing() {
    assert!(changes(&base(), &base(), false).is_empty());
    assert!(changes(&base(), &base(), true).is_empty());
}

#[test]
fn a_new_token_and_a_second_test_camera_are_applied_live() {
    let old = base();
    let mut new = base();
    new.auth = vec![AuthRule {
        path: "/whip/*".into(),
        token: "new-secret".into(),
    }];
    new.test_cameras.count = 2;
    let c = changes(&old, &new, false);
    assert_eq!(
        c.applied,
        vec![Change::Auth, Change::CameraAdded("cam1".into())]
    );
    assert!(c.needs_restart.is_empty(), "{:?}", c.needs_restart);
}

#[test]
fn cameras_are_compared_by_name_removed_restarted_added() {
    let mut old = base();
    old.test_cameras.count = 3;
    let mut new = base();
    new.test_cameras.count = 2;
    new.test_cameras.bitrate = old.test_cameras.bitrate / 2;
    let c = changes(&old, &new, false);
    assert_eq!(
        c.applied,
        vec![
            Change::CameraRemoved("cam2".into()),
            Change::CameraRestarted("cam0".into()),
            Change::CameraRestarted("cam1".into()),
        ]
    );
    // Turned off: every test camera stops.
    new.test_cameras.enabled = false;
    let c = changes(&old, &new, false);
    assert_eq!(
        c.applied,
        vec![
            Change::CameraRemoved("cam0".into()),
            Change::CameraRemoved("cam1".into()),
            Change::CameraRemoved("cam2".into()),
        ]
    );
}

#[test]
fn sockets_and_the_http_timeouts_wait_for_a_restart() {
    let old = base();
    let mut new = base();
    new.listen = "127.0.0.1:9000".parse().unwrap();
    new.limits.header_timeout *= 2;
    new.limits.sessions_per_ip += 1;
    new.log_level = "debug".into();
    let c = changes(&old, &new, false);
    assert_eq!(c.applied, vec![Change::Limits]);
    assert_eq!(
        c.needs_restart,
        vec!["listen", "log_level", "limits.header_timeout"]
    );
}

#[test]
fn max_sessions_is_a_live_limit() {
    let mut new = base();
    new.max_sessions = 3;
    assert_eq!(changes(&base(), &new, false).applied, vec![Change::Limits]);
}

#[test]
fn the_turn_provider_is_live_unless_the_server_holds_its_own_relay() {
    let old = base();
    let mut new = base();
    new.turn.service.stun_urls = vec!["stun:stun.example.net:3478".into()];
    let c = changes(&old, &new, false);
    assert_eq!(c.applied, vec![Change::Turn]);
    assert!(c.needs_restart.is_empty());
    let c = changes(&old, &new, true);
    assert_eq!(c.applied, vec![Change::Turn]);
    assert_eq!(
        c.needs_restart,
        vec!["turn (the server's own relay keeps its provider)"]
    );
    // The relay's own settings only at a restart.
    let mut relay = base();
    relay.turn.server_relay = crate::config::ServerRelay::Never;
    let c = changes(&old, &relay, false);
    assert!(c.applied.is_empty());
    assert_eq!(c.needs_restart, vec!["turn.server_relay"]);
}

#[test]
fn recording_settings_are_live_but_turning_it_on_or_moving_it_is_not() {
    let mut old = base();
    old.recording = Some(sfu::record::RecordConfig::default());
    let mut new = old.clone();
    if let Some(r) = new.recording.as_mut() {
        r.autostart = !r.autostart;
    }
    assert_eq!(changes(&old, &new, false).applied, vec![Change::Recording]);
    if let Some(r) = new.recording.as_mut() {
        r.dir = "elsewhere".into();
    }
    let c = changes(&old, &new, false);
    assert!(c.applied.is_empty());
    assert_eq!(c.needs_restart, vec!["recording (on/off or dir)"]);
    let c = changes(&base(), &old, false);
    assert_eq!(c.needs_restart, vec!["recording (on/off or dir)"]);
}

#[test]
fn the_report_serializes_as_sentences() {
    let mut new = base();
    new.test_cameras.count = 0;
    new.listen = "127.0.0.1:9000".parse().unwrap();
    let json = serde_json::to_value(changes(&base(), &new, false)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"applied": ["camera cam0 removed"], "needs_restart": ["listen"]})
    );
}

#[test]
fn a_key_waiting_for_a_restart_is_reported_again_and_the_rest_is_in_force() {
    let old = base();
    let mut new = base();
    new.listen = "127.0.0.1:9000".parse().unwrap();
    new.max_sessions = 7;
    let now = in_force(&old, &new, false);
    assert_eq!(now.listen, old.listen);
    assert_eq!(now.max_sessions, 7);
    // The same file again: only the restart is still pending.
    let again = changes(&now, &new, false);
    assert!(again.applied.is_empty(), "{:?}", again.applied);
    assert_eq!(again.needs_restart, vec!["listen"]);
}
