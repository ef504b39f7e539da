//! The process edge: the launch check, stdio protection, the runtime and the exit status.
//!
//! # Theory of operation
//!
//! Before any plugin code runs, [`protocol_stdio`] takes the protocol's two pipes away
//! from the rest of the process:
//!
//! - fd 1 is duplicated to a private descriptor (close-on-exec, so child processes do
//!   not inherit it), then fd 1 is pointed at stderr. A `println!` anywhere in the
//!   process, in the plugin or in a library, lands in the host's log instead of
//!   corrupting the protocol stream;
//! - fd 0 is duplicated the same way and pointed at `/dev/null`, so a child process the
//!   plugin starts cannot read (steal) the host's messages.
//!
//! The SDK then speaks only on the private copies.
//!
//! - **Input, on the default (single-threaded) runtime:** read in blocking mode on a
//!   thread of its own (`peer::connect_on_thread`), which also runs and answers every
//!   call whose handler finishes at its first poll. A call costs that thread one `read`
//!   and one `write`, and wakes nothing else: the runtime's thread sleeps until a call
//!   waits, a service runs or a timer fires. A pipe's end is switched to blocking mode
//!   (a host may leave `O_NONBLOCK` on it; nobody else holds that end). See
//!   docs/performance.md for what this saves.
//! - **Input, on a multi-threaded runtime** (`worker_threads`), **and output:** a pipe
//!   is switched to non-blocking mode and driven by tokio's reactor
//!   (`tokio::net::unix::pipe`), privately again. Anything else (a terminal when a
//!   person types messages by hand, a file) goes through `tokio::fs::File`, which does
//!   blocking reads and writes on tokio's blocking threads: a terminal's open file
//!   description is shared with stderr and the shell, and `O_NONBLOCK` there would leak
//!   into both.
//!
//! # Caveats
//!
//! - Output written to fd 1 before [`crate::Plugin::run`] starts goes to the host. Run the
//!   plugin first thing in `main`.
//! - A blocking read of the private stdin may be in flight when the plugin ends on a
//!   permanent failure; the runtime is then shut down without waiting for it, and the
//!   reading thread ends with the process.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use outpost_protocol::{ENV_PLUGIN_ID, ENV_PROTOCOL, EXIT_PERMANENT_FAILURE};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::ServeError;
use crate::builder::{ConfigType, Plugin};
use crate::session::{Reading, serve};

/// The exit status of a program started by a person rather than by a host.
const EXIT_NOT_UNDER_HOST: u8 = 2;

type Reader = Box<dyn AsyncRead + Unpin + Send>;
type Writer = Box<dyn AsyncWrite + Unpin + Send>;

impl<C: ConfigType> Plugin<C> {
    /// Serves the plugin on the process's stdin and stdout until the host closes stdin,
    /// and returns the exit status for `main`:
    ///
    /// - started without `OUTPOST_PROTOCOL` (by a person): a hint on stderr, status 2;
    /// - stdin EOF (the host is done, or gone): status 0;
    /// - a permanent failure ([`crate::Error::permanent`], a config that does not fit
    ///   `C`): status 78, which the host does not restart;
    /// - a setup failure or a broken connection: status 1.
    ///
    /// It first protects the protocol stream (fd 1 goes to stderr, see the crate docs)
    /// and builds a multi-threaded tokio runtime of its own; called from inside a tokio
    /// runtime, it runs on a thread of its own.
    pub fn run(self) -> ExitCode {
        if std::env::var_os(ENV_PROTOCOL).is_none() {
            print_hint(self.id());
            return ExitCode::from(EXIT_NOT_UNDER_HOST);
        }
        let stdio = match protocol_stdio() {
            Ok(stdio) => stdio,
            Err(e) => {
                eprintln!(
                    "plugin `{}`: cannot set up the protocol's stdin and stdout: {e}",
                    self.id()
                );
                return ExitCode::FAILURE;
            }
        };
        if let Some(env_id) = std::env::var_os(ENV_PLUGIN_ID)
            && env_id.to_string_lossy() != self.id()
        {
            eprintln!(
                "outpost-sdk: warning: {ENV_PLUGIN_ID} is `{}` but this program is plugin `{}`; \
                 make the manifest's `id` and the id given to `Plugin::builder` agree",
                env_id.to_string_lossy(),
                self.id()
            );
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return std::thread::scope(|scope| {
                scope
                    .spawn(|| self.run_on_runtime(stdio))
                    .join()
                    .unwrap_or(ExitCode::FAILURE)
            });
        }
        self.run_on_runtime(stdio)
    }

    fn run_on_runtime(self, stdio: ProtocolStdio) -> ExitCode {
        let mut builder = match self.worker_threads {
            None => tokio::runtime::Builder::new_current_thread(),
            Some(threads) => {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                // Handlers run on the workers: the stack of a main thread, as on the
                // default runtime's threads, not tokio's 2 MiB.
                builder.worker_threads(threads).thread_stack_size(8 << 20);
                builder
            }
        };
        let runtime = match builder.enable_all().thread_name("outpost-plugin").build() {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!(
                    "plugin `{}`: cannot start the tokio runtime: {e}",
                    self.id()
                );
                return ExitCode::FAILURE;
            }
        };
        // On the default runtime the host's messages are read on a thread of their own,
        // in a blocking `read`, and the calls that finish at once are answered there.
        let reading = if self.worker_threads.is_none() {
            Reading::OnThread
        } else {
            Reading::InTask
        };
        let outcome = runtime.block_on(async {
            let (reader, writer) = match stdio.into_async(&reading) {
                Ok(pair) => pair,
                Err(e) => {
                    return Err(ServeError::Connection {
                        plugin_id: self.id().to_owned(),
                        reason: format!("cannot use the protocol's stdin and stdout: {e}"),
                    });
                }
            };
            // The session runs as a task of its own rather than as `block_on`'s future:
            // a task the reader wakes runs at once, while `block_on`'s future is polled
            // only after one more turn of the I/O driver (an `epoll_wait` per call).
            let plugin_id = self.id().to_owned();
            match tokio::spawn(serve(self, reader, writer, reading)).await {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(ServeError::Connection {
                    plugin_id,
                    reason: format!("the session ended early: {e}"),
                }),
            }
        });
        // A blocking read of stdin may still be in flight (on a permanent failure the
        // host has not closed stdin yet): do not wait for it.
        runtime.shutdown_timeout(Duration::from_millis(100));
        match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(ServeError::Permanent { .. }) => exit_permanent(),
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        }
    }
}

/// Reports a permanent failure on stderr and returns exit status 78, which the host
/// does not restart: for failures in `main` before the plugin runs (a missing
/// dependency, an unusable environment). Inside handlers and setup functions, return
/// [`crate::Error::permanent`] instead.
pub fn permanent_failure(reason: &str) -> ExitCode {
    eprintln!("permanent failure: {reason}");
    exit_permanent()
}

fn exit_permanent() -> ExitCode {
    ExitCode::from(u8::try_from(EXIT_PERMANENT_FAILURE).unwrap_or(1))
}

fn print_hint(id: &str) {
    let program = std::env::args()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| id.to_owned());
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "{program} is the Outpost plugin `{id}`: it speaks JSON-RPC on stdin and stdout and is started by a host.\n\
         \n\
         Run it under the supervisor:  outpost serve  (with the plugin's directory on `plugins.load.paths`)\n\
         Check it:                     outpost-conformance run --plugin-dir <the plugin's directory>\n\
         \n\
         The host sets {ENV_PROTOCOL}=1; set it yourself only to type protocol messages by hand."
    );
}

/// The protocol's private stdin and stdout, before the runtime exists.
#[cfg(unix)]
struct ProtocolStdio {
    input: std::os::fd::OwnedFd,
    output: std::os::fd::OwnedFd,
}

/// Takes the protocol's pipes away from the rest of the process; see the module docs.
#[cfg(unix)]
fn protocol_stdio() -> std::io::Result<ProtocolStdio> {
    use std::os::fd::AsFd;

    // `try_clone_to_owned` duplicates with F_DUPFD_CLOEXEC.
    let output = std::io::stdout().as_fd().try_clone_to_owned()?;
    let input = std::io::stdin().as_fd().try_clone_to_owned()?;
    nix::unistd::dup2_stdout(std::io::stderr())?;
    let null = std::fs::File::open("/dev/null")?;
    nix::unistd::dup2_stdin(&null)?;
    // A partial line printed before now was still in std's buffer: it goes to stderr.
    let _ = std::io::stdout().flush();
    Ok(ProtocolStdio { input, output })
}

#[cfg(unix)]
impl ProtocolStdio {
    /// The async reader and writer; must be called inside the runtime (pipes register
    /// with its reactor). Read on a thread of its own, the input is read in blocking
    /// mode, whatever it is.
    fn into_async(self, reading: &Reading) -> std::io::Result<(Reader, Writer)> {
        use std::os::unix::fs::FileTypeExt;
        use tokio::net::unix::pipe;

        let input = std::fs::File::from(self.input);
        let output = std::fs::File::from(self.output);
        let input_is_pipe = input.metadata()?.file_type().is_fifo();
        let reader: Reader = match reading {
            Reading::OnThread => {
                if input_is_pipe {
                    // The host's end is the other one: the mode is this process's own.
                    set_blocking(&input)?;
                }
                Box::new(outpost_protocol::peer::BlockingRead::new(input))
            }
            Reading::InTask if input_is_pipe => Box::new(pipe::Receiver::from_file(input)?),
            Reading::InTask => Box::new(tokio::fs::File::from_std(input)),
        };
        let writer: Writer = if output.metadata()?.file_type().is_fifo() {
            Box::new(pipe::Sender::from_file(output)?)
        } else {
            Box::new(tokio::fs::File::from_std(output))
        };
        Ok((reader, writer))
    }
}

/// Clears `O_NONBLOCK`, which a host may have left set on the pipe.
#[cfg(unix)]
fn set_blocking(file: &std::fs::File) -> std::io::Result<()> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};

    let flags = OFlag::from_bits_retain(fcntl(file, FcntlArg::F_GETFL)?);
    if flags.contains(OFlag::O_NONBLOCK) {
        fcntl(file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    }
    Ok(())
}

/// Without Unix descriptors to move, the SDK speaks on the process's own stdin and
/// stdout, unprotected.
#[cfg(not(unix))]
struct ProtocolStdio;

#[cfg(not(unix))]
fn protocol_stdio() -> std::io::Result<ProtocolStdio> {
    Ok(ProtocolStdio)
}

#[cfg(not(unix))]
impl ProtocolStdio {
    fn into_async(self, _reading: &Reading) -> std::io::Result<(Reader, Writer)> {
        Ok((Box::new(tokio::io::stdin()), Box::new(tokio::io::stdout())))
    }
}
