//! A ZooKeeper connection that outlives its sessions.
//!
//! A ZooKeeper session that expires is gone for good: its ephemeral nodes
//! and watches die with it. [`ZkClient`] keeps one live session at a time:
//! a supervisor task watches the session's state and, when it expires (or
//! authentication fails), opens a new one and publishes it with a higher
//! generation. Callers take [`ZkClient::session`] per operation, and those
//! that hold state tied to a session (the election's ephemeral node) follow
//! [`ZkClient::sessions`] to learn that it was replaced.

use std::sync::Arc;
use std::time::Duration;

use agora_common::backoff::Backoff;
use tokio::sync::watch;
use tracing::{info, warn};
use zookeeper_client::{Acl, Acls, Client, Permission, SessionState};

use super::url::ZkUrl;

/// Errors opening a ZooKeeper connection.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    /// No session could be established with the ensemble.
    #[error("cannot open a zookeeper session with {hosts}: {source}")]
    Connect {
        /// The connect string tried.
        hosts: String,
        /// The client's error.
        #[source]
        source: zookeeper_client::Error,
    },
}

/// One ZooKeeper session; replaced by a new one when it expires.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client bound to this session (cheap to clone).
    pub client: Client,
    /// Counts sessions: a new session has a higher generation.
    pub generation: u64,
}

/// A cloneable handle on a ZooKeeper ensemble, reconnecting with a new
/// session after expiry. The supervisor stops when the last handle drops.
#[derive(Debug, Clone)]
pub struct ZkClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: ZkUrl,
    session_timeout: Duration,
    sessions: watch::Receiver<Session>,
    supervisor: tokio::task::JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The supervisor holds the last clients of the session; stopping it
        // lets the session close (ephemeral nodes go at once, not at expiry).
        self.supervisor.abort();
    }
}

// ACLs of the nodes we create. With credentials, the creator (any session
// authenticated as the same user) may do anything; election nodes stay
// world-readable because leader detection (ours, Mesos-DNS, pymesos) reads
// them without credentials, as Mesos does.
static CREATOR_ALL: [Acl; 1] = [Acl::new_const(Permission::ALL, "auth", "")];
static CREATOR_ALL_WORLD_READ: [Acl; 2] = [
    Acl::new_const(Permission::ALL, "auth", ""),
    Acl::new_const(Permission::READ, "world", "anyone"),
];

impl ZkClient {
    /// Opens a session with the ensemble named by `url`, authenticating with
    /// its credentials, and supervises it. Fails if no session can be opened
    /// within about `session_timeout`.
    pub async fn connect(url: &ZkUrl, session_timeout: Duration) -> Result<ZkClient, ZkError> {
        let client = open(url, session_timeout).await?;
        info!(url = %url, session = %client.session_id(), "zookeeper session opened");
        let (tx, sessions) = watch::channel(Session {
            client,
            generation: 0,
        });
        let supervisor = tokio::spawn(supervise(url.clone(), session_timeout, tx));
        Ok(ZkClient {
            inner: Arc::new(Inner {
                url: url.clone(),
                session_timeout,
                sessions,
                supervisor,
            }),
        })
    }

    /// The current session.
    pub fn session(&self) -> Session {
        self.inner.sessions.borrow().clone()
    }

    /// A watch that changes each time the session is replaced.
    pub fn sessions(&self) -> watch::Receiver<Session> {
        self.inner.sessions.clone()
    }

    /// The URL this client was opened with.
    pub fn url(&self) -> &ZkUrl {
        &self.inner.url
    }

    /// The session timeout asked of the ensemble.
    pub fn session_timeout(&self) -> Duration {
        self.inner.session_timeout
    }

    /// ACLs for nodes this client creates: open without credentials;
    /// creator-all with them, plus world-read when `world_readable`.
    pub fn acls(&self, world_readable: bool) -> Acls<'static> {
        match (&self.inner.url.credentials, world_readable) {
            (None, _) => Acls::anyone_all(),
            (Some(_), false) => Acls::new(&CREATOR_ALL),
            (Some(_), true) => Acls::new(&CREATOR_ALL_WORLD_READ),
        }
    }
}

async fn open(url: &ZkUrl, session_timeout: Duration) -> Result<Client, ZkError> {
    let mut connector = Client::connector().with_session_timeout(session_timeout);
    if let Some(c) = &url.credentials {
        let secret = format!("{}:{}", c.user, c.password);
        connector = connector.with_auth("digest", secret.as_bytes());
    }
    connector
        .connect(&url.connect_string())
        .await
        .map_err(|source| ZkError::Connect {
            hosts: url.connect_string(),
            source,
        })
}

/// Whether a session in this state can never be used again.
pub(crate) fn is_terminal(state: SessionState) -> bool {
    matches!(
        state,
        SessionState::Expired | SessionState::Closed | SessionState::AuthFailed
    )
}

/// Replaces the session each time it ends, until every handle is dropped
/// (the task is aborted then).
async fn supervise(url: ZkUrl, session_timeout: Duration, tx: watch::Sender<Session>) {
    let mut backoff = Backoff::new(Duration::from_millis(100), session_timeout, 2.0);
    loop {
        let (mut states, generation) = {
            let current = tx.borrow();
            (current.client.state_watcher(), current.generation)
        };
        let mut state = states.peek_state();
        while !is_terminal(state) {
            state = states.changed().await;
        }
        warn!(url = %url, ?state, generation, "zookeeper session ended; opening a new one");
        let client = loop {
            match open(&url, session_timeout).await {
                Ok(client) => break client,
                Err(e) => {
                    warn!(error = %e, "cannot open a new zookeeper session; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        };
        backoff.reset();
        info!(session = %client.session_id(), generation = generation + 1, "zookeeper session opened");
        tx.send_replace(Session {
            client,
            generation: generation + 1,
        });
    }
}
