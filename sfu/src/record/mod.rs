//! Recording: every selected stream to its own crash-safe fragmented MP4 files, beside the
//! program, with a disk guard.
//!
//! - [`writer`] (sans-IO): access units and Opus packets to files of `ftyp`+`moov`, then
//!   `prft`+`moof`+`mdat` fragments of at most a second (made by [`crate::hls::fmp4`]), split at
//!   a keyframe after `segment_secs`, a new file on new picture parameters.
//! - [`input`] (sans-IO): a hub reader's RTP packets to the writer; a new file on publisher
//!   takeover.
//! - [`scan`] (sans-IO over `Read + Seek`): reading a file back box by box, and what a crash
//!   left to repair; [`files`]: listing and repairing the directory.
//! - [`cutlist`] (sans-IO): the program's cuts as a CMX 3600 EDL over the ISO files;
//!   [`otio`] (sans-IO): the same as an OpenTimelineIO timeline on the files' wall clocks.
//! - [`disk`] (sans-IO): the disk guard's decisions; [`names`]: file names; [`select`]: what
//!   "record all" selects.
//! - [`sink`] and [`service`]: the I/O: a thread per recorded stream writing files, the
//!   watcher that attaches readers and guards the disk, and the control the HTTP layer calls.
//!
//! This module sits above `hls` (it reuses the fMP4 writer) and below the test support.

pub mod cutlist;
pub mod disk;
pub mod files;
pub mod input;
pub mod names;
pub mod otio;
pub mod scan;
pub mod select;
pub mod service;
pub mod sink;
pub mod writer;

pub use disk::{DiskLimits, Retention};
pub use input::StreamRecorder;
pub use select::Selector;
pub use service::{ControlError, RecordConfig, RecordService, RecordingsStatus};
pub use sink::SyncPolicy;
pub use writer::{FileEvent, FileWriter, WriterConfig};
