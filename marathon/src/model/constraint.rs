//! A placement constraint, read once: Marathon's JSON form
//! (`[field, operator]` or `[field, operator, value]`) is kept for the API,
//! and beside it the typed rule, or why there is none, so that validation
//! (which reports the error) and the offer matcher (which applies the rule)
//! cannot disagree, and no regex is compiled per offer.
//!
//! The operators are Marathon's, uppercase: `UNIQUE`, `CLUSTER value`,
//! `GROUP_BY [n]`, `LIKE regex`, `UNLIKE regex`, `MAX_PER n`, `IS value`.
//! The field is `hostname` (or `@hostname`) or an agent attribute's name.

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Marathon's message for an unknown operator.
pub const CONSTRAINT_OPERATORS: &str = "Constraint operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS";

/// One constraint as given, and what it means.
#[derive(Debug, Clone)]
pub struct Constraint {
    raw: Vec<String>,
    rule: Result<Rule, String>,
}

/// What a valid constraint asks of an offer.
#[derive(Debug, Clone)]
pub struct Rule {
    /// What is compared.
    pub field: Field,
    /// How.
    pub operator: Operator,
}

/// The value a constraint looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    /// The agent's hostname (`hostname`, `@hostname`).
    Hostname,
    /// An agent attribute, as text.
    Attribute(String),
}

/// A constraint's operator and its value, parsed.
#[derive(Debug, Clone)]
pub enum Operator {
    /// No two instances share the value.
    Unique,
    /// Every instance has this value.
    Cluster(String),
    /// Spread evenly over the values, over at least this many of them.
    GroupBy(i64),
    /// The value matches the regex, as a whole.
    Like(Regex),
    /// The value does not match the regex, as a whole.
    Unlike(Regex),
    /// At most this many instances per value.
    MaxPer(i64),
    /// The value is this one.
    Is(String),
}

impl Constraint {
    /// Reads `raw`; an invalid constraint keeps its error for validation.
    pub fn new(raw: Vec<String>) -> Self {
        let rule = parse(&raw);
        Constraint { raw, rule }
    }

    /// The constraint as given.
    pub fn raw(&self) -> &[String] {
        &self.raw
    }

    /// The rule, or why the constraint has none (Marathon's message).
    pub fn rule(&self) -> Result<&Rule, &str> {
        self.rule.as_ref().map_err(String::as_str)
    }
}

impl From<&[&str]> for Constraint {
    fn from(parts: &[&str]) -> Self {
        Constraint::new(parts.iter().map(|s| s.to_string()).collect())
    }
}

impl PartialEq for Constraint {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

impl Serialize for Constraint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Constraint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Vec::<String>::deserialize(d).map(Constraint::new)
    }
}

/// The rule of `[field, operator, value?]`, or Marathon's message for why
/// it is invalid. An empty value counts as no value.
fn parse(raw: &[String]) -> Result<Rule, String> {
    let [field, operator, rest @ ..] = raw else {
        return Err("Each constraint must have either 2 or 3 fields".to_string());
    };
    if rest.len() > 1 {
        return Err("Each constraint must have either 2 or 3 fields".to_string());
    }
    if field.is_empty() {
        return Err("Missing field and operator".to_string());
    }
    let field = match field.as_str() {
        "hostname" | "@hostname" => Field::Hostname,
        other => Field::Attribute(other.to_string()),
    };
    let value = rest.first().map(String::as_str).filter(|v| !v.is_empty());
    let number = |v: &str| v.parse::<i64>().ok();
    let operator = match operator.as_str() {
        "UNIQUE" => match value {
            Some(_) => return Err("Value specified but not used".to_string()),
            None => Operator::Unique,
        },
        "CLUSTER" => Operator::Cluster(value.ok_or("Missing value")?.to_string()),
        "IS" => Operator::Is(value.ok_or("Missing value")?.to_string()),
        "GROUP_BY" => match value {
            None => Operator::GroupBy(0),
            Some(v) => {
                Operator::GroupBy(number(v).ok_or("Value was specified but is not a number")?)
            }
        },
        "LIKE" => Operator::Like(full_regex(value)?),
        "UNLIKE" => Operator::Unlike(full_regex(value)?),
        "MAX_PER" => match value.and_then(number) {
            Some(max) if max > 0 => Operator::MaxPer(max),
            Some(max) => return Err(format!("got {max}, expected more than 0")),
            None => return Err("Value was not specified or is not a number".to_string()),
        },
        _ => return Err(CONSTRAINT_OPERATORS.to_string()),
    };
    Ok(Rule { field, operator })
}

/// A regex that matches a value as a whole (Java's `String.matches`).
fn full_regex(value: Option<&str>) -> Result<Regex, String> {
    let pattern = value.ok_or("A regular expression value must be provided")?;
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|_| format!("'{pattern}' is not a valid regular expression"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(parts: &[&str]) -> Option<String> {
        Constraint::from(parts).rule().err().map(String::from)
    }

    #[test]
    fn what_validation_refuses_the_matcher_never_sees() {
        let table: &[(&[&str], Option<&str>)] = &[
            (&["hostname", "UNIQUE"], None),
            (
                &["hostname", "UNIQUE", "x"],
                Some("Value specified but not used"),
            ),
            (&["hostname", "UNIQUE", ""], None),
            (&["rack", "CLUSTER", "r1"], None),
            (&["rack", "CLUSTER"], Some("Missing value")),
            (&["rack", "CLUSTER", ""], Some("Missing value")),
            (&["rack", "IS", "r1"], None),
            (&["rack", "GROUP_BY"], None),
            (&["hostname", "LIKE", "srv2.*"], None),
            (&["hostname", "MAX_PER", "2"], None),
            (&["rack", "IS"], Some("Missing value")),
            (&["rack", "GROUP_BY", "3"], None),
            (
                &["rack", "GROUP_BY", "x"],
                Some("Value was specified but is not a number"),
            ),
            (
                &["rack", "LIKE"],
                Some("A regular expression value must be provided"),
            ),
            (
                &["rack", "LIKE", "("],
                Some("'(' is not a valid regular expression"),
            ),
            (
                &["rack", "MAX_PER", "0"],
                Some("got 0, expected more than 0"),
            ),
            (
                &["rack", "MAX_PER", "x"],
                Some("Value was not specified or is not a number"),
            ),
            // Lowercase operators and IN were applied by the matcher while
            // validation refused them: now neither has them.
            (&["rack", "unique"], Some(CONSTRAINT_OPERATORS)),
            (&["os", "IN", "linux,darwin"], Some(CONSTRAINT_OPERATORS)),
            (
                &["rack"],
                Some("Each constraint must have either 2 or 3 fields"),
            ),
            (
                &["a", "IS", "b", "c"],
                Some("Each constraint must have either 2 or 3 fields"),
            ),
            (&["", "UNIQUE"], Some("Missing field and operator")),
        ];
        for (parts, expected) in table {
            assert_eq!(error(parts).as_deref(), *expected, "{parts:?}");
        }
    }

    #[test]
    fn fields_and_values_are_read_once() {
        let c = Constraint::from(&["@hostname", "LIKE", "web-[0-9]+"][..]);
        let rule = c.rule().expect("valid");
        assert_eq!(rule.field, Field::Hostname);
        let Operator::Like(re) = &rule.operator else {
            panic!("LIKE");
        };
        assert!(re.is_match("web-12") && !re.is_match("xweb-1"));
        let c = Constraint::from(&["rack", "MAX_PER", "2"][..]);
        assert!(matches!(
            c.rule().expect("valid").operator,
            Operator::MaxPer(2)
        ));
        assert_eq!(
            c.rule().expect("valid").field,
            Field::Attribute("rack".into())
        );
    }

    #[test]
    fn round_trips_as_marathon_json() {
        let json = serde_json::json!(["rack", "GROUP_BY", "2"]);
        let c: Constraint = serde_json::from_value(json.clone()).expect("reads");
        assert_eq!(serde_json::to_value(&c).expect("writes"), json);
        // An invalid one is read too: validation reports it with its path.
        let bad: Constraint = serde_json::from_value(serde_json::json!(["rack"])).expect("reads");
        assert!(bad.rule().is_err());
    }
}
