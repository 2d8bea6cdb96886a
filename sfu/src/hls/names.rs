//! The relative URIs of the LL-HLS resources, and parsing them back for the HTTP layer.
//!
//! Only these exact shapes are accepted, so a request path can never name anything else (no
//! traversal: digits and a fixed prefix/suffix only).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `init{id}.mp4`
    Init(u32),
    /// `seg{msn}.m4s`
    Segment(u64),
    /// `part{msn}.{index}.m4s`
    Part(u64, u32),
}

impl Resource {
    pub fn parse(name: &str) -> Option<Self> {
        if let Some(id) = name
            .strip_prefix("init")
            .and_then(|n| n.strip_suffix(".mp4"))
        {
            return number(id).map(Self::Init);
        }
        if let Some(msn) = name
            .strip_prefix("seg")
            .and_then(|n| n.strip_suffix(".m4s"))
        {
            return number(msn).map(Self::Segment);
        }
        let rest = name.strip_prefix("part")?.strip_suffix(".m4s")?;
        let (msn, index) = rest.split_once('.')?;
        Some(Self::Part(number(msn)?, number(index)?))
    }

    pub fn uri(&self) -> String {
        match self {
            Self::Init(id) => format!("init{id}.mp4"),
            Self::Segment(msn) => format!("seg{msn}.m4s"),
            Self::Part(msn, index) => format!("part{msn}.{index}.m4s"),
        }
    }

    /// The HTTP content type of the resource.
    pub fn content_type(&self) -> &'static str {
        match self {
            Self::Init(_) => "video/mp4",
            Self::Segment(_) | Self::Part(..) => "video/iso.segment",
        }
    }
}

/// Plain decimal digits only: no sign, no spaces, no leading `+`.
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_round_trip() {
        for r in [
            Resource::Init(0),
            Resource::Segment(42),
            Resource::Part(7, 3),
            Resource::Part(u64::MAX, u32::MAX),
        ] {
            assert_eq!(Resource::parse(&r.uri()), Some(r));
        }
    }

    #[test]
    fn anything_else_is_rejected() {
        for bad in [
            "",
            "init.mp4",
            "init-1.mp4",
            "seg+1.m4s",
            "seg1.mp4",
            "part1.m4s",
            "part1..m4s",
            "part1.2.3.m4s",
            "../seg1.m4s",
            "seg1.m4s/..",
            "seg 1.m4s",
            "seg99999999999999999999.m4s",
            "index.m3u8",
        ] {
            assert_eq!(Resource::parse(bad), None, "{bad}");
        }
    }
}
