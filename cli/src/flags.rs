//! Flag value parsers shared by the subcommands.

use std::sync::Arc;
use std::time::Duration;

use agora_coord::zk::ZkCoordination;
use agora_coord::{Detector, StaticDetector};

/// Follows the leading master named by `--master`: `HOST:PORT`, or a
/// `zk://host1:2181,host2:2181/agora` URL whose election group is read.
pub async fn master_detector(
    master: &str,
    session_timeout: Duration,
) -> anyhow::Result<Arc<dyn Detector>> {
    if master.starts_with("zk://") {
        let zk = ZkCoordination::connect(master, session_timeout)
            .await
            .map_err(|e| anyhow::anyhow!("--master: {e}"))?;
        return Ok(Arc::new(zk.detector()));
    }
    if master.trim().is_empty() || !master.contains(':') {
        anyhow::bail!("--master: expected HOST:PORT or zk://..., got '{master}'");
    }
    Ok(Arc::new(StaticDetector::new(master)))
}

/// Parses a duration the way Mesos flags spell them: `5secs`, `500ms`,
/// `2mins`, `1hrs`, `1days`, `1weeks`, also `5s`/`5m`/`5h`, or a bare number
/// of seconds.
pub fn duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("invalid duration '{text}' (expected e.g. 5secs, 500ms, 2mins)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" | "seconds" => value,
        "ns" => value / 1e9,
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "m" | "min" | "mins" | "minutes" => value * 60.0,
        "h" | "hr" | "hrs" | "hours" => value * 3600.0,
        "d" | "day" | "days" => value * 86400.0,
        "w" | "week" | "weeks" => value * 604_800.0,
        other => return Err(format!("unknown duration unit '{other}' in '{text}'")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("invalid duration '{text}'"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mesos_duration_spellings() {
        assert_eq!(duration("5secs"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2mins"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1weeks"), Ok(Duration::from_secs(604_800)));
        assert!(duration("5 parsecs").is_err());
        assert!(duration("abc").is_err());
    }
}
