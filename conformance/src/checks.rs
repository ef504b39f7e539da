//! The catalogue: every check the suite runs, with its stable id, level and the section
//! of docs/protocol.md it enforces.
//!
//! Ids are `<family>.<name>` and never change meaning: baselines (`--expected-failures`)
//! and CI dashboards refer to them. A new check gets a new id; a retired one keeps its
//! id reserved.

use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

/// How much a failing check matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Level {
    /// A requirement of the spec: a failure fails the run.
    #[serde(rename = "MUST")]
    Must,
    /// A recommendation: a failure is reported as a warning.
    #[serde(rename = "SHOULD")]
    Should,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Must => "MUST",
            Self::Should => "SHOULD",
        })
    }
}

/// One check of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Check {
    /// The stable id, `<family>.<name>`.
    pub id: &'static str,
    /// MUST or SHOULD.
    pub level: Level,
    /// The section of docs/protocol.md it enforces, e.g. `§2.3`.
    pub section: &'static str,
    /// What a conforming plugin does, in one line.
    pub description: &'static str,
    pub(crate) key: CheckId,
}

impl Check {
    /// The family: the part of the id before the dot (`stream`, `handshake`...).
    pub fn family(&self) -> &'static str {
        self.id
            .split_once('.')
            .map_or(self.id, |(family, _)| family)
    }
}

/// The check families, in the order the catalogue lists them.
pub const FAMILIES: &[&str] = &[
    "stream",
    "handshake",
    "jsonrpc",
    "calls",
    "shutdown",
    "fixture",
];

macro_rules! catalogue {
    ($($key:ident = $id:literal, $level:ident, $section:literal, $description:literal;)*) => {
        /// The compile-time name of each check, so a typo in the runner is a build error.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) enum CheckId {
            $($key,)*
        }

        /// Every check, grouped by family.
        pub const CHECKS: &[Check] = &[
            $(Check {
                id: $id,
                level: Level::$level,
                section: $section,
                description: $description,
                key: CheckId::$key,
            },)*
        ];
    };
}

catalogue! {
    StreamUnbuffered = "stream.unbuffered", Must, "§2.1",
        "answers arrive while stdin stays open: stdout is flushed after every message";
    StreamOnlyMessages = "stream.only-messages", Must, "§2.1",
        "stdout carries nothing but protocol messages (no banners, prints or stray logs)";
    StreamNoContentLength = "stream.no-content-length", Must, "§2.4",
        "messages are newline-delimited, not framed with LSP `Content-Length` headers";
    StreamSchemaValid = "stream.schema-valid", Must, "§4",
        "every message the plugin sends matches the protocol's JSON Schema";
    StreamWithinLimit = "stream.within-limit", Must, "§2.2",
        "no line the plugin writes is longer than the announced `limits.maxMessageBytes`";
    StreamPlainLines = "stream.plain-lines", Should, "§2.1",
        "lines end with a bare `\\n`: no `\\r`, no byte-order mark, no blank lines";
    StreamStderrFlood = "stream.stderr-flood", Must, "§1",
        "requests are still answered while the plugin writes megabytes to stderr (fixture)";
    StreamTolerantReader = "stream.tolerant-reader", Must, "§2.1",
        "a line with a trailing `\\r` or a leading byte-order mark is read, and blank lines are ignored";

    HandshakeInitialize = "handshake.initialize", Must, "§5.2",
        "`initialize` is answered within the handshake timeout with a well-formed result";
    HandshakeVersionOffered = "handshake.version-offered", Must, "§5.2",
        "the chosen `protocolVersion` is one the host offered";
    HandshakeVersionNegotiation = "handshake.version-negotiation", Must, "§5.2",
        "the plugin picks the first offered version it speaks, not simply the first offered";
    HandshakeUnsupportedVersion = "handshake.unsupported-version", Must, "§5.2",
        "no version in common is answered -32004 with `data.supported` and `data.requested`";
    HandshakePingBeforeInitialize = "handshake.ping-before-initialize", Must, "§5.1",
        "`ping` is answered `{}` before `initialize`";
    HandshakeNotInitialized = "handshake.not-initialized", Must, "§5.1",
        "other requests before `initialize` are answered -32002";
    HandshakeSecondInitialize = "handshake.second-initialize", Must, "§5.2",
        "a second `initialize` is answered -32007 and the session goes on";
    HandshakePluginId = "handshake.plugin-id", Must, "§5.2",
        "`plugin.id` equals the manifest id";
    HandshakeRegistrationsValid = "handshake.registrations-valid", Must, "§9",
        "every registration is well formed and unique, and no gateway method is in a core namespace";
    HandshakeRegistrationsDeclared = "handshake.registrations-declared", Must, "§9",
        "every tool, channel and provider registered is declared in the manifest";
    HandshakeKnownHooks = "handshake.known-hooks", Should, "§9.2",
        "hook registrations name hook events the host knows";
    HandshakeKnownKinds = "handshake.known-kinds", Should, "§9",
        "registrations are of kinds the host knows (one of an unknown kind is rejected alone)";
    HandshakeUnknownFields = "handshake.unknown-fields", Must, "§4",
        "unknown members in `initialize`, `initialized` and the envelope are ignored";
    HandshakeNoEarlyRequests = "handshake.no-early-requests", Must, "§5.1",
        "the plugin sends no request to the host before `initialized`";

    JsonrpcIdTypes = "jsonrpc.id-types", Must, "§4",
        "responses carry the request's id with the same JSON type and value (`7.0` may come back as `7`)";
    JsonrpcReusedId = "jsonrpc.reused-id", Must, "§4",
        "a request reusing the id of one in flight is answered -32600 with id null and `data.id` (slow call)";
    JsonrpcMethodNotFound = "jsonrpc.method-not-found", Must, "§4",
        "a request for an unknown method is answered -32601";
    JsonrpcInvalidParams = "jsonrpc.invalid-params", Must, "§6",
        "params that do not fit the method are answered -32602 (`data.errors[].path` a JSON Pointer)";
    JsonrpcParamsShape = "jsonrpc.params-shape", Must, "§4",
        "params that are an array or a scalar are answered -32602; `null` params count as none";
    JsonrpcParseError = "jsonrpc.parse-error", Must, "§2.3",
        "a line that is not JSON or not UTF-8 is answered -32700 with id null";
    JsonrpcInvalidRequest = "jsonrpc.invalid-request", Must, "§2.3",
        "JSON that is not an acceptable message is answered -32600, with its id when readable";
    JsonrpcBatchRejected = "jsonrpc.batch-rejected", Must, "§4",
        "a batch (a JSON array) is answered with one -32600 and not executed";
    JsonrpcNotificationsUnanswered = "jsonrpc.notifications-unanswered", Must, "§4",
        "notifications, known or unknown, are never answered";
    JsonrpcResponsesUnanswered = "jsonrpc.responses-unanswered", Must, "§2.3",
        "responses, even to unknown ids or with id null, are never answered";
    JsonrpcNoErrorStorm = "jsonrpc.no-error-storm", Must, "§2.3",
        "each bad line gets at most one answer";
    JsonrpcSurvivesBadLines = "jsonrpc.survives-bad-lines", Must, "§2.3",
        "the plugin keeps running and answering after bad lines";
    JsonrpcOversizedLine = "jsonrpc.oversized-line", Should, "§2.3",
        "a line over the announced limit is answered -32006 with id null and discarded";

    CallsPing = "calls.ping", Must, "§8.1",
        "`ping` is answered `{}`";
    CallsTools = "calls.tools", Must, "§6.1",
        "every registered tool answers `tool/invoke` with a well-formed result or error";
    CallsHooks = "calls.hooks", Must, "§6.2",
        "every registered hook answers `hook/run` with `null`, an object, or an error";
    CallsCommands = "calls.commands", Must, "§6.3",
        "every registered command answers `command/run` with `{text}` or an error";
    CallsGatewayMethods = "calls.gateway-methods", Must, "§6.4",
        "every registered gateway method answers `method/call`";
    CallsHttpRoutes = "calls.http-routes", Must, "§6.5",
        "every registered HTTP route answers `http/handle` with a well-formed response or error";
    CallsServices = "calls.services", Must, "§6.6",
        "every registered service answers `service/start` and `service/stop`";
    CallsOperations = "calls.operations", Must, "§6.7",
        "providers, channels and context engines answer an operation they lack with -32601";
    CallsUnknownName = "calls.unknown-name", Must, "§6",
        "a call to a name never registered is answered -32008 with `data.kind` and `data.name`";
    CallsCancelAnswered = "calls.cancel-answered", Must, "§8.2",
        "a request cancelled with `$/cancel` is still answered, exactly once";
    CallsSlowCall = "calls.slow-call", Should, "§4",
        "concurrency and cancellation are verified with a slow call (`--slow-call`, or the fixture capability)";
    CallsConcurrency = "calls.concurrency", Must, "§4",
        "a ping and a second call are answered while the slow call runs";
    CallsCancel = "calls.cancel", Must, "§8.2",
        "`$/cancel` ends the slow call with -32800 well before it would have finished";
    CallsLargeMessage = "calls.large-message", Must, "§2.2",
        "a request line just under the announced limit is read and answered";
    CallsNonAscii = "calls.non-ascii", Must, "§2.1",
        "non-ASCII text crosses the pipes intact as UTF-8";

    ShutdownAnswered = "shutdown.answered", Must, "§5.5",
        "`shutdown` is answered `{}`";
    ShutdownExitOnEof = "shutdown.exit-on-eof", Must, "§5.5",
        "after `shutdown`, stdin EOF makes the plugin exit with status 0 within 2 s";
    ShutdownEofWithoutShutdown = "shutdown.eof-without-shutdown", Must, "§5.5",
        "stdin EOF without `shutdown` makes the plugin exit with status 0 within 2 s";
    ShutdownNoLeftovers = "shutdown.no-leftovers", Must, "§3.1",
        "no process is left in the plugin's process group once it has exited";
    ShutdownSigterm = "shutdown.sigterm", Should, "§5.5",
        "SIGTERM to the process group stops the plugin within 3 s";

    FixtureEcho = "fixture.echo", Must, "§13",
        "`fixture/echo` returns the value unchanged, Unicode and escapes included";
    FixtureLargeEcho = "fixture.large-echo", Must, "§13",
        "a `fixture/echo` answer just under the announced limit arrives intact";
    FixtureCancel = "fixture.cancel", Must, "§8.2",
        "`$/cancel` ends a `fixture/sleep` at once with -32800";
    FixtureConcurrency = "fixture.concurrency", Must, "§4",
        "requests run concurrently: a ping and short sleeps overtake long sleeps";
    FixtureProgress = "fixture.progress", Must, "§8.3",
        "`fixture/progress` sends its `$/progress` notifications in order, before the answer";
    FixtureCallHost = "fixture.call-host", Must, "§7",
        "plugin-to-host requests reach the host and the host's answers reach the plugin";
    FixtureLog = "fixture.log", Must, "§7.1",
        "`fixture/log` sends its `log` notification before answering";
}

impl CheckId {
    /// The catalogue entry.
    pub(crate) fn check(self) -> &'static Check {
        // The catalogue lists the variants in declaration order.
        let check = &CHECKS[self as usize];
        debug_assert_eq!(check.key, self);
        check
    }
}

/// The check with this id.
pub fn find_check(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|check| check.id == id)
}

/// The checks of one family as the Markdown table of docs/conformance.md §4, which is
/// generated from this catalogue (`outpost-conformance list --markdown`).
pub fn markdown_table(family: &str) -> String {
    let mut table =
        String::from("| id | level | spec | passes when |\n| --- | --- | --- | --- |\n");
    for check in CHECKS.iter().filter(|c| c.family() == family) {
        let _ = writeln!(
            table,
            "| `{}` | {} | {} | {} |",
            check.id, check.level, check.section, check.description
        );
    }
    table
}

/// The known id closest to `id`, for "did you mean" hints.
pub(crate) fn closest_id(id: &str) -> Option<&'static str> {
    CHECKS
        .iter()
        .map(|check| (strsim::jaro_winkler(id, check.id), check.id))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_well_formed_and_in_known_families() {
        let mut ids: Vec<_> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len(), "duplicate ids");
        for check in CHECKS {
            assert!(FAMILIES.contains(&check.family()), "{}", check.id);
            assert!(
                check
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c == '.'),
                "{}",
                check.id
            );
            assert!(check.section.starts_with('§'), "{}", check.id);
            assert!(!check.description.ends_with('.'), "{}", check.id);
        }
    }

    #[test]
    fn keys_index_the_catalogue() {
        for (index, check) in CHECKS.iter().enumerate() {
            assert_eq!(check.key as usize, index);
            assert_eq!(check.key.check().id, check.id);
        }
    }

    #[test]
    fn families_are_listed_in_catalogue_order() {
        let mut seen: Vec<&str> = Vec::new();
        for check in CHECKS {
            if seen.last() != Some(&check.family()) {
                seen.push(check.family());
            }
        }
        assert_eq!(seen, FAMILIES);
    }

    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            closest_id("stream.only-message"),
            Some("stream.only-messages")
        );
        assert_eq!(closest_id("zzz"), None);
    }
}
