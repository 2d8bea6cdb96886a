//! The file side of one recorded stream: carries out the writer's [`FileEvent`]s with
//! `std::fs`, under the configured durability policy. Runs on the stream's recorder thread,
//! never on the media thread.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::names::numbered;
use super::writer::FileEvent;

/// When written fragments are made durable (`fdatasync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncPolicy {
    /// After every fragment: a power cut loses at most the fragment being written (~1 s).
    Fragment,
    /// At most this often: fewer flushes on slow media, up to this much more lost.
    Interval(Duration),
    /// Never explicitly: the kernel writes back when it likes (about 30 s by default). A
    /// `kill -9` loses nothing the process wrote; a power cut may lose that much.
    Never,
}

/// What a [`FileSink`] did, for the status.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SinkStats {
    /// The file being written, relative to the recording directory.
    pub current: Option<String>,
    pub bytes_written: u64,
    pub files_closed: u64,
    pub syncs: u64,
    pub write_errors: u64,
    pub last_error: Option<String>,
}

/// Writes one stream's files.
#[derive(Debug)]
pub struct FileSink {
    dir: PathBuf,
    policy: SyncPolicy,
    file: Option<(File, String)>,
    /// A write failed: drop everything until the next file.
    failed: bool,
    last_sync: Option<Instant>,
    pub stats: SinkStats,
}

impl FileSink {
    pub fn new(dir: &Path, policy: SyncPolicy) -> Self {
        Self {
            dir: dir.to_owned(),
            policy,
            file: None,
            failed: false,
            last_sync: None,
            stats: SinkStats::default(),
        }
    }

    /// Carries out one event; an error is also kept in the stats.
    pub fn apply(&mut self, now: Instant, event: FileEvent<'_>) -> io::Result<()> {
        let result = match event {
            FileEvent::Open { relative_path, .. } => self.open(&relative_path),
            FileEvent::Write {
                bytes,
                fragment_end,
            } => self.write(now, bytes, fragment_end),
            FileEvent::Close { .. } => self.close(),
        };
        if let Err(e) = &result {
            self.stats.write_errors += 1;
            self.stats.last_error = Some(e.to_string());
            self.failed = true;
            self.file = None;
            self.stats.current = None;
        }
        result
    }

    fn open(&mut self, relative_path: &str) -> io::Result<()> {
        self.close()?;
        self.failed = false;
        let path = self.dir.join(relative_path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        // Never overwrite: a file started in the same second gets a number.
        let mut name = relative_path.to_owned();
        let mut n = 1;
        let file = loop {
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.dir.join(&name))
            {
                Ok(file) => break file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => {
                    n += 1;
                    name = numbered(relative_path, n);
                }
                Err(e) => return Err(e),
            }
        };
        // The new directory entry must survive a power cut too.
        if self.policy != SyncPolicy::Never
            && let Some(parent) = self.dir.join(&name).parent()
        {
            File::open(parent)?.sync_all()?;
        }
        self.stats.current = Some(name.clone());
        self.file = Some((file, name));
        Ok(())
    }

    fn write(&mut self, now: Instant, bytes: &[u8], fragment_end: bool) -> io::Result<()> {
        if self.failed {
            return Ok(());
        }
        let Some((file, _)) = self.file.as_mut() else {
            return Ok(());
        };
        file.write_all(bytes)?;
        self.stats.bytes_written += bytes.len() as u64;
        let due = match self.policy {
            SyncPolicy::Fragment => fragment_end,
            SyncPolicy::Interval(every) => {
                fragment_end
                    && self
                        .last_sync
                        .is_none_or(|t| now.duration_since(t) >= every)
            }
            SyncPolicy::Never => false,
        };
        if due {
            file.sync_data()?;
            self.stats.syncs += 1;
            self.last_sync = Some(now);
        }
        Ok(())
    }

    fn close(&mut self) -> io::Result<()> {
        if let Some((file, _)) = self.file.take() {
            self.stats.current = None;
            self.stats.files_closed += 1;
            if self.policy != SyncPolicy::Never {
                file.sync_all()?;
            }
        }
        Ok(())
    }
}
