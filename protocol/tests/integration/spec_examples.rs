//! The JSON-RPC examples in docs/protocol.md are checked against the wire types and the
//! checked-in JSON Schema, so the page cannot drift from the code unnoticed.
//!
//! Every fenced block is read except those labelled with another language (`python`...).
//! A line is an example when, after an optional transcript prefix (`> ` the host writes
//! it, `< ` the plugin does), it is a JSON object with JSON-RPC members. In `json`,
//! `jsonc` and `ndjson` blocks every other line must be blank, a `//` or `#` comment, or
//! other JSON, so an example that stops being JSON is reported rather than skipped. Each
//! example must:
//!
//! - parse as a [`Message`] and validate against the schema's envelope;
//! - as a request or notification: name a method of [`METHODS`] of that kind (and, with a
//!   prefix, sent by the right side), with params that deserialize into the method's
//!   params type, that have no member the type would ignore, and that validate against
//!   the method's schema; an unknown method is fine only if the block answers it `-32601`,
//!   params that are not an object only if it answers them `-32602` (§4);
//! - as a response: answer a request shown earlier in the same block (same id, the other
//!   side); a result must fit the method's result type as params fit theirs; an error's
//!   code must be in the table of §11, and its `data` of the shape that table gives.
//!
//! The page must also show every method at work (each request with a success response,
//! each notification once), and §11 must list exactly the codes of [`ErrorCode::ALL`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use outpost_protocol::methods::{self, Direction, METHODS};
use outpost_protocol::{
    ErrorCode, Message, MethodPart, NotificationType, RequestType, SCHEMA_JSON, method_schema,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const SPEC: &str = include_str!("../../../docs/protocol.md");
const SPEC_PATH: &str = "docs/protocol.md";

// ---------------------------------------------------------------------------------
// The types behind each method

/// Checks a params or result value against a wire type; returns what is wrong.
type Fits = fn(label: &str, value: &Value) -> Vec<String>;

struct MethodTypes {
    method: &'static str,
    params: Fits,
    /// `None` for notifications.
    result: Option<Fits>,
}

fn request<M: RequestType>() -> MethodTypes {
    MethodTypes {
        method: M::METHOD,
        params: fits::<M::Params>,
        result: Some(fits::<M::Result>),
    }
}

fn notification<N: NotificationType>() -> MethodTypes {
    MethodTypes {
        method: N::METHOD,
        params: fits::<N::Params>,
        result: None,
    }
}

/// One row per method of protocol v1; `the_type_table_lists_every_method` keeps it
/// complete.
fn method_types() -> Vec<MethodTypes> {
    vec![
        request::<methods::Initialize>(),
        notification::<methods::Initialized>(),
        request::<methods::Shutdown>(),
        request::<methods::Ping>(),
        notification::<methods::Cancel>(),
        notification::<methods::Progress>(),
        notification::<methods::Log>(),
        request::<methods::ToolInvoke>(),
        request::<methods::HookRun>(),
        request::<methods::CommandRun>(),
        request::<methods::MethodCall>(),
        request::<methods::HttpHandle>(),
        request::<methods::ServiceStart>(),
        request::<methods::ServiceStop>(),
        request::<methods::ProviderCall>(),
        request::<methods::ChannelCall>(),
        request::<methods::ContextEngineCall>(),
        request::<methods::HostCallMethod>(),
        request::<methods::HostGetConfig>(),
        request::<methods::FixtureEcho>(),
        request::<methods::FixtureSleep>(),
        request::<methods::FixtureProgress>(),
        request::<methods::FixtureCallHost>(),
        request::<methods::FixtureLog>(),
        request::<methods::FixtureStderr>(),
    ]
}

/// Whether `value` deserializes into `T` and has no member `T` ignores.
///
/// The wire types ignore unknown members, so a misspelt optional member would pass a
/// plain deserialization. A member counts as known when replacing its value with values
/// of no wire type (an object no struct reads, a string no enum names) changes the
/// outcome (an error, or a different value); for a member the type ignores, nothing
/// changes.
fn fits<T: Serialize + DeserializeOwned>(label: &str, value: &Value) -> Vec<String> {
    let canonical = |value: &Value| {
        serde_json::from_value::<T>(value.clone())
            .map(|typed| serde_json::to_value(typed).expect("wire types serialize"))
    };
    let baseline = match canonical(value) {
        Ok(baseline) => baseline,
        Err(e) => return vec![format!("{label} do not fit `{}`: {e}", type_name::<T>())],
    };
    let poisons = [
        json!({"\u{1}not any wire type": [null]}),
        json!("\u{1}no wire type"),
    ];
    let mut ignored: Vec<Vec<Step>> = Vec::new();
    for path in member_paths(value) {
        if ignored.iter().any(|parent| path.starts_with(parent)) {
            continue;
        }
        let unnoticed = poisons.iter().all(|poison| {
            let mut poisoned = value.clone();
            *locate(&mut poisoned, &path) = poison.clone();
            canonical(&poisoned).is_ok_and(|outcome| outcome == baseline)
        });
        if unnoticed {
            ignored.push(path);
        }
    }
    ignored
        .iter()
        .map(|path| {
            format!(
                "`{label}{}` is not a member of `{}` (a misspelling? the types ignore it)",
                show(path),
                type_name::<T>()
            )
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// The path of every object member in `value`, parents before children.
fn member_paths(value: &Value) -> Vec<Vec<Step>> {
    fn walk(value: &Value, here: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
        match value {
            Value::Object(members) => {
                for (key, child) in members {
                    here.push(Step::Key(key.clone()));
                    out.push(here.clone());
                    walk(child, here, out);
                    here.pop();
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    here.push(Step::Index(index));
                    walk(child, here, out);
                    here.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out
}

fn locate<'v>(value: &'v mut Value, path: &[Step]) -> &'v mut Value {
    path.iter().fold(value, |value, step| match step {
        Step::Key(key) => &mut value[key.as_str()],
        Step::Index(index) => &mut value[*index],
    })
}

fn show(path: &[Step]) -> String {
    path.iter()
        .map(|step| match step {
            Step::Key(key) => format!(".{key}"),
            Step::Index(index) => format!("[{index}]"),
        })
        .collect()
}

/// `core::option::Option<serde_json::map::Map<..>>` as `Option<Map<..>>`.
fn type_name<T>() -> String {
    let mut short = String::new();
    let mut word = String::new();
    let mut chars = std::any::type_name::<T>().chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            short.push_str(&word);
            word.clear();
            short.push(c);
        }
    }
    short + &word
}

// ---------------------------------------------------------------------------------
// The error table of §11

struct ErrorRow {
    line: usize,
    /// Members of `data` and whether each is optional; `None`: no `data`.
    data: Option<Vec<(String, bool)>>,
}

/// The rows of §11, by code.
fn error_table(doc: &str) -> BTreeMap<i64, ErrorRow> {
    let mut rows = BTreeMap::new();
    let mut in_section = false;
    for (number, line) in doc.lines().enumerate() {
        if line.starts_with("## ") {
            in_section = line.starts_with("## 11. Errors");
        }
        if !in_section || !line.starts_with("| -") {
            continue;
        }
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells[1].chars().all(|c| c == '-') {
            continue; // the header's separator row
        }
        let code = cells[1]
            .parse::<i64>()
            .unwrap_or_else(|e| panic!("{SPEC_PATH}:{}: bad code in §11: {e}", number + 1));
        let data = cells.get(4).map_or("", |cell| cell.trim_matches('`'));
        rows.insert(
            code,
            ErrorRow {
                line: number + 1,
                data: (!data.is_empty()).then(|| data_members(data)),
            },
        );
    }
    rows
}

/// `{pluginId, retryAfterMs?, errors?: [{path, message}]}` as
/// `[(pluginId, false), (retryAfterMs, true), (errors, true)]`.
fn data_members(shape: &str) -> Vec<(String, bool)> {
    let inner = shape
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or_else(|| panic!("a data shape in §11 is not `{{...}}`: {shape}"));
    let mut members = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                let member = inner[start..i].trim();
                let name: String = member
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect();
                let optional = member[name.len()..].starts_with('?');
                members.push((name, optional));
                start = i + 1;
            }
            _ => {}
        }
    }
    members
}

fn check_error(
    code: i64,
    data: Option<&Value>,
    table: &BTreeMap<i64, ErrorRow>,
) -> Result<(), String> {
    let Some(row) = table.get(&code) else {
        return Err(format!(
            "error code {code} is not in the table of §11 (known: {})",
            table
                .keys()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let line = row.line;
    match (&row.data, data) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(format!(
            "error {code} carries `data`, but §11 (line {line}) gives it none"
        )),
        (Some(shape), None) => match shape.iter().find(|(_, optional)| !optional) {
            Some((name, _)) => Err(format!(
                "error {code} has no `data`, but §11 (line {line}) says it carries `{name}`"
            )),
            None => Ok(()),
        },
        (Some(shape), Some(Value::Object(data))) => {
            let mut wrong = Vec::new();
            for key in data.keys() {
                if !shape.iter().any(|(name, _)| name == key) {
                    wrong.push(format!("`data.{key}` is not in its shape in §11"));
                }
            }
            for (name, optional) in shape {
                if !optional && !data.contains_key(name) {
                    wrong.push(format!("`data.{name}` is missing (§11 requires it)"));
                }
            }
            if wrong.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "error {code} (§11, line {line}): {}",
                    wrong.join("; ")
                ))
            }
        }
        (Some(_), Some(_)) => Err(format!("error {code}: `data` must be an object")),
    }
}

// ---------------------------------------------------------------------------------
// Reading the examples

/// Who writes a transcript line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// `> `
    Host,
    /// `< `
    Plugin,
}

struct Example {
    /// 1-based line in the document.
    line: usize,
    side: Option<Side>,
    text: String,
    value: Value,
}

struct Problem {
    line: usize,
    what: String,
}

fn looks_like_message(value: &Value) -> bool {
    value.as_object().is_some_and(|object| {
        ["jsonrpc", "id", "method", "result", "error"]
            .iter()
            .any(|key| object.contains_key(*key))
    })
}

/// The examples of each fenced block, in order.
fn blocks(doc: &str, problems: &mut Vec<Problem>) -> Vec<Vec<Example>> {
    let mut blocks = Vec::new();
    let mut lines = doc.lines().enumerate().map(|(i, line)| (i + 1, line));
    while let Some((_, line)) = lines.next() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        let info = info.trim().to_owned();
        let body: Vec<(usize, &str)> = lines
            .by_ref()
            .take_while(|(_, line)| !line.trim_start().starts_with("```"))
            .collect();
        let strict = match info.as_str() {
            "json" | "jsonc" | "ndjson" => true,
            "text" | "" => false,
            _ => continue,
        };
        blocks.push(examples_in(strict, &body, problems));
    }
    blocks
}

fn examples_in(strict: bool, body: &[(usize, &str)], problems: &mut Vec<Problem>) -> Vec<Example> {
    // A block holding one pretty-printed document: a message if it has `jsonrpc`.
    if strict && body.len() > 1 {
        let whole = body
            .iter()
            .map(|(_, line)| *line)
            .collect::<Vec<_>>()
            .join("\n");
        if let Ok(value) = serde_json::from_str::<Value>(&whole) {
            if value.get("jsonrpc").is_none() {
                return Vec::new();
            }
            return vec![Example {
                line: body[0].0,
                side: None,
                text: whole,
                value,
            }];
        }
    }
    let mut examples = Vec::new();
    for &(line, text) in body {
        let text = text.trim();
        if text.is_empty() || text.starts_with("//") || text.starts_with('#') {
            continue;
        }
        let (side, text) = if let Some(rest) = text.strip_prefix("> ") {
            (Some(Side::Host), rest.trim_start())
        } else if let Some(rest) = text.strip_prefix("< ") {
            (Some(Side::Plugin), rest.trim_start())
        } else {
            (None, text)
        };
        if !strict && !text.starts_with('{') {
            continue;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(value) if looks_like_message(&value) => examples.push(Example {
                line,
                side,
                text: text.to_owned(),
                value,
            }),
            Ok(_) => {}
            Err(e) => problems.push(Problem {
                line,
                what: format!("not JSON ({e}); an example is one message per line"),
            }),
        }
    }
    examples
}

// ---------------------------------------------------------------------------------
// Checking them

#[derive(Default)]
struct Coverage {
    /// Methods sent as a request or notification.
    sent: BTreeSet<String>,
    /// Request methods shown with a success response.
    answered: BTreeSet<String>,
}

struct Checker {
    types: Vec<MethodTypes>,
    table: BTreeMap<i64, ErrorRow>,
    envelope: jsonschema::Validator,
    problems: Vec<Problem>,
    coverage: Coverage,
}

/// A request seen earlier in the block.
struct Sent {
    side: Option<Side>,
    id: Value,
    method: String,
}

impl Checker {
    fn new() -> Self {
        let schema: Value = serde_json::from_str(SCHEMA_JSON).expect("the schema is JSON");
        Self {
            types: method_types(),
            table: error_table(SPEC),
            envelope: jsonschema::validator_for(&schema).expect("the schema compiles"),
            problems: Vec::new(),
            coverage: Coverage::default(),
        }
    }

    fn problem(&mut self, line: usize, what: impl Into<String>) {
        self.problems.push(Problem {
            line,
            what: what.into(),
        });
    }

    fn check_document(&mut self, doc: &str) {
        let mut problems = Vec::new();
        let blocks = blocks(doc, &mut problems);
        self.problems.extend(problems);
        for block in &blocks {
            self.check_block(block);
        }
    }

    fn check_block(&mut self, block: &[Example]) {
        // Requests the block answers `-32601`: their method may be one nobody knows.
        let answered_with = |code: ErrorCode| -> Vec<(Option<Side>, &Value)> {
            block
                .iter()
                .filter(|e| e.value["error"]["code"] == json!(code.code()))
                .map(|e| (e.side, &e.value["id"]))
                .collect()
        };
        let not_found = answered_with(ErrorCode::MethodNotFound);
        // Requests the block answers `-32602`: their params may be of any shape.
        let invalid_params = answered_with(ErrorCode::InvalidParams);
        let answered = |list: &[(Option<Side>, &Value)], example: &Example| {
            list.iter()
                .any(|(side, id)| **id == example.value["id"] && answers(example.side, *side))
        };
        let mut sent: Vec<Sent> = Vec::new();
        for example in block {
            let line = example.line;
            let params = example.value.get("params");
            let odd_params = params.is_some_and(|p| !p.is_object() && !p.is_null())
                && example.value.get("method").is_some()
                && answered(&invalid_params, example);
            if odd_params {
                // A request with params that are not an object, answered -32602 as §4
                // says: the envelope and the params types do not apply to it.
                self.coverage_sent_only(example);
                sent.push(Sent {
                    side: example.side,
                    id: example.value["id"].clone(),
                    method: example.value["method"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
                continue;
            }
            let errors: Vec<String> = self
                .envelope
                .iter_errors(&example.value)
                .map(|e| format!("{} at `{}`", e, e.instance_path()))
                .collect();
            if !errors.is_empty() {
                self.problem(
                    line,
                    format!("the schema's envelope refuses it: {}", errors.join("; ")),
                );
            }
            let message = match Message::parse(&example.text) {
                Ok(message) => message,
                Err(failure) => {
                    let why = failure
                        .to_response()
                        .outcome
                        .expect_err("a parse failure answers an error")
                        .message;
                    self.problem(line, format!("not a message of this protocol: {why}"));
                    continue;
                }
            };
            match message {
                Message::Request(request) => {
                    let id = serde_json::to_value(&request.id).expect("ids serialize");
                    let answered_unknown = not_found
                        .iter()
                        .any(|(side, other)| **other == id && answers(example.side, *side));
                    self.check_call(
                        example,
                        &request.method,
                        request.params,
                        true,
                        answered_unknown,
                    );
                    sent.push(Sent {
                        side: example.side,
                        id,
                        method: request.method,
                    });
                }
                Message::Notification(notification) => {
                    self.check_call(
                        example,
                        &notification.method,
                        notification.params,
                        false,
                        false,
                    );
                }
                Message::Response(response) => {
                    let method = match &response.id {
                        None => None,
                        Some(id) => {
                            let id = serde_json::to_value(id).expect("ids serialize");
                            let found = sent
                                .iter()
                                .rev()
                                .find(|s| s.id == id && answers(s.side, example.side));
                            if found.is_none() {
                                self.problem(
                                    line,
                                    format!(
                                        "answers id {id}, but no request with that id comes before it in this block"
                                    ),
                                );
                            }
                            found.map(|s| s.method.clone())
                        }
                    };
                    match response.result() {
                        Ok(result) => {
                            if let Some(method) = method {
                                self.check_result(line, &method, &result);
                            }
                        }
                        Err(error) => {
                            if let Err(why) =
                                check_error(error.code.code(), error.data.as_ref(), &self.table)
                            {
                                self.problem(line, why);
                            }
                        }
                    }
                }
            }
        }
    }

    /// Notes the method of a request whose params are not checked.
    fn coverage_sent_only(&mut self, example: &Example) {
        if let Some(method) = example.value["method"].as_str()
            && METHODS.iter().any(|(name, ..)| *name == method)
        {
            self.coverage.sent.insert(method.to_owned());
        } else {
            self.problem(
                example.line,
                "a request answered -32602 must name a method of the protocol",
            );
        }
    }

    fn check_call(
        &mut self,
        example: &Example,
        method: &str,
        params: Option<Value>,
        is_request: bool,
        answered_unknown: bool,
    ) {
        let line = example.line;
        let Some(&(_, direction, request)) = METHODS.iter().find(|(name, ..)| *name == method)
        else {
            if !answered_unknown {
                self.problem(
                    line,
                    format!(
                        "unknown method `{method}` (not in `outpost_protocol::methods::METHODS`)"
                    ),
                );
            }
            return;
        };
        self.coverage.sent.insert(method.to_owned());
        if request != is_request {
            let (is, shown) = if request {
                ("a request", "a notification (no `id`)")
            } else {
                ("a notification", "a request (with an `id`)")
            };
            self.problem(line, format!("`{method}` is {is}, but this is {shown}"));
        }
        let wrong_side = match (example.side, direction) {
            (Some(Side::Host), Direction::PluginToHost) => Some("the plugin"),
            (Some(Side::Plugin), Direction::HostToPlugin) => Some("the host"),
            _ => None,
        };
        if let Some(sender) = wrong_side {
            self.problem(
                line,
                format!("`{method}` is sent by {sender}, but the line's prefix says otherwise"),
            );
        }
        // Params may be omitted where they are all optional: that is `{}`.
        let params = params.unwrap_or_else(|| json!({}));
        let fits = self.types_of(method).map(|types| types.params);
        self.check_part(line, method, MethodPart::Params, fits, &params);
    }

    fn check_result(&mut self, line: usize, method: &str, result: &Value) {
        let Some(types) = self.types_of(method) else {
            return;
        };
        let Some(fits) = types.result else {
            self.problem(
                line,
                format!("answers `{method}`, a notification; notifications are never answered"),
            );
            return;
        };
        self.coverage.answered.insert(method.to_owned());
        self.check_part(line, method, MethodPart::Result, Some(fits), result);
    }

    fn types_of(&self, method: &str) -> Option<&MethodTypes> {
        self.types.iter().find(|types| types.method == method)
    }

    fn check_part(
        &mut self,
        line: usize,
        method: &str,
        part: MethodPart,
        fits: Option<Fits>,
        value: &Value,
    ) {
        let label = match part {
            MethodPart::Params => "params",
            MethodPart::Result => "result",
        };
        match fits {
            Some(fits) => {
                for why in fits(label, value) {
                    self.problem(line, format!("`{method}`: {why}"));
                }
            }
            None => self.problem(line, format!("no type for `{method}` in this test's table")),
        }
        match method_schema(method, part) {
            Some(schema) => {
                let validator = jsonschema::validator_for(&schema).expect("method schemas compile");
                for error in validator.iter_errors(value) {
                    let problem = format!(
                        "`{method}` {label}: the schema refuses `{label}{}`: {error}",
                        error.instance_path()
                    );
                    self.problem(line, problem);
                }
            }
            None => self.problem(line, format!("the schema has no {label} for `{method}`")),
        }
    }

    fn report(&self) -> String {
        let mut problems: Vec<&Problem> = self.problems.iter().collect();
        problems.sort_by_key(|p| p.line);
        problems.iter().fold(String::new(), |mut report, p| {
            let _ = writeln!(report, "{SPEC_PATH}:{}: {}", p.line, p.what);
            report
        })
    }
}

/// Whether a line from `response` can answer a request from `request`: the other side
/// (or either, where a block has no transcript prefixes).
fn answers(request: Option<Side>, response: Option<Side>) -> bool {
    match (request, response) {
        (Some(request), Some(response)) => request != response,
        _ => true,
    }
}

// ---------------------------------------------------------------------------------
// Tests

#[test]
fn every_example_in_the_spec_fits_the_wire_types() {
    let mut checker = Checker::new();
    checker.check_document(SPEC);
    assert!(
        checker.problems.is_empty(),
        "examples in {SPEC_PATH} do not fit outpost-protocol's types:\n{}",
        checker.report()
    );
}

#[test]
fn the_spec_shows_every_method_at_work() {
    let mut checker = Checker::new();
    checker.check_document(SPEC);
    let coverage = &checker.coverage;
    let mut missing = Vec::new();
    for &(method, _, request) in METHODS {
        if !coverage.sent.contains(method) {
            missing.push(format!("`{method}`: no example message"));
        } else if request && !coverage.answered.contains(method) {
            missing.push(format!(
                "`{method}`: no example of its success response in the block of its request"
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "{SPEC_PATH} lacks examples:\n{}",
        missing.join("\n")
    );
}

#[test]
fn the_error_table_lists_exactly_the_known_codes() {
    let table = error_table(SPEC);
    let documented: BTreeSet<i64> = table.keys().copied().collect();
    let known: BTreeSet<i64> = ErrorCode::ALL.iter().map(|code| code.code()).collect();
    assert_eq!(
        documented, known,
        "the table of §11 in {SPEC_PATH} and ErrorCode::ALL differ"
    );
}

#[test]
fn the_type_table_lists_every_method() {
    let listed: Vec<&str> = method_types().iter().map(|types| types.method).collect();
    let all: Vec<&str> = METHODS.iter().map(|(name, ..)| *name).collect();
    assert_eq!(listed, all);
    for types in method_types() {
        let request = METHODS
            .iter()
            .any(|(name, _, request)| *name == types.method && *request);
        assert_eq!(types.result.is_some(), request, "{}", types.method);
    }
}

/// The checker itself: each broken example is reported, on its line.
#[test]
fn broken_examples_are_reported_on_their_line() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"service/start\",\"params\":{\"id\":\"s\",\"name\":\"x\"}}\n```\n",
            2,
            "`params.name` is not a member of `ServiceParams`",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"service/start\",\"params\":{}}\n```\n",
            2,
            "missing field `id`",
        ),
        (
            "text\n\n```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersions\":[\"1\"],\"host\":{\"name\":\"h\"},\"pluginId\":\"p\",\"limits\":{\"maxMessageBytes\":1,\"maxConcurrentRequest\":1}}}\n```\n",
            4,
            "missing field `maxConcurrentRequests`",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/invoke\",\"params\":{\"name\":\"t\"}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[{\"type\":\"text\"}]}}\n```\n",
            3,
            "missing field `text`",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/invoke\",\"params\":{\"name\":\"t\"}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[],\"iserror\":true}}\n```\n",
            3,
            "`result.iserror` is not a member",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32050,\"message\":\"m\"}}\n```\n",
            3,
            "error code -32050 is not in the table",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32005,\"message\":\"m\",\"data\":{\"who\":\"x\"}}}\n```\n",
            3,
            "`data.who` is not in its shape",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32800,\"message\":\"m\",\"data\":1}}\n```\n",
            3,
            "error -32800 carries `data`",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n```\n",
            2,
            "no request with that id",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}\n```\n",
            2,
            "not JSON",
        ),
        (
            "```json\n{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}\n```\n",
            2,
            "not a message of this protocol",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"method\":\"ping\"}\n```\n",
            2,
            "`ping` is a request, but this is a notification",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/run\",\"params\":{}}\n```\n",
            2,
            "unknown method `tool/run`",
        ),
        (
            "```text\n# a transcript\n< {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/invoke\",\"params\":{\"name\":\"t\"}}\n```\n",
            3,
            "`tool/invoke` is sent by the host",
        ),
        (
            "```text\n> {\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{}}\n> {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n```\n",
            3,
            "no request with that id",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"method\":\"log\",\"params\":{\"level\":\"loud\",\"message\":\"m\"}}\n```\n",
            2,
            "unknown variant `loud`",
        ),
        (
            "```json\n{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/invoke\",\"params\":[\"t\"]}\n{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[]}}\n```\n",
            2,
            "the schema's envelope refuses it",
        ),
    ];
    for (doc, line, expected) in cases {
        let mut checker = Checker::new();
        checker.check_document(doc);
        let report = checker.report();
        let wanted = format!("{SPEC_PATH}:{line}: ");
        assert!(
            report
                .lines()
                .any(|l| l.starts_with(&wanted) && l.contains(expected)),
            "expected `{wanted}...{expected}...` for\n{doc}\ngot:\n{report}"
        );
    }
}

#[test]
fn sound_examples_pass() {
    let doc = concat!(
        "```json\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tool/invoke\",\"params\":{\"name\":\"t\",\"arguments\":{\"any\":{\"thing\":1}}}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"content\":[],\"isError\":false}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"no/such\"}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32601,\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"m\"}}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tool/invoke\",\"params\":5}\n",
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"error\":{\"code\":-32602,\"message\":\"m\"}}\n",
        "```\n",
        "```python\nprint({\"jsonrpc\": 1})\n```\n",
        "```json\n{\n  \"id\": \"a manifest, pretty-printed\"\n}\n```\n",
    );
    let mut checker = Checker::new();
    checker.check_document(doc);
    assert!(checker.problems.is_empty(), "{}", checker.report());
}
