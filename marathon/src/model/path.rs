//! Path ids: apps and groups are named by absolute paths such as `/prod/web`.
//!
//! A path given by a user may be relative (`web`, `../db`) to a base group;
//! [`PathId::parse_relative`] resolves it. Repeated slashes collapse, as
//! Marathon does. Segment syntax is checked by validation, not here, so that
//! a bad id becomes a 422 naming `/id` rather than a parse failure.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An absolute path of segments; the root group is the empty path `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PathId {
    segments: Vec<String>,
}

impl PathId {
    /// The root group `/`.
    pub fn root() -> Self {
        PathId::default()
    }

    /// Parses an absolute path, or one relative to the root.
    pub fn parse(s: &str) -> Self {
        Self::parse_relative(s, &PathId::root())
    }

    /// Parses `s` relative to `base` (`s` starting with `/` ignores `base`);
    /// `.` and `..` segments are resolved and empty segments dropped.
    pub fn parse_relative(s: &str, base: &PathId) -> Self {
        let mut segments = if s.starts_with('/') {
            Vec::new()
        } else {
            base.segments.clone()
        };
        for part in s.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    segments.pop();
                }
                other => segments.push(other.to_string()),
            }
        }
        PathId { segments }
    }

    /// Builds a path from its segments.
    pub fn from_segments(segments: Vec<String>) -> Self {
        PathId { segments }
    }

    /// The segments, outermost first.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Whether this is the root group.
    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    /// The enclosing group (`/` for a top-level id and for the root).
    pub fn parent(&self) -> PathId {
        let mut segments = self.segments.clone();
        segments.pop();
        PathId { segments }
    }

    /// The last segment (`""` for the root).
    pub fn name(&self) -> &str {
        self.segments.last().map(String::as_str).unwrap_or("")
    }

    /// `self/segment`.
    pub fn child(&self, segment: &str) -> PathId {
        let mut segments = self.segments.clone();
        segments.push(segment.to_string());
        PathId { segments }
    }

    /// Whether `self` is `other` or lies beneath it.
    pub fn starts_with(&self, other: &PathId) -> bool {
        self.segments.starts_with(&other.segments)
    }

    /// Every enclosing group from the root down to the parent.
    pub fn ancestors(&self) -> Vec<PathId> {
        (0..self.segments.len())
            .map(|n| PathId {
                segments: self.segments[..n].to_vec(),
            })
            .collect()
    }

    /// Marathon's "safe" form used in task ids: segments joined by `_`.
    pub fn safe(&self) -> String {
        self.segments.join("_")
    }

    /// The form used in storage keys and URLs' tails: segments joined by `/`, no leading slash.
    pub fn relative_str(&self) -> String {
        self.segments.join("/")
    }
}

impl fmt::Display for PathId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

impl Serialize for PathId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PathId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Ok(PathId::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_relative_and_collapses_slashes() {
        assert_eq!(PathId::parse("//prod///web/").to_string(), "/prod/web");
        let base = PathId::parse("/prod");
        assert_eq!(
            PathId::parse_relative("web", &base).to_string(),
            "/prod/web"
        );
        assert_eq!(PathId::parse_relative("../db", &base).to_string(), "/db");
        assert_eq!(PathId::parse_relative("/abs", &base).to_string(), "/abs");
        assert_eq!(PathId::parse("/").to_string(), "/");
        assert!(PathId::parse("").is_root());
    }

    #[test]
    fn family() {
        let p = PathId::parse("/a/b/c");
        assert_eq!(p.parent().to_string(), "/a/b");
        assert_eq!(p.name(), "c");
        assert_eq!(p.safe(), "a_b_c");
        assert!(p.starts_with(&PathId::parse("/a")));
        assert!(!p.starts_with(&PathId::parse("/a/x")));
        let anc: Vec<String> = p.ancestors().iter().map(|a| a.to_string()).collect();
        assert_eq!(anc, vec!["/", "/a", "/a/b"]);
    }
}
