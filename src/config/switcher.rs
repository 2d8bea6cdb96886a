//! The `[switcher]` table: the program stream's name and where it goes when its source
//! disappears.
//!
//! ```toml
//! [switcher]
//! program = "program"   # the program stream's name
//! fallback = "cam0"     # default: the first live camera
//! audio_mix = true      # program audio mixed from every source (false: the on-air source's
//!                       # audio passed through unchanged, no decoding)
//! ```

use std::path::Path;

use serde::Deserialize;
use sfu::switch::SwitcherConfig;

use super::{ConfigError, invalid};

/// Keys accepted in the `[switcher]` table.
pub const SWITCHER_KEYS: &[&str] = &["program", "fallback", "audio_mix"];

/// `[switcher]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileSwitcher {
    program: Option<String>,
    fallback: Option<String>,
    audio_mix: Option<bool>,
}

/// The first key of a `[switcher]` table that is not one of [`SWITCHER_KEYS`].
pub(super) fn unknown_key(table: &toml::Table) -> Option<String> {
    let toml::Value::Table(t) = table.get("switcher")? else {
        return None;
    };
    t.keys()
        .find(|k| !SWITCHER_KEYS.contains(&k.as_str()))
        .map(|k| format!("switcher.{k}"))
}

/// Same rule as WHIP stream names: 1-64 of letters, digits, `-`, `_`, `.`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

pub(super) fn resolve(file: Option<(&Path, FileSwitcher)>) -> Result<SwitcherConfig, ConfigError> {
    let mut config = SwitcherConfig::default();
    let Some((path, table)) = file else {
        return Ok(config);
    };
    let origin = |key: &str| format!("config {}: switcher.{key}", path.display());
    for (key, value) in [("program", &table.program), ("fallback", &table.fallback)] {
        if let Some(name) = value
            && !valid_name(name)
        {
            return Err(invalid(
                &origin(key),
                format!("'{name}' is not a stream name (1-64 letters, digits, '-', '_', '.')"),
            ));
        }
    }
    if let Some(program) = table.program {
        config.program = program;
    }
    config.fallback = table.fallback;
    if let Some(mix) = table.audio_mix {
        config.audio_mix = mix;
    }
    if config.fallback.as_deref() == Some(config.program.as_str()) {
        return Err(invalid(
            &origin("fallback"),
            "cannot be the program stream itself".to_owned(),
        ));
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        let path = Path::new("r58.toml");
        let parse = |text: &str| resolve(Some((path, toml::from_str(text).unwrap())));
        let config = parse("program = \"pgm\"\nfallback = \"cam1\"").unwrap();
        assert_eq!(config.program, "pgm");
        assert_eq!(config.fallback.as_deref(), Some("cam1"));
        assert_eq!(resolve(None).unwrap(), SwitcherConfig::default());
        for (text, key) in [
            ("program = \"a/b\"", "switcher.program"),
            ("fallback = \"\"", "switcher.fallback"),
            ("program = \"x\"\nfallback = \"x\"", "switcher.fallback"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }
}
