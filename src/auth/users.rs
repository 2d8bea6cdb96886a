//! Users who may sign in: a name, a role and an Argon2id hash of the password, kept in a TOML
//! users file that `r58 user add|passwd|del` manages and the server re-reads when it changes.
//!
//! ```toml
//! [[user]]
//! name = "ana"
//! role = "operator"
//! hash = "$argon2id$v=19$m=19456,t=2,p=1$..."
//! ```

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

/// What a signed-in user may do. Ordered: each role may do what the ones below it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Watch: the pages, LL-HLS, WHEP, the stream list and events.
    Viewer,
    /// Also run the show: the switcher, recordings, publishing from outside.
    Operator,
    /// Also `/metrics` and everything an operator does.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Why a users file or a user change was refused.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("users file {path}: {message}")]
    File { path: String, message: String },
    #[error("'{0}' is not a user name: 1 to 64 letters, digits, '.', '_' or '-'")]
    BadName(String),
    #[error("user '{0}' already exists")]
    Exists(String),
    #[error("no user '{0}'")]
    NoSuchUser(String),
    #[error("the password must be 8 to 1024 characters")]
    BadPassword,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// One user. The hash is never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    pub hash: String,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("hash", &"<redacted>")
            .finish()
    }
}

/// The users of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
}

/// 1 to 64 of `[A-Za-z0-9._-]`: safe in logs, cookies and file names.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Argon2id with the OWASP-recommended minimum (19 MiB, 2 passes, 1 lane).
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("constant Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string of `password` under a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, UsersError> {
    if !(8..=1024).contains(&password.chars().count()) {
        return Err(UsersError::BadPassword);
    }
    let mut salt_bytes = [0u8; 16];
    rand::RngExt::fill(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| UsersError::Hash(e.to_string()))?;
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| UsersError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string `hash` (a malformed hash matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash no password was made for, verified when the user does not exist so that a wrong
/// name takes as long as a wrong password (names cannot be found by timing).
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("decoy password, never used").expect("the decoy password is valid")
});

impl Users {
    pub fn parse(text: &str) -> Result<Users, String> {
        let users: Users = toml::from_str(text).map_err(|e| e.message().to_owned())?;
        for (i, user) in users.users.iter().enumerate() {
            if !valid_name(&user.name) {
                return Err(format!("user[{i}]: '{}' is not a valid name", user.name));
            }
            if PasswordHash::new(&user.hash).is_err() {
                return Err(format!(
                    "user[{i}] ({}): the hash is not a PHC string",
                    user.name
                ));
            }
            if users.users[..i].iter().any(|u| u.name == user.name) {
                return Err(format!("user '{}' appears twice", user.name));
            }
        }
        Ok(users)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("users serialize")
    }

    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The user `name` if `password` is theirs. Takes the same time whether or not the user
    /// exists.
    pub fn check(&self, name: &str, password: &str) -> Option<&User> {
        match self.get(name) {
            Some(user) => verify_password(&user.hash, password).then_some(user),
            None => {
                verify_password(&DECOY_HASH, password);
                None
            }
        }
    }

    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<(), UsersError> {
        if !valid_name(name) {
            return Err(UsersError::BadName(name.to_owned()));
        }
        if self.get(name).is_some() {
            return Err(UsersError::Exists(name.to_owned()));
        }
        let hash = hash_password(password)?;
        self.users.push(User {
            name: name.to_owned(),
            role,
            hash,
        });
        Ok(())
    }

    /// Sets a new password, and the role when given.
    pub fn set_password(
        &mut self,
        name: &str,
        role: Option<Role>,
        password: &str,
    ) -> Result<(), UsersError> {
        let hash = hash_password(password)?;
        let user = self
            .users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| UsersError::NoSuchUser(name.to_owned()))?;
        user.hash = hash;
        if let Some(role) = role {
            user.role = role;
        }
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<(), UsersError> {
        let before = self.users.len();
        self.users.retain(|u| u.name != name);
        if self.users.len() == before {
            return Err(UsersError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }
}

/// Reads a users file; a missing file is no users.
pub fn read_file(path: &Path) -> Result<Users, UsersError> {
    let err = |message: String| UsersError::File {
        path: path.display().to_string(),
        message,
    };
    match std::fs::read_to_string(path) {
        Ok(text) => Users::parse(&text).map_err(err),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Users::default()),
        Err(e) => Err(err(e.to_string())),
    }
}

/// Writes a users file readable by its owner only, replacing it at once (a reader never sees
/// half a file).
pub fn write_file(path: &Path, users: &Users) -> Result<(), UsersError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let err = |e: std::io::Error| UsersError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let tmp = path.with_extension("toml.new");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(users.to_toml().as_bytes()).map_err(err)?;
    file.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// How often the server looks whether the users file changed.
const RECHECK: Duration = Duration::from_secs(1);

/// The users file as the server sees it: read again when its modification time changes
/// (looked at most once a second), so `r58 user del` takes effect without a restart.
#[derive(Debug)]
pub struct UserStore {
    path: Option<PathBuf>,
    state: Mutex<StoreState>,
}

#[derive(Debug)]
struct StoreState {
    users: Arc<Users>,
    modified: Option<SystemTime>,
    checked: Option<Instant>,
}

impl UserStore {
    /// A store of the users in `path` (`None`: nobody can sign in).
    pub fn new(path: Option<PathBuf>) -> Self {
        Self {
            path,
            state: Mutex::new(StoreState {
                users: Arc::new(Users::default()),
                modified: None,
                checked: None,
            }),
        }
    }

    /// A store holding `users` and no file (tests).
    pub fn fixed(users: Users) -> Self {
        Self {
            path: None,
            state: Mutex::new(StoreState {
                users: Arc::new(users),
                modified: None,
                checked: None,
            }),
        }
    }

    /// The current users. A file that became unreadable or invalid keeps the last good users
    /// (and says why in the log) rather than locking everyone out mid-show.
    pub fn users(&self, now: Instant) -> Arc<Users> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.path else {
            return state.users.clone();
        };
        if state
            .checked
            .is_some_and(|at| now.saturating_duration_since(at) < RECHECK)
        {
            return state.users.clone();
        }
        state.checked = Some(now);
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        if modified == state.modified && modified.is_some() {
            return state.users.clone();
        }
        match read_file(path) {
            Ok(users) => {
                state.users = Arc::new(users);
                state.modified = modified;
            }
            Err(e) => tracing::warn!("{e}; keeping the users read before"),
        }
        state.users.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_check_change_remove() {
        let mut users = Users::default();
        users.add("ana", Role::Operator, "correct horse").unwrap();
        assert!(matches!(
            users.add("ana", Role::Viewer, "another one"),
            Err(UsersError::Exists(_))
        ));
        assert!(matches!(
            users.add("../etc", Role::Viewer, "another one"),
            Err(UsersError::BadName(_))
        ));
        assert!(matches!(
            users.add("bo", Role::Viewer, "short"),
            Err(UsersError::BadPassword)
        ));
        assert!(users.users[0].hash.starts_with("$argon2id$"));
        assert_eq!(
            users.check("ana", "correct horse").map(|u| u.role),
            Some(Role::Operator)
        );
        assert!(users.check("ana", "correct hors").is_none());
        assert!(users.check("nobody", "correct horse").is_none());
        // The text form reads back the same, and never shows the password.
        let text = users.to_toml();
        assert!(!text.contains("correct horse"));
        assert_eq!(Users::parse(&text).unwrap(), users);
        assert!(!format!("{users:?}").contains("argon2id"));
        users
            .set_password("ana", Some(Role::Admin), "battery staple")
            .unwrap();
        assert!(users.check("ana", "correct horse").is_none());
        assert_eq!(
            users.check("ana", "battery staple").map(|u| u.role),
            Some(Role::Admin)
        );
        users.remove("ana").unwrap();
        assert!(matches!(
            users.remove("ana"),
            Err(UsersError::NoSuchUser(_))
        ));
    }

    #[test]
    fn bad_files_say_why() {
        assert!(Users::parse("[[user]]\nname = \"a\"\nrole = \"boss\"\nhash = \"x\"").is_err());
        let err =
            Users::parse("[[user]]\nname = \"a\"\nrole = \"viewer\"\nhash = \"x\"").unwrap_err();
        assert!(err.contains("PHC"), "{err}");
        assert_eq!(Users::parse("").unwrap(), Users::default());
    }

    #[test]
    fn the_store_follows_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        let store = UserStore::new(Some(path.clone()));
        let t0 = Instant::now();
        assert!(store.users(t0).users.is_empty());
        let mut users = Users::default();
        users.add("ana", Role::Viewer, "correct horse").unwrap();
        write_file(&path, &users).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Within a second of the last look the store does not look again.
        assert!(store.users(t0).users.is_empty());
        assert_eq!(store.users(t0 + RECHECK).users.len(), 1);
        // A broken file keeps the users read before.
        std::fs::write(&path, "not toml [").unwrap();
        assert_eq!(store.users(t0 + RECHECK * 3).users.len(), 1);
    }
}
