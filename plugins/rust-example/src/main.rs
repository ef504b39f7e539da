//! `text-tools`: the Outpost example plugin in Rust.
//!
//! One registration of every kind the gateway knows how to call, each small enough to
//! read at a glance: a tool, a hook, a slash command, a gateway method, an HTTP route, a
//! background service and an embedding provider. They share the plugin's validated
//! config ([`Config`]) and a few counters ([`Stats`]).

// Handlers are async functions by the SDK's contract, even those that never wait.
#![allow(clippy::unused_async)]

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use outpost_sdk::{
    Command, CommandResult, CommandRunParams, Content, Context, Error, GatewayMethod, Hook,
    HttpRequest, HttpResponse, HttpRoute, Operations, Plugin, PluginBuilder, Provider,
    ProviderCapability, RouteAuth, Service, ServiceContext, Tool, ToolResult, http,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn main() -> ExitCode {
    plugin().run()
}

/// The plugin's config: `configSchema` in openclaw.plugin.json is its contract, and the
/// host fills in the schema's defaults. The same defaults are repeated here for hosts
/// that send the config without them.
#[derive(Debug, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Config {
    /// Prepended to the system prompt by the `before_prompt_build` hook.
    greeting: String,
    /// Texts with more words are refused.
    max_words: u64,
    /// How often the ticker service logs the counters.
    tick_seconds: u64,
    /// The length of the embedding vectors.
    dimensions: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            greeting: "Text tools are available: use `word_count` to count the words of a text."
                .to_owned(),
            max_words: 100_000,
            tick_seconds: 60,
            dimensions: 64,
        }
    }
}

/// What the plugin has counted since it started.
#[derive(Debug, Default)]
struct Stats {
    texts: AtomicU64,
    words: AtomicU64,
}

impl Stats {
    fn record(&self, counts: &Counts) {
        self.texts.fetch_add(1, Ordering::Relaxed);
        self.words.fetch_add(counts.words, Ordering::Relaxed);
    }

    fn snapshot(&self) -> StatsReply {
        StatsReply {
            texts_counted: self.texts.load(Ordering::Relaxed),
            words_counted: self.words.load(Ordering::Relaxed),
        }
    }
}

/// The answer of `text-tools.stats`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatsReply {
    texts_counted: u64,
    words_counted: u64,
}

/// The plugin: every registration and its handler.
fn plugin() -> PluginBuilder<Config> {
    let stats = Arc::new(Stats::default());
    Plugin::with_config::<Config>("text-tools")
        .name("Text tools")
        .version(env!("CARGO_PKG_VERSION"))
        .tool(
            Tool::new(
                "word_count",
                "Counts the words, characters and lines of a text.",
            )
            .input::<WordCountArgs>()
            .replay_safe(true),
            {
                let stats = stats.clone();
                move |ctx, args| word_count(ctx, args, stats.clone())
            },
        )
        .hook(
            Hook::new("before_prompt_build").description("Prepends the configured greeting."),
            before_prompt_build,
        )
        .command(
            Command::new("wordcount", "Counts the words after the command.").accepts_args(true),
            {
                let stats = stats.clone();
                move |ctx, params| wordcount_command(ctx, params, stats.clone())
            },
        )
        .method(
            GatewayMethod::new("text-tools.stats")
                .description("How many texts and words were counted since the plugin started.")
                .replay_safe(true),
            {
                let stats = stats.clone();
                move |_ctx, _params: Value| {
                    let reply = stats.snapshot();
                    async move { Ok(reply) }
                }
            },
        )
        .http_route(HttpRoute::new("/text-tools/count", RouteAuth::Plugin), {
            let stats = stats.clone();
            move |ctx, request| count_route(ctx, request, stats.clone())
        })
        .service_with_stop(
            Service::new("text-tools-ticker").description("Logs the counters now and then."),
            move |service| start_ticker(service, stats.clone()),
            |service| async move {
                service.info("ticker stopped");
                Ok(())
            },
        )
        .provider(
            Provider::new(ProviderCapability::Embedding, "text-tools-hash")
                .label("Hashed bag of words (a toy)")
                .replay_safe(true),
            Operations::new().on("embed", embed),
        )
}

/// Word, character and line counts of a text.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
struct Counts {
    words: u64,
    unique_words: u64,
    characters: u64,
    lines: u64,
}

impl Counts {
    fn of(text: &str) -> Self {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let unique: HashSet<&str> = words.iter().map(String::as_str).collect();
        Self {
            words: words.len() as u64,
            unique_words: unique.len() as u64,
            characters: text.chars().count() as u64,
            lines: text.lines().count() as u64,
        }
    }

    fn summary(&self) -> String {
        let plural =
            |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        format!(
            "{} ({} unique), {}, {}",
            plural(self.words, "word", "words"),
            self.unique_words,
            plural(self.characters, "character", "characters"),
            plural(self.lines, "line", "lines"),
        )
    }
}

/// The arguments of `word_count`; its input schema is derived from this type.
#[derive(Debug, Deserialize, JsonSchema)]
struct WordCountArgs {
    /// The text whose words to count.
    text: String,
}

/// Counts a text within `maxWords`, or says why not (for the model to read).
fn count_within(config: &Config, text: &str) -> Result<Counts, String> {
    let counts = Counts::of(text);
    if counts.words > config.max_words {
        return Err(format!(
            "The text has {} words, more than the {} this plugin is configured to count (`maxWords`).",
            counts.words, config.max_words
        ));
    }
    Ok(counts)
}

async fn word_count(
    ctx: Context<Config>,
    args: WordCountArgs,
    stats: Arc<Stats>,
) -> Result<ToolResult, Error> {
    match count_within(ctx.config(), &args.text) {
        Ok(counts) => {
            stats.record(&counts);
            Ok(ToolResult {
                content: vec![Content::Text {
                    text: counts.summary(),
                }],
                is_error: false,
                details: Some(serde_json::to_value(&counts)?),
            })
        }
        // The tool ran and refused: the model sees why, as the protocol recommends.
        Err(why) => Ok(ToolResult {
            is_error: true,
            ..ToolResult::text(why)
        }),
    }
}

/// The fields `before_prompt_build` adds to the prompt.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PromptAdditions {
    prepend_system_context: String,
}

async fn before_prompt_build(
    ctx: Context<Config>,
    _payload: Value,
) -> Result<Option<PromptAdditions>, Error> {
    let greeting = ctx.config().greeting.trim();
    if greeting.is_empty() {
        return Ok(None);
    }
    Ok(Some(PromptAdditions {
        prepend_system_context: greeting.to_owned(),
    }))
}

async fn wordcount_command(
    ctx: Context<Config>,
    params: CommandRunParams,
    stats: Arc<Stats>,
) -> Result<CommandResult, Error> {
    let text = params.args.unwrap_or_default();
    if text.trim().is_empty() {
        return Ok(CommandResult {
            text: "Usage: /wordcount <text>".to_owned(),
        });
    }
    let text = match count_within(ctx.config(), &text) {
        Ok(counts) => {
            stats.record(&counts);
            counts.summary()
        }
        Err(why) => why,
    };
    Ok(CommandResult { text })
}

/// `POST /text-tools/count` with the text as the body answers its counts as JSON.
///
/// The route is registered with `auth: plugin`: the gateway does not authenticate its
/// requests, and a plugin would check a signature here. Counting words has no side
/// effect worth guarding, so this one answers everyone.
async fn count_route(
    ctx: Context<Config>,
    request: HttpRequest,
    stats: Arc<Stats>,
) -> Result<HttpResponse, Error> {
    if request.method != "POST" {
        let mut response = http::text(405, "POST the text to count as the request body.\n");
        response
            .headers
            .insert("allow".to_owned(), "POST".to_owned());
        return Ok(response);
    }
    let Some(body) = request.body else {
        return Ok(if request.body_base64.is_some() {
            http::text(415, "The body must be UTF-8 text.\n")
        } else {
            http::text(400, "Send the text to count as the request body.\n")
        });
    };
    Ok(match count_within(ctx.config(), &body) {
        Ok(counts) => {
            stats.record(&counts);
            http::json(200, &counts)
        }
        Err(why) => http::text(413, format!("{why}\n")),
    })
}

/// Starts the ticker: a background task that logs the counters every `tickSeconds`
/// until the service is stopped.
async fn start_ticker(service: ServiceContext<Config>, stats: Arc<Stats>) -> Result<(), Error> {
    let every = Duration::from_secs(service.config().tick_seconds.max(1));
    let ctx = service.context().clone();
    service.spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                () = ctx.cancelled() => break,
                _ = ticks.tick() => {
                    let StatsReply { texts_counted, words_counted } = stats.snapshot();
                    ctx.debug(format!("{texts_counted} texts and {words_counted} words counted so far"));
                }
            }
        }
    });
    service.info(format!("ticker started: every {} s", every.as_secs()));
    Ok(())
}

/// The params of the `embed` operation: one text or several.
#[derive(Debug, Deserialize)]
struct EmbedParams {
    input: EmbedInput,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum EmbedInput {
    One(String),
    Many(Vec<String>),
}

/// The answer of `embed`: one vector per input text, in order.
#[derive(Debug, Serialize)]
struct EmbedReply {
    model: &'static str,
    dimensions: usize,
    embeddings: Vec<Vec<f32>>,
}

async fn embed(ctx: Context<Config>, params: EmbedParams) -> Result<EmbedReply, Error> {
    let texts = match params.input {
        EmbedInput::One(text) => vec![text],
        EmbedInput::Many(texts) => texts,
    };
    let dimensions = ctx.config().dimensions.max(1);
    Ok(EmbedReply {
        model: "text-tools-hash",
        dimensions,
        embeddings: texts
            .iter()
            .map(|t| hashed_embedding(t, dimensions))
            .collect(),
    })
}

/// A toy embedding: each lowercased word adds ±1 to the bucket its hash picks, and the
/// vector is scaled to length 1. Deterministic across runs and machines (FNV-1a, not
/// the std hasher, whose seed is random).
fn hashed_embedding(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0.0f32; dimensions];
    for word in text.split_whitespace() {
        let hash = word
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        let bucket = usize::try_from(hash % dimensions as u64).unwrap_or(0);
        vector[bucket] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

#[cfg(test)]
mod tests;
