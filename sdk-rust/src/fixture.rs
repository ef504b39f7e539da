//! The conformance fixture methods (`fixture/*`), answered when the plugin declares
//! `capabilities.fixture` ([`crate::PluginBuilder::fixture`]).

use std::io::Write;
use std::time::Duration;

use outpost_protocol::ErrorObject;
use outpost_protocol::methods::{
    EmptyObject, FixtureCallHost, FixtureCallHostParams, FixtureCallHostResult, FixtureEcho,
    FixtureEchoParams, FixtureLog, FixtureProgress, FixtureProgressParams, FixtureSleep,
    FixtureSleepParams, FixtureStderr, FixtureStderrParams, Log, LogParams, RequestType,
};
use outpost_protocol::peer::{CallError, CallOptions};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::Error;
use crate::builder::{ConfigType, Run, to_json};

fn parse<T: DeserializeOwned>(method: &str, params: Option<&RawValue>) -> Result<T, ErrorObject> {
    serde_json::from_str(params.map_or("null", RawValue::get))
        .map_err(|e| ErrorObject::invalid_params(method, crate::builder::without_position(&e)))
}

/// The future answering fixture method `method`.
pub(crate) fn route<C: ConfigType>(
    method: &str,
    params: Option<&RawValue>,
) -> Result<Run<C>, ErrorObject> {
    match method {
        FixtureEcho::METHOD => {
            let p: FixtureEchoParams = parse(method, params)?;
            Ok(Box::new(move |ctx| {
                Box::pin(async move { to_json(&ctx.work, &p) })
            }))
        }
        FixtureSleep::METHOD => {
            let p: FixtureSleepParams = parse(method, params)?;
            // A `$/cancel` drops this future and the call is answered `-32800`.
            Ok(Box::new(move |ctx| {
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(p.ms)).await;
                    to_json(&ctx.work, &EmptyObject {})
                })
            }))
        }
        FixtureProgress::METHOD => {
            let p: FixtureProgressParams = parse(method, params)?;
            Ok(Box::new(move |ctx| {
                Box::pin(async move {
                    let total = f64::from(p.steps);
                    for step in 1..=p.steps {
                        ctx.progress(f64::from(step), Some(total), None).await;
                    }
                    to_json(&ctx.work, &EmptyObject {})
                })
            }))
        }
        FixtureCallHost::METHOD => {
            let p: FixtureCallHostParams = parse(method, params)?;
            Ok(Box::new(move |ctx| {
                Box::pin(async move {
                    let options = CallOptions::default().with_cancel(ctx.work.cancel().clone());
                    let answer = ctx
                        .shared
                        .peer
                        .call(&p.method, Some(&p.params), options)
                        .await;
                    let result = match answer {
                        Ok(value) => FixtureCallHostResult {
                            result: Some(value),
                            error: None,
                        },
                        Err(CallError::Remote(error)) => FixtureCallHostResult {
                            result: None,
                            error: Some(error),
                        },
                        Err(other) => return Err(Error::from(other)),
                    };
                    to_json(&ctx.work, &result)
                })
            }))
        }
        FixtureLog::METHOD => {
            let p: LogParams = parse(method, params)?;
            Ok(Box::new(move |ctx| {
                Box::pin(async move {
                    // Sent directly, not through the log queue, so it precedes the answer.
                    ctx.shared.peer.notify::<Log>(&p).await?;
                    to_json(&ctx.work, &EmptyObject {})
                })
            }))
        }
        FixtureStderr::METHOD => {
            let p: FixtureStderrParams = parse(method, params)?;
            Ok(Box::new(move |ctx| {
                Box::pin(async move {
                    tokio::task::spawn_blocking(move || write_stderr(p.bytes))
                        .await
                        .map_err(|e| Error::new(format!("the stderr writer failed: {e}")))??;
                    to_json(&ctx.work, &EmptyObject {})
                })
            }))
        }
        _ => Err(ErrorObject::method_not_found(method)),
    }
}

/// Writes exactly `bytes` bytes of numbered printable lines to stderr.
fn write_stderr(bytes: u64) -> std::io::Result<()> {
    let mut stderr = std::io::stderr().lock();
    let mut left = bytes;
    let mut n = 0u64;
    while left > 0 {
        n += 1;
        let mut line = format!("fixture/stderr line {n:08} ");
        while line.len() < 99 {
            line.push('x');
        }
        line.push('\n');
        let take = usize::try_from(left.min(line.len() as u64)).unwrap_or(line.len());
        let mut chunk = line.into_bytes();
        chunk.truncate(take);
        if take < 100 {
            // The last, shorter line still ends with a newline.
            if let Some(last) = chunk.last_mut() {
                *last = b'\n';
            }
        }
        stderr.write_all(&chunk)?;
        left -= take as u64;
    }
    stderr.flush()
}
