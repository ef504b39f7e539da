//! The `shutdown` family: `shutdown`, exit at stdin EOF, no helpers left behind, and
//! SIGTERM.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use super::Runner;
use super::show::show_outcome;
use crate::checks::CheckId::{
    self, ShutdownAnswered, ShutdownExitOnEof, ShutdownNoLeftovers, ShutdownSigterm,
};
use crate::launch::describe_exit;
use crate::session::{Session, seconds};
use crate::verdict::{Explain, Verdict, ensure, fail, skip};

/// Stdin EOF to exit (§5.5).
pub(super) const EOF_GRACE: Duration = Duration::from_secs(2);
/// SIGTERM to exit (§5.5).
const SIGTERM_GRACE: Duration = Duration::from_secs(3);
/// How long helpers get to leave the group after the plugin exited.
const LEFTOVER_GRACE: Duration = Duration::from_secs(1);

impl Runner<'_> {
    pub(super) async fn shutdown(&mut self, mut s: Session) {
        let started = Instant::now();
        let verdict = self.shutdown_answered(&mut s, started).await;
        self.results
            .record(ShutdownAnswered, verdict, Some(started));
        let started = Instant::now();
        self.eof_exit(&mut s, ShutdownExitOnEof, "after `shutdown`", started)
            .await;
    }

    async fn shutdown_answered(&self, s: &mut Session, started: Instant) -> Verdict {
        let answer = s
            .call("shutdown", json!({}), self.timeout())
            .await
            .or_explain(s, "the answer to `shutdown`")?;
        ensure(answer.outcome.as_ref().is_ok_and(Value::is_object), || {
            format!(
                "`shutdown` was answered with {}; expected {{}}",
                show_outcome(&answer.outcome)
            )
        })?;
        Ok(format!("answered in {}", seconds(started.elapsed())))
    }

    /// Closes stdin and judges the exit: `check` for the exit itself, then leftovers.
    pub(super) async fn eof_exit(
        &mut self,
        s: &mut Session,
        check: CheckId,
        when: &str,
        started: Instant,
    ) {
        s.close_stdin();
        let status = s.wait_exit(EOF_GRACE).await;
        let exited_alone = status.is_some();
        let verdict = match status {
            Some(status) if status.success() => Ok(format!(
                "exited with status 0, {} after stdin closed",
                seconds(started.elapsed())
            )),
            Some(status) => Err(fail(format!(
                "on stdin EOF {when} the plugin exited with {}; a clean stop is status 0{}",
                describe_exit(status),
                s.stderr_hint()
            ))),
            None => {
                let details = format!(
                    "the plugin was still running {} after stdin EOF {when}; a plugin must exit when stdin closes",
                    seconds(EOF_GRACE)
                );
                s.process().signal_group(Signal::SIGTERM);
                if s.wait_exit(SIGTERM_GRACE).await.is_none() {
                    s.process().signal_group(Signal::SIGKILL);
                    let _ = s.wait_exit(Duration::from_secs(1)).await;
                }
                Err(fail(details))
            }
        };
        self.results.record(check, verdict, Some(started));
        if check == ShutdownExitOnEof {
            let verdict = leftovers(s, exited_alone).await;
            self.results
                .record(ShutdownNoLeftovers, verdict, Some(started));
        }
        s.drain(Duration::from_millis(300)).await;
    }

    /// SIGTERM to the process group stops the plugin (a SHOULD).
    pub(super) async fn sigterm(&mut self, s: &mut Session) {
        let started = Instant::now();
        s.process().signal_group(Signal::SIGTERM);
        let verdict = if let Some(status) = s.wait_exit(SIGTERM_GRACE).await {
            Ok(format!(
                "exited ({}) {} after SIGTERM",
                describe_exit(status),
                seconds(started.elapsed())
            ))
        } else {
            s.process().signal_group(Signal::SIGKILL);
            Err(fail(format!(
                "still running {} after SIGTERM to its process group; the host then sends SIGKILL",
                seconds(SIGTERM_GRACE)
            )))
        };
        self.results.record(ShutdownSigterm, verdict, Some(started));
    }
}

async fn leftovers(s: &mut Session, exited_alone: bool) -> Verdict {
    if !exited_alone {
        return Err(skip(
            "not judged: the suite had to signal the process group (see shutdown.exit-on-eof)",
        ));
    }
    let deadline = Instant::now() + LEFTOVER_GRACE;
    let mut members = s.process().group_members();
    while !members.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        members = s.process().group_members();
    }
    if members.is_empty() {
        return Ok("the process group is empty".to_owned());
    }
    let shown: Vec<String> = members
        .iter()
        .map(|m| format!("pid {} `{}`", m.pid, crate::traffic::cut(&m.command, 80)))
        .collect();
    s.process().signal_group(Signal::SIGKILL);
    Err(fail(format!(
        "{} still running in the plugin's process group after it exited: {}. Stop helper processes before exiting (the suite has killed them)",
        if members.len() == 1 {
            "1 process is"
        } else {
            "processes are"
        },
        shown.join(", ")
    )))
}
