//! Placement constraints.
//!
//! A constraint is `[field, operator]` or `[field, operator, value]`. The
//! field is `hostname` (or `@hostname`) or the name of an agent attribute;
//! attribute values are compared as text (see [`attribute_string`]). The
//! operators and their rules are Marathon's:
//!
//! * `UNIQUE`: no placed instance has the offer's value;
//! * `CLUSTER value`: the offer's value is `value`; without a value, the one
//!   of the first placed instance (any value while none is placed);
//! * `GROUP_BY [n]`: a value not used yet is always accepted; a used one only
//!   while at least `n` values are in use and it holds no more instances than
//!   the least used one;
//! * `LIKE regex` / `UNLIKE regex`: the value matches / does not match the
//!   regex as a whole;
//! * `MAX_PER n`: fewer than `n` placed instances have the offer's value;
//! * `IS value`: the value is `value`;
//! * `IN a,b,c`: the value is one of the list.
//!
//! An offer without the field satisfies only `UNLIKE`.

use std::collections::BTreeMap;

use agora_proto::{Attribute, Offer};
use regex::Regex;

use super::matcher::Placement;

/// The pseudo-attribute naming the agent's hostname.
pub const HOSTNAME: &str = "hostname";

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

fn is_hostname_field(field: &str) -> bool {
    field == HOSTNAME || field == "@hostname"
}

/// The value of a constraint's `field` in an offer (`None`: the agent lacks it).
pub fn offer_value(field: &str, offer: &Offer) -> Option<String> {
    if is_hostname_field(field) {
        return Some(offer.hostname.clone());
    }
    offer
        .attributes
        .iter()
        .find(|a| a.name == field)
        .map(attribute_string)
}

/// The value of a constraint's `field` where an instance runs.
pub fn placement_value(field: &str, placement: &Placement) -> Option<String> {
    if is_hostname_field(field) {
        return Some(placement.host.clone());
    }
    placement
        .attributes
        .iter()
        .find(|(name, _)| name == field)
        .map(|(_, value)| value.clone())
}

/// Whether `value` matches `pattern` as a whole (Java's `String.matches`).
/// An invalid pattern matches nothing.
pub fn full_match(pattern: &str, value: &str) -> bool {
    Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(value))
}

fn int_value(value: &str, default: i64) -> i64 {
    if value == "inf" {
        return i64::MAX;
    }
    value.trim().parse().unwrap_or(default)
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

/// Whether an offer whose value for the constraint's field is `offer_value`
/// satisfies `constraint`, given the values of the instances already placed
/// (`placed`, one entry per instance). Unknown operators are never satisfied.
pub fn satisfies(
    constraint: &[String],
    offer_value: Option<&str>,
    placed: &[Option<String>],
) -> bool {
    let Some(operator) = constraint.get(1) else {
        return false;
    };
    let operator = operator.to_ascii_uppercase();
    let value = constraint.get(2).map(String::as_str).unwrap_or("");
    let Some(offered) = offer_value else {
        return operator == "UNLIKE";
    };
    match operator.as_str() {
        "UNIQUE" => placed.iter().all(|p| p.as_deref() != Some(offered)),
        "CLUSTER" => {
            if value.is_empty() {
                placed
                    .first()
                    .is_none_or(|first| first.as_deref() == Some(offered))
            } else {
                offered == value
            }
        }
        "GROUP_BY" => {
            let minimum = int_value(value, 0).max(0);
            let groups = group_counts(placed);
            let min_count = groups.values().copied().min().unwrap_or(0);
            match groups.get(&Some(offered)) {
                None => true,
                Some(&count) => groups.len() as i64 >= minimum && count == min_count,
            }
        }
        "MAX_PER" => {
            let Ok(max) = value.trim().parse::<i64>() else {
                return false;
            };
            let count = placed
                .iter()
                .filter(|p| p.as_deref() == Some(offered))
                .count() as i64;
            count < max
        }
        "LIKE" => !value.is_empty() && full_match(value, offered),
        "UNLIKE" => !value.is_empty() && !full_match(value, offered),
        "IS" => offered == value,
        "IN" => value.split(',').map(str::trim).any(|v| v == offered),
        _ => false,
    }
}

/// Whether `offer` satisfies every constraint, given where the app's
/// instances already run.
pub fn meets_all(constraints: &[Vec<String>], offer: &Offer, placements: &[Placement]) -> bool {
    constraints.iter().all(|constraint| {
        let Some(field) = constraint.first() else {
            return false;
        };
        let offered = offer_value(field, offer);
        let placed: Vec<Option<String>> = placements
            .iter()
            .map(|p| placement_value(field, p))
            .collect();
        satisfies(constraint, offered.as_deref(), &placed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use agora_proto::value::{self, Scalar, Text};

    fn c(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
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
    fn cluster_with_and_without_value() {
        let k = c(&["rack", "CLUSTER", "r1"]);
        assert!(satisfies(&k, Some("r1"), &vals(&["r2"])));
        assert!(!satisfies(&k, Some("r2"), &[]));
        let any = c(&["rack", "CLUSTER"]);
        assert!(satisfies(&any, Some("r2"), &[]));
        assert!(satisfies(&any, Some("r2"), &vals(&["r2", "r2"])));
        assert!(!satisfies(&any, Some("r1"), &vals(&["r2"])));
        let empty = c(&["rack", "CLUSTER", ""]);
        assert!(satisfies(&empty, Some("r1"), &[]));
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
        assert!(!satisfies(&c(&["rack", "LIKE"]), Some("x"), &[]));
        assert!(!satisfies(&c(&["rack", "LIKE", "("]), Some("("), &[]));
    }

    #[test]
    fn max_per() {
        let k = c(&["rack", "MAX_PER", "2"]);
        assert!(satisfies(&k, Some("a"), &vals(&["a", "b"])));
        assert!(!satisfies(&k, Some("a"), &vals(&["a", "a", "b"])));
        assert!(satisfies(&k, Some("b"), &vals(&["a", "a", "b"])));
        assert!(!satisfies(&c(&["rack", "MAX_PER", "x"]), Some("a"), &[]));
        assert!(!satisfies(&k, None, &[]));
    }

    #[test]
    fn is_and_in() {
        let k = c(&["os", "IS", "linux"]);
        assert!(satisfies(&k, Some("linux"), &[]));
        assert!(!satisfies(&k, Some("darwin"), &[]));
        assert!(!satisfies(&k, None, &[]));
        let k = c(&["os", "IN", "linux, darwin"]);
        assert!(satisfies(&k, Some("darwin"), &[]));
        assert!(!satisfies(&k, Some("bsd"), &[]));
        assert!(!satisfies(&c(&["os", "NOPE", "x"]), Some("x"), &[]));
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
        assert_eq!(offer_value("hostname", &o).as_deref(), Some("h1"));
        assert_eq!(offer_value("@hostname", &o).as_deref(), Some("h1"));
        assert_eq!(offer_value("cores", &o).as_deref(), Some("8"));
        assert_eq!(offer_value("zone", &o), None);
        assert_eq!(
            offer_attributes(&o),
            vec![("rack".into(), "r1".into()), ("cores".into(), "8".into())]
        );
    }

    #[test]
    fn meets_all_combines_constraints() {
        let o = offer();
        let unique_host = vec![c(&["hostname", "UNIQUE"])];
        assert!(meets_all(&unique_host, &o, &[placed("h2", "r1")]));
        assert!(!meets_all(&unique_host, &o, &[placed("h1", "r2")]));
        let both = vec![c(&["hostname", "UNIQUE"]), c(&["rack", "MAX_PER", "1"])];
        assert!(!meets_all(&both, &o, &[placed("h2", "r1")]));
        assert!(meets_all(&both, &o, &[placed("h2", "r2")]));
        assert!(meets_all(&[c(&["cores", "IS", "8"])], &o, &[]));
        assert!(!meets_all(&[c(&["zone", "IS", "a"])], &o, &[]));
        assert!(meets_all(&[], &o, &[]));
    }
}
