//! `r58 user add|passwd|del|list`: changes the users file the running server re-reads
//! (within a second, no restart). Passwords are read from the terminal without echo, or as
//! one line from standard input when it is not a terminal (scripts, tests); they are never
//! taken from the command line, where `ps` and the shell history would show them.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use super::users::{Role, UsersError, read_file, write_file};
use crate::config::{AccessConfig, UserAction};

/// Why `r58 user` failed.
#[derive(Debug, thiserror::Error)]
pub enum UserCommandError {
    #[error("no users file: pass --file or set [access] users_file in the --config file")]
    NoFile,
    #[error("'{0}' is not a role: viewer, operator or admin")]
    BadRole(String),
    #[error("cannot read the password: {0}")]
    Password(std::io::Error),
    #[error("the passwords typed differ")]
    Mismatch,
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// Runs `action` against its users file; what to print on success.
pub fn run(action: &UserAction, access: &AccessConfig) -> Result<String, UserCommandError> {
    let file = |given: &Option<PathBuf>| -> Result<PathBuf, UserCommandError> {
        given
            .clone()
            .or_else(|| access.users_file.clone())
            .ok_or(UserCommandError::NoFile)
    };
    let role = |text: &str| Role::parse(text).ok_or_else(|| UserCommandError::BadRole(text.into()));
    match action {
        UserAction::Add {
            name,
            role: r,
            file: f,
        } => {
            let path = file(f)?;
            let role = role(r)?;
            let mut users = read_file(&path)?;
            // Checked before asking for a password nobody will use.
            if users.get(name).is_some() {
                return Err(UsersError::Exists(name.clone()).into());
            }
            users.add(name, role, &password()?)?;
            write_file(&path, &users)?;
            Ok(format!(
                "added {name} ({}) to {}",
                role.as_str(),
                path.display()
            ))
        }
        UserAction::Passwd {
            name,
            role: r,
            file: f,
        } => {
            let path = file(f)?;
            let role = r.as_deref().map(role).transpose()?;
            let mut users = read_file(&path)?;
            if users.get(name).is_none() {
                return Err(UsersError::NoSuchUser(name.clone()).into());
            }
            users.set_password(name, role, &password()?)?;
            write_file(&path, &users)?;
            Ok(format!("changed {name} in {}", path.display()))
        }
        UserAction::Del { name, file: f } => {
            let path = file(f)?;
            let mut users = read_file(&path)?;
            users.remove(name)?;
            write_file(&path, &users)?;
            Ok(format!("removed {name} from {}", path.display()))
        }
        UserAction::List { file: f } => {
            let path = file(f)?;
            Ok(list(&path)?)
        }
    }
}

fn list(path: &Path) -> Result<String, UsersError> {
    let users = read_file(path)?;
    Ok(users
        .users
        .iter()
        .map(|u| format!("{}\t{}\n", u.name, u.role.as_str()))
        .collect::<String>()
        .trim_end()
        .to_owned())
}

/// The new password: typed twice on a terminal, or one line of standard input.
fn password() -> Result<String, UserCommandError> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(UserCommandError::Password)?;
        let again =
            rpassword::prompt_password("Password again: ").map_err(UserCommandError::Password)?;
        if first != again {
            return Err(UserCommandError::Mismatch);
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(UserCommandError::Password)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
