//! `[[auth]]` tables: bearer tokens per path pattern, from the file, a token file or the
//! environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// One bearer-token rule: requests whose path matches `path` (see [`matches`]) need `token`.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRule {
    /// Path pattern: exact, or a prefix when it ends with `*`.
    pub path: String,
    /// The resolved token (from `token`, `token_file` or `token_env`), non-empty, visible ASCII.
    pub token: String,
}

impl fmt::Debug for AuthRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRule")
            .field("path", &self.path)
            .field("token", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileAuth {
    path: String,
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_env: Option<String>,
}

/// Does an `[[auth]]` path pattern match a request path? A pattern ending in `*` matches every
/// path that starts with what precedes the `*` (`/whip/*` matches `/whip/a` and `/whip/a/b`,
/// not `/whip`); any other pattern matches only the identical path.
pub fn matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

/// Resolve each `[[auth]]` rule's token from `token`, `token_file` (relative to the config
/// file's folder) or `token_env`.
pub(super) fn resolve_auth(
    path: &Path,
    rules: Vec<FileAuth>,
    env: &HashMap<String, String>,
) -> Result<Vec<AuthRule>, ConfigError> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, rule) in rules.into_iter().enumerate() {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            origin: format!("config {}: auth[{i}].{key}", path.display()),
            message,
        };
        if !rule.path.starts_with('/') && rule.path != "*" {
            return Err(invalid(
                "path",
                format!("'{}' must start with '/'", rule.path),
            ));
        }
        if rule.path.trim_end_matches('*').contains('*') {
            return Err(invalid(
                "path",
                format!(
                    "'{}': only a trailing '*' is supported (prefix match)",
                    rule.path
                ),
            ));
        }
        let (key, token) = match (rule.token, rule.token_file, rule.token_env) {
            (Some(token), None, None) => ("token", token),
            (None, Some(file), None) => {
                let full = match path.parent() {
                    Some(dir) if file.is_relative() => dir.join(&file),
                    _ => file.clone(),
                };
                let text = std::fs::read_to_string(&full).map_err(|e| {
                    invalid(
                        "token_file",
                        format!("cannot read '{}': {e}", full.display()),
                    )
                })?;
                ("token_file", text.trim().to_owned())
            }
            (None, None, Some(var)) => {
                let value = env.get(&var).map(|v| v.trim()).unwrap_or_default();
                if value.is_empty() {
                    return Err(invalid(
                        "token_env",
                        format!("environment variable '{var}' is not set or empty"),
                    ));
                }
                ("token_env", value.to_owned())
            }
            _ => {
                return Err(invalid(
                    "token",
                    "set exactly one of token, token_file, token_env".to_owned(),
                ));
            }
        };
        if token.is_empty() {
            return Err(invalid(key, "the token is empty".to_owned()));
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(invalid(
                key,
                "the token must be printable ASCII without spaces".to_owned(),
            ));
        }
        out.push(AuthRule {
            path: rule.path,
            token,
        });
    }
    Ok(out)
}
