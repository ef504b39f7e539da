//! The protocol's JSON Schema, compiled once: the envelope of every message, and the
//! params and result of every method.

use std::collections::HashMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use outpost_protocol::methods::METHODS;
use outpost_protocol::{MethodPart, SCHEMA_JSON, method_schema};
use serde_json::Value;

struct Compiled {
    envelope: Validator,
    params: HashMap<&'static str, Validator>,
    results: HashMap<&'static str, Validator>,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let document: Value =
            serde_json::from_str(SCHEMA_JSON).expect("the protocol crate embeds valid JSON");
        let compile = |schema: &Value| {
            jsonschema::validator_for(schema)
                .unwrap_or_else(|e| panic!("the protocol's own schema does not compile: {e}"))
        };
        let mut params = HashMap::new();
        let mut results = HashMap::new();
        for (method, _, _) in METHODS {
            if let Some(schema) = method_schema(method, MethodPart::Params) {
                params.insert(*method, compile(&schema));
            }
            if let Some(schema) = method_schema(method, MethodPart::Result) {
                results.insert(*method, compile(&schema));
            }
        }
        Compiled {
            envelope: compile(&document),
            params,
            results,
        }
    })
}

/// At most this many errors are reported per value.
const MAX_ERRORS: usize = 3;

fn errors(validator: &Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .take(MAX_ERRORS)
        .map(|error| {
            let path = error.instance_path().to_string();
            if path.is_empty() {
                error.to_string()
            } else {
                format!("at {path}: {error}")
            }
        })
        .collect()
}

/// Why `message` is not a valid message of protocol v1 (empty when it is).
pub(crate) fn envelope_errors(message: &Value) -> Vec<String> {
    errors(&compiled().envelope, message)
}

/// Why `params` do not fit `method` (empty when they do, or when the method is unknown).
pub(crate) fn params_errors(method: &str, params: &Value) -> Vec<String> {
    compiled()
        .params
        .get(method)
        .map(|v| errors(v, params))
        .unwrap_or_default()
}

/// Why `result` is not a valid result of `method` (empty when it is, or when the method
/// has no result schema).
pub(crate) fn result_errors(method: &str, result: &Value) -> Vec<String> {
    compiled()
        .results
        .get(method)
        .map(|v| errors(v, result))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_params_and_results_are_checked() {
        assert!(envelope_errors(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"})).is_empty());
        assert!(!envelope_errors(&json!({"jsonrpc": "1.0", "id": 1, "method": "ping"})).is_empty());
        assert!(params_errors("log", &json!({"level": "info", "message": "m"})).is_empty());
        let loud = params_errors("log", &json!({"level": "loud", "message": "m"}));
        assert!(loud[0].contains("/level"), "{loud:?}");
        assert!(result_errors("tool/invoke", &json!({"content": []})).is_empty());
        assert!(!result_errors("tool/invoke", &json!({"content": "text"})).is_empty());
        assert!(result_errors("no/such-method", &json!(1)).is_empty());
    }
}
