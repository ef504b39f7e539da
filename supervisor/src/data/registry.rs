//! The gateway's view of every plugin: what each registered, and the state it is in.
//!
//! # Theory of operation
//!
//! One mutex guards the whole registry, and every change is published as a
//! [`RegistryEvent`] with a sequence number *while the lock is held*. A subscriber takes
//! its [`RegistrySnapshot`] and its event receiver under the same lock
//! ([`Registry::subscribe`]), so it sees every change after the snapshot exactly once,
//! in order. The event channel is bounded: a subscriber that falls behind gets
//! `Lagged` from tokio's broadcast channel and should take a fresh snapshot.
//!
//! Admission (`Registry::admit`) checks a plugin's registrations against the rules of
//! docs/protocol.md §9 and commits the accepted set in one step. A plugin's entries
//! outlive its process: while it restarts they stay, *unavailable*, and keep their
//! names (another plugin cannot take them meanwhile). The next incarnation's set
//! replaces them, and the difference is published as registered, unregistered and
//! changed events.
//!
//! **Owners follow precedence, not timing.** Each plugin has a rank: its place in the
//! list the supervisor was started (or last applied) with, which the control plane
//! gives in discovery order (OpenClaw's load order). The registry keeps what every
//! plugin *asked* for and resolves owners as if the plugins had registered one after
//! another in rank order: a contested key goes to the plugin ranked first, whichever
//! handshake finished first. So a winner that comes up after the loser takes the key
//! (the `registered` event names the plugin it `replaces`), the loser keeps running
//! with that registration rejected `conflict`, and the loser gets the key back if the
//! winner drops it or is removed. Resolving again visits every plugin's registrations,
//! so an admission holds the lock for time linear in all registrations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use outpost_protocol::methods::{AcceptedRegistration, RejectedRegistration};
use outpost_protocol::{
    CONVERSATION_HOOKS, CommandRegistration, HookRegistration, HttpRouteRegistration,
    ManifestField, PROMPT_INJECTION_HOOKS, Registration, RegistrationKind, RejectionCode,
    RouteAuth, RouteMatch, route_matches, routes_overlap,
};
use serde::Serialize;
use tokio::sync::broadcast;

use super::reason::{self, Reason};
use super::schemas::Schemas;
use crate::spec::Declarations;

/// Events kept for subscribers that are behind.
const EVENT_CAPACITY: usize = 4096;

/// Where a plugin is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PluginState {
    /// Spawned, handshake under way.
    Starting,
    /// Serving calls.
    Ready,
    /// Crashed; starts again after a backoff.
    Restarting,
    /// Gave up (crash loop, exit 78, version or id mismatch); an operator restarts it.
    Failed,
    /// Being stopped on request.
    Stopping,
    /// Stopped on request.
    Stopped,
}

impl fmt::Display for PluginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Starting => "starting",
            Self::Ready => "ready",
            Self::Restarting => "restarting",
            Self::Failed => "failed",
            Self::Stopping => "stopping",
            Self::Stopped => "stopped",
        })
    }
}

/// How a plugin uses the capability model (docs/protocol.md §9.10).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// Providers or channels of exactly one capability type.
    PlainCapability,
    /// Providers or channels of several capability types.
    HybridCapability,
    /// Only hooks.
    HookOnly,
    /// Tools, commands, methods, routes, services or engines, but no capabilities.
    NonCapability,
    /// Nothing accepted.
    Empty,
}

impl Shape {
    fn of<'a>(registrations: impl IntoIterator<Item = &'a Registration>) -> Self {
        let mut capabilities = BTreeSet::new();
        let (mut hooks, mut other) = (false, false);
        for registration in registrations {
            match registration {
                Registration::Provider(p) => {
                    capabilities.insert(p.capability.as_str());
                }
                Registration::Channel(_) => {
                    capabilities.insert("channel");
                }
                Registration::Hook(_) => hooks = true,
                _ => other = true,
            }
        }
        match capabilities.len() {
            1 => Self::PlainCapability,
            n if n > 1 => Self::HybridCapability,
            _ if other => Self::NonCapability,
            _ if hooks => Self::HookOnly,
            _ => Self::Empty,
        }
    }
}

/// A change, in order; `seq` increases by one per event.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
#[non_exhaustive]
pub enum RegistryEvent {
    /// A registration appeared.
    #[serde(rename_all = "camelCase")]
    Registered {
        /// Sequence number.
        seq: u64,
        /// Owner.
        plugin: String,
        /// Kind.
        kind: RegistrationKind,
        /// Name within the kind.
        key: String,
        /// The registration.
        registration: Registration,
        /// The plugin that owned the key until now and lost it to this one, which comes
        /// first in precedence (its `unregistered` event came just before).
        #[serde(skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
    },
    /// A registration is gone (the plugin's new incarnation no longer makes it).
    #[serde(rename_all = "camelCase")]
    Unregistered {
        /// Sequence number.
        seq: u64,
        /// Former owner.
        plugin: String,
        /// Kind.
        kind: RegistrationKind,
        /// Name within the kind.
        key: String,
    },
    /// A registration was made again with different fields after a restart.
    #[serde(rename_all = "camelCase")]
    Changed {
        /// Sequence number.
        seq: u64,
        /// Owner.
        plugin: String,
        /// Kind.
        kind: RegistrationKind,
        /// Name within the kind.
        key: String,
        /// The new registration.
        registration: Registration,
    },
    /// A plugin changed state (its registrations are available only while `ready`).
    #[serde(rename_all = "camelCase")]
    PluginState {
        /// Sequence number.
        seq: u64,
        /// The plugin.
        plugin: String,
        /// The new state.
        state: PluginState,
        /// Why.
        #[serde(
            serialize_with = "reason::with_message",
            skip_serializing_if = "Option::is_none"
        )]
        reason: Option<Reason>,
        /// The pid of its process, while one runs.
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A plugin joined the supervised set (a reload added it), `starting`.
    #[serde(rename_all = "camelCase")]
    PluginAdded {
        /// Sequence number.
        seq: u64,
        /// The plugin.
        plugin: String,
    },
    /// A plugin left the supervised set (a reload removed it); its registrations were
    /// unregistered just before.
    #[serde(rename_all = "camelCase")]
    PluginRemoved {
        /// Sequence number.
        seq: u64,
        /// The plugin.
        plugin: String,
    },
}

impl RegistryEvent {
    /// The event's sequence number.
    pub fn seq(&self) -> u64 {
        match self {
            Self::Registered { seq, .. }
            | Self::Unregistered { seq, .. }
            | Self::Changed { seq, .. }
            | Self::PluginState { seq, .. }
            | Self::PluginAdded { seq, .. }
            | Self::PluginRemoved { seq, .. } => *seq,
        }
    }

    /// The plugin the event is about.
    pub fn plugin(&self) -> &str {
        match self {
            Self::Registered { plugin, .. }
            | Self::Unregistered { plugin, .. }
            | Self::Changed { plugin, .. }
            | Self::PluginState { plugin, .. }
            | Self::PluginAdded { plugin, .. }
            | Self::PluginRemoved { plugin, .. } => plugin,
        }
    }
}

/// The registry at one moment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RegistrySnapshot {
    /// The sequence number of the last event included.
    pub seq: u64,
    /// Every supervised plugin.
    pub plugins: Vec<PluginSnapshot>,
    /// Every accepted registration.
    pub registrations: Vec<RegistrationSnapshot>,
}

/// One plugin in a snapshot.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PluginSnapshot {
    /// The plugin id.
    pub id: String,
    /// Its state.
    pub state: PluginState,
    /// Why it is in that state.
    #[serde(
        serialize_with = "reason::with_message",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<Reason>,
    /// The process id of its current process (its process group's id), while one runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// When it last became ready, in milliseconds since the Unix epoch; `None` unless
    /// it is ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ready_since_ms: Option<u64>,
    /// How many times it was started again after an exit nobody asked for.
    pub restarts: u64,
    /// Its shape, once it registered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<Shape>,
    /// Registrations refused at its last handshake (conflicts and other diagnostics).
    pub rejected: Vec<RejectedRegistration>,
    /// What OpenClaw's `plugins inspect` would say of it, from what it registered and
    /// its state (see [`Signal`]); empty before its first handshake.
    pub compatibility: Vec<Signal>,
}

/// A compatibility signal (OpenClaw's labels): `valid`, `compatibility-advisory`
/// (a supported but older pattern: hook-only), `legacy-warning` (the deprecated
/// `before_agent_start`), `hard-error` (it failed to load).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Signal {
    /// The label.
    pub signal: SignalKind,
    /// Why, and what to do.
    pub message: String,
}

/// The label of a [`Signal`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum SignalKind {
    /// It loaded and uses current patterns.
    Valid,
    /// A supported but older pattern (hook-only).
    CompatibilityAdvisory,
    /// It uses the deprecated `before_agent_start`.
    LegacyWarning,
    /// It failed to load.
    HardError,
}

impl Signal {
    fn new(signal: SignalKind, message: impl Into<String>) -> Self {
        Self {
            signal,
            message: message.into(),
        }
    }

    /// The signals of a plugin in `state` whose accepted registrations are `accepted`.
    fn of(
        state: PluginState,
        reason: Option<&Reason>,
        shape: Option<Shape>,
        accepted: &[AcceptedRegistration],
    ) -> Vec<Self> {
        let mut signals = Vec::new();
        if state == PluginState::Failed {
            let why = reason.map_or_else(|| "it failed".to_owned(), ToString::to_string);
            signals.push(Self::new(
                SignalKind::HardError,
                format!("it failed to load: {why}"),
            ));
        }
        if shape == Some(Shape::HookOnly) {
            signals.push(Self::new(
                SignalKind::CompatibilityAdvisory,
                "hook-only: it registers only hooks; still supported, but capability registration (providers, channels) is the direction",
            ));
        }
        for hook in accepted.iter().filter(|a| {
            a.kind == RegistrationKind::Hook
                && outpost_protocol::LEGACY_HOOKS
                    .iter()
                    .any(|legacy| a.key == *legacy || a.key.starts_with(&format!("{legacy}:")))
        }) {
            signals.push(Self::new(
                SignalKind::LegacyWarning,
                format!(
                    "`{}` is deprecated: use before_model_resolve for model or provider overrides, before_prompt_build for prompt changes",
                    hook.key
                ),
            ));
        }
        if signals.is_empty() && shape.is_some() {
            signals.push(Self::new(SignalKind::Valid, "loaded; nothing to change"));
        }
        signals
    }
}

/// One registration in a snapshot.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RegistrationSnapshot {
    /// The owner.
    pub plugin: String,
    /// Kind.
    pub kind: RegistrationKind,
    /// Name within the kind.
    pub key: String,
    /// Whether calls can reach it now (its plugin is ready).
    pub available: bool,
    /// The registration as made.
    pub registration: Registration,
}

/// What a handshake's registrations came to.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    pub(crate) accepted: Vec<AcceptedRegistration>,
    pub(crate) rejected: Vec<RejectedRegistration>,
    /// `(kind, key)` added, removed and changed relative to the previous incarnation.
    pub(crate) added: Vec<(RegistrationKind, String)>,
    pub(crate) removed: Vec<(RegistrationKind, String)>,
    pub(crate) changed: Vec<(RegistrationKind, String)>,
    /// Accepted service ids, in registration order.
    pub(crate) services: Vec<String>,
}

/// Who is registering, and under which policy.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Registrant<'a> {
    pub(crate) plugin: &'a str,
    pub(crate) declarations: &'a Declarations,
    pub(crate) allow_prompt_injection: bool,
    pub(crate) allow_catch_all_route: bool,
    /// Whether it may register conversation hooks (`hooks.allowConversationAccess`).
    pub(crate) conversation: Conversation,
    /// Where tool schemas are compiled (and kept for calls).
    pub(crate) schemas: &'a Schemas,
}

/// A plugin's conversation access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Conversation {
    /// Bundled and not refused, or granted.
    Granted,
    /// Not bundled, and not granted.
    NotGranted,
    /// Refused by the operator (`allowConversationAccess: false`).
    Refused,
}

impl Conversation {
    pub(crate) fn of(spec: &crate::spec::PluginSpec) -> Self {
        if spec.hooks.conversation_access(spec.bundled) {
            Self::Granted
        } else if spec.hooks.allow_conversation_access == Some(false) {
            Self::Refused
        } else {
            Self::NotGranted
        }
    }
}

/// The registry; see the module docs.
#[derive(Debug)]
pub(crate) struct Registry {
    state: Mutex<State>,
    events: broadcast::Sender<RegistryEvent>,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    plugins: BTreeMap<String, PluginEntry>,
    /// What each plugin's last handshake asked for, once the checks that need only the
    /// registration passed; owners are resolved from these.
    wanted: BTreeMap<String, Wanted>,
    /// Every accepted registration by owner, in registration order.
    owned: BTreeMap<String, Vec<Arc<Registration>>>,
    /// `owned`, indexed for routing and admission without a scan.
    index: Index,
}

/// One plugin's candidates (by their index in its handshake) and the registrations
/// refused on their own (malformed, undeclared, forbidden).
#[derive(Debug, Default)]
struct Wanted {
    candidates: Vec<(usize, Arc<Registration>)>,
    refused: Vec<RejectedRegistration>,
}

/// Whether two accepted sets are the very same registrations, in the same order: what
/// an admission leaves to every plugin whose keys it did not touch. Each candidate is
/// its own `Arc`, so equal pointers mean equal registrations at equal indexes.
fn same_registrations(
    a: Option<&Vec<Arc<Registration>>>,
    b: Option<&Vec<Arc<Registration>>>,
) -> bool {
    let (a, b) = (
        a.map_or(&[][..], Vec::as_slice),
        b.map_or(&[][..], Vec::as_slice),
    );
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

/// Records a plugin's accepted and rejected registrations, and its shape.
fn settle(
    entry: &mut PluginEntry,
    accepted: &[(usize, Arc<Registration>)],
    rejected: Vec<RejectedRegistration>,
) {
    entry.rejected = rejected;
    entry.shape = Some(Shape::of(accepted.iter().map(|(_, r)| r.as_ref())));
    entry.accepted = accepted
        .iter()
        .map(|(index, r)| AcceptedRegistration {
            index: *index,
            kind: r.kind(),
            key: r.key(),
        })
        .collect();
}

/// What resolving did to one plugin's accepted set.
#[derive(Debug, Default)]
struct Diff {
    added: Vec<(RegistrationKind, String)>,
    removed: Vec<(RegistrationKind, String)>,
    changed: Vec<(RegistrationKind, String)>,
}

/// Who owns a registration, and the registration itself.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Owner {
    pub(crate) plugin: String,
    pub(crate) registration: Arc<Registration>,
}

#[derive(Debug)]
struct PluginEntry {
    /// Precedence: lower comes first (wins contested keys).
    rank: usize,
    /// Accepted registrations' indexes in its last handshake.
    accepted: Vec<AcceptedRegistration>,
    state: PluginState,
    reason: Option<Reason>,
    shape: Option<Shape>,
    rejected: Vec<RejectedRegistration>,
    pid: Option<u32>,
    ready_since: Option<SystemTime>,
    restarts: u64,
}

impl PluginEntry {
    fn new(rank: usize) -> Self {
        Self {
            rank,
            accepted: Vec::new(),
            state: PluginState::Starting,
            reason: Some(Reason::Starting),
            shape: None,
            rejected: Vec::new(),
            pid: None,
            ready_since: None,
            restarts: 0,
        }
    }
}

impl Registry {
    /// A registry knowing `plugins`, all `starting`, in precedence order (the first
    /// wins contested keys).
    pub(crate) fn new<'a>(plugins: impl IntoIterator<Item = &'a str>) -> Self {
        let plugins = plugins
            .into_iter()
            .enumerate()
            .map(|(rank, id)| (id.to_owned(), PluginEntry::new(rank)))
            .collect();
        Self {
            state: Mutex::new(State {
                seq: 0,
                plugins,
                wanted: BTreeMap::new(),
                owned: BTreeMap::new(),
                index: Index::default(),
            }),
            events: broadcast::channel(EVENT_CAPACITY).0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn publish(&self, state: &mut State, event: impl FnOnce(u64) -> RegistryEvent) {
        state.seq += 1;
        // No receiver is fine: events are for whoever listens.
        let _ = self.events.send(event(state.seq));
    }

    /// The registry now.
    pub(crate) fn snapshot(&self) -> RegistrySnapshot {
        Self::snapshot_of(&self.lock())
    }

    /// A snapshot and the events that follow it, with nothing missed or repeated.
    pub(crate) fn subscribe(&self) -> (RegistrySnapshot, broadcast::Receiver<RegistryEvent>) {
        let state = self.lock();
        (Self::snapshot_of(&state), self.events.subscribe())
    }

    fn snapshot_of(state: &State) -> RegistrySnapshot {
        let plugins = state
            .plugins
            .iter()
            .map(|(id, entry)| PluginSnapshot {
                id: id.clone(),
                state: entry.state,
                reason: entry.reason.clone(),
                pid: entry.pid,
                ready_since_ms: entry.ready_since.map(|at| {
                    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
                        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
                    })
                }),
                restarts: entry.restarts,
                shape: entry.shape,
                rejected: entry.rejected.clone(),
                compatibility: Signal::of(
                    entry.state,
                    entry.reason.as_ref(),
                    entry.shape,
                    &entry.accepted,
                ),
            })
            .collect();
        let registrations = state
            .owned
            .iter()
            .flat_map(|(plugin, registrations)| {
                let available = state
                    .plugins
                    .get(plugin)
                    .is_some_and(|p| p.state == PluginState::Ready);
                registrations
                    .iter()
                    .map(move |registration| RegistrationSnapshot {
                        plugin: plugin.clone(),
                        kind: registration.kind(),
                        key: registration.key(),
                        available,
                        registration: (**registration).clone(),
                    })
            })
            .collect();
        RegistrySnapshot {
            seq: state.seq,
            plugins,
            registrations,
        }
    }

    /// Records a state change; publishes it when something changed.
    pub(crate) fn set_state(&self, plugin: &str, new: PluginState, reason: Option<Reason>) {
        let mut state = self.lock();
        let Some(entry) = state.plugins.get_mut(plugin) else {
            return;
        };
        if entry.state == new && entry.reason == reason {
            return;
        }
        if new == PluginState::Ready && entry.state != PluginState::Ready {
            entry.ready_since = Some(SystemTime::now());
        } else if new != PluginState::Ready {
            entry.ready_since = None;
        }
        entry.state = new;
        entry.reason.clone_from(&reason);
        let pid = entry.pid;
        self.publish(&mut state, |seq| RegistryEvent::PluginState {
            seq,
            plugin: plugin.to_owned(),
            state: new,
            reason,
            pid,
        });
    }

    /// A plugin's current state and reason.
    pub(crate) fn state_of(&self, plugin: &str) -> Option<(PluginState, Option<Reason>)> {
        self.lock()
            .plugins
            .get(plugin)
            .map(|e| (e.state, e.reason.clone()))
    }

    /// Every change from now on, without a snapshot.
    pub(crate) fn watch(&self) -> broadcast::Receiver<RegistryEvent> {
        self.events.subscribe()
    }

    /// Whether every plugin is ready, failed or stopped: nothing is on its way.
    pub(crate) fn settled(&self) -> bool {
        self.lock().plugins.values().all(|entry| {
            matches!(
                entry.state,
                PluginState::Ready | PluginState::Failed | PluginState::Stopped
            )
        })
    }

    /// Records the pid of the plugin's current process (`None`: none runs), and counts
    /// a restart when `restart` says this process replaces one that crashed.
    pub(crate) fn set_process(&self, plugin: &str, pid: Option<u32>, restart: bool) {
        if let Some(entry) = self.lock().plugins.get_mut(plugin) {
            entry.pid = pid;
            entry.restarts += u64::from(restart);
        }
    }

    /// Adds a plugin, `starting`, and publishes it. `false` if it is already known.
    pub(crate) fn add_plugin(&self, plugin: &str) -> bool {
        let mut state = self.lock();
        if state.plugins.contains_key(plugin) {
            return false;
        }
        let last = state.plugins.len();
        state
            .plugins
            .insert(plugin.to_owned(), PluginEntry::new(last));
        self.publish(&mut state, |seq| RegistryEvent::PluginAdded {
            seq,
            plugin: plugin.to_owned(),
        });
        true
    }

    /// Forgets a plugin: unregisters everything it registered (a plugin it kept from
    /// a key gets it back), then publishes its removal.
    pub(crate) fn remove_plugin(&self, plugin: &str) {
        let mut state = self.lock();
        if state.plugins.remove(plugin).is_none() {
            return;
        }
        state.wanted.remove(plugin);
        self.resolve(&mut state);
        self.publish(&mut state, |seq| RegistryEvent::PluginRemoved {
            seq,
            plugin: plugin.to_owned(),
        });
    }

    /// Sets precedence from `order` (the first wins contested keys; plugins not in it
    /// come after, by id) and resolves owners again if that changed anything.
    pub(crate) fn set_precedence<'a>(&self, order: impl IntoIterator<Item = &'a str>) {
        let ranks: HashMap<&str, usize> = order
            .into_iter()
            .enumerate()
            .map(|(rank, id)| (id, rank))
            .collect();
        let mut state = self.lock();
        let mut changed = false;
        for (id, entry) in &mut state.plugins {
            let rank = ranks.get(id.as_str()).copied().unwrap_or(usize::MAX);
            changed |= entry.rank != rank;
            entry.rank = rank;
        }
        if changed {
            self.resolve(&mut state);
        }
    }

    /// Checks a handshake's registrations and commits the accepted ones, replacing
    /// what the plugin registered before.
    ///
    /// What needs only the registrations themselves (their fields, the manifest's
    /// declarations, operator policy, compiling tool schemas) is checked before the lock
    /// is taken; under it, duplicates and conflicts are looked up in indexes, so the
    /// lock is held for time linear in this plugin's registrations alone.
    pub(crate) fn admit(
        &self,
        registrant: Registrant<'_>,
        parsed: Vec<Result<Registration, RejectedRegistration>>,
    ) -> Admission {
        let mut admission = Admission::default();
        let candidates: Vec<(usize, Registration)> = parsed
            .into_iter()
            .enumerate()
            .filter_map(|(index, parsed)| {
                let registration = match parsed {
                    Ok(registration) => registration,
                    Err(rejected) => {
                        admission.rejected.push(rejected);
                        return None;
                    }
                };
                match check_alone(registrant, &registration) {
                    Ok(()) => Some((index, registration)),
                    Err((code, reason)) => {
                        admission
                            .rejected
                            .push(rejection(index, &registration, code, reason));
                        None
                    }
                }
            })
            .collect();

        let mut state = self.lock();
        if !state.plugins.contains_key(registrant.plugin) {
            // Removed while its handshake was checked: nothing to commit.
            admission.rejected.sort_by_key(|r| r.index);
            return admission;
        }
        admission.rejected.sort_by_key(|r| r.index);
        state.wanted.insert(
            registrant.plugin.to_owned(),
            Wanted {
                candidates: candidates
                    .into_iter()
                    .map(|(index, registration)| (index, Arc::new(registration)))
                    .collect(),
                refused: admission.rejected,
            },
        );
        let mut diffs = match self.admit_alone(&mut state, registrant.plugin) {
            Some(diffs) => {
                #[cfg(debug_assertions)]
                self.assert_resolved(&mut state);
                diffs
            }
            None => self.resolve(&mut state),
        };
        let tools = state.index.owners.get(&RegistrationKind::Tool);
        registrant.schemas.forget_unserved(
            |name| tools.is_some_and(|tools| tools.contains_key(name)),
            tools.map_or(0, HashMap::len),
        );
        let diff = diffs.remove(registrant.plugin).unwrap_or_default();
        let entry = &state.plugins[registrant.plugin];
        let new = state
            .owned
            .get(registrant.plugin)
            .map_or(&[][..], Vec::as_slice);
        Admission {
            accepted: entry.accepted.clone(),
            rejected: entry.rejected.clone(),
            added: diff.added,
            removed: diff.removed,
            changed: diff.changed,
            services: new
                .iter()
                .filter_map(|r| match r.as_ref() {
                    Registration::Service(s) => Some(s.id.clone()),
                    _ => None,
                })
                .collect(),
        }
    }

    /// An admission that touches no other plugin: none of the plugin's registrations is
    /// contested (no key, command name or overlapping route of another plugin, whatever
    /// their precedence, and no choice between two of its own), it keeps every key it
    /// held (so nothing it held is freed for another plugin), and no other plugin has a
    /// gateway method in its namespace. Resolving every plugin again would then change
    /// nothing but this one's registrations, so only they are checked and indexed: the
    /// common case while a fleet starts, and when a plugin restarts, where a full
    /// resolution per admission made n admissions cost n² work. `None`, having changed
    /// nothing, when the full resolution is needed.
    fn admit_alone(&self, state: &mut State, plugin: &str) -> Option<HashMap<String, Diff>> {
        let namespace = format!("{plugin}.");
        if state
            .index
            .owners
            .get(&RegistrationKind::GatewayMethod)
            .is_some_and(|methods| {
                methods
                    .iter()
                    .any(|(key, owner)| owner.plugin != plugin && key.starts_with(&namespace))
            })
        {
            return None;
        }
        let wanted = state.wanted.get(plugin)?;
        let mut batch = Batch::default();
        for (at, registration) in &wanted.candidates {
            // The plugin's own registrations from before do not count against it.
            match batch.check(&state.index, &state.plugins, plugin, registration) {
                Ok(None) => batch.push(*at, registration.clone()),
                Ok(Some(_)) | Err(_) => return None,
            }
        }
        let old = state.owned.get(plugin).cloned().unwrap_or_default();
        if old
            .iter()
            .any(|r| !batch.positions.contains_key(&(r.kind(), r.key())))
        {
            return None;
        }
        let mut rejected = wanted.refused.clone();
        rejected.sort_by_key(|r| r.index);
        let accepted: Vec<(usize, Arc<Registration>)> =
            batch.entries.into_iter().flatten().collect();
        let registrations: Vec<Arc<Registration>> =
            accepted.iter().map(|(_, r)| r.clone()).collect();
        state.index.remove(plugin, &old);
        state.index.insert(plugin, &registrations);
        // Hooks and routes are listed in precedence order, as a full resolution lists
        // them; this plugin's went last.
        let ranks = &state.plugins;
        state
            .index
            .restore_precedence(&registrations, |owner| ranks.get(owner).map(|e| e.rank));
        if let Some(entry) = state.plugins.get_mut(plugin) {
            settle(entry, &accepted, rejected);
        }
        // What changed, as a full resolution reports it: changes, then registrations.
        let before: HashMap<(RegistrationKind, String), &Arc<Registration>> =
            old.iter().map(|r| ((r.kind(), r.key()), r)).collect();
        let mut diff = Diff::default();
        let mut registered = Vec::new();
        for registration in &registrations {
            let key = (registration.kind(), registration.key());
            match before.get(&key) {
                Some(previous) if **previous == *registration => {}
                Some(_) => {
                    diff.changed.push(key.clone());
                    self.publish(state, |seq| RegistryEvent::Changed {
                        seq,
                        plugin: plugin.to_owned(),
                        kind: key.0,
                        key: key.1,
                        registration: (**registration).clone(),
                    });
                }
                None => {
                    diff.added.push(key.clone());
                    registered.push((key, registration));
                }
            }
        }
        for ((kind, key), registration) in registered {
            self.publish(state, |seq| RegistryEvent::Registered {
                seq,
                plugin: plugin.to_owned(),
                kind,
                key,
                registration: (**registration).clone(),
                replaces: None,
            });
        }
        state.owned.insert(plugin.to_owned(), registrations);
        Some(HashMap::from([(plugin.to_owned(), diff)]))
    }

    /// Checks, in debug builds, that a full resolution would change nothing after
    /// [`Registry::admit_alone`]: no owner, no list order, no plugin's outcome.
    #[cfg(debug_assertions)]
    fn assert_resolved(&self, state: &mut State) {
        let outcome = |state: &State| {
            state
                .plugins
                .iter()
                .map(|(id, e)| (id.clone(), e.accepted.clone(), e.rejected.clone()))
                .collect::<Vec<_>>()
        };
        let (index, outcomes) = (state.index.clone(), outcome(state));
        let diffs = self.resolve(state);
        assert!(
            diffs.is_empty(),
            "admitted alone, but resolving changed {diffs:?}"
        );
        assert!(
            state.index == index,
            "admitted alone, but the index differs"
        );
        assert!(
            outcome(state) == outcomes,
            "admitted alone, but an outcome differs"
        );
    }

    /// Resolves every owner from what each plugin asked for, in precedence order, then
    /// publishes the difference with what was accepted before: every unregistration
    /// first (so no key ever has two owners), then changes, then registrations.
    fn resolve(&self, state: &mut State) -> HashMap<String, Diff> {
        let mut order: Vec<(usize, &str)> = state
            .wanted
            .keys()
            .filter_map(|id| Some((state.plugins.get(id)?.rank, id.as_str())))
            .collect();
        order.sort_unstable();
        let mut index = Index::default();
        let mut owned: BTreeMap<String, Vec<Arc<Registration>>> = BTreeMap::new();
        let mut outcomes = Vec::with_capacity(order.len());
        for (_, plugin) in order {
            let wanted = &state.wanted[plugin];
            let mut rejected = wanted.refused.clone();
            let mut batch = Batch::default();
            for (at, registration) in &wanted.candidates {
                match batch.check(&index, &state.plugins, plugin, registration) {
                    Ok(None) => batch.push(*at, registration.clone()),
                    Ok(Some(position)) => {
                        let (old_index, old) = batch.take(position);
                        rejected.push(rejection(
                            old_index,
                            &old,
                            RejectionCode::Duplicate,
                            format!(
                                "replaced by registration {at} of the same plugin (replaceExisting)"
                            ),
                        ));
                        batch.push(*at, registration.clone());
                    }
                    Err((code, reason)) => {
                        rejected.push(rejection(*at, registration, code, reason));
                    }
                }
            }
            rejected.sort_by_key(|r| r.index);
            let accepted: Vec<(usize, Arc<Registration>)> =
                batch.entries.into_iter().flatten().collect();
            let registrations: Vec<Arc<Registration>> =
                accepted.iter().map(|(_, r)| r.clone()).collect();
            index.insert(plugin, &registrations);
            outcomes.push((plugin.to_owned(), accepted, rejected));
            owned.insert(plugin.to_owned(), registrations);
        }
        for (plugin, accepted, rejected) in outcomes {
            let unchanged = same_registrations(state.owned.get(&plugin), owned.get(&plugin));
            if let Some(entry) = state.plugins.get_mut(&plugin) {
                if unchanged && entry.shape.is_some() {
                    entry.rejected = rejected;
                    continue;
                }
                settle(entry, &accepted, rejected);
            }
        }

        // The difference, per plugin and overall.
        let old = std::mem::replace(&mut state.owned, owned);
        state.index = index;
        let keyed = |registrations: Option<&Vec<Arc<Registration>>>| {
            registrations
                .into_iter()
                .flatten()
                .map(|r| ((r.kind(), r.key()), r.clone()))
                .collect::<HashMap<_, _>>()
        };
        let plugins: BTreeSet<&String> = old.keys().chain(state.owned.keys()).collect();
        let mut diffs: HashMap<String, Diff> = HashMap::new();
        let mut unregistered = Vec::new();
        let mut changed = Vec::new();
        let mut registered = Vec::new();
        // Who lost which key just now, to name them in the winner's `registered`.
        let mut lost: HashMap<(RegistrationKind, String), String> = HashMap::new();
        for plugin in plugins {
            // Most plugins keep exactly what they had (the same registrations, not
            // copies): nothing to compare key by key.
            if same_registrations(old.get(plugin), state.owned.get(plugin)) {
                continue;
            }
            let before = keyed(old.get(plugin));
            let after = keyed(state.owned.get(plugin));
            let diff = diffs.entry(plugin.clone()).or_default();
            let mut gone: Vec<&(RegistrationKind, String)> =
                before.keys().filter(|k| !after.contains_key(*k)).collect();
            gone.sort();
            for key in gone {
                diff.removed.push(key.clone());
                lost.insert(key.clone(), plugin.clone());
                unregistered.push((plugin.clone(), key.clone()));
            }
            for registration in state.owned.get(plugin).into_iter().flatten() {
                let key = (registration.kind(), registration.key());
                match before.get(&key) {
                    Some(previous) if previous == registration => {}
                    Some(_) => {
                        diff.changed.push(key.clone());
                        changed.push((plugin.clone(), key, registration.clone()));
                    }
                    None => {
                        diff.added.push(key.clone());
                        registered.push((plugin.clone(), key, registration.clone()));
                    }
                }
            }
        }
        for (plugin, (kind, key)) in unregistered {
            self.publish(state, |seq| RegistryEvent::Unregistered {
                seq,
                plugin,
                kind,
                key,
            });
        }
        for (plugin, (kind, key), registration) in changed {
            self.publish(state, |seq| RegistryEvent::Changed {
                seq,
                plugin,
                kind,
                key,
                registration: (*registration).clone(),
            });
        }
        for (plugin, (kind, key), registration) in registered {
            let replaces = lost
                .get(&(kind, key.clone()))
                .filter(|loser| **loser != plugin && kind != RegistrationKind::Hook)
                .cloned();
            self.publish(state, |seq| RegistryEvent::Registered {
                seq,
                plugin,
                kind,
                key,
                registration: (*registration).clone(),
                replaces,
            });
        }
        diffs
    }

    /// The owner of an exclusive registration (everything but hooks).
    pub(crate) fn owner(&self, kind: RegistrationKind, key: &str) -> Option<Owner> {
        self.lock().index.owners.get(&kind)?.get(key).cloned()
    }

    /// The command called `name` (case-insensitive), by name or native alias.
    pub(crate) fn command(&self, name: &str) -> Option<(String, CommandRegistration)> {
        let wanted = name.trim().to_lowercase();
        let state = self.lock();
        let owner = state.index.commands.get(&wanted)?;
        match owner.registration.as_ref() {
            Registration::Command(command) => Some((owner.plugin.clone(), command.clone())),
            _ => None,
        }
    }

    /// The route for a request path: an exact route first, else the longest prefix.
    pub(crate) fn route(&self, path: &str) -> Option<(String, HttpRouteRegistration)> {
        let state = self.lock();
        if let Some(owner) = state
            .index
            .owners
            .get(&RegistrationKind::HttpRoute)
            .and_then(|routes| routes.get(path))
            && let Registration::HttpRoute(route) = owner.registration.as_ref()
        {
            return Some((owner.plugin.clone(), route.clone()));
        }
        state
            .index
            .routes
            .longest_prefix(path)
            .map(|(plugin, route)| (plugin.to_owned(), route.clone()))
    }

    /// The hooks for `event`, highest priority first; ties in registration order
    /// (plugins in precedence order, then each plugin's order).
    pub(crate) fn hooks(&self, event: &str) -> Vec<(String, HookRegistration)> {
        let mut hooks = self
            .lock()
            .index
            .hooks
            .get(event)
            .cloned()
            .unwrap_or_default();
        // Stable: the index holds them in registration order.
        hooks.sort_by_key(|(_, hook)| std::cmp::Reverse(hook.priority));
        hooks
    }
}

/// Lookups over every plugin's accepted registrations, kept in step with `owned`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Index {
    /// The owner of each exclusive registration (every kind but hooks), by kind and key.
    owners: HashMap<RegistrationKind, HashMap<String, Owner>>,
    /// Every command name and native alias (lowercase), with its command's owner.
    commands: HashMap<String, Owner>,
    /// Every route, for overlap checks and prefix matching.
    routes: RouteIndex,
    /// Hooks by event.
    hooks: HashMap<String, Vec<(String, HookRegistration)>>,
}

impl Index {
    fn insert(&mut self, plugin: &str, registrations: &[Arc<Registration>]) {
        for registration in registrations {
            let owner = Owner {
                plugin: plugin.to_owned(),
                registration: registration.clone(),
            };
            match registration.as_ref() {
                Registration::Hook(hook) => {
                    self.hooks
                        .entry(hook.event.clone())
                        .or_default()
                        .push((plugin.to_owned(), hook.clone()));
                    continue;
                }
                Registration::Command(command) => {
                    for name in command_names(command) {
                        self.commands.insert(name, owner.clone());
                    }
                }
                Registration::HttpRoute(route) => self.routes.insert(plugin, route),
                _ => {}
            }
            self.owners
                .entry(registration.kind())
                .or_default()
                .insert(registration.key(), owner);
        }
    }
}

impl Index {
    /// Takes `plugin`'s `registrations` out (all it holds).
    fn remove(&mut self, plugin: &str, registrations: &[Arc<Registration>]) {
        for registration in registrations {
            match registration.as_ref() {
                Registration::Hook(hook) => {
                    if let Some(list) = self.hooks.get_mut(&hook.event) {
                        list.retain(|(owner, _)| owner != plugin);
                        if list.is_empty() {
                            self.hooks.remove(&hook.event);
                        }
                    }
                    continue;
                }
                Registration::Command(command) => {
                    for name in command_names(command) {
                        if self.commands.get(&name).is_some_and(|o| o.plugin == plugin) {
                            self.commands.remove(&name);
                        }
                    }
                }
                Registration::HttpRoute(route) => self.routes.remove(plugin, route),
                _ => {}
            }
            let kind = registration.kind();
            if let Some(owners) = self.owners.get_mut(&kind) {
                let key = registration.key();
                if owners.get(&key).is_some_and(|o| o.plugin == plugin) {
                    owners.remove(&key);
                }
                if owners.is_empty() {
                    self.owners.remove(&kind);
                }
            }
        }
    }

    /// Puts the hooks of the events and the routes at the paths that `registrations`
    /// touch back in precedence order (`rank` of their plugin; a stable sort, so each
    /// plugin's keep their registration order).
    fn restore_precedence(
        &mut self,
        registrations: &[Arc<Registration>],
        rank: impl Fn(&str) -> Option<usize>,
    ) {
        let rank = |owner: &String| rank(owner).unwrap_or(usize::MAX);
        for registration in registrations {
            match registration.as_ref() {
                Registration::Hook(hook) => {
                    if let Some(list) = self.hooks.get_mut(&hook.event) {
                        list.sort_by_key(|(owner, _)| rank(owner));
                    }
                }
                Registration::HttpRoute(route) => {
                    let paths = &mut self.routes.by_auth[RouteIndex::slot(route.auth)];
                    if let Some(list) = paths.get_mut(RouteIndex::trimmed(&route.path)) {
                        list.sort_by_key(|(owner, _)| rank(owner));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Routes by auth, then by path without its trailing `/` (so `/` is the empty string):
/// the routes that can overlap a path are at that path, above it (a shorter key that
/// it continues after a `/`), or below it (a range of keys).
#[derive(Clone, Debug, Default, PartialEq)]
struct RouteIndex {
    by_auth: [BTreeMap<String, Vec<(String, HttpRouteRegistration)>>; 2],
}

impl RouteIndex {
    fn slot(auth: RouteAuth) -> usize {
        match auth {
            RouteAuth::Gateway => 0,
            RouteAuth::Plugin => 1,
        }
    }

    fn trimmed(path: &str) -> &str {
        path.trim_end_matches('/')
    }

    fn insert(&mut self, plugin: &str, route: &HttpRouteRegistration) {
        self.by_auth[Self::slot(route.auth)]
            .entry(Self::trimmed(&route.path).to_owned())
            .or_default()
            .push((plugin.to_owned(), route.clone()));
    }

    fn remove(&mut self, plugin: &str, route: &HttpRouteRegistration) {
        let map = &mut self.by_auth[Self::slot(route.auth)];
        let key = Self::trimmed(&route.path);
        if let Some(entries) = map.get_mut(key) {
            entries.retain(|(owner, r)| {
                !(owner == plugin && r.path == route.path && r.match_kind == route.match_kind)
            });
            if entries.is_empty() {
                map.remove(key);
            }
        }
    }

    /// The keys at and above `path`: `/a/b` gives `/a/b`, `/a` and ``.
    fn ancestors(path: &str) -> impl Iterator<Item = &str> {
        let path = Self::trimmed(path);
        std::iter::once(path)
            .chain(path.rmatch_indices('/').map(move |(at, _)| &path[..at]))
            .filter({
                let mut last = None;
                move |key| last.replace(*key) != Some(*key)
            })
    }

    /// A route with another auth that overlaps `route`, if any.
    fn overlap_with_other_auth(
        &self,
        route: &HttpRouteRegistration,
    ) -> Option<(&str, &HttpRouteRegistration)> {
        let other = &self.by_auth[1 - Self::slot(route.auth)];
        let above = Self::ancestors(&route.path)
            .filter_map(|key| other.get(key))
            .flatten();
        let below = (route.match_kind == RouteMatch::Prefix).then(|| {
            let start = format!("{}/", Self::trimmed(&route.path));
            other
                .range(start.clone()..)
                .take_while(move |(key, _)| key.starts_with(&start))
                .flat_map(|(_, entries)| entries)
        });
        above
            .chain(below.into_iter().flatten())
            .find(|(_, existing)| routes_overlap(existing, route))
            .map(|(owner, existing)| (owner.as_str(), existing))
    }

    /// The longest prefix route matching a request path.
    fn longest_prefix(&self, path: &str) -> Option<(&str, &HttpRouteRegistration)> {
        Self::ancestors(path).find_map(|key| {
            self.by_auth
                .iter()
                .filter_map(|map| map.get(key))
                .flatten()
                .filter(|(_, route)| {
                    route.match_kind == RouteMatch::Prefix && route_matches(route, path)
                })
                .max_by_key(|(_, route)| route.path.len())
                .map(|(owner, route)| (owner.as_str(), route))
        })
    }
}

/// One plugin's registrations accepted so far in a handshake, with the lookups its
/// duplicate checks need.
#[derive(Default)]
struct Batch {
    /// In registration order; `None` where `replaceExisting` took one out.
    entries: Vec<Option<(usize, Arc<Registration>)>>,
    positions: HashMap<(RegistrationKind, String), usize>,
    command_names: HashMap<String, usize>,
    routes: RouteIndex,
}

impl Batch {
    fn push(&mut self, index: usize, registration: Arc<Registration>) {
        let position = self.entries.len();
        self.positions
            .insert((registration.kind(), registration.key()), position);
        match registration.as_ref() {
            Registration::Command(command) => {
                for name in command_names(command) {
                    self.command_names.insert(name, index);
                }
            }
            Registration::HttpRoute(route) => self.routes.insert("", route),
            _ => {}
        }
        self.entries.push(Some((index, registration)));
    }

    fn take(&mut self, position: usize) -> (usize, Arc<Registration>) {
        let (index, registration) = self.entries[position]
            .take()
            .expect("a position in `positions` is filled");
        if let Registration::HttpRoute(route) = registration.as_ref() {
            self.routes.remove("", route);
        }
        (index, registration)
    }

    /// The rules that compare a registration with this plugin's others and with those
    /// of the plugins before it in precedence (`index`). `Ok(Some(position))`:
    /// accepted, replacing the entry there.
    fn check(
        &self,
        index: &Index,
        plugins: &BTreeMap<String, PluginEntry>,
        plugin: &str,
        registration: &Registration,
    ) -> Result<Option<usize>, (RejectionCode, String)> {
        let (kind, key) = (registration.kind(), registration.key());
        // Twice from this plugin.
        if let Some(&position) = self.positions.get(&(kind, key.clone()))
            && let Some((first, _)) = &self.entries[position]
        {
            if let Registration::HttpRoute(route) = registration
                && route.replace_existing
            {
                return Ok(Some(position));
            }
            let hint = if kind == RegistrationKind::Hook {
                "; give each handler of one event its own `id`"
            } else {
                ""
            };
            return Err((
                RejectionCode::Duplicate,
                format!(
                    "{kind} `{key}` is registered twice by this plugin (first at index {first}){hint}"
                ),
            ));
        }
        let other_owner = |kind: RegistrationKind, key: &str| {
            index
                .owners
                .get(&kind)
                .and_then(|owners| owners.get(key))
                .filter(|owner| owner.plugin != plugin)
        };
        match registration {
            // Hooks of many plugins coexist.
            Registration::Hook(_) => {}
            Registration::Command(command) => {
                for name in command_names(command) {
                    if let Some(first) = self.command_names.get(&name) {
                        return Err((
                            RejectionCode::Duplicate,
                            format!(
                                "command name `/{name}` is used twice by this plugin (first at index {first})"
                            ),
                        ));
                    }
                    if let Some(owner) = index.commands.get(&name)
                        && owner.plugin != plugin
                    {
                        return Err((
                            RejectionCode::Conflict,
                            format!(
                                "command `/{name}` is registered by plugin `{}`, which comes first in precedence; rename it",
                                owner.plugin
                            ),
                        ));
                    }
                }
            }
            Registration::HttpRoute(route) => {
                if let Some(owner) = other_owner(kind, &key) {
                    return Err((
                        RejectionCode::Conflict,
                        format!(
                            "route `{key}` is registered by plugin `{}`, which comes first in precedence; a plugin can only replace its own routes",
                            owner.plugin
                        ),
                    ));
                }
                let own = self
                    .routes
                    .overlap_with_other_auth(route)
                    .map(|(_, r)| (plugin, r));
                let others = || {
                    index
                        .routes
                        .overlap_with_other_auth(route)
                        .filter(|(owner, _)| *owner != plugin)
                };
                if let Some((owner, other)) = own.or_else(others) {
                    return Err((
                        RejectionCode::Conflict,
                        format!(
                            "route `{key}` (auth {:?}) overlaps route `{}` of plugin `{owner}` (auth {:?}); overlapping routes must use the same auth",
                            route.auth, other.path, other.auth
                        ),
                    ));
                }
            }
            _ => {
                if let Registration::GatewayMethod(method) = registration
                    && let Some((namespace, _)) = method.method.split_once('.')
                    && namespace != plugin
                    && plugins.contains_key(namespace)
                {
                    return Err((
                        RejectionCode::Namespace,
                        format!(
                            "gateway method `{key}` is in the namespace of plugin `{namespace}`; use your own id or another prefix"
                        ),
                    ));
                }
                if let Some(owner) = other_owner(kind, &key) {
                    return Err((
                        RejectionCode::Conflict,
                        format!(
                            "{kind} `{key}` is registered by plugin `{}`, which comes first in precedence",
                            owner.plugin
                        ),
                    ));
                }
            }
        }
        Ok(None)
    }
}

fn command_names(command: &CommandRegistration) -> impl Iterator<Item = String> + '_ {
    std::iter::once(command.name.trim().to_lowercase()).chain(
        command
            .native_names
            .values()
            .map(|alias| alias.trim().to_lowercase()),
    )
}

fn rejection(
    index: usize,
    registration: &Registration,
    code: RejectionCode,
    reason: String,
) -> RejectedRegistration {
    RejectedRegistration {
        index,
        kind: Some(registration.kind()),
        key: Some(registration.key()),
        code,
        reason,
    }
}

/// The rules that need only the registration, the plugin's manifest and the
/// operator's policy for it.
fn check_alone(
    registrant: Registrant<'_>,
    registration: &Registration,
) -> Result<(), (RejectionCode, String)> {
    let plugin = registrant.plugin;
    registration.check(plugin).map_err(|p| (p.code, p.reason))?;
    check_declared(registrant.declarations, registration)?;
    if let Registration::Hook(hook) = registration
        && !registrant.allow_prompt_injection
        && PROMPT_INJECTION_HOOKS.contains(&hook.event.as_str())
    {
        return Err((
            RejectionCode::Forbidden,
            format!(
                "`{}` changes prompts, and the operator set plugins.entries.{plugin}.hooks.allowPromptInjection to false",
                hook.event
            ),
        ));
    }
    if let Registration::Hook(hook) = registration
        && registrant.conversation != Conversation::Granted
        && CONVERSATION_HOOKS.contains(&hook.event.as_str())
    {
        return Err((
            RejectionCode::Forbidden,
            if registrant.conversation == Conversation::Refused {
                format!(
                    "`{}` sees conversation content, and the operator set plugins.entries.{plugin}.hooks.allowConversationAccess to false",
                    hook.event
                )
            } else {
                format!(
                    "`{}` sees conversation content, which a plugin that is not bundled gets only when the operator sets plugins.entries.{plugin}.hooks.allowConversationAccess: true",
                    hook.event
                )
            },
        ));
    }
    if let Registration::HttpRoute(route) = registration
        && route.match_kind == RouteMatch::Prefix
        && route.path.trim_end_matches('/').is_empty()
        && !registrant.allow_catch_all_route
    {
        return Err((
            RejectionCode::Forbidden,
            format!(
                "a prefix route on `/` would receive every request no other plugin's route takes; the operator must allow it with outpost.plugins.{plugin}.allowCatchAllRoute: true"
            ),
        ));
    }
    if let Registration::Tool(tool) = registration {
        registrant
            .schemas
            .check(&tool.name, &tool.input_schema)
            .map_err(|e| {
                (
                    RejectionCode::Invalid,
                    format!(
                        "tool `{}`: `inputSchema` is not a usable JSON Schema: {e}",
                        tool.name
                    ),
                )
            })?;
    }
    Ok(())
}

fn check_declared(
    declarations: &Declarations,
    registration: &Registration,
) -> Result<(), (RejectionCode, String)> {
    let (field, id, what) = match registration {
        Registration::Tool(t) => (ManifestField::Contracts("tools"), t.name.as_str(), "tool"),
        Registration::Channel(c) => (
            ManifestField::TopLevel("channels"),
            c.id.as_str(),
            "channel",
        ),
        Registration::Provider(p) => (p.capability.manifest_field(), p.id.as_str(), "provider"),
        _ => return Ok(()),
    };
    if declarations.declares(field, id) {
        Ok(())
    } else {
        Err((
            RejectionCode::NotDeclared,
            format!(
                "{what} `{id}` is not declared in the manifest's `{field}`; add it there (the manifest is what the operator reviewed)"
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use outpost_protocol::parse_registrations;
    use serde_json::{Value, json};

    use super::*;

    fn declarations() -> Declarations {
        Declarations::from_manifest(&json!({
            "channels": ["chat"],
            "contracts": {"tools": ["echo", "shared", "t1", "t2"], "webSearchProviders": ["g"]}
        }))
    }

    fn admit(registry: &Registry, plugin: &str, registrations: &[Value]) -> Admission {
        let declarations = declarations();
        registry.admit(
            Registrant {
                plugin,
                declarations: &declarations,
                allow_prompt_injection: plugin != "strict",
                allow_catch_all_route: plugin == "a",
                conversation: if plugin == "strict" {
                    Conversation::NotGranted
                } else {
                    Conversation::Granted
                },
                schemas: &Schemas::default(),
            },
            parse_registrations(registrations),
        )
    }

    fn codes(admission: &Admission) -> Vec<(usize, RejectionCode)> {
        admission
            .rejected
            .iter()
            .map(|r| (r.index, r.code))
            .collect()
    }

    fn tool(name: &str) -> Value {
        json!({"kind": "tool", "name": name, "description": "d", "inputSchema": {"type": "object"}})
    }

    #[test]
    fn the_rules_table() {
        let registry = Registry::new(["a", "b", "strict"]);
        let first = admit(
            &registry,
            "a",
            &[
                tool("shared"),
                json!({"kind": "command", "name": "Notes", "description": "d", "nativeNames": {"discord": "nb"}}),
                json!({"kind": "httpRoute", "path": "/a", "auth": "plugin", "match": "prefix"}),
                json!({"kind": "service", "id": "svc"}),
                json!({"kind": "channel", "id": "chat"}),
            ],
        );
        assert!(first.rejected.is_empty(), "{:?}", first.rejected);

        let cases: &[(&str, Value, Option<RejectionCode>)] = &[
            ("b", tool("echo"), None),
            ("b", tool("undeclared"), Some(RejectionCode::NotDeclared)),
            ("b", tool("shared"), Some(RejectionCode::Conflict)),
            (
                "b",
                json!({"kind": "tool", "name": "t1", "description": "d", "inputSchema": {"type": 7}}),
                Some(RejectionCode::Invalid),
            ),
            (
                "b",
                json!({"kind": "command", "name": "NOTES", "description": "d"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "command", "name": "nb", "description": "d"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "command", "name": "help", "description": "d"}),
                Some(RejectionCode::Reserved),
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/a", "auth": "plugin", "match": "prefix"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/a/x", "auth": "gateway"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/a/x", "auth": "plugin"}),
                None,
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/ab", "auth": "gateway"}),
                None,
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/", "auth": "plugin", "match": "prefix"}),
                Some(RejectionCode::Forbidden),
            ),
            (
                "a",
                json!({"kind": "httpRoute", "path": "/", "auth": "plugin", "match": "prefix"}),
                None,
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/", "auth": "gateway"}),
                None,
            ),
            (
                "b",
                json!({"kind": "httpRoute", "path": "/a/deep/er", "auth": "gateway", "match": "prefix"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "service", "id": "svc"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "channel", "id": "chat"}),
                Some(RejectionCode::Conflict),
            ),
            (
                "b",
                json!({"kind": "channel", "id": "other"}),
                Some(RejectionCode::NotDeclared),
            ),
            (
                "b",
                json!({"kind": "provider", "capability": "webSearch", "id": "g"}),
                None,
            ),
            (
                "b",
                json!({"kind": "provider", "capability": "speech", "id": "g"}),
                Some(RejectionCode::NotDeclared),
            ),
            (
                "b",
                json!({"kind": "gatewayMethod", "method": "a.steal"}),
                Some(RejectionCode::Namespace),
            ),
            (
                "b",
                json!({"kind": "gatewayMethod", "method": "b.mine"}),
                None,
            ),
            (
                "b",
                json!({"kind": "hook", "event": "before_prompt_build"}),
                None,
            ),
            (
                "b",
                json!({"kind": "hook", "event": "on_tuesday"}),
                Some(RejectionCode::UnknownHook),
            ),
            (
                "strict",
                json!({"kind": "hook", "event": "before_prompt_build"}),
                Some(RejectionCode::Forbidden),
            ),
            (
                "strict",
                json!({"kind": "hook", "event": "before_agent_start"}),
                None,
            ),
            (
                "strict",
                json!({"kind": "hook", "event": "llm_input"}),
                Some(RejectionCode::Forbidden),
            ),
            (
                "strict",
                json!({"kind": "hook", "event": "message_received"}),
                None,
            ),
            (
                "b",
                json!({"kind": "hook", "event": "before_tool_call", "matcher": ["exec"], "timeoutMs": 50}),
                None,
            ),
            (
                "b",
                json!({"kind": "hook", "event": "agent_end", "matcher": ["exec"]}),
                Some(RejectionCode::Invalid),
            ),
            (
                "b",
                json!({"kind": "wormhole"}),
                Some(RejectionCode::Invalid),
            ),
        ];
        for (plugin, registration, expected) in cases {
            // Each case alone, so cases do not conflict with each other.
            let registry = Registry::new(["a", "b", "strict"]);
            admit(
                &registry,
                "a",
                &[
                    tool("shared"),
                    json!({"kind": "command", "name": "Notes", "description": "d", "nativeNames": {"discord": "nb"}}),
                    json!({"kind": "httpRoute", "path": "/a", "auth": "plugin", "match": "prefix"}),
                    json!({"kind": "service", "id": "svc"}),
                    json!({"kind": "channel", "id": "chat"}),
                ],
            );
            let admission = admit(&registry, plugin, std::slice::from_ref(registration));
            let got = admission.rejected.first().map(|r| r.code);
            assert_eq!(
                &got, expected,
                "{plugin}: {registration} -> {:?}",
                admission.rejected
            );
            if let Some(rejected) = admission.rejected.first() {
                assert!(!rejected.reason.is_empty());
            }
        }
    }

    #[test]
    fn duplicates_within_one_plugin_and_route_replacement() {
        let registry = Registry::new(["a"]);
        let admission = admit(
            &registry,
            "a",
            &[
                tool("t1"),
                tool("t1"),
                json!({"kind": "hook", "event": "agent_end"}),
                json!({"kind": "hook", "event": "agent_end", "priority": 5}),
                json!({"kind": "hook", "event": "agent_end", "id": "second"}),
                json!({"kind": "httpRoute", "path": "/r", "auth": "plugin"}),
                json!({"kind": "httpRoute", "path": "/r", "auth": "plugin", "replaceExisting": true}),
            ],
        );
        assert_eq!(
            codes(&admission),
            [
                (1, RejectionCode::Duplicate),
                (3, RejectionCode::Duplicate),
                (5, RejectionCode::Duplicate)
            ]
        );
        assert!(admission.rejected[1].reason.contains("its own `id`"));
        // Several handlers of one event, told apart by their ids.
        assert_eq!(
            admission
                .accepted
                .iter()
                .map(|a| (a.index, a.key.as_str()))
                .collect::<Vec<_>>(),
            [
                (0, "t1"),
                (2, "agent_end"),
                (4, "agent_end:second"),
                (6, "/r")
            ]
        );
        assert_eq!(registry.hooks("agent_end").len(), 2);
    }

    #[test]
    fn the_first_in_precedence_wins_and_the_loser_stays_loaded() {
        let registry = Registry::new(["a", "b"]);
        admit(&registry, "a", &[tool("shared")]);
        let b = admit(&registry, "b", &[tool("shared"), tool("echo")]);
        assert_eq!(codes(&b), [(0, RejectionCode::Conflict)]);
        assert!(
            b.rejected[0].reason.contains("plugin `a`"),
            "{}",
            b.rejected[0].reason
        );
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "a"
        );
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "echo")
                .unwrap()
                .plugin,
            "b"
        );
    }

    #[test]
    fn a_restart_that_keeps_its_keys_reports_changes_then_additions() {
        // `a` comes back with every key it held (one changed) and a new one: admitted
        // alone, and reported as a full resolution would report it.
        let registry = Registry::new(["a", "b"]);
        let hook = |id: &str| json!({"kind": "hook", "event": "llm_input", "id": id});
        admit(&registry, "a", &[tool("t1"), tool("t2"), hook("a1")]);
        admit(&registry, "b", &[tool("shared"), hook("b1")]);
        registry.set_state("a", PluginState::Restarting, Some(crashed()));
        let (_, mut events) = registry.subscribe();
        let again = admit(
            &registry,
            "a",
            &[
                tool("t1"),
                json!({"kind": "tool", "name": "t2", "description": "changed", "inputSchema": {"type": "object"}}),
                hook("a1"),
                tool("echo"),
            ],
        );
        assert!(again.rejected.is_empty(), "{:?}", again.rejected);
        assert_eq!(again.changed, [(RegistrationKind::Tool, "t2".to_owned())]);
        assert_eq!(again.added, [(RegistrationKind::Tool, "echo".to_owned())]);
        assert!(again.removed.is_empty());
        let kinds: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event {
                RegistryEvent::Registered { key, .. } => format!("+{key}"),
                RegistryEvent::Changed { key, .. } => format!("~{key}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(kinds, ["~t2", "+echo"]);
        let t2 = registry.owner(RegistrationKind::Tool, "t2").unwrap();
        assert!(matches!(&*t2.registration, Registration::Tool(t) if t.description == "changed"));
        // `a` comes first in precedence: its hook still runs before `b`'s.
        let order: Vec<String> = registry
            .hooks("llm_input")
            .into_iter()
            .map(|(plugin, _)| plugin)
            .collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn hooks_of_equal_priority_run_in_precedence_order_whatever_the_order_of_handshakes() {
        // Nobody contests anything here: each plugin is admitted alone (the fast path),
        // last in, yet its hooks take their place by precedence.
        let registry = Registry::new(["a", "b", "c"]);
        let hook = |id: &str| json!({"kind": "hook", "event": "llm_input", "id": id});
        for plugin in ["c", "a", "b"] {
            let admission = admit(
                &registry,
                plugin,
                &[hook(&format!("{plugin}1")), hook(&format!("{plugin}2"))],
            );
            assert!(admission.rejected.is_empty(), "{:?}", admission.rejected);
        }
        let order: Vec<String> = registry
            .hooks("llm_input")
            .into_iter()
            .map(|(plugin, hook)| format!("{plugin}:{}", hook.id.unwrap_or_default()))
            .collect();
        assert_eq!(order, ["a:a1", "a:a2", "b:b1", "b:b2", "c:c1", "c:c2"]);
    }

    #[test]
    fn precedence_decides_owners_whatever_the_order_of_handshakes() {
        // `a` comes first in precedence; `b` finishes its handshake first.
        let registry = Registry::new(["a", "b"]);
        let b = admit(
            &registry,
            "b",
            &[
                tool("shared"),
                json!({"kind": "command", "name": "mystatus", "description": "d"}),
            ],
        );
        assert!(b.rejected.is_empty(), "nobody else is there yet");
        let (_, mut events) = registry.subscribe();
        let a = admit(
            &registry,
            "a",
            &[
                tool("shared"),
                json!({"kind": "command", "name": "MyStatus", "description": "d"}),
            ],
        );
        assert!(a.rejected.is_empty(), "{:?}", a.rejected);
        assert_eq!(registry.command("mystatus").unwrap().0, "a");
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "a"
        );
        // `b` keeps running with both rejected, naming the winner.
        let b_entry = registry
            .snapshot()
            .plugins
            .into_iter()
            .find(|p| p.id == "b")
            .unwrap();
        assert_eq!(
            b_entry.rejected.iter().map(|r| r.code).collect::<Vec<_>>(),
            [RejectionCode::Conflict; 2]
        );
        assert!(
            b_entry
                .rejected
                .iter()
                .all(|r| r.reason.contains("plugin `a`"))
        );
        let seen: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event {
                RegistryEvent::Registered {
                    plugin,
                    key,
                    replaces,
                    ..
                } => {
                    format!("+{key} {plugin} replaces {replaces:?}")
                }
                RegistryEvent::Unregistered { plugin, key, .. } => format!("-{key} {plugin}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            seen,
            [
                "-shared b",
                "-mystatus b",
                "+shared a replaces Some(\"b\")",
                "+mystatus a replaces Some(\"b\")"
            ]
        );
        // A restart of the loser changes nothing; the other order gives the same owners.
        admit(&registry, "b", &[tool("shared")]);
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "a"
        );
        let other = Registry::new(["a", "b"]);
        admit(&other, "a", &[tool("shared")]);
        admit(&other, "b", &[tool("shared")]);
        assert_eq!(
            other
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "a"
        );
        // The winner gone, the loser gets the key back.
        registry.remove_plugin("a");
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "b"
        );
        // A reload that puts `b` first moves the key.
        other.set_precedence(["b", "a"]);
        assert_eq!(
            other
                .owner(RegistrationKind::Tool, "shared")
                .unwrap()
                .plugin,
            "b"
        );
    }

    #[test]
    fn gateway_methods_take_any_namespace_but_another_plugins_id() {
        let registry = Registry::new(["memory-wiki", "voice-call", "wiki"]);
        let admission = admit(
            &registry,
            "memory-wiki",
            &[
                json!({"kind": "gatewayMethod", "method": "wiki.search"}),
                json!({"kind": "gatewayMethod", "method": "memory-wiki.status"}),
                json!({"kind": "gatewayMethod", "method": "voice-call.steal"}),
                json!({"kind": "gatewayMethod", "method": "config.set"}),
            ],
        );
        assert_eq!(
            codes(&admission),
            [
                (0, RejectionCode::Namespace),
                (2, RejectionCode::Namespace),
                (3, RejectionCode::Namespace)
            ]
        );
        let voice = admit(
            &registry,
            "voice-call",
            &[
                json!({"kind": "gatewayMethod", "method": "voicecall.start"}),
                json!({"kind": "gatewayMethod", "method": "memory-wiki.status"}),
            ],
        );
        assert_eq!(codes(&voice), [(1, RejectionCode::Namespace)]);
    }

    #[test]
    fn a_restart_keeps_names_reserved_and_reports_the_difference() {
        let registry = Registry::new(["a", "b"]);
        admit(
            &registry,
            "a",
            &[
                tool("t1"),
                tool("t2"),
                json!({"kind": "service", "id": "s"}),
            ],
        );
        registry.set_state("a", PluginState::Restarting, Some(crashed()));
        // While `a` is down, its names stay taken.
        let b = admit(&registry, "b", &[tool("t1")]);
        assert_eq!(codes(&b), [(0, RejectionCode::Conflict)]);
        let snapshot = registry.snapshot();
        assert!(
            snapshot
                .registrations
                .iter()
                .filter(|r| r.plugin == "a")
                .all(|r| !r.available)
        );

        let (_, mut events) = registry.subscribe();
        let again = admit(
            &registry,
            "a",
            &[
                json!({"kind": "tool", "name": "t1", "description": "changed", "inputSchema": {"type": "object"}}),
                tool("echo"),
                json!({"kind": "service", "id": "s"}),
            ],
        );
        assert_eq!(again.added, [(RegistrationKind::Tool, "echo".to_owned())]);
        assert_eq!(again.removed, [(RegistrationKind::Tool, "t2".to_owned())]);
        assert_eq!(again.changed, [(RegistrationKind::Tool, "t1".to_owned())]);
        // The owner index follows: the removed tool has no owner, the changed one is the
        // new registration.
        assert!(registry.owner(RegistrationKind::Tool, "t2").is_none());
        let t1 = registry.owner(RegistrationKind::Tool, "t1").unwrap();
        assert!(matches!(&*t1.registration, Registration::Tool(t) if t.description == "changed"));
        assert_eq!(
            registry
                .owner(RegistrationKind::Tool, "echo")
                .unwrap()
                .plugin,
            "a"
        );
        let mut kinds = Vec::new();
        while let Ok(event) = events.try_recv() {
            kinds.push(match event {
                RegistryEvent::Registered { key, .. } => format!("+{key}"),
                RegistryEvent::Unregistered { key, .. } => format!("-{key}"),
                RegistryEvent::Changed { key, .. } => format!("~{key}"),
                other => format!("{other:?}"),
            });
        }
        assert_eq!(kinds, ["-t2", "~t1", "+echo"]);
    }

    fn crashed() -> Reason {
        Reason::Exiting {
            cause: crate::data::reason::ExitCause::Crashed,
        }
    }

    #[test]
    fn plugins_come_and_go_with_their_registrations() {
        let registry = Registry::new(["a"]);
        admit(&registry, "a", &[tool("t1"), tool("t2")]);
        let (_, mut events) = registry.subscribe();
        assert!(registry.add_plugin("b"));
        assert!(!registry.add_plugin("b"), "already known");
        registry.set_process("b", Some(42), false);
        registry.set_process("b", Some(43), true);
        let b = registry
            .snapshot()
            .plugins
            .into_iter()
            .find(|p| p.id == "b")
            .unwrap();
        assert_eq!(
            (b.state, b.pid, b.restarts),
            (PluginState::Starting, Some(43), 1)
        );
        registry.remove_plugin("a");
        let seen: Vec<String> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|event| match event {
                RegistryEvent::PluginAdded { plugin, .. } => format!("+{plugin}"),
                RegistryEvent::Unregistered { key, .. } => format!("-{key}"),
                RegistryEvent::PluginRemoved { plugin, .. } => format!("gone {plugin}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(seen, ["+b", "-t1", "-t2", "gone a"]);
        assert!(registry.owner(RegistrationKind::Tool, "t1").is_none());
        assert!(registry.state_of("a").is_none());
        // Its names are free again.
        assert!(admit(&registry, "b", &[tool("t1")]).rejected.is_empty());
    }

    #[test]
    fn snapshots_and_events_are_consistent() {
        let registry = Registry::new(["a"]);
        registry.set_state("a", PluginState::Ready, None);
        let (snapshot, mut events) = registry.subscribe();
        assert_eq!(snapshot.seq, 1);
        admit(&registry, "a", &[tool("t1")]);
        registry.set_state("a", PluginState::Restarting, Some(crashed()));
        registry.set_state("a", PluginState::Restarting, Some(crashed())); // no change, no event
        let seqs: Vec<u64> = std::iter::from_fn(|| events.try_recv().ok())
            .map(|e| e.seq())
            .collect();
        assert_eq!(seqs, [2, 3]);
        assert_eq!(registry.snapshot().seq, 3);
    }

    #[test]
    fn many_registrations_are_checked_against_indexes() {
        // 20,000 commands and routes: quadratic admission took minutes for this.
        let registry = Registry::new(["a", "b"]);
        let many: Vec<Value> = (0..10_000)
            .flat_map(|i| {
                [
                    json!({"kind": "command", "name": format!("c{i}"), "description": "d"}),
                    json!({"kind": "httpRoute", "path": format!("/a/{i}"), "auth": "plugin"}),
                ]
            })
            .collect();
        let first = admit(&registry, "a", &many);
        assert!(first.rejected.is_empty());
        assert_eq!(first.accepted.len(), 20_000);
        let second = admit(
            &registry,
            "b",
            &[
                json!({"kind": "command", "name": "C9999", "description": "d"}),
                json!({"kind": "httpRoute", "path": "/a", "auth": "gateway", "match": "prefix"}),
                json!({"kind": "httpRoute", "path": "/a/77", "auth": "plugin"}),
                json!({"kind": "httpRoute", "path": "/b", "auth": "gateway", "match": "prefix"}),
            ],
        );
        assert_eq!(
            codes(&second),
            [
                (0, RejectionCode::Conflict),
                (1, RejectionCode::Conflict),
                (2, RejectionCode::Conflict)
            ]
        );
        assert!(
            second.rejected[1].reason.contains("overlaps route `/a/"),
            "{:?}",
            second.rejected[1]
        );
        // The same set again: nothing changes, nothing conflicts with itself.
        let again = admit(&registry, "a", &many);
        assert!(again.rejected.is_empty());
        assert!(again.added.is_empty() && again.removed.is_empty());
    }

    #[test]
    fn lookups() {
        let registry = Registry::new(["a", "b"]);
        admit(
            &registry,
            "a",
            &[
                json!({"kind": "command", "name": "Notes", "description": "d", "nativeNames": {"discord": "nb"}}),
                json!({"kind": "httpRoute", "path": "/a", "auth": "plugin", "match": "prefix"}),
                json!({"kind": "hook", "event": "agent_end", "priority": 1}),
            ],
        );
        admit(
            &registry,
            "b",
            &[
                json!({"kind": "httpRoute", "path": "/a/b", "auth": "plugin", "match": "prefix"}),
                json!({"kind": "httpRoute", "path": "/a/b/c", "auth": "plugin"}),
                json!({"kind": "hook", "event": "agent_end", "priority": 9}),
            ],
        );
        assert_eq!(registry.command("NOTES").unwrap().0, "a");
        assert_eq!(registry.command("nb").unwrap().0, "a");
        assert!(registry.command("other").is_none());
        assert_eq!(registry.route("/a/x").unwrap().1.path, "/a");
        assert_eq!(registry.route("/a/b/x").unwrap().1.path, "/a/b");
        assert_eq!(registry.route("/a/b/c").unwrap().1.path, "/a/b/c");
        assert_eq!(registry.route("/a/b/c/d").unwrap().1.path, "/a/b");
        assert_eq!(registry.route("/a/b/").unwrap().1.path, "/a/b");
        assert_eq!(registry.route("/a").unwrap().1.path, "/a");
        assert!(registry.route("/ab").is_none());
        assert!(registry.route("/z").is_none());
        let order: Vec<_> = registry
            .hooks("agent_end")
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(order, ["b", "a"]);
        // Gone with its plugin.
        registry.remove_plugin("b");
        assert_eq!(registry.route("/a/b/c").unwrap().1.path, "/a");
        assert_eq!(registry.hooks("agent_end").len(), 1);
        admit(&registry, "a", &[]);
        assert!(registry.command("nb").is_none());
        assert!(registry.route("/a").is_none());
        assert!(registry.hooks("agent_end").is_empty());
    }

    #[test]
    fn compatibility_signals() {
        let registry = Registry::new(["hooks", "legacy", "tools", "silent"]);
        admit(
            &registry,
            "hooks",
            &[json!({"kind": "hook", "event": "agent_end"})],
        );
        admit(
            &registry,
            "legacy",
            &[
                json!({"kind": "hook", "event": "before_agent_start"}),
                tool("t1"),
            ],
        );
        admit(&registry, "tools", &[tool("t2")]);
        registry.set_state(
            "silent",
            PluginState::Failed,
            Some(Reason::Exiting {
                cause: crate::data::reason::ExitCause::Crashed,
            }),
        );
        let signals: BTreeMap<String, Vec<SignalKind>> = registry
            .snapshot()
            .plugins
            .into_iter()
            .map(|p| (p.id, p.compatibility.iter().map(|s| s.signal).collect()))
            .collect();
        assert_eq!(signals["hooks"], [SignalKind::CompatibilityAdvisory]);
        assert_eq!(signals["legacy"], [SignalKind::LegacyWarning]);
        assert_eq!(signals["tools"], [SignalKind::Valid]);
        assert_eq!(signals["silent"], [SignalKind::HardError]);
    }

    #[test]
    fn shapes() {
        let shape = |values: &[Value]| Shape::of(parse_registrations(values).iter().flatten());
        assert_eq!(
            shape(&[json!({"kind": "provider", "capability": "speech", "id": "x"})]),
            Shape::PlainCapability
        );
        assert_eq!(
            shape(&[
                json!({"kind": "provider", "capability": "speech", "id": "x"}),
                json!({"kind": "channel", "id": "c"})
            ]),
            Shape::HybridCapability
        );
        assert_eq!(
            shape(&[json!({"kind": "hook", "event": "agent_end"})]),
            Shape::HookOnly
        );
        assert_eq!(
            shape(&[json!({"kind": "hook", "event": "agent_end"}), tool("t")]),
            Shape::NonCapability
        );
        assert_eq!(shape(&[]), Shape::Empty);
    }
}
