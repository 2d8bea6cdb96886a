//! Fuzz entry for the TOML config file (the `config_file` target in `fuzz/`; seeds in
//! `fuzz/seeds/config_file/`, smoke test in `tests/config_fuzz_smoke.rs`).

use std::collections::HashMap;
use std::path::PathBuf;

use clap::Parser;

use super::{Cli, Config, ConfigError};

/// Where the fuzzed text claims to come from. The folder does not exist, so relative
/// `token_file`s fail to read; an absolute one would be read (the seeds use none).
pub const FUZZ_CONFIG_PATH: &str = "/nonexistent-r58-fuzz/r58.toml";

/// The configuration r58 would run with given `text` as its `--config` file (at
/// [`FUZZ_CONFIG_PATH`]), no other flags and an empty environment.
pub fn from_file_text(text: &str) -> Result<Config, ConfigError> {
    let cli = Cli::try_parse_from(["r58"])?;
    Config::resolve(
        cli,
        &HashMap::new(),
        Some((PathBuf::from(FUZZ_CONFIG_PATH), text.to_owned())),
    )
}

/// Fuzz entry: arbitrary bytes as the `--config` file, through parsing, every table's checks and
/// the merge with (empty) flags and environment. Must not panic; an accepted configuration's
/// `Debug` output (what a log line would show) must not contain a bearer, admin or TURN token.
pub fn config_file(data: &[u8]) {
    let Ok(config) = from_file_text(&String::from_utf8_lossy(data)) else {
        return;
    };
    let shown = format!("{config:?}");
    let tokens = config.auth.iter().map(|rule| rule.token.as_str());
    let admin = config.admin.token.as_ref().map(|t| t.expose());
    let turn = config.turn.token.as_ref().map(|t| t.expose());
    // Short tokens can occur in the output by chance (a token "1" in a port number).
    for token in tokens.chain(admin).chain(turn).filter(|t| t.len() >= 12) {
        assert!(!shown.contains(token), "a token shows in {shown}");
    }
}
