//! Placement constraints, applied: whether an offer satisfies an app's
//! typed constraints ([`crate::model::constraint`], read and validated
//! once) given where its instances already run.
//!
//! Attribute values are compared as text (see [`attribute_string`]). The
//! operators' rules are Marathon's:
//!
//! * `UNIQUE`: no placed instance has the offer's value;
//! * `CLUSTER value`: the offer's value is `value`;
//! * `GROUP_BY [n]`: a value not used yet is always accepted; a used one only
//!   while at least `n` values are in use and it holds no more instances than
//!   the least used one;
//! * `LIKE regex` / `UNLIKE regex`: the value matches / does not match the
//!   regex as a whole;
//! * `MAX_PER n`: fewer than `n` placed instances have the offer's value;
//! * `IS value`: the value is `value`.
//!
//! An offer without the field satisfies only `UNLIKE`; an invalid
//! constraint (which validation keeps out of every stored app) none.

use std::collections::BTreeMap;

use agora_proto::{Attribute, Offer};

use super::matcher::Placement;
use crate::model::constraint::{Constraint, Field, Operator, Rule};

/// An attribute's value as constraints compare it: text as is, scalars as
/// Mesos prints them (`8`, `2.5`), ranges as `[1-4]`, sets as `{a,b}`.
pub fn attribute_string(attr: &Attribute) -> String {
    agora_common::resources::attribute_text(attr)
}

/// The offer's attributes as (name, value) pairs, in offer order.
pub fn offer_attributes(offer: &Offer) -> Vec<(String, String)> {
    offer
        .attributes
        .iter()
        .map(|a| (a.name.clone(), attribute_string(a)))
        .collect()
}

/// The value of a constraint's `field` in an offer (`None`: the agent lacks it).
pub fn offer_value(field: &Field, offer: &Offer) -> Option<String> {
    match field {
        Field::Hostname => Some(offer.hostname.clone()),
        Field::Attribute(name) => offer
            .attributes
            .iter()
            .find(|a| a.name == *name)
            .map(attribute_string),
    }
}

/// The value of a constraint's `field` where an instance runs.
pub fn placement_value(field: &Field, placement: &Placement) -> Option<String> {
    match field {
        Field::Hostname => Some(placement.host.clone()),
        Field::Attribute(name) => placement
            .attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, value)| value.clone()),
    }
}

/// How many placed instances have each value (instances without the field
/// count under `None`).
fn group_counts(placed: &[Option<String>]) -> BTreeMap<Option<&str>, usize> {
    let mut groups = BTreeMap::new();
    for value in placed {
        *groups.entry(value.as_deref()).or_insert(0) += 1;
    }
    groups
}

/// Whether an offer whose value for the rule's field is `offer_value`
/// satisfies `operator`, given the values of the instances already placed
/// (`placed`, one entry per instance).
pub fn satisfies(
    operator: &Operator,
    offer_value: Option<&str>,
    placed: &[Option<String>],
) -> bool {
    let Some(offered) = offer_value else {
        return matches!(operator, Operator::Unlike(_));
    };
    match operator {
        Operator::Unique => placed.iter().all(|p| p.as_deref() != Some(offered)),
        Operator::Cluster(value) | Operator::Is(value) => offered == value,
        Operator::GroupBy(minimum) => {
            let groups = group_counts(placed);
            let min_count = groups.values().copied().min().unwrap_or(0);
            match groups.get(&Some(offered)) {
                None => true,
                Some(&count) => groups.len() as i64 >= *minimum && count == min_count,
            }
        }
        Operator::MaxPer(max) => {
            let count = placed
                .iter()
                .filter(|p| p.as_deref() == Some(offered))
                .count() as i64;
            count < *max
        }
        Operator::Like(re) => re.is_match(offered),
        Operator::Unlike(re) => !re.is_match(offered),
    }
}

/// Whether `offer` satisfies every constraint, given where the app's
/// instances already run.
pub fn meets_all(constraints: &[Constraint], offer: &Offer, placements: &[Placement]) -> bool {
    constraints.iter().all(|constraint| {
        let Ok(Rule { field, operator }) = constraint.rule() else {
            return false;
        };
        let offered = offer_value(field, offer);
        let placed: Vec<Option<String>> = placements
            .iter()
            .map(|p| placement_value(field, p))
            .collect();
        satisfies(operator, offered.as_deref(), &placed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::value::{self, Scalar, Text};

    fn c(parts: &[&str]) -> Operator {
        Constraint::from(parts)
            .rule()
            .expect("a valid constraint")
            .operator
            .clone()
    }

    fn k(parts: &[&str]) -> Constraint {
        Constraint::from(parts)
    }

    fn vals(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|v| Some(v.to_string())).collect()
    }

    #[test]
    fn unique() {
        let k = c(&["hostname", "UNIQUE"]);
        assert!(satisfies(&k, Some("a"), &[]));
        assert!(satisfies(&k, Some("a"), &vals(&["b", "c"])));
        assert!(!satisfies(&k, Some("a"), &vals(&["b", "a"])));
        // Instances on agents without the attribute do not conflict.
        assert!(satisfies(&k, Some("a"), &[None]));
        assert!(!satisfies(&k, None, &[]));
    }

    #[test]
    fn cluster() {
        let k = c(&["rack", "CLUSTER", "r1"]);
        assert!(satisfies(&k, Some("r1"), &vals(&["r2"])));
        assert!(!satisfies(&k, Some("r2"), &[]));
        assert!(!satisfies(&k, None, &[]));
    }

    #[test]
    fn group_by_spreads_evenly() {
        let k = c(&["rack", "GROUP_BY"]);
        assert!(satisfies(&k, Some("a"), &[]));
        // A value not used yet is always fine.
        assert!(satisfies(&k, Some("c"), &vals(&["a", "a", "b"])));
        // A used value only while it is among the least used.
        assert!(!satisfies(&k, Some("a"), &vals(&["a", "a", "b"])));
        assert!(satisfies(&k, Some("b"), &vals(&["a", "a", "b"])));
        assert!(satisfies(&k, Some("a"), &vals(&["a", "b"])));
        // With a minimum number of groups, a used value waits for the others.
        let three = c(&["rack", "GROUP_BY", "3"]);
        assert!(!satisfies(&three, Some("a"), &vals(&["a", "b"])));
        assert!(satisfies(&three, Some("c"), &vals(&["a", "b"])));
        assert!(satisfies(&three, Some("a"), &vals(&["a", "b", "c"])));
        assert!(!satisfies(&three, None, &[]));
    }

    #[test]
    fn like_and_unlike_match_whole_values() {
        let like = c(&["rack", "LIKE", "rack-[0-9]"]);
        assert!(satisfies(&like, Some("rack-1"), &[]));
        assert!(!satisfies(&like, Some("rack-12"), &[]));
        assert!(!satisfies(&like, Some("xrack-1"), &[]));
        assert!(!satisfies(&like, None, &[]));
        let unlike = c(&["rack", "UNLIKE", "rack-[0-9]"]);
        assert!(!satisfies(&unlike, Some("rack-1"), &[]));
        assert!(satisfies(&unlike, Some("rack-12"), &[]));
        // Only UNLIKE holds on an agent without the attribute.
        assert!(satisfies(&unlike, None, &[]));
    }

    #[test]
    fn max_per() {
        let k = c(&["rack", "MAX_PER", "2"]);
        assert!(satisfies(&k, Some("a"), &vals(&["a", "b"])));
        assert!(!satisfies(&k, Some("a"), &vals(&["a", "a", "b"])));
        assert!(satisfies(&k, Some("b"), &vals(&["a", "a", "b"])));
        assert!(!satisfies(&k, None, &[]));
    }

    #[test]
    fn is() {
        let k = c(&["os", "IS", "linux"]);
        assert!(satisfies(&k, Some("linux"), &[]));
        assert!(!satisfies(&k, Some("darwin"), &[]));
        assert!(!satisfies(&k, None, &[]));
    }

    fn offer() -> Offer {
        Offer {
            hostname: "h1".into(),
            attributes: vec![
                Attribute {
                    name: "rack".into(),
                    r#type: value::Type::Text as i32,
                    text: Some(Text { value: "r1".into() }),
                    ..Default::default()
                },
                Attribute {
                    name: "cores".into(),
                    r#type: value::Type::Scalar as i32,
                    scalar: Some(Scalar { value: 8.0 }),
                    ..Default::default()
                },
            ],
            ..Default::default()
        }
    }

    fn placed(host: &str, rack: &str) -> Placement {
        Placement {
            agent_id: format!("agent-{host}"),
            host: host.into(),
            attributes: vec![("rack".into(), rack.into())],
        }
    }

    #[test]
    fn reads_hostname_and_attributes_of_offers() {
        let o = offer();
        let attr = |n: &str| Field::Attribute(n.into());
        assert_eq!(offer_value(&Field::Hostname, &o).as_deref(), Some("h1"));
        assert_eq!(offer_value(&attr("cores"), &o).as_deref(), Some("8"));
        assert_eq!(offer_value(&attr("zone"), &o), None);
        assert_eq!(
            offer_attributes(&o),
            vec![("rack".into(), "r1".into()), ("cores".into(), "8".into())]
        );
    }

    #[test]
    fn meets_all_combines_constraints() {
        let o = offer();
        let unique_host = vec![k(&["hostname", "UNIQUE"])];
        assert!(meets_all(&unique_host, &o, &[placed("h2", "r1")]));
        assert!(!meets_all(&unique_host, &o, &[placed("h1", "r2")]));
        let both = vec![k(&["hostname", "UNIQUE"]), k(&["rack", "MAX_PER", "1"])];
        assert!(!meets_all(&both, &o, &[placed("h2", "r1")]));
        assert!(meets_all(&both, &o, &[placed("h2", "r2")]));
        assert!(meets_all(&[k(&["cores", "IS", "8"])], &o, &[]));
        assert!(meets_all(&[k(&["@hostname", "IS", "h1"])], &o, &[]));
        assert!(!meets_all(&[k(&["zone", "IS", "a"])], &o, &[]));
        // An invalid constraint is met by no offer.
        assert!(!meets_all(&[k(&["rack", "unique"])], &o, &[]));
        assert!(meets_all(&[], &o, &[]));
    }
}
