//! The errors of the SDK: what a handler returns, what building and serving a plugin can
//! fail with, and what a request to the host can fail with.

use std::fmt;

use outpost_protocol::peer::CallError;
use outpost_protocol::{ErrorCode, ErrorObject, RegistrationKind, RegistrationProblem};
use serde::Serialize;
use serde_json::Value;

/// What a handler fails with; it becomes the JSON-RPC error of the call.
///
/// [`Error::new`] is the usual one: code `-32000` (handler failed) with your message. Any
/// `std::error::Error` converts with `?`, keeping its chain of causes in the message (an
/// [`ErrorObject`] keeps its own code). [`Error::permanent`] also ends the plugin with
/// exit status 78, which the host does not restart.
pub struct Error {
    object: ErrorObject,
    permanent: bool,
}

impl Error {
    /// A handler failure (`-32000`) with a message for the person who will read it: what
    /// failed and, where it helps, what to do.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_code(ErrorCode::HandlerFailed, message)
    }

    /// An error with a protocol code of your choice (e.g. [`ErrorCode::InvalidParams`]
    /// for input the handler cannot use, [`ErrorCode::Forbidden`]).
    pub fn with_code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            object: ErrorObject::new(code, message),
            permanent: false,
        }
    }

    /// `-32602`: the input is unusable.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::with_code(ErrorCode::InvalidParams, message)
    }

    /// A failure no restart can fix (the config cannot work, a dependency is missing).
    ///
    /// The call (or `initialize`, from a setup function) is answered `-32000` with
    /// `data: {"permanent": true}`, the reason is written to stderr, and the plugin exits
    /// with status 78 ([`outpost_protocol::EXIT_PERMANENT_FAILURE`]): the host marks it
    /// `failed` with that reason and does not restart it.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            object: ErrorObject::new(ErrorCode::HandlerFailed, message)
                .with_data(serde_json::json!({ "permanent": true })),
            permanent: true,
        }
    }

    /// The same error carrying structured `data`.
    #[must_use]
    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.object = self.object.with_data(data);
        self
    }

    /// The protocol code.
    pub fn code(&self) -> ErrorCode {
        self.object.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.object.message
    }

    /// The structured data, if any.
    pub fn data(&self) -> Option<&Value> {
        self.object.data.as_ref()
    }

    /// Whether it ends the plugin (see [`Error::permanent`]).
    pub fn is_permanent(&self) -> bool {
        self.permanent
    }

    pub(crate) fn into_object(self) -> ErrorObject {
        self.object
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("code", &self.object.code)
            .field("message", &self.object.message)
            .field("data", &self.object.data)
            .field("permanent", &self.permanent)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object.message)
    }
}

/// Like `anyhow`, [`Error`] does not implement `std::error::Error` itself, so that every
/// error type converts into it with `?`.
impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
        match boxed.downcast::<ErrorObject>() {
            Ok(object) => Self {
                object: *object,
                permanent: false,
            },
            Err(other) => Self::new(chain(&*other)),
        }
    }
}

/// `error: cause: cause`, each cause once.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// Why a plugin could not be built: a registration breaks a protocol rule. These are
/// mistakes in the plugin's code, found before the plugin ever talks to a host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The plugin id is empty or has whitespace.
    #[error("plugin id {0:?} is not usable: use the manifest's `id`, without whitespace")]
    PluginId(String),
    /// A registration breaks a rule of the protocol.
    #[error("{kind} `{key}` of plugin `{plugin_id}`: {problem}")]
    Registration {
        /// The plugin.
        plugin_id: String,
        /// Its kind.
        kind: RegistrationKind,
        /// Its name within the kind.
        key: String,
        /// The rule broken and what to change.
        problem: RegistrationProblem,
    },
    /// The same registration twice.
    #[error("{kind} `{key}` is registered twice in plugin `{plugin_id}`; register it once")]
    Duplicate {
        /// The plugin.
        plugin_id: String,
        /// Its kind.
        kind: RegistrationKind,
        /// Its name within the kind.
        key: String,
    },
}

/// Why serving a plugin ended with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A setup function, a handler or the config failed permanently (see
    /// [`Error::permanent`]); the process should exit with status 78.
    #[error("plugin `{plugin_id}` failed permanently: {reason}")]
    Permanent {
        /// The plugin.
        plugin_id: String,
        /// Why.
        reason: String,
    },
    /// The setup function failed (not permanently): `initialize` was answered with the
    /// error and the plugin ends as a crash, so the host restarts it.
    #[error("plugin `{plugin_id}` could not start: {reason}")]
    Setup {
        /// The plugin.
        plugin_id: String,
        /// Why.
        reason: String,
    },
    /// Reading from or writing to the host failed.
    #[error("plugin `{plugin_id}` lost its connection to the host: {reason}")]
    Connection {
        /// The plugin.
        plugin_id: String,
        /// What happened.
        reason: String,
    },
}

/// Why a request to the host (a runtime helper) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// The host did not list the method in `initialize`'s `capabilities.runtime`.
    #[error(
        "the host does not offer `{method}` to this plugin (it is not in `capabilities.runtime`)"
    )]
    NotOffered {
        /// The runtime helper.
        method: String,
    },
    /// Requests to the host are allowed only once the host has sent `initialized`, so
    /// not from a setup function.
    #[error(
        "`{method}` was called before the host sent `initialized`; call the host from handlers and services, not from setup"
    )]
    TooEarly {
        /// The runtime helper.
        method: String,
    },
    /// The host answered with an error (e.g. `-32005` when policy forbids the call).
    #[error("the host refused `{method}`: {error}")]
    Refused {
        /// The runtime helper.
        method: String,
        /// The host's answer.
        error: ErrorObject,
    },
    /// No answer: the call was cancelled, timed out, or the connection ended.
    #[error("`{method}` got no answer from the host")]
    NoAnswer {
        /// The runtime helper.
        method: String,
        /// Why.
        #[source]
        source: CallError,
    },
    /// The host's answer does not have the expected type.
    #[error("the host's answer to `{method}` does not have the expected type")]
    Decode {
        /// The runtime helper.
        method: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl HostError {
    pub(crate) fn from_call(method: &str, error: CallError) -> Self {
        match error {
            CallError::Remote(error) => Self::Refused {
                method: method.to_owned(),
                error,
            },
            CallError::Decode(source) => Self::Decode {
                method: method.to_owned(),
                source,
            },
            source => Self::NoAnswer {
                method: method.to_owned(),
                source,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading notes.txt")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn std_errors_keep_their_causes_and_error_objects_their_code() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "permission denied");
        let error = Error::from(Outer(io));
        assert_eq!(error.code(), ErrorCode::HandlerFailed);
        assert_eq!(error.message(), "reading notes.txt: permission denied");

        let object = ErrorObject::new(ErrorCode::Forbidden, "no");
        let error = Error::from(object);
        assert_eq!(error.code(), ErrorCode::Forbidden);
        assert!(!error.is_permanent());
    }

    #[test]
    fn permanent_errors_say_so_in_their_data() {
        let error = Error::permanent("`apiKey` is empty");
        assert!(error.is_permanent());
        assert_eq!(error.data(), Some(&serde_json::json!({"permanent": true})));
    }
}
