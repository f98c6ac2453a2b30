//! Resource arithmetic over the wire [`Resource`] type.
//!
//! A [`Resources`] is a normalized bag: at most one entry per (name, type,
//! reservation role), scalars rounded to Mesos' three decimal places, ranges
//! sorted and merged, sets deduplicated. Allocation info (the role an offered
//! resource is allocated to) is metadata: it is stripped on the way in and set
//! on the way out with [`Resources::allocated_to`].
//!
//! The flag syntax is Mesos': `cpus:4;mem:8192;ports:[31000-32000];disk(ops):100`
//! for resources and `rack:r1;zone:a;cores:8` for attributes.

use std::collections::BTreeSet;
use std::fmt;

use agora_proto::resource::{AllocationInfo, ReservationInfo};
use agora_proto::value::{self, Range, Ranges, Scalar, Set, Text};
use agora_proto::{Attribute, Resource, Value};

/// The role of unreserved resources.
pub const UNRESERVED: &str = "*";

/// An error in a `--resources` or `--attributes` string.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ParseError {
    /// An entry that is not `name:value` or `name(role):value`.
    #[error("invalid entry '{0}': expected name:value or name(role):value")]
    Entry(String),
    /// A value that is none of scalar, `[a-b,...]` ranges or `{a,b}` set.
    #[error("invalid value for '{name}': '{value}'")]
    Value {
        /// The resource name.
        name: String,
        /// The offending value.
        value: String,
    },
    /// A negative or non-finite scalar.
    #[error("invalid scalar for '{0}': must be a finite number >= 0")]
    Scalar(String),
}

/// Rounds to Mesos' fixed-point precision (three decimals) so that repeated
/// additions and subtractions do not drift.
fn round(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A scalar resource, unreserved.
pub fn scalar(name: &str, value: f64) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(Scalar {
            value: round(value),
        }),
        ..Default::default()
    }
}

/// A ranges resource (inclusive bounds), unreserved.
pub fn ranges(name: &str, bounds: &[(u64, u64)]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(Ranges {
            range: normalize_ranges(bounds.iter().map(|&(begin, end)| Range { begin, end })),
        }),
        ..Default::default()
    }
}

/// A set resource, unreserved.
pub fn set(name: &str, items: &[&str]) -> Resource {
    Resource {
        name: name.to_string(),
        r#type: value::Type::Set as i32,
        set: Some(Set {
            item: items.iter().map(|s| s.to_string()).collect(),
        }),
        ..Default::default()
    }
}

/// Reserves `resource` statically for `role` (as `name(role):value` in a flag).
pub fn reserved_for(mut resource: Resource, role: &str) -> Resource {
    if role != UNRESERVED {
        resource.reservations = vec![ReservationInfo {
            r#type: agora_proto::resource::reservation_info::Type::Static as i32,
            role: Some(role.to_string()),
            ..Default::default()
        }];
    }
    resource
}

/// The role a resource is reserved for: the last (most refined) reservation,
/// else the legacy `role` field, else `*`.
pub fn reservation_role(r: &Resource) -> &str {
    if let Some(role) = r.reservations.last().and_then(|ri| ri.role.as_deref()) {
        return role;
    }
    match r.role.as_deref() {
        Some(role) if !role.is_empty() => role,
        _ => UNRESERVED,
    }
}

/// Whether resources reserved for `reserved` may be used by a framework in `role`:
/// unreserved ones by everybody, reserved ones by the role and its sub-roles.
pub fn role_may_use(role: &str, reserved: &str) -> bool {
    reserved == UNRESERVED
        || role == reserved
        || (role.starts_with(reserved) && role.as_bytes().get(reserved.len()) == Some(&b'/'))
}

fn normalize_ranges(input: impl Iterator<Item = Range>) -> Vec<Range> {
    let mut v: Vec<Range> = input.filter(|r| r.begin <= r.end).collect();
    v.sort_by_key(|r| (r.begin, r.end));
    let mut out: Vec<Range> = Vec::with_capacity(v.len());
    for r in v {
        match out.last_mut() {
            Some(last) if r.begin <= last.end.saturating_add(1) => {
                last.end = last.end.max(r.end);
            }
            _ => out.push(r),
        }
    }
    out
}

fn subtract_ranges(from: &[Range], minus: &[Range]) -> Vec<Range> {
    let mut out = Vec::new();
    for r in from {
        let mut pieces = vec![(r.begin, r.end)];
        for m in minus {
            let mut next = Vec::new();
            for (b, e) in pieces {
                if m.end < b || m.begin > e {
                    next.push((b, e));
                    continue;
                }
                if m.begin > b {
                    next.push((b, m.begin - 1));
                }
                if m.end < e {
                    next.push((m.end + 1, e));
                }
            }
            pieces = next;
        }
        out.extend(pieces.into_iter().map(|(begin, end)| Range { begin, end }));
    }
    normalize_ranges(out.into_iter())
}

fn ranges_contain(outer: &[Range], inner: &[Range]) -> bool {
    inner
        .iter()
        .all(|i| outer.iter().any(|o| o.begin <= i.begin && i.end <= o.end))
}

/// Formats ranges as Mesos does in state JSON: `[31000-32000, 33000-33010]`.
pub fn format_ranges(ranges: &[Range]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.begin, r.end))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A normalized bag of resources.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    items: Vec<Resource>,
}

fn same_kind(a: &Resource, b: &Resource) -> bool {
    a.name == b.name && a.r#type == b.r#type && reservation_role(a) == reservation_role(b)
}

fn is_empty_resource(r: &Resource) -> bool {
    match value::Type::try_from(r.r#type) {
        Ok(value::Type::Scalar) => r.scalar.as_ref().is_none_or(|s| s.value <= 0.0),
        Ok(value::Type::Ranges) => r.ranges.as_ref().is_none_or(|s| s.range.is_empty()),
        Ok(value::Type::Set) => r.set.as_ref().is_none_or(|s| s.item.is_empty()),
        _ => true,
    }
}

impl Resources {
    /// An empty bag.
    pub fn new() -> Self {
        Self::default()
    }

    /// Normalizes a list of wire resources (merging entries of the same kind).
    pub fn from_vec(items: impl IntoIterator<Item = Resource>) -> Self {
        let mut r = Resources::new();
        for item in items {
            r.add_resource(item);
        }
        r
    }

    /// Parses Mesos' `--resources` syntax: `cpus:4;mem:8192;ports:[31000-32000];disk(role):10;zones:{a,b}`.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let mut out = Resources::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (head, value) = entry
                .split_once(':')
                .ok_or_else(|| ParseError::Entry(entry.to_string()))?;
            let (name, role) = match head.split_once('(') {
                Some((name, rest)) => {
                    let role = rest
                        .strip_suffix(')')
                        .ok_or_else(|| ParseError::Entry(entry.to_string()))?;
                    (name.trim(), role.trim())
                }
                None => (head.trim(), UNRESERVED),
            };
            if name.is_empty() || role.is_empty() {
                return Err(ParseError::Entry(entry.to_string()));
            }
            let resource = parse_value(name, value.trim())?;
            out.add_resource(reserved_for(resource, role));
        }
        Ok(out)
    }

    /// The entries, normalized.
    pub fn iter(&self) -> impl Iterator<Item = &Resource> {
        self.items.iter()
    }

    /// The entries as wire resources.
    pub fn to_vec(&self) -> Vec<Resource> {
        self.items.clone()
    }

    /// The entries as wire resources.
    pub fn into_vec(self) -> Vec<Resource> {
        self.items
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Adds one wire resource.
    pub fn add_resource(&mut self, mut r: Resource) {
        r.allocation_info = None;
        if is_empty_resource(&r) {
            return;
        }
        if let Some(existing) = self.items.iter_mut().find(|e| same_kind(e, &r)) {
            match value::Type::try_from(r.r#type) {
                Ok(value::Type::Scalar) => {
                    let add = r.scalar.map(|s| s.value).unwrap_or(0.0);
                    let s = existing.scalar.get_or_insert(Scalar { value: 0.0 });
                    s.value = round(s.value + add);
                }
                Ok(value::Type::Ranges) => {
                    let add = r.ranges.map(|s| s.range).unwrap_or_default();
                    let s = existing.ranges.get_or_insert_with(Ranges::default);
                    let all = s.range.drain(..).chain(add);
                    s.range = normalize_ranges(all);
                }
                Ok(value::Type::Set) => {
                    let add = r.set.map(|s| s.item).unwrap_or_default();
                    let s = existing.set.get_or_insert_with(Set::default);
                    let all: BTreeSet<String> = s.item.drain(..).chain(add).collect();
                    s.item = all.into_iter().collect();
                }
                _ => {}
            }
        } else {
            if let Some(s) = r.scalar.as_mut() {
                s.value = round(s.value);
            }
            if let Some(rs) = r.ranges.as_mut() {
                rs.range = normalize_ranges(rs.range.drain(..));
            }
            if let Some(set) = r.set.as_mut() {
                let all: BTreeSet<String> = set.item.drain(..).collect();
                set.item = all.into_iter().collect();
            }
            self.items.push(r);
        }
    }

    /// Adds every entry of `other`.
    pub fn add(&mut self, other: &Resources) {
        for r in &other.items {
            self.add_resource(r.clone());
        }
    }

    /// Removes every entry of `other` (saturating at zero: what is not there
    /// is ignored). Entries that become empty disappear.
    pub fn subtract(&mut self, other: &Resources) {
        for r in &other.items {
            self.subtract_resource(r);
        }
    }

    /// Removes one wire resource (saturating).
    pub fn subtract_resource(&mut self, r: &Resource) {
        let Some(pos) = self.items.iter().position(|e| same_kind(e, r)) else {
            return;
        };
        let existing = &mut self.items[pos];
        match value::Type::try_from(r.r#type) {
            Ok(value::Type::Scalar) => {
                let sub = r.scalar.map(|s| s.value).unwrap_or(0.0);
                if let Some(s) = existing.scalar.as_mut() {
                    s.value = round((s.value - sub).max(0.0));
                }
            }
            Ok(value::Type::Ranges) => {
                let sub = r.ranges.as_ref().map(|s| s.range.as_slice()).unwrap_or(&[]);
                if let Some(s) = existing.ranges.as_mut() {
                    s.range = subtract_ranges(&s.range, sub);
                }
            }
            Ok(value::Type::Set) => {
                let sub = r.set.as_ref().map(|s| s.item.as_slice()).unwrap_or(&[]);
                if let Some(s) = existing.set.as_mut() {
                    s.item.retain(|i| !sub.contains(i));
                }
            }
            _ => {}
        }
        if is_empty_resource(&self.items[pos]) {
            self.items.remove(pos);
        }
    }

    /// Whether every entry of `other` is covered by this bag.
    pub fn contains(&self, other: &Resources) -> bool {
        other.items.iter().all(|r| self.contains_resource(r))
    }

    fn contains_resource(&self, r: &Resource) -> bool {
        let Some(existing) = self.items.iter().find(|e| same_kind(e, r)) else {
            return is_empty_resource(r);
        };
        match value::Type::try_from(r.r#type) {
            Ok(value::Type::Scalar) => {
                let want = r.scalar.map(|s| s.value).unwrap_or(0.0);
                let have = existing.scalar.map(|s| s.value).unwrap_or(0.0);
                round(have - want) >= 0.0
            }
            Ok(value::Type::Ranges) => ranges_contain(
                existing
                    .ranges
                    .as_ref()
                    .map(|s| s.range.as_slice())
                    .unwrap_or(&[]),
                r.ranges.as_ref().map(|s| s.range.as_slice()).unwrap_or(&[]),
            ),
            Ok(value::Type::Set) => {
                let have = existing
                    .set
                    .as_ref()
                    .map(|s| s.item.as_slice())
                    .unwrap_or(&[]);
                r.set
                    .as_ref()
                    .is_none_or(|s| s.item.iter().all(|i| have.contains(i)))
            }
            _ => false,
        }
    }

    /// The total of a scalar resource across all roles.
    pub fn scalar(&self, name: &str) -> f64 {
        round(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .filter_map(|r| r.scalar.map(|s| s.value))
                // Not `sum()`: an empty float sum is -0.0, which JSON shows as "-0.0".
                .fold(0.0, |a, b| a + b),
        )
    }

    /// The merged ranges of a ranges resource across all roles.
    pub fn ranges(&self, name: &str) -> Vec<Range> {
        normalize_ranges(
            self.items
                .iter()
                .filter(|r| r.name == name)
                .flat_map(|r| r.ranges.iter().flat_map(|s| s.range.iter().copied())),
        )
    }

    /// Every scalar as (name, total across roles), for dominant-share maths.
    pub fn scalars(&self) -> Vec<(String, f64)> {
        let mut out: Vec<(String, f64)> = Vec::new();
        for r in &self.items {
            if let Some(s) = r.scalar {
                match out.iter_mut().find(|(n, _)| *n == r.name) {
                    Some((_, v)) => *v = round(*v + s.value),
                    None => out.push((r.name.clone(), s.value)),
                }
            }
        }
        out
    }

    /// The part a framework in `role` may use: unreserved, plus what is
    /// reserved for `role` or an ancestor of it.
    pub fn usable_by(&self, role: &str) -> Resources {
        Resources {
            items: self
                .items
                .iter()
                .filter(|r| role_may_use(role, reservation_role(r)))
                .cloned()
                .collect(),
        }
    }

    /// The unreserved part.
    pub fn unreserved(&self) -> Resources {
        self.filter(|r| reservation_role(r) == UNRESERVED)
    }

    /// The reserved part (for any role).
    pub fn reserved(&self) -> Resources {
        self.filter(|r| reservation_role(r) != UNRESERVED)
    }

    /// The entries for which `keep` holds.
    pub fn filter(&self, keep: impl Fn(&Resource) -> bool) -> Resources {
        Resources {
            items: self.items.iter().filter(|r| keep(r)).cloned().collect(),
        }
    }

    /// The entries as wire resources marked as allocated to `role`, as offers carry them.
    pub fn allocated_to(&self, role: &str) -> Vec<Resource> {
        self.items
            .iter()
            .cloned()
            .map(|mut r| {
                r.allocation_info = Some(AllocationInfo {
                    role: Some(role.to_string()),
                });
                r
            })
            .collect()
    }
}

impl fmt::Display for Resources {
    /// Mesos' text form: `cpus:4; mem:8192; ports:[31000-32000]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for r in &self.items {
            if !first {
                f.write_str("; ")?;
            }
            first = false;
            f.write_str(&r.name)?;
            let role = reservation_role(r);
            if role != UNRESERVED {
                write!(f, "({role})")?;
            }
            f.write_str(":")?;
            if let Some(s) = r.scalar {
                write!(f, "{}", s.value)?;
            } else if let Some(rs) = &r.ranges {
                let parts: Vec<String> = rs
                    .range
                    .iter()
                    .map(|r| format!("{}-{}", r.begin, r.end))
                    .collect();
                write!(f, "[{}]", parts.join(","))?;
            } else if let Some(s) = &r.set {
                write!(f, "{{{}}}", s.item.join(","))?;
            }
        }
        Ok(())
    }
}

fn parse_value(name: &str, value: &str) -> Result<Resource, ParseError> {
    let bad = || ParseError::Value {
        name: name.to_string(),
        value: value.to_string(),
    };
    if let Some(inner) = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')) {
        let mut bounds = Vec::new();
        for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (b, e) = part.split_once('-').ok_or_else(bad)?;
            let b: u64 = b.trim().parse().map_err(|_| bad())?;
            let e: u64 = e.trim().parse().map_err(|_| bad())?;
            if b > e {
                return Err(bad());
            }
            bounds.push((b, e));
        }
        return Ok(ranges(name, &bounds));
    }
    if let Some(inner) = value.strip_prefix('{').and_then(|v| v.strip_suffix('}')) {
        let items: Vec<&str> = inner
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect();
        return Ok(set(name, &items));
    }
    let v: f64 = value.parse().map_err(|_| bad())?;
    if !v.is_finite() || v < 0.0 {
        return Err(ParseError::Scalar(name.to_string()));
    }
    Ok(scalar(name, v))
}

/// Parses Mesos' `--attributes` syntax: `rack:r1;zone:a;cores:8;slots:[1-4]`.
/// Numbers become scalars, `[a-b]` ranges, anything else text.
pub fn parse_attributes(text: &str) -> Result<Vec<Attribute>, ParseError> {
    let mut out = Vec::new();
    for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, value) = entry
            .split_once(':')
            .ok_or_else(|| ParseError::Entry(entry.to_string()))?;
        let (name, value) = (name.trim(), value.trim());
        if name.is_empty() {
            return Err(ParseError::Entry(entry.to_string()));
        }
        let mut attr = Attribute {
            name: name.to_string(),
            ..Default::default()
        };
        if let Ok(v) = value.parse::<f64>() {
            attr.r#type = value::Type::Scalar as i32;
            attr.scalar = Some(Scalar { value: v });
        } else if value.starts_with('[') {
            let r = parse_value(name, value)?;
            attr.r#type = value::Type::Ranges as i32;
            attr.ranges = r.ranges;
        } else {
            attr.r#type = value::Type::Text as i32;
            attr.text = Some(Text {
                value: value.to_string(),
            });
        }
        out.push(attr);
    }
    Ok(out)
}

/// An attribute's value as text, as constraints and state JSON see it.
pub fn attribute_text(attr: &Attribute) -> String {
    if let Some(t) = &attr.text {
        return t.value.clone();
    }
    if let Some(s) = attr.scalar {
        return format_scalar(s.value);
    }
    if let Some(r) = &attr.ranges {
        return format_ranges(&r.range);
    }
    if let Some(s) = &attr.set {
        return format!("{{{}}}", s.item.join(","));
    }
    String::new()
}

/// A scalar as Mesos prints it: integers without a fraction.
pub fn format_scalar(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The value of an attribute with a given name, as a wire [`Value`].
pub fn attribute_value(attr: &Attribute) -> Value {
    Value {
        r#type: attr.r#type,
        scalar: attr.scalar,
        ranges: attr.ranges.clone(),
        set: attr.set.clone(),
        text: attr.text.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(s: &str) -> Resources {
        Resources::parse(s).expect("valid resources")
    }

    #[test]
    fn parses_mesos_flag_syntax() {
        let r = res("cpus:4;mem:8192;disk:20000;ports:[31000-32000];gpus:0");
        assert_eq!(r.scalar("cpus"), 4.0);
        assert_eq!(r.scalar("mem"), 8192.0);
        assert_eq!(r.scalar("gpus"), 0.0, "zero scalars are dropped");
        assert_eq!(format_ranges(&r.ranges("ports")), "[31000-32000]");
        assert_eq!(
            r.to_string(),
            "cpus:4; mem:8192; disk:20000; ports:[31000-32000]"
        );
    }

    #[test]
    fn parses_reservations_and_sets() {
        let r = res("cpus(ops):2;cpus:1;zones:{b,a,b}");
        assert_eq!(r.scalar("cpus"), 3.0);
        assert_eq!(r.reserved().scalar("cpus"), 2.0);
        assert_eq!(r.usable_by("dev").scalar("cpus"), 1.0);
        assert_eq!(r.usable_by("ops").scalar("cpus"), 3.0);
        assert_eq!(r.usable_by("ops/team").scalar("cpus"), 3.0);
        assert_eq!(r.usable_by("opsx").scalar("cpus"), 1.0);
        assert_eq!(r.to_string(), "cpus(ops):2; cpus:1; zones:{a,b}");
    }

    #[test]
    fn rejects_bad_syntax() {
        assert!(matches!(
            Resources::parse("cpus"),
            Err(ParseError::Entry(_))
        ));
        assert!(matches!(
            Resources::parse("cpus:abc"),
            Err(ParseError::Value { .. })
        ));
        assert!(matches!(
            Resources::parse("cpus:-1"),
            Err(ParseError::Scalar(_))
        ));
        assert!(Resources::parse("ports:[5-2]").is_err());
        assert!(Resources::parse("cpus(ops:1").is_err());
    }

    #[test]
    fn subtract_and_contains() {
        let mut total = res("cpus:4;mem:1024;ports:[31000-31010]");
        let used = res("cpus:1.5;mem:512;ports:[31003-31004]");
        assert!(total.contains(&used));
        total.subtract(&used);
        assert_eq!(total.scalar("cpus"), 2.5);
        assert_eq!(
            format_ranges(&total.ranges("ports")),
            "[31000-31002, 31005-31010]"
        );
        assert!(!total.contains(&res("ports:[31003-31003]")));
        assert!(!total.contains(&res("cpus:3")));
        total.add(&used);
        assert_eq!(total, res("cpus:4;mem:1024;ports:[31000-31010]"));
    }

    #[test]
    fn scalar_maths_does_not_drift() {
        let mut r = Resources::new();
        for _ in 0..10 {
            r.add(&res("cpus:0.1"));
        }
        assert_eq!(r.scalar("cpus"), 1.0);
        for _ in 0..10 {
            r.subtract(&res("cpus:0.1"));
        }
        assert!(r.is_empty());
    }

    #[test]
    fn absent_scalars_are_positive_zero() {
        let zero = Resources::new().scalar("gpus");
        assert!(zero == 0.0 && zero.is_sign_positive());
    }

    #[test]
    fn subtracting_more_than_present_saturates() {
        let mut r = res("cpus:1");
        r.subtract(&res("cpus:2;mem:10"));
        assert!(r.is_empty());
    }

    #[test]
    fn reserved_resources_are_distinct_from_unreserved() {
        let total = res("cpus:1;cpus(a):1");
        assert!(!total.contains(&res("cpus(b):1")));
        assert!(total.contains(&res("cpus(a):1")));
        assert!(!total.contains(&res("cpus(a):2")));
    }

    #[test]
    fn allocation_info_is_metadata() {
        let r = res("cpus:1");
        let offered = Resources::from_vec(r.allocated_to("web"));
        assert_eq!(offered, r);
        assert_eq!(
            r.allocated_to("web")[0]
                .allocation_info
                .as_ref()
                .and_then(|a| a.role.as_deref()),
            Some("web")
        );
    }

    #[test]
    fn parses_attributes() {
        let attrs = parse_attributes("rack:r1;zone:a;cores:8;slots:[1-4]").expect("valid");
        let texts: Vec<String> = attrs.iter().map(attribute_text).collect();
        assert_eq!(texts, ["r1", "a", "8", "[1-4]"]);
        assert!(parse_attributes("rack").is_err());
    }
}
