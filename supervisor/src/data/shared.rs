//! What the supervisor, its runners, the router and the host share.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};

use outpost_protocol::methods::ImplementationInfo;

use super::gateway::GatewayHandle;
use super::metrics::Refusals;
use super::os::Spawner;
use super::plugin::PluginRuntime;
use super::registry::Registry;
use super::schemas::Schemas;

/// The supervisor's state that outlives any one call or plugin process.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The supervised plugins by id. Changed only by `Supervisor::apply`.
    plugins: RwLock<BTreeMap<String, Arc<PluginRuntime>>>,
    pub(crate) registry: Registry,
    pub(crate) spawner: Spawner,
    /// How this host introduces itself in `initialize`.
    pub(crate) host: ImplementationInfo,
    pub(crate) gateway: GatewayHandle,
    /// Compiled `inputSchema`s by tool name, for admission and calls alike.
    pub(crate) schemas: Schemas,
    /// Calls that reached no plugin.
    pub(crate) refusals: Refusals,
}

impl Shared {
    /// `order` is precedence: the ids of `plugins`, the first winning contested keys.
    pub(crate) fn new(
        plugins: BTreeMap<String, Arc<PluginRuntime>>,
        order: &[String],
        spawner: Spawner,
        gateway: GatewayHandle,
    ) -> Self {
        Self {
            registry: Registry::new(order.iter().map(String::as_str)),
            plugins: RwLock::new(plugins),
            spawner,
            host: ImplementationInfo {
                name: "outpost".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            },
            gateway,
            schemas: Schemas::default(),
            refusals: Refusals::default(),
        }
    }

    /// The plugin `id`, if supervised.
    pub(crate) fn plugin(&self, id: &str) -> Option<Arc<PluginRuntime>> {
        self.plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Every supervised plugin, by id.
    pub(crate) fn plugins(&self) -> Vec<Arc<PluginRuntime>> {
        self.plugins
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Puts `runtime` in (replacing the plugin of the same id) or takes `id` out.
    pub(crate) fn set_plugin(&self, id: &str, runtime: Option<Arc<PluginRuntime>>) {
        let mut plugins = self.plugins.write().unwrap_or_else(PoisonError::into_inner);
        match runtime {
            Some(runtime) => plugins.insert(id.to_owned(), runtime),
            None => plugins.remove(id),
        };
    }
}
