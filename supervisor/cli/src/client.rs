//! A client of a running `outpost serve`, for `outpost call`, `status`, `reload` and
//! `plugins restart|stop|start`: it finds the server's API address and token the way
//! the server does (the config, `--api-listen`, `OUTPOST_API_TOKEN`, the token file).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use jsonrpsee::core::ClientError;
use jsonrpsee::core::client::ClientT as _;
use jsonrpsee::core::traits::ToRpcParams;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};
use jsonrpsee::types::ErrorObjectOwned;
use outpost_supervisor::control::{self, OutpostSettings};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::api::token;

/// Where the server is: the config it runs with, or its address.
#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// The config file (JSON5) `outpost serve` runs with: its `outpost.api` says where
    /// the server listens and where its token is.
    #[arg(long, value_name = "FILE", env = CONFIG_ENV, default_value_os_t = default_config())]
    pub(crate) config: PathBuf,
    /// The server's API address, when `outpost serve` was given `--api-listen`.
    #[arg(long, value_name = "ADDR")]
    pub(crate) api_listen: Option<SocketAddr>,
}

/// The variable that names the config file when `--config` is not given.
pub(crate) const CONFIG_ENV: &str = "OUTPOST_CONFIG";

/// The config file when neither `--config` nor `$OUTPOST_CONFIG` names one:
/// `./outpost.json5` when it exists, else `outpost/outpost.json5` in the user's config
/// directory (`$XDG_CONFIG_HOME`, default `~/.config`) when that exists, else
/// `./outpost.json5` (so the error names the file looked for first).
pub(crate) fn default_config() -> PathBuf {
    let here = PathBuf::from(control::DEFAULT_CONFIG_FILE);
    if here.exists() {
        return here;
    }
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".config"))
        });
    config_home
        .map(|dir| dir.join("outpost").join(control::DEFAULT_CONFIG_FILE))
        .filter(|user| user.exists())
        .unwrap_or(here)
}

/// A connection to the server's API.
#[derive(Debug)]
pub(crate) struct Client {
    http: HttpClient,
    url: String,
}

/// Why a request got no answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Nothing answers at the address.
    Unreachable(String),
    /// The server answered with an error.
    Rejected(ErrorObjectOwned),
    /// Anything else (a timeout, a malformed answer).
    Other(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(why) | Self::Other(why) => f.write_str(why),
            // As the standalone path prints a supervisor error (protocol's ErrorObject).
            Self::Rejected(error) => write!(f, "{} (code {})", error.message(), error.code()),
        }
    }
}

/// The settings that locate a server, read from its config file.
pub(crate) fn settings(args: &ServerArgs) -> anyhow::Result<OutpostSettings> {
    let inventory = control::load(&args.config)
        .with_context(|| format!("cannot read the config {}", args.config.display()))?;
    let mut settings = inventory.config.outpost;
    if let Some(address) = args.api_listen {
        settings.api_listen = address;
    }
    Ok(settings)
}

impl Client {
    /// A client for the server `settings` describe; fails when no token can be found.
    /// `timeout` bounds every request.
    pub(crate) fn new(settings: &OutpostSettings, timeout: Duration) -> anyhow::Result<Self> {
        let token = token::for_client(settings)?;
        let mut headers = HeaderMap::new();
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .context("the API token is not usable in an HTTP header")?;
        headers.insert("authorization", value);
        let url = format!("http://{}", settings.api_listen);
        let http = HttpClientBuilder::default()
            .set_headers(headers)
            .request_timeout(timeout)
            .max_request_size(crate::api::MAX_REQUEST_BYTES)
            .max_response_size(u32::MAX)
            .build(&url)
            .with_context(|| format!("cannot make a client for {url}"))?;
        Ok(Self { http, url })
    }

    /// One request with object params.
    pub(crate) async fn request(&self, method: &str, params: Value) -> Result<Value, Failure> {
        match self.http.request::<Value, _>(method, Object(params)).await {
            Ok(value) => Ok(value),
            Err(ClientError::Call(error)) => Err(Failure::Rejected(error)),
            Err(ClientError::Transport(e)) => {
                let text = e.to_string();
                if text.contains("401") {
                    Err(Failure::Other(format!(
                        "{} refused the API token: is it the token of the `outpost serve` running there? (OUTPOST_API_TOKEN, outpost.api.token or the token file)",
                        self.url
                    )))
                } else {
                    Err(Failure::Unreachable(format!(
                        "no `outpost serve` answers at {}: {text}",
                        self.url
                    )))
                }
            }
            Err(ClientError::RequestTimeout) => Err(Failure::Other(format!(
                "{} did not answer `{method}` in time",
                self.url
            ))),
            Err(other) => Err(Failure::Other(format!(
                "`{method}` to {} failed: {other}",
                self.url
            ))),
        }
    }
}

/// Params as they are: an object.
struct Object(Value);

impl ToRpcParams for Object {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        serde_json::value::to_raw_value(&self.0).map(Some)
    }
}

/// Prints a failure on stderr: the message (with the error's code when the server
/// answered one), then the error's data as JSON.
pub(crate) fn report(failure: &Failure) {
    eprintln!("error: {failure}");
    if let Failure::Rejected(error) = failure
        && let Some(data) = error.data()
        && let Ok(data) = serde_json::from_str::<Value>(data.get())
        && let Ok(pretty) = serde_json::to_string_pretty(&data)
    {
        eprintln!("{pretty}");
    }
}
