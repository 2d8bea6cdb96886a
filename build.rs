//! Embeds the operator pages (web/) into the binary.
//!
//! Writes `$OUT_DIR/web_assets.rs`: one `Asset` per file of web/ (pages and web/static/), plus
//! hls.js from web/node_modules when `npm ci --prefix web` has put it there. Nothing here touches
//! the network: without node_modules the binary is built without hls.js (with a warning) and
//! says so when the file is asked for.
//!
//! Also sets `R58_GIT_COMMIT` (the commit the binary was built from, for `r58 --version`) and
//! `R58_BUILD_TARGET` (the target triple): from `git rev-parse` when the source is a git
//! checkout, or from the `R58_GIT_COMMIT` environment variable when it is set (a source
//! tarball, a packaging script), else "unknown".

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// hls.js's ES module build, served to the pages at `static/vendor/hls.min.mjs`.
const HLS_JS: &str = "node_modules/hls.js/dist/hls.min.mjs";
const HLS_JS_SERVED_AS: &str = "static/vendor/hls.min.mjs";

fn main() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    embed_version(&root);
    let web = root.join("web");
    println!("cargo::rerun-if-changed=web");

    let mut files = Vec::new();
    collect(&web, &web, &mut files);
    files.sort();

    let mut out = String::from("&[\n");
    for rel in &files {
        push_asset(&mut out, rel, &web.join(rel));
    }
    let hls = web.join(HLS_JS);
    let hls_embedded = hls.is_file();
    if hls_embedded {
        check_hls_version(&web);
        push_asset(&mut out, HLS_JS_SERVED_AS, &hls);
    } else {
        println!(
            "cargo::warning=hls.js is not built in ({} is missing): run `npm ci --prefix web` and \
             build again, or pages in REMOTE mode play HLS only where the browser has it natively",
            hls.display()
        );
    }
    out.push_str("]\n");

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("web_assets.rs"), out).expect("write web_assets.rs");
    std::fs::write(
        out_dir.join("web_hls_embedded.rs"),
        format!("{hls_embedded}\n"),
    )
    .expect("write web_hls_embedded.rs");
}

/// Every file under `dir` as a '/'-separated path relative to `web`, leaving out npm's files
/// and anything hidden.
fn collect(web: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.')
            || name == "node_modules"
            || name == "package.json"
            || name == "package-lock.json"
            || name == "README.md"
        {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            collect(web, &path, files);
        } else {
            let rel = path.strip_prefix(web).expect("under web/");
            let rel: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            files.push(rel.join("/"));
        }
    }
}

fn push_asset(out: &mut String, served_as: &str, file: &Path) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    // The ETag only has to change when the content does; FNV-1a is enough for that.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in &bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let _ = writeln!(
        out,
        "    Asset {{ path: {served_as:?}, bytes: include_bytes!({file:?}), etag: \"\\\"{hash:016x}-{len:x}\\\"\" }},",
        file = file.display().to_string(),
        len = bytes.len(),
    );
}

/// Warns when node_modules holds another hls.js than the lockfile pins (a stale `npm ci`).
fn check_hls_version(web: &Path) {
    let installed = std::fs::read_to_string(web.join("node_modules/hls.js/package.json"))
        .ok()
        .and_then(|s| json_string_after(&s, "\"version\""));
    let pinned = std::fs::read_to_string(web.join("package-lock.json"))
        .ok()
        .and_then(|s| {
            let at = s.find("\"node_modules/hls.js\"")?;
            json_string_after(&s[at..], "\"version\"")
        });
    if installed != pinned {
        println!(
            "cargo::warning=web/node_modules has hls.js {installed:?} but web/package-lock.json pins \
             {pinned:?}: run `npm ci --prefix web`"
        );
    }
}

/// The string value of the first `key` in a JSON text (enough for npm's own files).
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let rest = &text[text.find(key)? + key.len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// The commit and target `r58 --version` prints.
fn embed_version(root: &Path) {
    println!("cargo::rerun-if-env-changed=R58_GIT_COMMIT");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo::rustc-env=R58_BUILD_TARGET={target}");
    let commit = std::env::var("R58_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(root, &["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=R58_GIT_COMMIT={commit}");
    // Build again when HEAD moves: HEAD itself (another branch), the branch it names (a new
    // commit) and packed-refs (the branch packed). A worktree's HEAD is in its own git dir.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(branch) = git(root, &["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(root, &["rev-parse", "--git-path", &name]) {
            let path = root.join(path);
            if path.exists() {
                println!("cargo::rerun-if-changed={}", path.display());
            }
        }
    }
}

/// `git ARGS` in `root`, its trimmed output when it succeeds.
fn git(root: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !text.is_empty()).then_some(text)
}
