//! The control plane: discovery, manifests, safety gates, enablement and config
//! validation. Nothing here runs plugin code: everything is decided from the config
//! file, directory listings, manifests and `package.json`.
//!
//! ```no_run
//! use std::path::Path;
//! use outpost_supervisor::control::{self, Status};
//!
//! let inventory = control::load(Path::new("outpost.json5"))?;
//! for record in &inventory.plugins {
//!     println!("{} {} {}", record.id, record.status, record.reason);
//! }
//! for (record, launch) in inventory.launchable() {
//!     assert_eq!(record.status, Status::Enabled);
//!     println!("would run {} in {}", launch.program.display(), launch.root.display());
//! }
//! # Ok::<(), control::ConfigError>(())
//! ```
//!
//! # Theory of operation
//!
//! [`load`] reads the config (JSON5; a syntax error is the only hard failure), then
//! discovers plugin roots in precedence order (config paths, workspace, global,
//! bundled), then for each root: the safety gates, the manifest, a package pack's
//! entries, the `outpost` block and its command, the supervision policy and the config
//! schema. Across plugins it then lets the first copy of each id win, decides
//! enablement with its reasons, validates each plugin's config and settles one
//! [`Status`] per plugin. Every problem is a [`Diagnostic`] with its file, JSON path and
//! key. docs/operators.md is the operator's reference for all of it.

mod command;
mod config;
mod diagnostic;
mod discovery;
mod enablement;
mod gates;
mod inventory;
mod manifest;
mod plugin_id;
mod report;
mod text;
mod validate;

pub use command::OutpostBlock;
pub use config::{
    Config, ConfigError, DEFAULT_API_LISTEN, DEFAULT_CONFIG_FILE, DEFAULT_HTTP_MAX_BODY_BYTES,
    DEFAULT_MANIFEST_NAME, DEFAULT_METRICS_SAMPLE_MS, EnvGrant, LoadPath, OutpostSettings,
    PluginEntry, PluginOverride, PluginsConfig, Slot, SlotKey, Slots,
};
pub use diagnostic::{Code, Diagnostic, Severity};
pub use discovery::Origin;
pub use enablement::{Cause, Enablement, Step, Verdict};
pub use inventory::{
    Inventory, LoadOptions, MissingPlugin, PluginRecord, SAFE_PASSTHROUGH, Status,
    default_bundled_dir, load, load_with,
};
pub use manifest::{
    CONTRACT_KEYS, KNOWN_FIELDS, MAX_MANIFEST_BYTES, Manifest, ManifestError, PluginKind,
    RESERVED_PLUGIN_IDS,
};
pub use plugin_id::MAX_ID_CHARS;
pub use report::{DoctorReport, InspectReport, ListRow, ValidateReport};
