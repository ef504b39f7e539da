//! Tools' compiled `inputSchema`s, kept by tool name: admission compiles a schema once
//! to check it, and calls validate arguments with the same compiled schema. A plugin
//! that registers the same schema again (a restart, a reload) is not compiled again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jsonschema::Validator;
use outpost_protocol::Registration;
use serde_json::Value;

/// One tool name's compiled schema.
#[derive(Debug)]
struct Compiled {
    /// The schema it was compiled from.
    schema: Value,
    /// The registration calls last found it for (its `Arc`): the calls' fast path, a
    /// pointer comparison instead of comparing schemas.
    registration: Option<Arc<Registration>>,
    validator: Arc<Validator>,
}

/// Unserved schemas kept beyond twice the served ones before they are forgotten: the
/// handshakes in progress, and room so that pruning is rare.
const SLACK: usize = 64;

/// Compiled schemas by tool name; one per name, the last one compiled.
#[derive(Debug, Default)]
pub(crate) struct Schemas {
    by_tool: Mutex<HashMap<String, Compiled>>,
}

impl Schemas {
    /// Checks that `schema` is a usable JSON Schema, compiling it unless `tool`'s
    /// schema was already compiled from an equal one. Returns the compiler's message.
    pub(crate) fn check(&self, tool: &str, schema: &Value) -> Result<(), String> {
        if self
            .lock()
            .get(tool)
            .is_some_and(|compiled| compiled.schema == *schema)
        {
            return Ok(());
        }
        self.compile(tool, schema, None).map(drop)
    }

    /// The compiled `schema` of `tool`, as `registration` (whose schema it is)
    /// declares it; compiled now if it was not yet.
    pub(crate) fn validator(
        &self,
        tool: &str,
        registration: &Arc<Registration>,
        schema: &Value,
    ) -> Result<Arc<Validator>, String> {
        {
            let mut by_tool = self.lock();
            if let Some(compiled) = by_tool.get_mut(tool) {
                let same = match &compiled.registration {
                    Some(known) if Arc::ptr_eq(known, registration) => true,
                    _ => compiled.schema == *schema,
                };
                if same {
                    compiled.registration = Some(registration.clone());
                    return Ok(compiled.validator.clone());
                }
            }
        }
        self.compile(tool, schema, Some(registration.clone()))
    }

    /// Compiles `schema` as `tool`'s, replacing what the name had.
    fn compile(
        &self,
        tool: &str,
        schema: &Value,
        registration: Option<Arc<Registration>>,
    ) -> Result<Arc<Validator>, String> {
        let validator = Arc::new(jsonschema::validator_for(schema).map_err(|e| e.to_string())?);
        self.lock().insert(
            tool.to_owned(),
            Compiled {
                schema: schema.clone(),
                registration,
                validator: validator.clone(),
            },
        );
        Ok(validator)
    }

    /// Forgets the schemas of tools nobody serves (`served` says which names are
    /// served, `count` how many), once they outnumber the served ones: a plugin that
    /// registers new names at every start (a hostile one may register thousands each
    /// time) cannot grow this without bound. A forgotten schema a call needs again is
    /// compiled again.
    pub(crate) fn forget_unserved(&self, served: impl Fn(&str) -> bool, count: usize) {
        let mut by_tool = self.lock();
        if by_tool.len() > 2 * count + SLACK {
            by_tool.retain(|name, _| served(name));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Compiled>> {
        self.by_tool.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_schema_is_compiled_once_for_admission_and_calls() {
        let schemas = Schemas::default();
        let schema = json!({"type": "object", "required": ["text"]});
        schemas.check("echo", &schema).unwrap();
        let first = schemas.lock()["echo"].validator.clone();
        // The same schema again (a restart): the same compiled validator.
        schemas.check("echo", &schema).unwrap();
        let registration = Arc::new(Registration::Tool(
            serde_json::from_value(json!({
                "name": "echo", "description": "d", "inputSchema": schema,
            }))
            .unwrap(),
        ));
        let for_call = schemas.validator("echo", &registration, &schema).unwrap();
        assert!(Arc::ptr_eq(&first, &for_call));
        assert!(!for_call.is_valid(&json!({})));
        // Another schema under the same name replaces it.
        let other = json!({"type": "object"});
        schemas.check("echo", &other).unwrap();
        let replaced = schemas.validator("echo", &registration, &schema).unwrap();
        assert!(!Arc::ptr_eq(&first, &replaced));
        assert!(
            !replaced.is_valid(&json!({})),
            "compiled from the registration's schema"
        );
        assert!(schemas.check("bad", &json!({"type": 12})).is_err());
    }

    #[test]
    fn schemas_of_tools_nobody_serves_are_forgotten_before_they_pile_up() {
        let schemas = Schemas::default();
        let schema = json!({"type": "object"});
        schemas.check("served", &schema).unwrap();
        // A plugin that comes back with new names at every start.
        for name in 0..3 * SLACK {
            schemas.check(&format!("gone-{name}"), &schema).unwrap();
            schemas.forget_unserved(|tool| tool == "served", 1);
            let kept = schemas.lock().len();
            assert!(kept <= 2 + SLACK, "{kept} schemas kept for 1 served tool");
        }
        assert!(schemas.lock().contains_key("served"));
    }
}
