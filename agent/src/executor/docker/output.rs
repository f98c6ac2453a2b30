//! A container's output, copied into the sandbox's `stdout` and `stderr`
//! from the engine's logs API, followed until the container stops.
//!
//! The copy asks for each line's timestamp (the engine's, nanoseconds),
//! strips it, and records the last one copied in `.agora/output_position`
//! (overwritten in place, one `pwrite` per line). A shim that adopts the
//! container after its predecessor died resumes from there: the API only
//! takes whole seconds, so it asks from that second and skips the lines up
//! to the recorded one; nothing is lost and nothing written twice.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptions;
use bollard::Docker;
use futures::StreamExt;

use crate::containerizer::docker::engine;
use crate::executor::protocol::shim_file;

/// The file recording the last line copied, inside the shim's directory.
const POSITION_FILE: &str = "output_position";
/// Its width: nanoseconds since the epoch fit in 20 digits.
const POSITION_WIDTH: usize = 20;

/// The sandbox's `stdout` and `stderr`, opened for appending, and the
/// position file.
pub(super) struct Outputs {
    stdout: File,
    stderr: File,
    position: File,
}

impl Outputs {
    /// Opens (creating) the files: before the container starts, as for a
    /// native task, since the task may look for them in its sandbox.
    pub(super) fn open(sandbox: &Path) -> std::io::Result<Self> {
        let append = |file: &str| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(sandbox.join(file))
        };
        Ok(Outputs {
            stdout: append("stdout")?,
            stderr: append("stderr")?,
            position: OpenOptions::new()
                .create(true)
                .truncate(false)
                .read(true)
                .write(true)
                .open(shim_file(sandbox, POSITION_FILE))?,
        })
    }
}

/// Where a copy starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Position {
    /// At the container's first line.
    Start,
    /// After the line with this timestamp (nanoseconds since the epoch).
    After(u64),
}

impl Position {
    /// What the shim before this one recorded (`Start` if it copied nothing).
    pub(super) fn recorded(sandbox: &Path) -> Self {
        std::fs::read_to_string(shim_file(sandbox, POSITION_FILE))
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map_or(Position::Start, Position::After)
    }
}

/// Copies the container's output until it stops (or the engine's stream
/// breaks, which is logged).
pub(super) async fn copy(docker: Docker, name: String, mut outputs: Outputs, from: Position) {
    let (since, mut skip_through) = match from {
        Position::Start => (0, None),
        Position::After(nanos) => (
            i32::try_from(nanos / 1_000_000_000).unwrap_or(i32::MAX),
            Some(nanos),
        ),
    };
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        since,
        timestamps: true,
        ..Default::default()
    };
    let mut logs = docker.logs(&name, Some(options));
    while let Some(item) = logs.next().await {
        let (file, frame) = match item {
            Ok(LogOutput::StdErr { message }) => (&mut outputs.stderr, message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                (&mut outputs.stdout, message)
            }
            Ok(LogOutput::StdIn { .. }) => continue,
            Err(e) => {
                tracing::warn!(error = %engine::message(&e), "the container's output stream ended");
                return;
            }
        };
        let (stamp, line) = split_timestamp(&frame);
        if let (Some(stamp), Some(last)) = (stamp, skip_through) {
            if stamp <= last {
                continue;
            }
            skip_through = None;
        }
        // Plain file writes: the sandbox is local, and the shim's runtime
        // has a single thread to spare none of.
        let written = file.write_all(line).and_then(|()| match stamp {
            Some(stamp) => outputs
                .position
                .write_all_at(format!("{stamp:0POSITION_WIDTH$}").as_bytes(), 0),
            None => Ok(()),
        });
        if let Err(e) = written {
            tracing::error!(error = %e, "cannot write the container's output");
            return;
        }
    }
}

/// A log frame's leading RFC 3339 timestamp (`2026-12-04T19:30:44.264459123Z `)
/// in nanoseconds since the epoch, and the line after it.
fn split_timestamp(frame: &[u8]) -> (Option<u64>, &[u8]) {
    let Some(space) = frame.iter().position(|b| *b == b' ') else {
        return (None, frame);
    };
    match std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(parse_rfc3339_utc)
    {
        Some(nanos) => (Some(nanos), &frame[space + 1..]),
        None => (None, frame),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` as nanoseconds since the epoch.
fn parse_rfc3339_utc(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock = clock.split(':').map(|p| p.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    u64::try_from(secs * 1_000_000_000 + nanos).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engines_timestamps_parse_to_nanoseconds() {
        let table = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:01.5Z", Some(1_500_000_000)),
            ("2000-03-01T00:00:00Z", Some(951_868_800_000_000_000)),
            (
                "2026-12-04T19:30:44.264459123Z",
                Some(1_796_412_644_264_459_123),
            ),
            ("2026-12-04T19:30:44.2644591234Z", None),
            ("2026-12-04 19:30:44Z", None),
            ("2026-12-04T19:30:44", None),
            ("not a time", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_rfc3339_utc(text), want, "{text}");
        }
    }

    #[test]
    fn frames_lose_their_timestamp() {
        let (stamp, line) = split_timestamp(b"1970-01-01T00:00:02Z hello world\n");
        assert_eq!(stamp, Some(2_000_000_000));
        assert_eq!(line, b"hello world\n");
        let (stamp, line) = split_timestamp(b"no stamp here\n");
        assert_eq!((stamp, line), (None, &b"no stamp here\n"[..]));
    }

    #[test]
    fn the_position_is_read_back_as_recorded() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join(crate::executor::protocol::SHIM_DIR))
            .expect("shim dir");
        assert_eq!(Position::recorded(dir.path()), Position::Start);
        let outputs = Outputs::open(dir.path()).expect("open");
        outputs
            .position
            .write_all_at(format!("{:020}", 42u64).as_bytes(), 0)
            .expect("write");
        assert_eq!(Position::recorded(dir.path()), Position::After(42));
        outputs
            .position
            .write_all_at(
                format!("{:020}", 1_796_412_644_264_459_123u64).as_bytes(),
                0,
            )
            .expect("write");
        assert_eq!(
            Position::recorded(dir.path()),
            Position::After(1_796_412_644_264_459_123)
        );
    }
}
