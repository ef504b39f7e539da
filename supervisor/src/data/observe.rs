//! The supervisor's metrics as a scrape sees them: encoded on demand from what the
//! supervisor keeps ([`super::metrics`] counters, the registry, the call gates), and the
//! resource sampler.
//!
//! Resources come from [`sysinfo`], sampled every `interval` by one task: for each
//! plugin, its process and every process descended from it (helpers it started, even
//! in another process group, as long as they are still its descendants): resident
//! memory, and CPU time as a rate (cores busy over the last interval).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::metrics::Resources;
use super::plugin::PluginRuntime;
use super::registry::PluginState;
use super::shared::Shared;

/// The plugin states, for `outpost_plugin_state`.
const STATES: [PluginState; 6] = [
    PluginState::Starting,
    PluginState::Ready,
    PluginState::Restarting,
    PluginState::Failed,
    PluginState::Stopping,
    PluginState::Stopped,
];

/// The registry that encodes the supervisor's metrics on each scrape.
pub(crate) fn registry(shared: Weak<Shared>) -> Registry {
    let mut registry = Registry::with_prefix("outpost");
    registry.register_collector(Box::new(SupervisorCollector(shared)));
    registry
}

/// Writes the supervisor's metrics in the Prometheus text format, without the final
/// `# EOF` (the caller may add metrics of its own before it).
pub(crate) fn encode(registry: &Registry, out: &mut String) -> fmt::Result {
    prometheus_client::encoding::text::encode_registry(out, registry)
}

struct SupervisorCollector(Weak<Shared>);

impl fmt::Debug for SupervisorCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SupervisorCollector")
    }
}

impl Collector for SupervisorCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(shared) = self.0.upgrade() else {
            return Ok(());
        };
        let snapshot = shared.registry.snapshot();
        let runtimes = shared.plugins();

        let mut family = encoder.encode_descriptor(
            "plugin_state",
            "The plugin's state: 1 for the state it is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for plugin in &snapshot.plugins {
            for state in STATES {
                let labels = [
                    ("plugin", plugin.id.as_str()),
                    ("state", &state.to_string()),
                ];
                ConstGauge::new(i64::from(plugin.state == state))
                    .encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "plugin_restarts",
            "Times the plugin was started again after an exit nobody asked for.",
            None,
            MetricType::Counter,
        )?;
        for plugin in &snapshot.plugins {
            ConstCounter::new(plugin.restarts)
                .encode(family.encode_family(&[("plugin", plugin.id.as_str())])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "calls",
            "Calls answered by or failed at a plugin, by kind and outcome (`ok` or the error's name).",
            None,
            MetricType::Counter,
        )?;
        for runtime in &runtimes {
            for (kind, outcome, count) in runtime.metrics.calls() {
                let labels = [
                    ("plugin", runtime.id()),
                    ("kind", kind.as_str()),
                    ("outcome", outcome),
                ];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }

        let mut family = encoder.encode_descriptor(
            "call_duration",
            "How long calls to a plugin took, from routing to answer (waiting for a restart and for a call slot included).",
            Some(&Unit::Seconds),
            MetricType::Histogram,
        )?;
        for runtime in &runtimes {
            for (kind, histogram) in runtime.metrics.latencies() {
                let labels = [("plugin", runtime.id()), ("kind", kind.as_str())];
                histogram.encode(family.encode_family(&labels)?)?;
            }
        }

        let refusals = shared.refusals.counts();
        let mut family = encoder.encode_descriptor(
            "calls_refused",
            "Calls that reached no plugin, by kind and error (not-found, invalid-params, forbidden...).",
            None,
            MetricType::Counter,
        )?;
        for ((kind, code), count) in refusals {
            let labels = [("kind", kind.as_str()), ("code", code.name())];
            ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
        }

        let traffic: Vec<_> = runtimes
            .iter()
            .map(|runtime| (runtime.id(), runtime.metrics.traffic.counts()))
            .collect();
        let mut family = encoder.encode_descriptor(
            "plugin_messages",
            "Protocol messages exchanged with the plugin, by direction (`in`: from the plugin).",
            None,
            MetricType::Counter,
        )?;
        for (plugin, counts) in &traffic {
            for (direction, count) in [("in", counts.messages_in), ("out", counts.messages_out)] {
                let labels = [("plugin", *plugin), ("direction", direction)];
                ConstCounter::new(count).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_message",
            "Bytes exchanged with the plugin on its protocol stream, by direction; with the message count, the mean message size.",
            Some(&Unit::Bytes),
            MetricType::Counter,
        )?;
        for (plugin, counts) in &traffic {
            for (direction, bytes) in [("in", counts.bytes_in), ("out", counts.bytes_out)] {
                let labels = [("plugin", *plugin), ("direction", direction)];
                ConstCounter::new(bytes).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_late_responses",
            "Answers to calls the supervisor had already cancelled or timed out (expected: the protocol answers a cancelled call).",
            None,
            MetricType::Counter,
        )?;
        for (plugin, counts) in &traffic {
            ConstCounter::new(counts.late_responses)
                .encode(family.encode_family(&[("plugin", *plugin)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "plugin_protocol_problems",
            "Unusable lines and messages the plugin sent (each answered or logged, never fatal).",
            None,
            MetricType::Counter,
        )?;
        for (plugin, counts) in &traffic {
            ConstCounter::new(counts.problems)
                .encode(family.encode_family(&[("plugin", *plugin)])?)?;
        }

        let mut family = encoder.encode_descriptor(
            "plugin_calls_in_flight",
            "Calls sent to the plugin and not answered yet (at most limits.maxConcurrentRequests).",
            None,
            MetricType::Gauge,
        )?;
        for runtime in &runtimes {
            ConstGauge::new(i64::from(runtime.gate.in_flight()))
                .encode(family.encode_family(&[("plugin", runtime.id())])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "plugin_calls_queued",
            "Calls waiting for one of the plugin's call slots (at most limits.maxQueuedRequests).",
            None,
            MetricType::Gauge,
        )?;
        for runtime in &runtimes {
            ConstGauge::new(i64::from(runtime.gate.queued()))
                .encode(family.encode_family(&[("plugin", runtime.id())])?)?;
        }

        let resources: Vec<(&str, Resources)> = runtimes
            .iter()
            .filter_map(|runtime| Some((runtime.id(), runtime.metrics.resources()?)))
            .collect();
        let mut family = encoder.encode_descriptor(
            "plugin_resident_memory",
            "Resident memory of the plugin's process and the processes descended from it, at the last sample.",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?;
        for (plugin, sample) in &resources {
            ConstGauge::new(i64::try_from(sample.resident_bytes).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("plugin", *plugin)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "plugin_cpu_usage",
            "CPU cores the plugin's processes kept busy between the last two samples (1.0: one core).",
            None,
            MetricType::Gauge,
        )?;
        for (plugin, sample) in &resources {
            if let Some(rate) = sample.cpu_rate {
                ConstGauge::new(rate).encode(family.encode_family(&[("plugin", *plugin)])?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "plugin_processes",
            "Processes counted for the plugin at the last sample: its own and its descendants.",
            None,
            MetricType::Gauge,
        )?;
        for (plugin, sample) in &resources {
            ConstGauge::new(i64::try_from(sample.processes).unwrap_or(i64::MAX))
                .encode(family.encode_family(&[("plugin", *plugin)])?)?;
        }
        Ok(())
    }
}

/// Samples every plugin's resources every `interval` until the supervisor is gone.
pub(crate) async fn sample_resources(shared: Weak<Shared>, interval: Duration) {
    let mut system = match System::new() {
        Ok(system) => system,
        Err(error) => {
            tracing::warn!("plugin resources will not be measured: {error}");
            return;
        }
    };
    // Threads are listed as processes unless told otherwise: each would add the
    // process's memory again, and count as a process.
    let refresh = ProcessRefreshKind::nothing()
        .with_memory()
        .with_cpu()
        .without_tasks();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let pids: Vec<(Arc<PluginRuntime>, Option<u32>)> = {
            let snapshot = shared.registry.snapshot();
            shared
                .plugins()
                .into_iter()
                .map(|runtime| {
                    let pid = snapshot
                        .plugins
                        .iter()
                        .find(|p| p.id == runtime.id())
                        .and_then(|p| p.pid);
                    (runtime, pid)
                })
                .collect()
        };
        drop(shared);
        // Reading /proc for every process takes a while with many processes: off the
        // runtime's worker threads.
        let Ok((returned, sampled)) = tokio::task::spawn_blocking(move || {
            system.refresh_processes_specifics(ProcessesToUpdate::All, true, refresh);
            let sampled = measure(&system, &pids);
            (system, sampled)
        })
        .await
        else {
            return;
        };
        system = returned;
        let at = Instant::now();
        for (runtime, measured) in sampled {
            match measured {
                Some((root, resident, processes, cpu_ms)) => {
                    runtime
                        .metrics
                        .sample(root, resident, processes, cpu_ms, at);
                }
                None => runtime.metrics.forget_resources(),
            }
        }
    }
}

type Measured = (Arc<PluginRuntime>, Option<(u32, u64, u64, u64)>);

/// Each plugin's (root pid, resident bytes, processes, CPU milliseconds), summed over
/// its process and its descendants.
fn measure(system: &System, plugins: &[(Arc<PluginRuntime>, Option<u32>)]) -> Vec<Measured> {
    let mut children: HashMap<Pid, Vec<Pid>> = HashMap::new();
    for (pid, process) in system.processes() {
        if let Some(parent) = process.parent() {
            children.entry(parent).or_default().push(*pid);
        }
    }
    plugins
        .iter()
        .map(|(runtime, root)| {
            let measured = root.and_then(|root| {
                let root_pid = Pid::from_u32(root);
                system.process(root_pid)?;
                let (mut resident, mut processes, mut cpu_ms) = (0, 0, 0);
                let mut stack = vec![root_pid];
                while let Some(pid) = stack.pop() {
                    if let Some(process) = system.process(pid) {
                        resident += process.memory();
                        cpu_ms += process.accumulated_cpu_time();
                        processes += 1;
                    }
                    if let Some(more) = children.get(&pid) {
                        stack.extend(more);
                    }
                }
                Some((root, resident, processes, cpu_ms))
            });
            (runtime.clone(), measured)
        })
        .collect()
}
