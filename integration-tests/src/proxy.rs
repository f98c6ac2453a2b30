//! A TCP proxy that can cut the link it carries, to partition an agent from
//! the master without touching either.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Forwards connections to a target until cut.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    cut: Arc<watch::Sender<bool>>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let cut = Arc::new(watch::channel(false).0);
        let state = cut.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *state.borrow() {
                    // Partitioned: refuse by closing at once.
                    drop(inbound);
                    continue;
                }
                let mut cut = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.wait_for(|c| *c) => {}
                    }
                });
            }
        });
        Ok(FaultProxy { addr, cut, accept })
    }

    /// Where clients should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Breaks every connection and refuses new ones.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.cut.send_replace(true);
        self.accept.abort();
    }
}
