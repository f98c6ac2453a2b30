//! Exponential backoff with a cap, for retries (status updates, reconnects).

use std::time::Duration;

/// Doubles (by `factor`) from `initial` up to `max` on each [`Backoff::next_delay`].
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    factor: f64,
    current: Duration,
}

impl Backoff {
    /// A backoff starting at `initial`, multiplied by `factor` each step, capped at `max`.
    pub fn new(initial: Duration, max: Duration, factor: f64) -> Self {
        Backoff {
            initial,
            max,
            factor,
            current: initial,
        }
    }

    /// The delay to wait now; the next one grows.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.current;
        let grown = self.current.as_secs_f64() * self.factor;
        self.current = Duration::from_secs_f64(grown.min(self.max.as_secs_f64()));
        delay
    }

    /// Back to the initial delay (after a success).
    pub fn reset(&mut self) {
        self.current = self.initial;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(350), 2.0);
        assert_eq!(b.next_delay(), Duration::from_millis(100));
        assert_eq!(b.next_delay(), Duration::from_millis(200));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        assert_eq!(b.next_delay(), Duration::from_millis(350));
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
