//! The little the suite reads from a plugin's manifest (`openclaw.plugin.json`, JSON5):
//! the id, the config schema and its defaults, what the manifest declares, and the
//! `outpost` launch block. The supervisor reads manifests far more thoroughly; the suite
//! reads only what it needs to start the plugin as the host would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use outpost_protocol::ManifestField;
use serde_json::{Map, Value};

/// The manifest's file name in a plugin root.
pub(crate) const MANIFEST_FILE: &str = "openclaw.plugin.json";
/// Larger manifests are refused, as the host refuses them.
const MAX_MANIFEST_BYTES: u64 = 256 * 1024;

/// Why a plugin directory cannot be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// No manifest where one was expected.
    #[error("no {MANIFEST_FILE} in {dir}: --plugin-dir must be a plugin's root directory")]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The manifest.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Over the size limit.
    #[error("{path} is {size} bytes; manifests are limited to {MAX_MANIFEST_BYTES} bytes")]
    TooLarge {
        /// The manifest.
        path: PathBuf,
        /// Its size.
        size: u64,
    },
    /// Not JSON5.
    #[error("{path} is not valid JSON5: {message}")]
    Syntax {
        /// The manifest.
        path: PathBuf,
        /// The parser's message, with the position.
        message: String,
    },
    /// A field the suite needs is missing or has the wrong type.
    #[error("{path}: {message}")]
    Field {
        /// The manifest.
        path: PathBuf,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// The parts of a manifest the suite uses.
#[derive(Clone, Debug)]
pub(crate) struct Manifest {
    pub(crate) id: String,
    pub(crate) config_schema: Value,
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) env_passthrough: Vec<String>,
    pub(crate) env_set: BTreeMap<String, String>,
    raw: Map<String, Value>,
}

impl Manifest {
    /// Reads `dir/openclaw.plugin.json`.
    pub(crate) fn read(dir: &Path) -> Result<Self, ManifestError> {
        let path = dir.join(MANIFEST_FILE);
        let metadata = std::fs::metadata(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ManifestError::Missing {
                    dir: dir.to_owned(),
                }
            } else {
                ManifestError::Read {
                    path: path.clone(),
                    source,
                }
            }
        })?;
        if metadata.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge {
                path,
                size: metadata.len(),
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        Self::parse(&path, &text)
    }

    pub(crate) fn parse(path: &Path, text: &str) -> Result<Self, ManifestError> {
        let value: Value = json5::from_str(text).map_err(|e| ManifestError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let field = |message: String| ManifestError::Field {
            path: path.to_owned(),
            message,
        };
        let Value::Object(raw) = value else {
            return Err(field("the manifest must be a JSON object".to_owned()));
        };
        let id = match raw.get("id") {
            Some(Value::String(id)) if !id.trim().is_empty() => id.clone(),
            _ => return Err(field("`id` must be a non-empty string".to_owned())),
        };
        let config_schema = match raw.get("configSchema") {
            Some(schema @ Value::Object(_)) => schema.clone(),
            Some(_) => return Err(field("`configSchema` must be an object".to_owned())),
            None => {
                return Err(field(
                    "`configSchema` is required (use {\"type\": \"object\"} for a plugin without config)"
                        .to_owned(),
                ));
            }
        };
        let Some(Value::Object(block)) = raw.get("outpost") else {
            return Err(field(
                "no `outpost` block: add {\"outpost\": {\"command\": ..., \"args\": [...]}} to say how to start the plugin (docs/protocol.md §3)"
                    .to_owned(),
            ));
        };
        let command = match block.get("command") {
            Some(Value::String(c)) if !c.trim().is_empty() => c.clone(),
            _ => {
                return Err(field(
                    "`outpost.command` must be a non-empty string".to_owned(),
                ));
            }
        };
        let args = strings(block.get("args"))
            .ok_or_else(|| field("`outpost.args` must be an array of strings".to_owned()))?;
        let env = block.get("env").and_then(Value::as_object);
        let env_passthrough = strings(env.and_then(|e| e.get("passthrough"))).ok_or_else(|| {
            field("`outpost.env.passthrough` must be an array of variable names".to_owned())
        })?;
        let mut env_set = BTreeMap::new();
        if let Some(set) = env.and_then(|e| e.get("set")) {
            let Value::Object(set) = set else {
                return Err(field(
                    "`outpost.env.set` must be an object of strings".to_owned(),
                ));
            };
            for (name, value) in set {
                let Value::String(value) = value else {
                    return Err(field(format!("`outpost.env.set.{name}` must be a string")));
                };
                env_set.insert(name.clone(), value.clone());
            }
        }
        Ok(Self {
            id,
            config_schema,
            command,
            args,
            env_passthrough,
            env_set,
            raw,
        })
    }

    /// The ids the manifest declares in `field`; `None` when the field is absent.
    pub(crate) fn declared(&self, field: ManifestField) -> Option<Vec<String>> {
        let value = match field {
            ManifestField::TopLevel(key) => self.raw.get(key),
            ManifestField::Contracts(key) => self
                .raw
                .get("contracts")
                .and_then(Value::as_object)
                .and_then(|c| c.get(key)),
        }?;
        Some(
            value
                .as_array()?
                .iter()
                .filter_map(|item| match item {
                    Value::String(id) => Some(id.clone()),
                    // Lenient, as the host is: `{ "id": ... }` entries count too.
                    Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                })
                .collect(),
        )
    }
}

/// `None` for a present value of the wrong type; an absent value is an empty list.
fn strings(value: Option<&Value>) -> Option<Vec<String>> {
    match value {
        None | Some(Value::Null) => Some(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect(),
        Some(_) => None,
    }
}

/// Why the plugin's config cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `--config-json` is not a JSON object.
    #[error("--config-json must be a JSON object: {0}")]
    NotAnObject(String),
    /// The manifest's `configSchema` does not compile.
    #[error("the manifest's configSchema is not a usable JSON Schema: {0}")]
    BadSchema(String),
    /// The config, defaults applied, does not validate.
    #[error(
        "the plugin's config does not satisfy the manifest's configSchema ({0}); pass the missing values with --config-json '{{...}}'"
    )]
    Invalid(String),
}

/// The config the host would send: `given` (or `{}`) with the schema's defaults filled
/// in, validated against the schema.
pub(crate) fn build_config(
    schema: &Value,
    given: Option<&Value>,
) -> Result<Map<String, Value>, ConfigError> {
    let mut config = match given {
        None => Value::Object(Map::new()),
        Some(value @ Value::Object(_)) => value.clone(),
        Some(other) => return Err(ConfigError::NotAnObject(format!("got {other}"))),
    };
    apply_defaults(schema, &mut config);
    let validator =
        jsonschema::validator_for(schema).map_err(|e| ConfigError::BadSchema(e.to_string()))?;
    let errors: Vec<String> = validator
        .iter_errors(&config)
        .take(5)
        .map(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{at}: {e}")
            }
        })
        .collect();
    if !errors.is_empty() {
        return Err(ConfigError::Invalid(errors.join("; ")));
    }
    match config {
        Value::Object(map) => Ok(map),
        _ => unreachable!("the config started as an object"),
    }
}

/// Fills in `default`s of `properties`, recursively, for objects that exist (as Ajv's
/// `useDefaults` does: a missing parent object is not created).
fn apply_defaults(schema: &Value, value: &mut Value) {
    let (Some(properties), Value::Object(object)) =
        (schema.get("properties").and_then(Value::as_object), value)
    else {
        return;
    };
    for (name, property) in properties {
        if !object.contains_key(name)
            && let Some(default) = property.get("default")
        {
            object.insert(name.clone(), default.clone());
        }
        if let Some(child) = object.get_mut(name) {
            apply_defaults(property, child);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Manifest::parse(Path::new("openclaw.plugin.json"), text)
    }

    #[test]
    fn a_json5_manifest_with_an_outpost_block_is_read() {
        let manifest = parse(
            r#"{
                // comments and trailing commas are fine
                id: "notes",
                configSchema: {type: "object"},
                contracts: {tools: ["note_add"], webSearchProviders: ["g"]},
                channels: ["chat"],
                outpost: {command: "python3", args: ["main.py"],
                          env: {passthrough: ["API_KEY"], set: {MODE: "dev"}}},
            }"#,
        )
        .unwrap();
        assert_eq!(manifest.id, "notes");
        assert_eq!(manifest.command, "python3");
        assert_eq!(manifest.args, ["main.py"]);
        assert_eq!(manifest.env_passthrough, ["API_KEY"]);
        assert_eq!(manifest.env_set["MODE"], "dev");
        assert_eq!(
            manifest.declared(ManifestField::Contracts("tools")),
            Some(vec!["note_add".to_owned()])
        );
        assert_eq!(
            manifest.declared(ManifestField::TopLevel("channels")),
            Some(vec!["chat".to_owned()])
        );
        assert_eq!(
            manifest.declared(ManifestField::TopLevel("providers")),
            None
        );
    }

    #[test]
    fn bad_manifests_are_explained() {
        let cases = [
            ("{", "not valid JSON5"),
            ("[]", "must be a JSON object"),
            (r#"{"configSchema": {}}"#, "`id`"),
            (r#"{"id": "x"}"#, "`configSchema` is required"),
            (r#"{"id": "x", "configSchema": {}}"#, "no `outpost` block"),
            (
                r#"{"id": "x", "configSchema": {}, "outpost": {"command": "p", "args": "a b"}}"#,
                "`outpost.args`",
            ),
            (
                r#"{"id": "x", "configSchema": {}, "outpost": {"command": "p", "env": {"set": {"A": 1}}}}"#,
                "`outpost.env.set.A`",
            ),
        ];
        for (text, expected) in cases {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }

    #[test]
    fn config_gets_defaults_and_is_validated() {
        let schema = json!({
            "type": "object",
            "properties": {
                "maxNotes": {"type": "integer", "default": 100},
                "store": {"type": "object", "properties": {"path": {"type": "string", "default": "notes.db"}}},
                "absent": {"type": "object", "properties": {"x": {"default": 1}}}
            },
            "required": ["maxNotes"]
        });
        let config = build_config(&schema, None).unwrap();
        assert_eq!(Value::Object(config), json!({"maxNotes": 100}));
        let config = build_config(&schema, Some(&json!({"store": {}}))).unwrap();
        assert_eq!(
            Value::Object(config),
            json!({"maxNotes": 100, "store": {"path": "notes.db"}})
        );
        let error = build_config(&schema, Some(&json!({"maxNotes": "many"}))).unwrap_err();
        assert!(error.to_string().contains("/maxNotes"), "{error}");
        let required = json!({"type": "object", "required": ["token"]});
        let error = build_config(&required, None).unwrap_err();
        assert!(error.to_string().contains("--config-json"), "{error}");
        assert!(build_config(&schema, Some(&json!([1]))).is_err());
    }
}
