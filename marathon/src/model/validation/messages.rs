//! The violation report, and Marathon's (accord's) wording of range,
//! enumeration and pattern errors.

use super::*;

/// The violations found so far.
#[derive(Default)]
pub(super) struct Report(Vec<Violation>);

impl Report {
    pub(super) fn add(&mut self, path: impl Into<String>, error: impl Into<String>) {
        self.0.push(Violation::new(path, error));
    }

    /// Records `error` at `path` if there is one.
    pub(super) fn check(&mut self, path: impl Into<String>, error: Option<String>) {
        if let Some(error) = error {
            self.add(path, error);
        }
    }

    pub(super) fn finish(self) -> Vec<Violation> {
        merge_violations(self.0)
    }
}

/// A number as the JVM prints it: doubles always with a decimal point.
pub(super) trait Number: PartialOrd + Copy {
    fn show(self) -> String;
}

impl Number for i64 {
    fn show(self) -> String {
        self.to_string()
    }
}

impl Number for f64 {
    fn show(self) -> String {
        if self.is_finite() && self.fract() == 0.0 {
            format!("{self:.1}")
        } else {
            self.to_string()
        }
    }
}

/// `a < b`, with NaN counting as below anything.
pub(super) fn below<N: Number>(a: N, b: N) -> bool {
    !matches!(
        a.partial_cmp(&b),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    )
}

pub(super) fn at_least<N: Number>(value: N, min: N) -> Option<String> {
    below(value, min).then(|| format!("got {}, expected {} or more", value.show(), min.show()))
}

pub(super) fn at_most<N: Number>(value: N, max: N) -> Option<String> {
    below(max, value).then(|| format!("got {}, expected {} or less", value.show(), max.show()))
}

pub(super) fn more_than<N: Number>(value: N, min: N) -> Option<String> {
    (!below(min, value)).then(|| format!("got {}, expected more than {}", value.show(), min.show()))
}

pub(super) fn less_than<N: Number>(value: N, max: N) -> Option<String> {
    (!below(value, max)).then(|| format!("got {}, expected less than {}", value.show(), max.show()))
}

pub(super) fn between<N: Number>(value: N, low: N, high: N) -> Option<String> {
    (below(value, low) || below(high, value)).then(|| {
        format!(
            "got {}, expected between {} and {}",
            value.show(),
            low.show(),
            high.show()
        )
    })
}

pub(super) fn port_range(port: i64) -> Option<String> {
    between(port, 0, MAX_PORT)
}

pub(super) fn one_of(value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value)).then(|| {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("'{a}'")).collect();
        format!("got '{value}', expected one of {}", quoted.join(", "))
    })
}

pub(super) fn not_empty(value: &str) -> Option<String> {
    value.is_empty().then(|| "must not be empty".to_string())
}

/// `<what> must be unique.` if an item repeats.
pub(super) fn unique<T: Ord>(items: impl IntoIterator<Item = T>, what: &str) -> Option<String> {
    let mut seen = BTreeSet::new();
    let repeated = items.into_iter().any(|item| !seen.insert(item));
    repeated.then(|| format!("{what} must be unique."))
}

pub(super) fn full_match(pattern: &str) -> Regex {
    Regex::new(&format!("^(?:{pattern})$")).expect("built-in pattern compiles")
}

pub(super) fn regex_message(pattern: &str) -> String {
    format!("must fully match regular expression '{pattern}'")
}

pub(super) fn matches_fully(regex: &Regex, pattern: &str, value: &str) -> Option<String> {
    (!regex.is_match(value)).then(|| regex_message(pattern))
}
