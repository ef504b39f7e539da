//! How the suite shows what it saw in a check's details: errors, outcomes, responses,
//! ids, and where two JSON values first differ.

use outpost_protocol::{ErrorCode, ErrorObject, RequestId, Response};
use serde_json::Value;

use crate::session::{EventKind, Session};
use crate::traffic::cut;

pub(crate) fn show_error(error: &ErrorObject) -> String {
    format!(
        "error {} ({}): {:?}",
        error.code.code(),
        error.code.name(),
        cut(&error.message, 200)
    )
}

pub(crate) fn show_outcome(outcome: &Result<Value, ErrorObject>) -> String {
    match outcome {
        Ok(result) => {
            let text = result.to_string();
            format!("the result {}", cut(&text, 200))
        }
        Err(e) => show_error(e),
    }
}

pub(crate) fn show_response(response: &Response) -> String {
    let id = response
        .id
        .as_ref()
        .map_or_else(|| "null".to_owned(), ToString::to_string);
    format!("{} (id {id})", show_outcome(&response.result()))
}

/// `a number` or `a string`.
pub(crate) fn id_type(id: &RequestId) -> &'static str {
    match id {
        RequestId::Number(_) => "a number",
        RequestId::String(_) => "a string",
    }
}

pub(crate) fn error_of(response: &Response) -> Option<ErrorCode> {
    response.outcome.as_ref().err().map(|e| e.code)
}

/// Responses the plugin sent since `mark` that answer nothing the suite asked (or answer
/// it twice), as shown in details.
pub(crate) fn unsolicited_since(s: &Session, mark: usize) -> Vec<String> {
    s.events_since(mark)
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Unsolicited(r) | EventKind::Duplicate(r) => Some(show_response(r)),
            _ => None,
        })
        .collect()
}

/// Where two JSON values first differ, for people.
pub(crate) fn first_difference(expected: &Value, got: &Value, path: &str) -> String {
    match (expected, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) if other == value => {}
                    Some(other) => return first_difference(value, other, &format!("{path}.{key}")),
                    None => return format!("{path}.{key} is missing"),
                }
            }
            if let Some(extra) = b.keys().find(|k| !a.contains_key(*k)) {
                return format!("{path}.{extra} was added");
            }
            format!("{path} differs")
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    return first_difference(x, y, &format!("{path}[{i}]"));
                }
            }
            format!("{path} differs")
        }
        _ => format!(
            "{path}: sent {}, got {}",
            cut(&expected.to_string(), 120),
            cut(&got.to_string(), 120)
        ),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn differences_are_located() {
        let a = json!({"x": [1, {"y": "é"}], "z": 1});
        assert_eq!(
            first_difference(&a, &json!({"x": [1, {"y": "e"}], "z": 1}), "value"),
            "value.x[1].y: sent \"é\", got \"e\""
        );
        assert_eq!(
            first_difference(&a, &json!({"x": [1, {"y": "é"}]}), "value"),
            "value.z is missing"
        );
        assert_eq!(
            first_difference(&json!([1.5]), &json!([1]), "v"),
            "v[0]: sent 1.5, got 1"
        );
    }
}
