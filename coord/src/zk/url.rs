//! ZooKeeper URLs in Mesos' form: `zk://[user:password@]host1:2181,host2:2181/path`.
//!
//! The path is not a chroot: it names the folder the URL is about (the
//! election group for `--master`/`--zk`), and every other node lives at
//! an absolute path, so that Mesos tools reading the same URL find the
//! same folder.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The session timeout used when none is given (`--zk-session-timeout`, as Mesos).
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The port of a host given without one (ZooKeeper's client port).
pub const DEFAULT_PORT: u16 = 2181;

/// Why a ZooKeeper URL was refused; each names the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// The URL does not start with `zk://`.
    #[error("'{url}' is not a zookeeper url: it must start with zk://")]
    Scheme {
        /// The URL as given (credentials removed).
        url: String,
    },
    /// Nothing between `zk://` and the path.
    #[error("zookeeper url names no host")]
    NoHosts,
    /// One of the comma-separated hosts is empty or malformed.
    #[error("bad zookeeper host '{host}': {reason}")]
    Host {
        /// The host as given.
        host: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The `user:password@` part is malformed.
    #[error("bad zookeeper credentials: {0}")]
    Credentials(&'static str),
    /// The path is missing or malformed.
    #[error("bad zookeeper path '{path}': {reason}")]
    Path {
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Digest credentials (`user:password@`), sent as ZooKeeper `digest` auth.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: String,
    /// The password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    // Keep passwords out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ user: {:?}, password: \"***\" }}",
            self.user
        )
    }
}

/// A parsed ZooKeeper URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port` of each server of the ensemble, in the given order.
    pub hosts: Vec<String>,
    /// The absolute folder path, without a trailing slash (e.g. `/agora`).
    pub path: String,
    /// Digest credentials, when given.
    pub credentials: Option<Credentials>,
}

impl ZkUrl {
    /// Parses `zk://[user:password@]host[:port][,host[:port]...]/path`.
    pub fn parse(url: &str) -> Result<ZkUrl, UrlError> {
        let Some(rest) = url.strip_prefix("zk://") else {
            // Never echo what could be a password.
            let shown = match url.rsplit_once('@') {
                Some((_, after)) => format!("***@{after}"),
                None => url.to_string(),
            };
            return Err(UrlError::Scheme { url: shown });
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        // Credentials end at the last '@' so that a password may hold '@'.
        let (credentials, hosts) = match authority.rsplit_once('@') {
            Some((creds, hosts)) => (Some(parse_credentials(creds)?), hosts),
            None => (None, authority),
        };
        if hosts.is_empty() {
            return Err(UrlError::NoHosts);
        }
        let hosts = hosts
            .split(',')
            .map(parse_host)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ZkUrl {
            hosts,
            path: parse_path(path)?,
            credentials,
        })
    }

    /// The connect string for the client: `host1:port,host2:port`.
    pub fn connect_string(&self) -> String {
        self.hosts.join(",")
    }
}

impl FromStr for ZkUrl {
    type Err = UrlError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ZkUrl::parse(s)
    }
}

impl fmt::Display for ZkUrl {
    /// The URL with the password masked.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("zk://")?;
        if let Some(c) = &self.credentials {
            write!(f, "{}:***@", c.user)?;
        }
        write!(f, "{}{}", self.hosts.join(","), self.path)
    }
}

fn parse_credentials(creds: &str) -> Result<Credentials, UrlError> {
    let (user, password) = creds
        .split_once(':')
        .ok_or(UrlError::Credentials("expected user:password@"))?;
    if user.is_empty() {
        return Err(UrlError::Credentials("the user is empty"));
    }
    if password.is_empty() {
        return Err(UrlError::Credentials("the password is empty"));
    }
    Ok(Credentials {
        user: user.to_string(),
        password: password.to_string(),
    })
}

fn parse_host(host: &str) -> Result<String, UrlError> {
    let bad = |reason| UrlError::Host {
        host: host.to_string(),
        reason,
    };
    if host.is_empty() {
        return Err(bad("empty host (stray comma?)"));
    }
    // `[v6]:port`, `[v6]`, `name:port`, `name`.
    let (name, port) = if let Some(v6) = host.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or(bad("unclosed '['"))?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(bad("expected ':' after ']'"))?),
        };
        (format!("[{addr}]"), port)
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name.to_string(), Some(port)),
            None => (host.to_string(), None),
        }
    };
    if name.is_empty() || name == "[]" {
        return Err(bad("empty host name"));
    }
    if name.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err(bad("host name holds a space or '@'"));
    }
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("port must be a number from 1 to 65535")),
            Ok(p) => p,
        },
    };
    Ok(format!("{name}:{port}"))
}

fn parse_path(path: &str) -> Result<String, UrlError> {
    let bad = |reason| UrlError::Path {
        path: path.to_string(),
        reason,
    };
    if path.is_empty() || path == "/" {
        return Err(bad("a folder path such as /agora is required"));
    }
    let trimmed = path.trim_end_matches('/');
    for segment in trimmed[1..].split('/') {
        match segment {
            "" => return Err(bad("empty path segment")),
            "." | ".." => return Err(bad("'.' and '..' are not allowed")),
            "zookeeper" if trimmed.starts_with("/zookeeper") => {
                return Err(bad("/zookeeper is reserved by zookeeper"))
            }
            s if s.contains(|c: char| c.is_control()) => {
                return Err(bad("control characters are not allowed"))
            }
            _ => {}
        }
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// url, hosts, path, credentials.
    type Case = (
        &'static str,
        &'static [&'static str],
        &'static str,
        Option<(&'static str, &'static str)>,
    );

    #[test]
    fn parses_urls() {
        let ok: &[Case] = &[
            ("zk://h:2181/agora", &["h:2181"], "/agora", None),
            ("zk://h/agora", &["h:2181"], "/agora", None),
            (
                "zk://a:1,b:2,c/x/y/",
                &["a:1", "b:2", "c:2181"],
                "/x/y",
                None,
            ),
            ("zk://u:p@h:2/m", &["h:2"], "/m", Some(("u", "p"))),
            ("zk://u:p@ss@h/m", &["h:2181"], "/m", Some(("u", "p@ss"))),
            (
                "zk://[::1]:2182,[fe80::1]/m",
                &["[::1]:2182", "[fe80::1]:2181"],
                "/m",
                None,
            ),
        ];
        for (url, hosts, path, creds) in ok {
            let parsed = ZkUrl::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(parsed.hosts, *hosts, "{url}");
            assert_eq!(parsed.path, *path, "{url}");
            let got = parsed
                .credentials
                .as_ref()
                .map(|c| (c.user.as_str(), c.password.as_str()));
            assert_eq!(got, *creds, "{url}");
        }
    }

    #[test]
    fn refuses_bad_urls_naming_the_part() {
        let bad: &[(&str, &str)] = &[
            ("http://h/agora", "not a zookeeper url"),
            ("h:2181/agora", "not a zookeeper url"),
            ("zk:///agora", "names no host"),
            ("zk://h:2181", "a folder path"),
            ("zk://h:2181/", "a folder path"),
            ("zk://h:99999/a", "bad zookeeper host 'h:99999'"),
            ("zk://h:0/a", "port must be"),
            ("zk://h:x/a", "port must be"),
            ("zk://a,,b/a", "stray comma"),
            ("zk://:2181/a", "empty host name"),
            ("zk://[::1/a", "unclosed"),
            ("zk://user@h/a", "expected user:password@"),
            ("zk://:p@h/a", "the user is empty"),
            ("zk://u:@h/a", "the password is empty"),
            ("zk://h//a", "empty path segment"),
            ("zk://h/a/../b", "'.' and '..'"),
            ("zk://h/zookeeper/x", "reserved"),
        ];
        for (url, expected) in bad {
            let err = ZkUrl::parse(url).expect_err(url).to_string();
            assert!(
                err.contains(expected),
                "{url}: got '{err}', want '{expected}'"
            );
        }
    }

    #[test]
    fn never_shows_the_password() {
        let url = ZkUrl::parse("zk://u:secret@h/m").expect("parse");
        assert_eq!(url.to_string(), "zk://u:***@h:2181/m");
        assert!(!format!("{url:?}").contains("secret"));
        let err = ZkUrl::parse("http://u:secret@h/m").expect_err("scheme");
        assert!(!err.to_string().contains("secret"));
    }
}
