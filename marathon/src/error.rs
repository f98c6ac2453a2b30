//! API errors in Marathon's shapes.
//!
//! Validation failures are 422 `{"message": "Object is not valid", "details":
//! [{"path": "/field", "errors": ["..."]}]}`; malformed JSON is 400 `{"message":
//! "Invalid JSON", "details": [...]}`; a missing app is 404 `{"message": "App
//! '/x' does not exist"}`; a change blocked by a running deployment is 409
//! naming the deployments.

use serde::Serialize;

/// One invalid field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// JSON-pointer-like path of the field (`/container/docker/image`, `/` for the whole object).
    pub path: String,
    /// Marathon-style messages.
    pub errors: Vec<String>,
}

impl Violation {
    /// A violation with one message.
    pub fn new(path: impl Into<String>, error: impl Into<String>) -> Self {
        Violation {
            path: path.into(),
            errors: vec![error.into()],
        }
    }
}

/// Merges violations of the same path, keeping the first-seen order.
pub fn merge_violations(violations: Vec<Violation>) -> Vec<Violation> {
    let mut merged: Vec<Violation> = Vec::new();
    for v in violations {
        match merged.iter_mut().find(|m| m.path == v.path) {
            Some(m) => {
                for e in v.errors {
                    if !m.errors.contains(&e) {
                        m.errors.push(e);
                    }
                }
            }
            None => merged.push(v),
        }
    }
    merged
}

/// Why an API call failed; each maps to one HTTP status and body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// 422: the object is not valid.
    #[error("Object is not valid")]
    Invalid(Vec<Violation>),
    /// 400: the body is not JSON or not of the right types.
    #[error("Invalid JSON")]
    InvalidJson(Vec<Violation>),
    /// 400 with a plain message.
    #[error("{0}")]
    BadRequest(String),
    /// 404 with Marathon's message.
    #[error("{0}")]
    NotFound(String),
    /// 409: the object exists already.
    #[error("{0}")]
    Exists(String),
    /// 409: locked by running deployments (override with `force=true`).
    #[error("{message}")]
    Locked {
        /// Marathon's message.
        message: String,
        /// The deployments holding the lock.
        deployments: Vec<String>,
    },
    /// 405: the path does not take this method; these it takes (`Allow`).
    #[error("HTTP method not allowed for this resource")]
    MethodNotAllowed(&'static [&'static str]),
    /// 503: this instance cannot serve the call now (no leader, store down).
    #[error("{0}")]
    Unavailable(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 with one violation.
    pub fn invalid(path: impl Into<String>, error: impl Into<String>) -> Self {
        ApiError::Invalid(vec![Violation::new(path, error)])
    }

    /// `App '/x' does not exist`.
    pub fn unknown_app(id: &impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("App '{id}' does not exist"))
    }

    /// `Group '/x' does not exist`.
    pub fn unknown_group(id: &impl std::fmt::Display) -> Self {
        ApiError::NotFound(format!("Group '{id}' does not exist"))
    }

    /// The 409 Marathon gives when running deployments touch what a change touches.
    pub fn locked(deployments: Vec<String>) -> Self {
        let first = deployments.first().cloned().unwrap_or_default();
        ApiError::Locked {
            message: format!(
                "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/{first}'."
            ),
            deployments,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Invalid(_) => 422,
            ApiError::InvalidJson(_) | ApiError::BadRequest(_) => 400,
            ApiError::NotFound(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::Exists(_) | ApiError::Locked { .. } => 409,
            ApiError::Unavailable(_) => 503,
            ApiError::Internal(_) => 500,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            ApiError::Invalid(details) => {
                json!({"message": "Object is not valid", "details": details})
            }
            ApiError::InvalidJson(details) => {
                json!({"message": "Invalid JSON", "details": details})
            }
            ApiError::Locked {
                message,
                deployments,
            } => json!({
                "message": message,
                "deployments": deployments.iter().map(|id| json!({"id": id})).collect::<Vec<_>>(),
            }),
            other => json!({"message": other.to_string()}),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = ApiError::invalid(
            "/upgradeStrategy/minimumHealthCapacity",
            "is greater than 1",
        );
        assert_eq!(e.status(), 422);
        assert_eq!(
            e.body(),
            serde_json::json!({"message": "Object is not valid", "details": [
                {"path": "/upgradeStrategy/minimumHealthCapacity", "errors": ["is greater than 1"]}]})
        );
        let e = ApiError::unknown_app(&"/not_existent");
        assert_eq!(e.body()["message"], "App '/not_existent' does not exist");
        let e = ApiError::locked(vec!["d1".into()]);
        assert_eq!(e.status(), 409);
        assert_eq!(e.body()["deployments"][0]["id"], "d1");
    }

    #[test]
    fn merges_same_path() {
        let merged = merge_violations(vec![
            Violation::new("/a", "x"),
            Violation::new("/b", "y"),
            Violation::new("/a", "z"),
        ]);
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].errors, vec!["x", "z"]);
    }
}
