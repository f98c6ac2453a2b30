//! The incremental DRF sorter.
//!
//! A [`Sorter`] orders clients (roles, or the frameworks of one role) by their
//! weighted dominant share: the largest fraction of any scalar resource of the
//! cluster they hold, divided by their weight. Ties are broken by name so that
//! the order, and therefore every allocation cycle, is deterministic.
//!
//! The order is kept in a `BTreeSet<(Share, name)>`. When one client's
//! allocation changes only its entry is removed and reinserted (O(log n)), so
//! an allocation cycle never re-sorts everything. A change of the cluster total
//! changes every share at once; the allocator then calls [`Sorter::refresh`]
//! once, lazily, at the start of the next cycle.
//!
//! Shares are computed over [`Quantities`], the scalar sums of resources: ranges
//! and sets (ports) do not add up meaningfully across agents and, as in Mesos,
//! take no part in fairness.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use agora_common::resources::{scalar, Resources};

/// Rounds like [`Resources`] does (three decimals) so sums do not drift.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Scalar resource quantities by name, e.g. `cpus: 4, mem: 1024`, regardless of
/// reservation. Kept as a short vector: there are only a handful of names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Quantities(Vec<(String, f64)>);

impl Quantities {
    /// The scalar quantities of `resources`.
    pub fn of(resources: &Resources) -> Self {
        Quantities(resources.scalars())
    }

    /// The quantity of `name` (0 if absent).
    pub fn get(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or(0.0, |(_, v)| *v)
    }

    /// The (name, quantity) pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// Whether every quantity is zero.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `other` name by name.
    pub fn add(&mut self, other: &Quantities) {
        for (name, v) in other.iter() {
            match self.0.iter_mut().find(|(n, _)| n == name) {
                Some((_, have)) => *have = round(*have + v),
                None => self.0.push((name.to_string(), v)),
            }
        }
    }

    /// Subtracts `other` name by name, saturating at zero; zeros disappear.
    pub fn subtract(&mut self, other: &Quantities) {
        for (name, v) in other.iter() {
            if let Some((_, have)) = self.0.iter_mut().find(|(n, _)| n == name) {
                *have = round((*have - v).max(0.0));
            }
        }
        self.0.retain(|(_, v)| *v > 0.0);
    }

    /// Per name, the smaller of `self` and `other`.
    pub fn min(&self, other: &Quantities) -> Quantities {
        Quantities(
            self.iter()
                .map(|(name, v)| (name.to_string(), v.min(other.get(name))))
                .filter(|(_, v)| *v > 0.0)
                .collect(),
        )
    }

    /// The largest fraction of `total` held, over the names `total` has.
    pub fn dominant_share(&self, total: &Quantities) -> f64 {
        self.iter()
            .map(|(name, v)| {
                let t = total.get(name);
                if t > 0.0 {
                    v / t
                } else {
                    0.0
                }
            })
            .fold(0.0, f64::max)
    }

    /// The quantities as unreserved scalar resources, for reporting.
    pub fn to_resources(&self) -> Resources {
        Resources::from_vec(self.iter().map(|(n, v)| scalar(n, v)))
    }
}

/// A share with a total order, so it can key a `BTreeSet`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Share(pub f64);

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A position in a sorter's order: (weighted share, client name). Names are
/// shared (`Arc`) so that moving a client within the order allocates nothing.
pub type Key = (Share, Arc<str>);

/// One client of a sorter.
#[derive(Debug, Clone)]
struct Client {
    /// The name, shared with the client's entry in the order.
    name: Arc<str>,
    /// What the client holds, summed over agents.
    allocation: Quantities,
    /// Divides the dominant share; > 0.
    weight: f64,
    /// The share the client is ordered by: needed to find its entry in `order`.
    share: Share,
    /// Only active clients are in `order`: inactive ones (deactivated or
    /// suppressed frameworks, frameworks not yet re-registered) keep counting
    /// in their role's share but are never visited by the allocation walk.
    active: bool,
}

/// Clients ordered by weighted dominant share, updated incrementally.
#[derive(Debug, Clone, Default)]
pub struct Sorter {
    clients: HashMap<Arc<str>, Client>,
    order: BTreeSet<Key>,
}

impl Sorter {
    /// Adds `name` (inactive, nothing allocated) unless it is there already.
    pub fn ensure(&mut self, name: &str, weight: f64) {
        if !self.clients.contains_key(name) {
            let name: Arc<str> = Arc::from(name);
            let client = Client {
                name: name.clone(),
                allocation: Quantities::default(),
                weight,
                share: Share(0.0),
                active: false,
            };
            self.clients.insert(name, client);
        }
    }

    /// Removes `name` and its allocation.
    pub fn remove(&mut self, name: &str) {
        if let Some(c) = self.clients.remove(name) {
            if c.active {
                self.order.remove(&(c.share, c.name));
            }
        }
    }

    /// Whether `name` is a client.
    pub fn contains(&self, name: &str) -> bool {
        self.clients.contains_key(name)
    }

    /// Whether there are no clients at all.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether some client is active.
    pub fn has_active(&self) -> bool {
        !self.order.is_empty()
    }

    /// The client names, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.clients.keys().map(|name| &**name)
    }

    /// Includes `name` in, or excludes it from, the order.
    pub fn set_active(&mut self, name: &str, active: bool, total: &Quantities) {
        self.update(name, total, |c| c.active = active);
    }

    /// Sets the weight of `name`.
    pub fn set_weight(&mut self, name: &str, weight: f64, total: &Quantities) {
        self.update(name, total, |c| c.weight = weight);
    }

    /// Records that `name` was given `q`.
    pub fn allocated(&mut self, name: &str, q: &Quantities, total: &Quantities) {
        self.update(name, total, |c| c.allocation.add(q));
    }

    /// Records that `name` gave `q` back.
    pub fn unallocated(&mut self, name: &str, q: &Quantities, total: &Quantities) {
        self.update(name, total, |c| c.allocation.subtract(q));
    }

    /// What `name` holds (`None` for an unknown client).
    pub fn allocation(&self, name: &str) -> Option<&Quantities> {
        self.clients.get(name).map(|c| &c.allocation)
    }

    /// The current weighted share of `name` against `total` (0 if unknown).
    pub fn share(&self, name: &str, total: &Quantities) -> f64 {
        self.clients
            .get(name)
            .map_or(0.0, |c| c.allocation.dominant_share(total) / c.weight)
    }

    /// The first active client strictly after `after` (from the start if `None`).
    /// The allocation walk uses a cursor rather than an iterator because each
    /// grant moves one client within the order while the walk goes on.
    pub fn next_after(&self, after: Option<&Key>) -> Option<&Key> {
        match after {
            None => self.order.iter().next(),
            Some(key) => self
                .order
                .range((std::ops::Bound::Excluded(key), std::ops::Bound::Unbounded))
                .next(),
        }
    }

    /// The active client names in order.
    pub fn active_in_order(&self) -> impl Iterator<Item = &str> {
        self.order.iter().map(|(_, name)| &**name)
    }

    /// Recomputes every share against a changed cluster total and rebuilds the
    /// order: O(n log n), done once per cycle at most.
    pub fn refresh(&mut self, total: &Quantities) {
        self.order.clear();
        for c in self.clients.values_mut() {
            c.share = Share(c.allocation.dominant_share(total) / c.weight);
            if c.active {
                self.order.insert((c.share, c.name.clone()));
            }
        }
    }

    /// Applies `change` to one client and moves only its entry in the order.
    fn update(&mut self, name: &str, total: &Quantities, change: impl FnOnce(&mut Client)) {
        let Some(c) = self.clients.get_mut(name) else {
            return;
        };
        if c.active {
            self.order.remove(&(c.share, c.name.clone()));
        }
        change(c);
        c.share = Share(c.allocation.dominant_share(total) / c.weight);
        if c.active {
            self.order.insert((c.share, c.name.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantities {
        Quantities::of(&Resources::parse(s).expect("valid resources"))
    }

    fn order(s: &Sorter) -> Vec<&str> {
        s.active_in_order().collect()
    }

    #[test]
    fn orders_by_dominant_share_then_name() {
        let total = q("cpus:10;mem:100");
        let mut s = Sorter::default();
        for name in ["c", "b", "a"] {
            s.ensure(name, 1.0);
            s.set_active(name, true, &total);
        }
        assert_eq!(order(&s), ["a", "b", "c"], "ties broken by name");
        s.allocated("a", &q("cpus:1;mem:50"), &total); // mem share 0.5
        s.allocated("b", &q("cpus:3;mem:1"), &total); // cpu share 0.3
        assert_eq!(order(&s), ["c", "b", "a"]);
        s.unallocated("a", &q("cpus:1;mem:50"), &total);
        assert_eq!(order(&s), ["a", "c", "b"]);
        assert_eq!(s.allocation("a"), Some(&Quantities::default()));
    }

    #[test]
    fn weights_divide_shares() {
        let total = q("cpus:10");
        let mut s = Sorter::default();
        s.ensure("heavy", 3.0);
        s.ensure("light", 1.0);
        s.set_active("heavy", true, &total);
        s.set_active("light", true, &total);
        s.allocated("heavy", &q("cpus:6"), &total);
        s.allocated("light", &q("cpus:3"), &total);
        assert!((s.share("heavy", &total) - 0.2).abs() < 1e-9);
        assert_eq!(order(&s), ["heavy", "light"]);
    }

    #[test]
    fn inactive_clients_keep_allocation_but_leave_the_order() {
        let total = q("cpus:10");
        let mut s = Sorter::default();
        s.ensure("a", 1.0);
        s.allocated("a", &q("cpus:5"), &total);
        assert!(!s.has_active());
        s.set_active("a", true, &total);
        assert_eq!(order(&s), ["a"]);
        assert!((s.share("a", &total) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn refresh_reorders_after_a_total_change() {
        let mut s = Sorter::default();
        let before = q("cpus:10;mem:100");
        for name in ["a", "b"] {
            s.ensure(name, 1.0);
            s.set_active(name, true, &before);
        }
        s.allocated("a", &q("cpus:2"), &before); // 0.2
        s.allocated("b", &q("mem:30"), &before); // 0.3
        assert_eq!(order(&s), ["a", "b"]);
        let after = q("cpus:4;mem:100"); // a now holds 0.5
        s.refresh(&after);
        assert_eq!(order(&s), ["b", "a"]);
    }

    #[test]
    fn cursor_walk_survives_a_moving_client() {
        let total = q("cpus:10");
        let mut s = Sorter::default();
        for name in ["a", "b", "c"] {
            s.ensure(name, 1.0);
            s.set_active(name, true, &total);
        }
        let first = s.next_after(None).cloned().expect("non-empty");
        s.allocated(&first.1, &q("cpus:1"), &total);
        let second = s.next_after(Some(&first)).expect("more");
        assert_eq!(&*second.1, "b");
    }
}
