//! The exec sink: run a command per event, the CloudEvent on its stdin.

use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, ChildStdin};
use tokio::sync::watch;

use crate::SinkError;
use crate::attempt::{Attempt, CAPTURE_LIMIT, CaptureBuf, Captured, Failure};
use crate::delivery::Delivery;

/// Variables an exec command inherits from the daemon; everything else
/// (tokens, signing secrets) stays out of the child.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER"];

/// Default command timeout, as the Kite manifest's enrichment hooks use.
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(30);

/// After the command exits, how long to keep reading its stdout and stderr:
/// a background process it started may hold the pipes open forever, and its
/// output is not the command's.
const PIPE_DRAIN_GRACE: Duration = Duration::from_millis(200);

/// After killing a timed-out process group, how long to wait for the exit to
/// be reaped (SIGKILL is immediate unless the process is stuck in the kernel).
const REAP_GRACE: Duration = Duration::from_secs(2);

/// What to run. Event data never becomes part of a command line: it reaches
/// the command only through stdin and `KITE_*` environment variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecCommand {
    /// A program and its arguments, run directly.
    Argv(Vec<String>),
    /// A shell command line from the configuration, run as `sh -c <line>`.
    Shell(String),
}

impl std::fmt::Display for ExecCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecCommand::Argv(argv) => f.write_str(&argv.join(" ")),
            ExecCommand::Shell(line) => f.write_str(line),
        }
    }
}

/// Settings for an [`ExecSink`].
#[derive(Debug, Clone)]
pub struct ExecSinkConfig {
    pub command: ExecCommand,
    /// After this the command and every process in its group are killed.
    pub timeout: Duration,
    /// Working directory; the daemon's when `None`.
    pub current_dir: Option<std::path::PathBuf>,
}

impl ExecSinkConfig {
    pub fn new(command: ExecCommand) -> Self {
        Self {
            command,
            timeout: DEFAULT_EXEC_TIMEOUT,
            current_dir: None,
        }
    }
}

/// Runs a command per event. The command gets:
///
/// * stdin: the structured CloudEvent JSON and a newline, then EOF. A command
///   that exits without reading it is fine (the broken pipe is ignored).
/// * environment: only `PATH`, `HOME`, `LANG`, `LC_ALL`, `TMPDIR`, `USER`
///   from the daemon's (never its secrets), plus `KITE_EVENT_ID`, `KITE_EVENT_TYPE`,
///   `KITE_EVENT_SOURCE` (the CloudEvent source URI), `KITE_SOURCE` (the
///   source name), `KITE_IMPORTANCE` and `KITE_SUMMARY`.
/// * its own process group, killed as a whole on timeout.
///
/// Exit 0 is delivered. stdout and stderr are captured (the start of each),
/// never mixed into the daemon's own output.
#[derive(Debug, Clone)]
pub struct ExecSink {
    config: ExecSinkConfig,
}

impl ExecSink {
    pub fn new(config: ExecSinkConfig) -> Result<Self, SinkError> {
        let empty = match &config.command {
            ExecCommand::Argv(argv) => argv.first().is_none_or(|p| p.is_empty()),
            ExecCommand::Shell(line) => line.trim().is_empty(),
        };
        if empty {
            return Err(SinkError::EmptyCommand);
        }
        Ok(Self { config })
    }

    pub fn command(&self) -> &ExecCommand {
        &self.config.command
    }

    pub fn config(&self) -> &ExecSinkConfig {
        &self.config
    }

    pub async fn deliver(&self, delivery: &Delivery) -> Attempt {
        let start = Instant::now();
        let mut stdin_bytes = match delivery.cloudevent_json() {
            Ok(json) => json.into_bytes(),
            Err(failure) => return Attempt::failed(failure, start.elapsed()),
        };
        // A newline makes `read -r line` in a shell script succeed; `jq` and
        // JSON parsers do not mind it.
        stdin_bytes.push(b'\n');

        let mut cmd = match &self.config.command {
            ExecCommand::Argv(argv) => {
                // `new` refused an empty argv; no index can panic here.
                let Some((program, args)) = argv.split_first() else {
                    return Attempt::failed(
                        Failure::Spawn("empty command".into()),
                        start.elapsed(),
                    );
                };
                let mut c = tokio::process::Command::new(program);
                c.args(args);
                c
            }
            ExecCommand::Shell(line) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c").arg(line);
                c
            }
        };
        // A clean environment: the daemon's may hold signing secrets
        // (`KITEDESK_*_SECRET`) that a handler script must never see. Keep
        // only what programs need to run, then the event's fields.
        cmd.env_clear();
        for keep in INHERITED_ENV {
            if let Some(v) = std::env::var_os(keep) {
                cmd.env(keep, v);
            }
        }
        for (name, value) in env_vars(delivery) {
            cmd.env(name, value);
        }
        if let Some(dir) = &self.config.current_dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // If the caller drops this future, the command does not outlive it.
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);

        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                return Attempt::failed(
                    Failure::Spawn(format!("{}: {e}", self.config.command)),
                    start.elapsed(),
                );
            }
        };
        let run = run(&mut child, stdin_bytes, self.config.timeout).await;
        let latency = start.elapsed();
        let outcome = match run.exit {
            // A clean exit after a failed stdin write (other than the
            // ignored broken pipe) means the command may have seen half an
            // event.
            Exit::Exited(status) => exit_failure(status).or_else(|| {
                run.stdin_error
                    .map(|e| Failure::Io(format!("writing the event to stdin: {e}")))
            }),
            Exit::WaitFailed(e) => Some(Failure::Io(format!("waiting for the command: {e}"))),
            Exit::TimedOut => Some(Failure::Timeout(self.config.timeout)),
        };
        let mut attempt = match outcome {
            None => Attempt::delivered(latency),
            Some(failure) => Attempt::failed(failure, latency),
        };
        attempt.stdout = Some(run.stdout);
        attempt.stderr = Some(run.stderr);
        attempt
    }
}

/// The `KITE_*` variables. A NUL byte cannot be passed in an environment
/// variable; it is dropped rather than failing the delivery.
fn env_vars(d: &Delivery) -> [(&'static str, String); 6] {
    let clean = |s: &str| s.replace('\0', "");
    let ev = &d.event;
    [
        ("KITE_EVENT_ID", clean(&ev.id)),
        ("KITE_EVENT_TYPE", clean(&ev.ty)),
        ("KITE_EVENT_SOURCE", clean(&ev.source)),
        ("KITE_SOURCE", clean(d.source_name())),
        ("KITE_IMPORTANCE", ev.importance.as_str().to_string()),
        ("KITE_SUMMARY", clean(&ev.summary)),
    ]
}

fn exit_failure(status: ExitStatus) -> Option<Failure> {
    if status.success() {
        return None;
    }
    if let Some(code) = status.code() {
        return Some(Failure::Exit(code));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return Some(Failure::Signal(signal));
        }
    }
    Some(Failure::Io(format!("command ended abnormally: {status}")))
}

enum Exit {
    Exited(ExitStatus),
    WaitFailed(std::io::Error),
    TimedOut,
}

struct Run {
    exit: Exit,
    stdout: Captured,
    stderr: Captured,
    stdin_error: Option<std::io::Error>,
}

/// Feed stdin and drain stdout/stderr while waiting for the exit, all
/// concurrently: a command that writes a lot before reading would otherwise
/// deadlock against us.
async fn run(child: &mut Child, stdin_bytes: Vec<u8>, timeout: Duration) -> Run {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stdin = child.stdin.take();
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let io = async {
        tokio::join!(
            write_stdin(stdin, stdin_bytes, stop_rx.clone()),
            read_capped(stdout, stop_rx.clone()),
            read_capped(stderr, stop_rx.clone()),
        )
    };
    tokio::pin!(io);

    let deadline = tokio::time::Instant::now() + timeout;
    let mut io_result = None;
    let waited = loop {
        tokio::select! {
            waited = tokio::time::timeout_at(deadline, child.wait()) => break waited,
            result = &mut io, if io_result.is_none() => io_result = Some(result),
        }
    };
    let exit = match waited {
        Ok(Ok(status)) => Exit::Exited(status),
        Ok(Err(e)) => Exit::WaitFailed(e),
        Err(_elapsed) => {
            kill_group(child);
            // Reap it; bounded, so a process stuck in the kernel cannot hang
            // the delivery (kill_on_drop covers it afterwards).
            let _ = tokio::time::timeout(REAP_GRACE, child.wait()).await;
            Exit::TimedOut
        }
    };
    let (stdin_error, stdout, stderr) = match io_result {
        Some(result) => result,
        None => {
            // What the command wrote before it ended is already in the pipes;
            // give the readers a moment for it, then stop them.
            let grace = match exit {
                Exit::TimedOut => Duration::ZERO,
                _ => PIPE_DRAIN_GRACE,
            };
            tokio::select! {
                result = &mut io => result,
                () = tokio::time::sleep(grace) => {
                    let _ = stop_tx.send(true);
                    io.await
                }
            }
        }
    };
    Run {
        exit,
        stdout,
        stderr,
        stdin_error,
    }
}

/// Write the event and close stdin. A command that exits (or closes stdin)
/// without reading it is not a failure: the broken pipe is ignored.
async fn write_stdin(
    stdin: Option<ChildStdin>,
    bytes: Vec<u8>,
    mut stop: watch::Receiver<bool>,
) -> Option<std::io::Error> {
    let mut stdin = stdin?;
    let write = async {
        stdin.write_all(&bytes).await?;
        stdin.shutdown().await
    };
    let result = tokio::select! {
        r = write => r,
        _ = stop.wait_for(|stop| *stop) => Ok(()),
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Some(e),
        _ => None,
    }
}

/// Keep the first [`CAPTURE_LIMIT`] bytes, read (and drop) the rest so the
/// command never blocks on a full pipe, until EOF or `stop`.
async fn read_capped<R: AsyncRead + Unpin>(
    pipe: Option<R>,
    mut stop: watch::Receiver<bool>,
) -> Captured {
    let mut captured = CaptureBuf::new(CAPTURE_LIMIT);
    let Some(mut pipe) = pipe else {
        return captured.finish();
    };
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        tokio::select! {
            biased;
            n = pipe.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => captured.push(&buf[..n]),
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
    captured.finish()
}

/// Kill the command and everything it started: they share its process
/// group (it was spawned as the group leader).
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pgid) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .and_then(rustix::process::Pid::from_raw)
        && let Err(e) = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL)
    {
        tracing::warn!(error = %e, "cannot kill the timed-out command's process group");
    }
    // The leader itself, also where process groups do not exist.
    let _ = child.start_kill();
}
