//! The real `r58` binary with cameras: the `cameras` subcommand, and a `[[camera]]` that asks
//! for the MPP encoder on a machine without the library.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn r58() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_r58"));
    cmd.env_remove("R58_CONFIG").env("R58_LOG_LEVEL", "warn");
    cmd
}

#[test]
fn cameras_lists_devices_or_says_there_are_none() {
    let out = r58().arg("cameras").output().expect("run r58 cameras");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let has_nodes = std::fs::read_dir("/dev")
        .expect("/dev")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("video"));
    if has_nodes {
        assert!(text.starts_with("/dev/video"), "{text}");
    } else {
        assert!(text.starts_with("No V4L2 devices found"), "{text}");
    }
}

#[test]
fn mpp_requested_without_the_library_stops_with_the_reason() {
    if rockchip_mpp_sys::Mpp::load().is_ok() {
        eprintln!("MPP is installed here: this test is for machines without it");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("r58.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\nwebrtc_udp = \"127.0.0.1:0\"\n[test_cameras]\ncount = 0\n\
         [[camera]]\nname = \"usb0\"\ndevice = \"/dev/video-r58-none\"\nencoder = \"mpp\"\n",
    )
    .expect("write");
    let mut child = r58()
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("r58 kept running with encoder = \"mpp\" and no MPP library");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "r58: cannot start the cameras: camera usb0: cannot start the H.264 encoder: \
             Rockchip MPP library not found (librockchip_mpp.so.1: "
        ),
        "{stderr}"
    );
}

/// Runs r58 with one test camera at `log_level` until the camera is live (or 20 s), and
/// returns everything it wrote to stdout and stderr.
fn output_of_a_camera_start(log_level: &str) -> String {
    use std::io::{BufRead, BufReader};
    let mut child = r58()
        .env("R58_LOG_LEVEL", log_level)
        .env("NO_COLOR", "1")
        .args(["--listen", "127.0.0.1:0", "--webrtc-udp", "127.0.0.1:0"])
        .args(["--test-cameras", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // tracing writes to stdout, OpenH264's own printf to stderr: read both until the camera
    // is live, which is after its encoder initialized (and warned).
    let stderr = child.stderr.take().expect("stderr");
    let errors = std::thread::spawn(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let mut lines = Vec::new();
    let start = Instant::now();
    for line in BufReader::new(child.stdout.take().expect("stdout"))
        .lines()
        .map_while(Result::ok)
    {
        let live = line.contains("camera stream live");
        lines.push(line);
        // The first frame went through the encoder when the stream went live.
        if live || start.elapsed() > Duration::from_secs(20) {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    lines.extend(errors.join().expect("stderr reader"));
    lines.join("\n")
}

#[test]
fn openh264_logs_through_tracing_not_stderr() {
    let quiet = output_of_a_camera_start("info");
    assert!(quiet.contains("camera stream live"), "{quiet}");
    assert!(
        !quiet.contains("OpenH264"),
        "OpenH264 printed at the default log level:\n{quiet}"
    );
    // Not silenced: asked for, the encoder's warning comes out as a tracing event.
    let verbose = output_of_a_camera_start("info,openh264=debug");
    assert!(
        verbose.lines().any(|l| l.contains("DEBUG")
            && l.contains("openh264")
            && l.contains("bEnableFrameSkip")),
        "{verbose}"
    );
}
