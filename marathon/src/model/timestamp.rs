//! Marathon's timestamps: ISO-8601 in UTC with milliseconds and a `Z`
//! (`2015-09-25T15:13:48.343Z`). App versions are timestamps.

use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Milliseconds since the Unix epoch, shown as ISO-8601 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time, to the millisecond.
    pub fn now() -> Self {
        Timestamp(Utc::now().timestamp_millis())
    }

    /// A timestamp strictly after both `self` and the current time: versions
    /// must grow even if two changes land in the same millisecond.
    pub fn next_after(self) -> Self {
        let now = Self::now();
        if now > self {
            now
        } else {
            Timestamp(self.0 + 1)
        }
    }

    /// Parses any RFC 3339 timestamp (offsets are converted to UTC).
    pub fn parse(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Timestamp(t.with_timezone(&Utc).timestamp_millis()))
    }

    /// Seconds since the epoch, as Mesos' `TaskStatus.timestamp`.
    pub fn from_secs_f64(secs: f64) -> Self {
        Timestamp((secs * 1000.0) as i64)
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Utc.timestamp_millis_opt(self.0).single() {
            Some(t) => f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            None => f.write_str("1970-01-01T00:00:00.000Z"),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Timestamp::parse(&s)
            .ok_or_else(|| serde::de::Error::custom("error.expected.date.isoformat"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_millis_and_z() {
        let t = Timestamp::parse("2015-09-25T15:13:48.343Z").unwrap();
        assert_eq!(t.to_string(), "2015-09-25T15:13:48.343Z");
        let offset = Timestamp::parse("2015-09-25T17:13:48.343+02:00").unwrap();
        assert_eq!(offset, t);
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn versions_grow() {
        let far = Timestamp(i64::MAX / 2);
        assert_eq!(far.next_after(), Timestamp(far.0 + 1));
    }
}
