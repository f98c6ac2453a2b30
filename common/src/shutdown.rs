//! A cloneable shutdown signal.
//!
//! Every component's `run(config, shutdown)` takes a [`Shutdown`]; whoever owns
//! the [`ShutdownTrigger`] (the binary, a test) fires it once and every clone
//! observes it. Dropping the trigger counts as firing it, so a forgotten
//! trigger cannot leave components running.

use tokio::sync::watch;

/// Fires the shutdown signal.
#[derive(Debug)]
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

/// Observes the shutdown signal; cheap to clone.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// Creates a connected trigger and signal.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx })
}

impl ShutdownTrigger {
    /// Signals every [`Shutdown`] clone.
    pub fn fire(&self) {
        let _ = self.tx.send(true);
    }

    /// A new signal connected to this trigger.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            rx: self.tx.subscribe(),
        }
    }
}

impl Shutdown {
    /// A signal that never fires, for components run without an owner.
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(false);
        // Leak the sender so the channel never closes (which would read as fired).
        std::mem::forget(tx);
        Shutdown { rx }
    }

    /// Whether shutdown has been signalled.
    pub fn is_fired(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown is signalled (or the trigger is dropped).
    pub async fn wait(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }

    /// Like [`Shutdown::wait`] on a clone, for use in `select!` without `&mut`.
    pub async fn fired(&self) {
        self.clone().wait().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_signal() {
        let (trigger, shutdown) = channel();
        let a = shutdown.clone();
        assert!(!a.is_fired());
        trigger.fire();
        a.fired().await;
        shutdown.fired().await;
        assert!(a.is_fired());
    }

    #[tokio::test]
    async fn dropping_the_trigger_fires() {
        let (trigger, shutdown) = channel();
        drop(trigger);
        shutdown.fired().await;
    }
}
