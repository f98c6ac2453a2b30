//! The data model: path ids, timestamps, app definitions, groups, instances,
//! and their validation. Pure: no I/O.

pub mod app;
pub mod constraint;
pub mod group;
pub mod health;
pub mod instance;
pub mod path;
pub mod timestamp;
pub mod update;
pub mod validation;

pub use app::{AppDefaults, AppDefinition};
pub use group::RootGroup;
pub use instance::{Instance, TaskState, TaskStateExt};
pub use path::PathId;
pub use timestamp::Timestamp;

use crate::error::{ApiError, Violation};

/// Parses a request body as `T`: syntax errors and type mismatches are a 400
/// `Invalid JSON` naming the field, as Marathon answers.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::InvalidJson(vec![Violation::new("/", format!("error.json.parse: {e}"))])
    })?;
    parse_value(value)
}

/// Like [`parse_json`], from an already parsed value.
pub fn parse_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = json_pointer(e.path());
        let inner = e.into_inner().to_string();
        ApiError::InvalidJson(vec![Violation::new(path, expected_error(&inner))])
    })
}

fn json_pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("/{index}")),
            Segment::Map { key } => out.push_str(&format!("/{key}")),
            Segment::Enum { variant } => out.push_str(&format!("/{variant}")),
            Segment::Unknown => {}
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Marathon (Play JSON) names type errors `error.expected.jsstring` and the like.
fn expected_error(serde_message: &str) -> String {
    let expected = serde_message
        .split("expected ")
        .nth(1)
        .unwrap_or("")
        .to_ascii_lowercase();
    let kind = if expected.contains("string") {
        "error.expected.jsstring"
    } else if expected.contains("sequence") || expected.contains("array") {
        "error.expected.jsarray"
    } else if expected.contains("map") || expected.contains("struct") {
        "error.expected.jsobject"
    } else if expected.contains("bool") {
        "error.expected.jsboolean"
    } else if expected.contains("i64")
        || expected.contains("u64")
        || expected.contains("f64")
        || expected.contains("integer")
        || expected.contains("number")
        || expected.contains("u32")
        || expected.contains("i32")
    {
        "error.expected.jsnumber"
    } else if serde_message.contains("unknown variant") {
        "error.unknown.enum.literal"
    } else {
        return serde_message.to_string();
    };
    kind.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_name_the_field() {
        let err = parse_json::<AppDefinition>(br#"{"id": 5}"#).unwrap_err();
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.body(),
            serde_json::json!({"message": "Invalid JSON", "details": [
                {"path": "/id", "errors": ["error.expected.jsstring"]}]})
        );
        let err = parse_json::<AppDefinition>(br#"{"id": "/a", "cpus": "x"}"#).unwrap_err();
        assert_eq!(err.body()["details"][0]["path"], "/cpus");
        assert_eq!(
            err.body()["details"][0]["errors"][0],
            "error.expected.jsnumber"
        );
        let err =
            parse_json::<AppDefinition>(br#"{"id": "/a", "killSelection": "X"}"#).unwrap_err();
        assert_eq!(err.body()["details"][0]["path"], "/killSelection");
        let err = parse_json::<AppDefinition>(b"{not json").unwrap_err();
        assert_eq!(err.status(), 400);
    }
}
