//! The crate's layering, kept by a test rather than by a reviewer: every module of `sfu/src`
//! uses only modules of a lower layer (or itself), and the sans-IO layers neither read a clock
//! nor touch sockets, threads or tokio's timers. Test code (`#[cfg(test)]` items, `tests.rs`,
//! `*_tests.rs`, `tests/`) is exempt: tests may use the test support above everything.
//!
//! docs/architecture.md shows the same layers as a picture; change both together.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules, bottom (0) to top. Modules on one layer are peers and must not use each
/// other either: capture, hls and switch are independent sources and readers of the engine.
const LAYERS: &[(&str, u8)] = &[
    ("media", 0),
    ("rtp", 1),
    ("turn", 1),
    ("hub", 2),
    ("webrtc", 3),
    ("engine", 4),
    ("net", 5),
    ("capture", 6),
    ("hls", 6),
    ("switch", 6),
    ("rtsp", 6),
    // Above hls: recordings are made with its fMP4 writer.
    ("record", 7),
    ("testing", 8),
    ("fuzzing", 9),
];

/// Files of the sans-IO layers that are the thin I/O edge of their module, and why.
const IO_EDGES: &[(&str, &str)] = &[
    (
        "engine/shared.rs",
        "the lock and the flush notification every driver, source and reader shares",
    ),
    (
        "hub/reader.rs",
        "a reader's bounded channel: the hub's one hand-off to tasks",
    ),
    (
        "engine/readers.rs",
        "hands a reader the receiving end of its channel",
    ),
    ("hls/live.rs", "the tokio task per LL-HLS stream"),
];

/// Modules whose non-edge files must be sans-IO, and single files elsewhere that must be.
const SANS_IO: &[&str] = &[
    "media",
    "rtp",
    "hub",
    "webrtc",
    "engine",
    "hls",
    "switch/bus.rs",
    "rtsp",
    "capture/supervisor.rs",
    "turn/cache.rs",
    "record/writer.rs",
    "record/input.rs",
    "record/scan.rs",
    "record/disk.rs",
    "record/names.rs",
    "record/select.rs",
    "record/cutlist.rs",
    "record/otio.rs",
];

/// What sans-IO code must not contain.
const IO_MARKERS: &[&str] = &[
    "Instant::now()",
    "SystemTime::now()",
    "tokio::net",
    "tokio::time",
    "tokio::spawn",
    "std::net::UdpSocket",
    "std::thread",
];

/// Where the engine reads the clock once, at construction, and why that is allowed.
const CLOCK_READS: &[(&str, &str)] = &[(
    "media/clock.rs",
    "WallClock::now pairs the two clocks once, for whoever builds a sans-IO core",
)];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read sfu/src") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "tests") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name != "tests.rs" && !name.ends_with("_tests.rs") {
                out.push(path);
            }
        }
    }
}

/// The file's text before its first `#[cfg(test)]` (test modules come last in this crate),
/// without comments.
fn production_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("read source");
    let end = text.find("#[cfg(test)]").unwrap_or(text.len());
    text[..end]
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `engine/fanout.rs` for `.../src/engine/fanout.rs`, and its top-level module (`engine`; for
/// `media.rs` or `media/mod.rs`, `media`).
fn names(path: &Path) -> (String, String) {
    let rel = path
        .strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let top = rel
        .split('/')
        .next()
        .unwrap()
        .trim_end_matches(".rs")
        .to_owned();
    (rel, top)
}

fn layer(module: &str) -> Option<u8> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|&(_, l)| l)
}

/// Every `crate::module` a piece of code names.
fn crate_uses(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `super::` paths stay inside a module; `crate::` is what crosses modules.
        let preceded_by_ident = rest[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if !name.is_empty() && !preceded_by_ident {
            out.push(name);
        }
        rest = after;
    }
    out
}

#[test]
fn every_module_is_on_a_layer() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    for path in &files {
        let (rel, top) = names(path);
        if rel == "lib.rs" {
            continue;
        }
        assert!(
            layer(&top).is_some(),
            "{rel}: module `{top}` is on no layer; add it to LAYERS here and to docs/architecture.md"
        );
    }
}

#[test]
fn no_module_uses_one_above_or_beside_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut violations = BTreeMap::new();
    for path in &files {
        let (rel, top) = names(path);
        let Some(own) = layer(&top) else { continue };
        for used in crate_uses(&production_code(path)) {
            if used == top {
                continue;
            }
            let Some(theirs) = layer(&used) else {
                continue;
            };
            if theirs >= own {
                violations.insert(format!("{rel} uses crate::{used}"), (own, theirs));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that run up or sideways (file uses module: (own layer, its layer)): {violations:#?}"
    );
}

#[test]
fn sans_io_layers_read_no_clock_and_touch_no_socket() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut found = Vec::new();
    let mut checked = 0;
    for path in &files {
        let (rel, top) = names(path);
        let covered = SANS_IO.iter().any(|s| *s == top || *s == rel.as_str());
        if !covered || IO_EDGES.iter().any(|(f, _)| *f == rel) {
            continue;
        }
        checked += 1;
        let code = production_code(path);
        for marker in IO_MARKERS {
            let count = code.matches(marker).count();
            let allowed = usize::from(
                marker.ends_with("::now()") && CLOCK_READS.iter().any(|(f, _)| *f == rel),
            ) * 2;
            if count > allowed {
                found.push(format!("{rel}: {marker} ({count}x)"));
            }
        }
    }
    assert!(
        checked > 40,
        "only {checked} sans-IO files found: is the path right?"
    );
    assert!(found.is_empty(), "I/O in sans-IO code: {found:#?}");
}

#[test]
fn the_checker_sees_violations() {
    // The rules above are only worth having if the scanner finds what it looks for.
    let code = "use crate::engine::Engine;\nfn f() { let x = my_crate::hub::X; }\n";
    assert_eq!(crate_uses(code), ["engine"]);
    let cut = "use crate::hub::Hub;\n#[cfg(test)]\nmod tests { use crate::testing::x; }\n";
    let end = cut.find("#[cfg(test)]").unwrap();
    assert_eq!(crate_uses(&cut[..end]), ["hub"]);
}
