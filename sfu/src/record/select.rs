//! What "record all" and a named start select: stream names and the groups `cameras`,
//! `guests`, `program` and `*`, matched against a stream's name and source kind.

use super::names::valid_stream_name;
use crate::media::SourceKind;

/// Which streams `start` without a name records.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Selector {
    Name(String),
    /// Every camera (V4L2 and test cameras).
    Cameras,
    /// Every WHIP publisher.
    Guests,
    /// The switcher's program.
    Program,
    /// Every stream.
    All,
}

impl Selector {
    /// `"cameras"`, `"guests"`, `"program"`, `"*"` or a stream name.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "cameras" => Self::Cameras,
            "guests" => Self::Guests,
            "program" => Self::Program,
            "*" => Self::All,
            name if valid_stream_name(name) => Self::Name(name.to_owned()),
            _ => return None,
        })
    }

    pub fn matches(&self, name: &str, source: SourceKind) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Cameras => source == SourceKind::Camera,
            Self::Guests => source == SourceKind::Whip,
            Self::Program => source == SourceKind::Program,
            // Return feeds are each guest's own monitor mix, not something to archive.
            Self::All => source != SourceKind::Return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_match_by_source_kind_and_names_by_name() {
        let parse = |s: &str| Selector::parse(s).unwrap();
        assert!(parse("cameras").matches("cam0", SourceKind::Camera));
        assert!(!parse("cameras").matches("guest", SourceKind::Whip));
        assert!(parse("guests").matches("guest", SourceKind::Whip));
        assert!(parse("program").matches("pgm", SourceKind::Program));
        assert!(!parse("program").matches("cam0", SourceKind::Camera));
        assert!(!parse("*").matches("anna.return", SourceKind::Return));
        assert!(parse("*").matches("anna", SourceKind::Whip));
        assert!(parse("*").matches("anything", SourceKind::Whip));
        assert!(parse("cam1").matches("cam1", SourceKind::Camera));
        assert!(!parse("cam1").matches("cam0", SourceKind::Camera));
        for bad in ["", "..", "a/b", "cam 0", "x".repeat(65).as_str()] {
            assert_eq!(Selector::parse(bad), None, "{bad:?}");
        }
    }
}
