//! Plugin config against the manifest's `configSchema`: offline, defaults applied,
//! every error with its path.
//!
//! As in OpenClaw: a missing `config` is validated as `{}`; defaults written in the
//! schema (`properties.*.default`, through `allOf`, local `$ref`s and array items) fill
//! absent keys before validation, so "required" errors name only keys that are really
//! missing; `format` is an annotation except `uri`. Nothing is fetched: a `$ref` to
//! another document makes the schema unusable, with a message saying so.

use serde_json::{Map, Value};

use super::diagnostic::{index_path, join_path};

/// `format` values OpenClaw treats as annotations only.
const ANNOTATION_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "duration",
    "email",
    "hostname",
    "idn-email",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "iri-reference",
    "iri",
    "json-pointer-uri-fragment",
    "json-pointer",
    "regex",
    "relative-json-pointer",
    "time",
    "uri-reference",
    "uri-template",
    "url",
    "uuid",
];

/// How deep defaults are applied, against self-referencing schemas.
const MAX_DEFAULT_DEPTH: usize = 32;

/// Refuses every remote reference.
struct Offline;

impl jsonschema::Retrieve for Offline {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!(
            "the schema refers to {uri}, and Outpost never fetches schemas: inline it under `$defs`"
        )
        .into())
    }
}

/// A compiled `configSchema`.
pub(crate) struct Schema {
    validator: jsonschema::Validator,
    /// The schema as written, for defaults.
    document: Value,
    /// Dotted config paths whose values problems never show.
    sensitive: Vec<String>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").finish_non_exhaustive()
    }
}

/// One mismatch between a config and its schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Problem {
    /// Dotted path from the config root (`region`, `servers[0].url`; empty for the root).
    pub(crate) path: String,
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl Schema {
    /// Compiles a schema; the error says why it is unusable.
    pub(crate) fn compile(schema: &Map<String, Value>) -> Result<Self, String> {
        let schema = Value::Object(schema.clone());
        let mut options = jsonschema::options()
            .with_retriever(Offline)
            .should_validate_formats(true);
        for format in ANNOTATION_FORMATS {
            options = options.with_format(*format, |_: &str| true);
        }
        let validator = options.build(&schema).map_err(|error| error.to_string())?;
        let mut sensitive = Vec::new();
        schema_secrets(&schema, "", 0, &mut sensitive);
        Ok(Self {
            validator,
            document: schema,
            sensitive,
        })
    }

    /// Applies defaults to `config` (absent: `{}`) and validates it. Returns the config
    /// with defaults and every problem, sorted by path.
    pub(crate) fn check(
        &self,
        config: Option<&Map<String, Value>>,
    ) -> (Map<String, Value>, Vec<Problem>) {
        let mut value = Value::Object(config.cloned().unwrap_or_default());
        apply_defaults(&self.document, &self.document, &mut value, 0);
        let mut problems = Vec::new();
        for error in self.validator.iter_errors(&value) {
            let base = dotted(&value, error.instance_path().as_str());
            match error.kind() {
                jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected }
                | jsonschema::error::ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                    // The keys the schema object holding this keyword does know.
                    let keyword = error.schema_path().as_str();
                    let known: Vec<&str> = keyword
                        .rsplit_once('/')
                        .and_then(|(parent, _)| self.document.pointer(parent))
                        .and_then(|schema| schema.get("properties")?.as_object())
                        .map(|properties| properties.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    for key in unexpected {
                        let close = known
                            .iter()
                            .map(|known| (strsim::damerau_levenshtein(key, known), *known))
                            .filter(|(distance, known)| {
                                *distance <= 2 || known.eq_ignore_ascii_case(key)
                            })
                            .min();
                        let hint = close
                            .map(|(_, known)| format!("; did you mean `{known}`?"))
                            .unwrap_or_default();
                        problems.push(Problem {
                            path: join_path(&base, key),
                            key: Some(key.clone()),
                            message: format!(
                                "unknown key `{key}`: the plugin's configSchema does not allow it{hint}"
                            ),
                        });
                    }
                }
                jsonschema::error::ValidationErrorKind::Required { property } => {
                    let key = property
                        .as_str()
                        .map_or_else(|| property.to_string(), str::to_owned);
                    problems.push(Problem {
                        path: join_path(&base, &key),
                        message: format!("required key `{key}` is missing"),
                        key: Some(key),
                    });
                }
                _ => problems.push(Problem {
                    key: last_object_key(&value, error.instance_path().as_str()),
                    message: self.shown(&error.to_string(), error.instance(), &base),
                    path: base,
                }),
            }
        }
        problems.sort_by(|a, b| a.path.cmp(&b.path));
        let Value::Object(map) = value else {
            unreachable!("an object stays an object");
        };
        (map, problems)
    }
}

impl Schema {
    /// Marks the config paths whose values a problem never shows: the dotted paths
    /// marked `sensitive` in the manifest's `uiHints`.
    pub(crate) fn with_hints(mut self, hints: &Map<String, Value>) -> Self {
        self.sensitive.extend(
            hints
                .iter()
                .filter(|(_, hint)| hint.get("sensitive").and_then(Value::as_bool) == Some(true))
                .map(|(path, _)| path.clone()),
        );
        self
    }

    /// A validator's message with the failing value hidden when it is a secret (a key
    /// named like one, a path marked sensitive, a `writeOnly` or `password` property)
    /// and always when it is an object or an array (which may hold secrets).
    fn shown(&self, message: &str, instance: &Value, path: &str) -> String {
        let replacement = match instance {
            Value::Object(_) => "the object",
            Value::Array(_) => "the array",
            _ if self.is_secret(path) => REDACTED,
            _ => return message.to_owned(),
        };
        let text = instance.to_string();
        if message.contains(&text) {
            message.replace(&text, replacement)
        } else {
            format!("the value at `{path}` does not match the configSchema")
        }
    }

    fn is_secret(&self, path: &str) -> bool {
        path.split('.')
            .map(|segment| segment.split('[').next().unwrap_or(segment))
            .any(is_secret_key)
            || self.sensitive.iter().any(|marked| {
                path == marked
                    || path
                        .strip_prefix(marked.as_str())
                        .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
            })
    }
}

/// What replaces a secret wherever config is shown.
pub(crate) const REDACTED: &str = "[redacted]";

/// Config keys whose values are never shown, even without a `sensitive` UI hint.
const SECRET_KEYS: &[&str] = &[
    "apikey",
    "api_key",
    "token",
    "accesstoken",
    "access_token",
    "authtoken",
    "auth_token",
    "secret",
    "clientsecret",
    "client_secret",
    "password",
    "privatekey",
    "private_key",
];

/// Whether a config key names a secret (`apiKey`, `token`, `password`...).
pub(crate) fn is_secret_key(key: &str) -> bool {
    SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str())
}

/// The dotted paths of properties a schema marks secret (`writeOnly`, or the
/// `password` format).
fn schema_secrets(schema: &Value, path: &str, depth: usize, found: &mut Vec<String>) {
    let Some(Value::Object(properties)) = schema.get("properties") else {
        return;
    };
    if depth > MAX_DEFAULT_DEPTH {
        return;
    }
    for (key, property) in properties {
        let here = join_path(path, key);
        if property.get("writeOnly").and_then(Value::as_bool) == Some(true)
            || property.get("format").and_then(Value::as_str) == Some("password")
        {
            found.push(here.clone());
        }
        schema_secrets(property, &here, depth + 1, found);
    }
}

/// Fills absent object members from `default`s in the schema.
fn apply_defaults(schema: &Value, root: &Value, value: &mut Value, depth: usize) {
    let Value::Object(schema) = schema else {
        return;
    };
    if depth > MAX_DEFAULT_DEPTH {
        return;
    }
    if let Some(target) = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|reference| reference.strip_prefix('#'))
        .and_then(|pointer| root.pointer(pointer))
    {
        apply_defaults(target, root, value, depth + 1);
    }
    if let Some(Value::Array(branches)) = schema.get("allOf") {
        for branch in branches {
            apply_defaults(branch, root, value, depth + 1);
        }
    }
    match value {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = schema.get("properties") {
                for (key, property) in properties {
                    if !object.contains_key(key)
                        && let Some(default) = property.get("default")
                    {
                        object.insert(key.clone(), default.clone());
                    }
                    if let Some(member) = object.get_mut(key) {
                        apply_defaults(property, root, member, depth + 1);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(Value::Array(prefix)) = schema.get("prefixItems") {
                for (item, item_schema) in items.iter_mut().zip(prefix) {
                    apply_defaults(item_schema, root, item, depth + 1);
                }
            }
            if let Some(item_schema @ Value::Object(_)) = schema.get("items") {
                for item in items {
                    apply_defaults(item_schema, root, item, depth + 1);
                }
            }
        }
        _ => {}
    }
}

/// A JSON pointer as a dotted path, walking `value` to tell array indexes from keys.
fn dotted(value: &Value, pointer: &str) -> String {
    let mut path = String::new();
    let mut current = Some(value);
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        match current {
            Some(Value::Array(items)) => {
                let index = segment.parse::<usize>().ok();
                path = index_path(&path, index.unwrap_or_default());
                current = index.and_then(|index| items.get(index));
            }
            other => {
                path = join_path(&path, &segment);
                current = other.and_then(|object| object.get(&segment));
            }
        }
    }
    path
}

/// The last object key along a JSON pointer.
fn last_object_key(value: &Value, pointer: &str) -> Option<String> {
    let mut key = None;
    let mut current = Some(value);
    for segment in pointer.split('/').skip(1) {
        let segment = segment.replace("~1", "/").replace("~0", "~");
        match current {
            Some(Value::Array(items)) => {
                current = segment
                    .parse::<usize>()
                    .ok()
                    .and_then(|index| items.get(index));
            }
            other => {
                current = other.and_then(|object| object.get(&segment));
                key = Some(segment);
            }
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_deepest_accepted_schema_compiles_and_checks_on_a_small_stack() {
        // Manifests nest at most 128 levels (text::parse_json5); a schema that deep
        // must compile and check on a 2 MiB stack, a tokio worker's.
        let depth = outpost_protocol::nesting::MAX_NESTING - 3;
        let text = format!(
            "{}{}",
            r#"{"items":"#.repeat(depth),
            "{}".to_owned() + &"}".repeat(depth)
        );
        let value: Value = serde_json::from_str(&text).unwrap();
        let config = format!(
            r#"{{"a":{}{}}}"#,
            "[".repeat(depth - 2),
            "]".repeat(depth - 2)
        );
        let config: Value = serde_json::from_str(&config).unwrap();
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let Value::Object(map) = json!({"type": "object", "properties": {"a": value}})
                else {
                    unreachable!()
                };
                let schema = Schema::compile(&map).unwrap();
                let Value::Object(config) = config else {
                    unreachable!()
                };
                let (_, problems) = schema.check(Some(&config));
                assert!(problems.is_empty());
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn failing_secrets_are_never_shown() {
        let schema = schema(json!({
            "type": "object",
            "minProperties": 9,
            "properties": {
                "password": {"type": "integer"},
                "region": {"type": "integer"},
                "pin": {"type": "string", "format": "password", "maxLength": 2},
                "twilio": {"type": "object", "properties": {"sid": {"type": "integer"}}},
                "nested": {"type": "array", "maxItems": 0},
            }
        }))
        .with_hints(
            json!({"twilio.sid": {"sensitive": true}})
                .as_object()
                .unwrap(),
        );
        let config = json!({
            "password": "hunter2",
            "region": "eu-west",
            "pin": "1234",
            "twilio": {"sid": "AC-secret"},
            "nested": [{"token": "tok-secret"}],
        });
        let (_, problems) = schema.check(config.as_object());
        let text: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        let all = text.join("\n");
        for secret in ["hunter2", "1234", "AC-secret", "tok-secret"] {
            assert!(!all.contains(secret), "{secret} shown:\n{all}");
        }
        assert!(all.contains("password: [redacted] is not of type"), "{all}");
        // Values that are not secret are still shown: they are what the operator
        // needs to see.
        assert!(all.contains("\"eu-west\" is not of type"), "{all}");
        assert!(
            all.contains(": the object has less than 9 properties"),
            "{all}"
        );
    }

    fn schema(value: Value) -> Schema {
        let Value::Object(map) = value else {
            panic!("not an object")
        };
        Schema::compile(&map).unwrap()
    }

    #[test]
    fn defaults_fill_absent_keys_before_validation() {
        let schema = schema(json!({
            "type": "object",
            "required": ["region", "retries"],
            "properties": {
                "region": {"type": "string", "default": "eu"},
                "retries": {"type": "integer"},
                "server": {"$ref": "#/$defs/server", "default": {}},
                "list": {"type": "array", "items": {"type": "object", "properties": {"on": {"default": true}}}}
            },
            "$defs": {"server": {"type": "object", "properties": {"port": {"default": 443}}}}
        }));
        let config = json!({"list": [{}, {"on": false}]});
        let (config, problems) = schema.check(config.as_object());
        assert_eq!(config["region"], "eu");
        assert_eq!(config["server"], json!({"port": 443}));
        assert_eq!(config["list"], json!([{"on": true}, {"on": false}]));
        assert_eq!(
            problems,
            [Problem {
                path: "retries".into(),
                key: Some("retries".into()),
                message: "required key `retries` is missing".into()
            }]
        );
    }

    #[test]
    fn every_error_has_its_path_and_key() {
        let schema = schema(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "mode": {"enum": ["a", "b"]},
                "servers": {"type": "array", "items": {"type": "object", "properties": {"url": {"type": "string", "format": "uri"}}}},
                "email": {"type": "string", "format": "email"}
            }
        }));
        let config = json!({
            "mode": "c",
            "servers": [{"url": "https://ok.example"}, {"url": "not a uri"}],
            "email": "not an email but formats are annotations",
            "extra": 1,
            "more": 2
        });
        let (_, problems) = schema.check(config.as_object());
        let found: Vec<(&str, Option<&str>)> = problems
            .iter()
            .map(|problem| (problem.path.as_str(), problem.key.as_deref()))
            .collect();
        assert_eq!(
            found,
            [
                ("extra", Some("extra")),
                ("mode", Some("mode")),
                ("more", Some("more")),
                ("servers[1].url", Some("url")),
            ],
            "{problems:#?}"
        );
    }

    #[test]
    fn an_unknown_key_close_to_a_known_one_gets_a_suggestion() {
        let schema = schema(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "greeting": {"type": "string"},
                "server": {"$ref": "#/$defs/server"}
            },
            "$defs": {"server": {"type": "object", "additionalProperties": false, "properties": {"timeoutMs": {}}}}
        }));
        let config = json!({"greting": "hi", "unrelated": 1, "server": {"timeoutms": 5}});
        let (_, problems) = schema.check(config.as_object());
        let messages: Vec<String> = problems
            .iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect();
        assert_eq!(
            messages,
            [
                "greting: unknown key `greting`: the plugin's configSchema does not allow it; did you mean `greeting`?",
                "server.timeoutms: unknown key `timeoutms`: the plugin's configSchema does not allow it; did you mean `timeoutMs`?",
                "unrelated: unknown key `unrelated`: the plugin's configSchema does not allow it",
            ],
        );
    }

    #[test]
    fn remote_refs_make_the_schema_unusable() {
        let Value::Object(map) = json!({"$ref": "https://example.com/schema.json"}) else {
            unreachable!()
        };
        let error = Schema::compile(&map).unwrap_err();
        assert!(error.contains("never fetches"), "{error}");
    }

    #[test]
    fn a_missing_config_is_an_empty_object() {
        let schema = schema(json!({"type": "object", "properties": {"a": {"default": 1}}}));
        let (config, problems) = schema.check(None);
        assert_eq!(Value::Object(config), json!({"a": 1}));
        assert!(problems.is_empty());
    }
}
