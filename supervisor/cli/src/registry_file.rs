//! The registry file: `outpost serve` keeps a copy of its registry on disk
//! (`outpost.api.registryFile`, by default `registry-<port>.json` in the directory of
//! the default token file, `$XDG_STATE_HOME/outpost` or `~/.local/state/outpost`, even
//! when `outpost.api.tokenFile` puts the token elsewhere), rewritten shortly after every
//! change, for clients that must know the registry before they can wait for the API:
//! the OpenClaw bridge registers what Outpost's plugins offer while OpenClaw loads it,
//! synchronously, and may start before `serve` does.
//!
//! The file is `{"api": "http://ADDR", "writtenAtMs": ..., "run": ..., "seq": ...,
//! "plugins": [...], "registrations": [...]}`: a registry snapshot (docs/gateway-api.md,
//! `registry.snapshot`, with the server's run id) and where to reach the API. It stays
//! after `serve` stops, so a client can still register the last known set; calls then
//! fail until `serve` is back.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use tokio::sync::broadcast::error::RecvError;

use crate::api::token;
use crate::server::State;

/// How long after a change the file is rewritten: a burst of changes (a plugin's
/// registrations at its handshake) is one write.
const SETTLE: Duration = Duration::from_millis(50);

/// Keeps the registry file current until the supervisor's events end.
pub(crate) fn keep(state: Arc<State>, path: PathBuf, api: String) {
    let (_, mut events) = state.supervisor.subscribe();
    tokio::spawn(async move {
        write(&state, &path, &api);
        loop {
            match events.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            }
            tokio::time::sleep(SETTLE).await;
            // Everything that happened meanwhile is in the snapshot about to be written.
            while !matches!(
                events.try_recv(),
                Err(tokio::sync::broadcast::error::TryRecvError::Empty
                    | tokio::sync::broadcast::error::TryRecvError::Closed)
            ) {}
            write(&state, &path, &api);
        }
    });
}

fn write(state: &State, path: &std::path::Path, api: &str) {
    let snapshot = state.supervisor.snapshot();
    let written_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |now| u64::try_from(now.as_millis()).unwrap_or(u64::MAX));
    let file = json!({
        "api": api,
        "writtenAtMs": written_at,
        "run": state.run,
        "seq": snapshot.seq,
        "plugins": snapshot.plugins,
        "registrations": snapshot.registrations,
    });
    if let Err(error) = token::write_private(path, &file.to_string()) {
        tracing::warn!(file = %path.display(), "could not write the registry file: {error}");
    }
}
