//! Arguments for a tool call, made up from the tool's `inputSchema`: the required
//! members only, each with the simplest value of its type that the schema's keywords
//! allow (`enum`, `const`, `default`, `examples`, lengths, bounds). Local `$ref`s are
//! followed; `pattern` cannot be honoured in general, so the result is validated and
//! the caller is told when it does not fit.

use serde_json::{Map, Number, Value, json};

/// How deep nested schemas are followed before giving up with `null`.
const MAX_DEPTH: usize = 16;

/// Arguments for a tool with schema `schema`, and whether they validate against it.
pub(crate) fn arguments_for(schema: &Value) -> (Value, bool) {
    let value = generate(schema, schema, 0);
    let value = if value.is_object() { value } else { json!({}) };
    let valid = jsonschema::validator_for(schema).is_ok_and(|v| v.is_valid(&value));
    (value, valid)
}

fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..MAX_DEPTH {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            return schema;
        };
        let Some(pointer) = reference.strip_prefix('#') else {
            return schema;
        };
        match root.pointer(pointer) {
            Some(target) => schema = target,
            None => return schema,
        }
    }
    schema
}

fn generate(root: &Value, schema: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    let schema = resolve(root, schema);
    if let Some(value) = schema.get("const") {
        return value.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    if let Some(example) = schema
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return example.clone();
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(first) = schema
            .get(combinator)
            .and_then(Value::as_array)
            .and_then(|s| s.first())
            && schema.get("type").is_none()
            && schema.get("properties").is_none()
        {
            return generate(root, first, depth + 1);
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() || schema.get("required").is_some() => "object",
        _ => "string",
    };
    match kind {
        "object" => object(root, schema, depth),
        "array" => array(root, schema, depth),
        "string" => string(schema),
        "integer" => number(schema, true),
        "number" => number(schema, false),
        "boolean" => Value::Bool(true),
        _ => Value::Null,
    }
}

fn object(root: &Value, schema: &Value, depth: usize) -> Value {
    let properties = schema.get("properties").and_then(Value::as_object);
    let mut out = Map::new();
    for name in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let property = properties
            .and_then(|p| p.get(name))
            .cloned()
            .unwrap_or_else(|| json!({}));
        out.insert(name.to_owned(), generate(root, &property, depth + 1));
    }
    Value::Object(out)
}

fn array(root: &Value, schema: &Value, depth: usize) -> Value {
    let min = schema.get("minItems").and_then(Value::as_u64).unwrap_or(0);
    let items = schema.get("items").cloned().unwrap_or_else(|| json!({}));
    let count = usize::try_from(min.min(16)).unwrap_or(0);
    Value::Array(
        (0..count)
            .map(|_| generate(root, &items, depth + 1))
            .collect(),
    )
}

fn string(schema: &Value) -> Value {
    let base = match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T00:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "00:00:00Z",
        Some("email") => "conformance@example.com",
        Some("uri" | "url" | "iri") => "https://example.com/conformance",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("hostname") => "example.com",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        _ => "conformance",
    };
    let min = schema
        .get("minLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let max = schema
        .get("maxLength")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(usize::MAX);
    let mut text = base.to_owned();
    while text.chars().count() < min {
        text.push('x');
    }
    if text.chars().count() > max {
        text = text.chars().take(max).collect();
    }
    Value::String(text)
}

fn number(schema: &Value, integer: bool) -> Value {
    let get = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value = 1.0_f64;
    if let Some(min) = get("minimum") {
        value = value.max(min);
    }
    if let Some(min) = get("exclusiveMinimum")
        && value <= min
    {
        value = if integer {
            min.floor() + 1.0
        } else {
            min + 1.0
        };
    }
    if let Some(max) = get("maximum") {
        value = value.min(max);
    }
    if let Some(max) = get("exclusiveMaximum")
        && value >= max
    {
        value = if integer { max.ceil() - 1.0 } else { max - 0.5 };
    }
    if let Some(step) = get("multipleOf").filter(|s| *s > 0.0) {
        value = (value / step).ceil() * step;
    }
    if integer {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "schema bounds are small integers in practice; out-of-range values saturate"
        )]
        let int = value.round() as i64;
        Value::Number(int.into())
    } else {
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_members_get_simple_values_that_validate() {
        let cases = [
            (json!({"type": "object"}), json!({})),
            (
                json!({"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}, "required": ["text"]}),
                json!({"text": "conformance"}),
            ),
            (
                json!({"type": "object", "properties": {
                    "mode": {"enum": ["fast", "slow"]},
                    "count": {"type": "integer", "minimum": 5, "maximum": 9},
                    "ratio": {"type": "number", "exclusiveMaximum": 1},
                    "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                    "when": {"type": "string", "format": "date-time"},
                    "code": {"type": "string", "minLength": 12, "maxLength": 12},
                    "flag": {"type": ["null", "boolean"]},
                    "nested": {"type": "object", "properties": {"x": {"const": 3}}, "required": ["x"]}
                }, "required": ["mode", "count", "ratio", "tags", "when", "code", "flag", "nested"]}),
                json!({
                    "mode": "fast", "count": 5, "ratio": 0.5, "tags": ["conformance", "conformance"],
                    "when": "2026-01-01T00:00:00Z", "code": "conformancex", "flag": true, "nested": {"x": 3}
                }),
            ),
            (
                json!({"type": "object", "$defs": {"city": {"type": "string", "default": "Paris"}},
                       "properties": {"city": {"$ref": "#/$defs/city"}}, "required": ["city"]}),
                json!({"city": "Paris"}),
            ),
            (
                json!({"type": "object", "properties": {"id": {"anyOf": [{"type": "integer"}, {"type": "string"}]}}, "required": ["id"]}),
                json!({"id": 1}),
            ),
        ];
        for (schema, expected) in cases {
            let (value, valid) = arguments_for(&schema);
            assert_eq!(value, expected, "{schema}");
            assert!(valid, "{schema} -> {value}");
        }
    }

    #[test]
    fn unsatisfiable_patterns_are_reported() {
        let schema = json!({"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}, "required": ["zip"]});
        let (value, valid) = arguments_for(&schema);
        assert_eq!(value, json!({"zip": "conformance"}));
        assert!(!valid);
    }
}
