//! Executors run one attempt of one step. The scheduler, cache, retries,
//! secrets and logs are shared by all executors; an executor only starts the
//! command, streams its output and reports how it ended.
//!
//! [`LocalExecutor`] runs a process in its own process group with a clean
//! environment. On timeout or cancellation the whole group gets SIGTERM,
//! then SIGKILL after a grace period; when the step's main process exits,
//! whatever it left running in its group is killed too, so a step never
//! leaves a process behind.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};

/// The command of a job, with run-time values already filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// A script for `sh -c`.
    Shell(String),
    /// A program and its arguments.
    Argv(Vec<String>),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub node: String,
    pub launch: Launch,
    /// The complete environment of the process.
    pub env: Vec<(String, String)>,
    pub workdir: PathBuf,
    pub timeout: Option<Duration>,
    pub image: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// Killed by a signal.
    Signalled(i32),
    TimedOut,
    Cancelled,
    /// The process could not start (command not found, bad workdir).
    FailedToStart(String),
}

impl Outcome {
    pub fn success(&self) -> bool {
        *self == Outcome::Exited(0)
    }
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::Exited(c) => *c,
            Outcome::Signalled(s) => 128 + s,
            Outcome::TimedOut => 124,
            Outcome::Cancelled => 130,
            Outcome::FailedToStart(_) => 127,
        }
    }
}

/// What an executor gets besides the job: where to send output and a
/// cancellation signal (true means stop now).
pub struct JobIo {
    pub output: mpsc::UnboundedSender<Vec<u8>>,
    pub cancel: watch::Receiver<bool>,
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs jobs. Implementations: local processes here; WASM and remote
/// executors plug in behind the same trait.
pub trait Executor: Send + Sync {
    fn execute(&self, job: Job, io: JobIo) -> BoxFuture<'_, Outcome>;
}

#[derive(Clone, Debug)]
pub struct LocalExecutor {
    /// Time between SIGTERM and SIGKILL.
    pub grace: Duration,
}

impl Default for LocalExecutor {
    fn default() -> Self {
        LocalExecutor {
            grace: Duration::from_secs(5),
        }
    }
}

fn signal_group(pgid: i32, sig: i32) {
    // Never a broadcast (-1) nor our own group (which weir never changes,
    // so it is asked once).
    static OWN: std::sync::OnceLock<i32> = std::sync::OnceLock::new();
    // SAFETY: getpgrp(2) has no preconditions.
    let own = *OWN.get_or_init(|| unsafe { libc::getpgrp() });
    if pgid > 1 && pgid != own {
        // SAFETY: kill(2) with a negative pid signals a process group we
        // created for this step; it has no memory-safety preconditions.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

/// A pipe for a step's output: the read end non-blocking for the runtime,
/// the write end blocking as a child expects its stdout. Three system calls,
/// where `std::io::pipe` and tokio's checked conversion take five.
fn output_pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: pipe2(2) writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by no one else.
    let (r, w) = unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    };
    // SAFETY: F_SETFL on a descriptor we own; a pipe end's access mode is
    // not changed by F_SETFL, so O_NONBLOCK alone is the whole new status.
    if unsafe { libc::fcntl(fds[0], libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((r, w))
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks for existence.
    pgid > 0 && unsafe { libc::kill(-pgid, 0) } == 0
}

impl Executor for LocalExecutor {
    fn execute(&self, job: Job, mut io: JobIo) -> BoxFuture<'_, Outcome> {
        Box::pin(async move {
            let mut cmd = match &job.launch {
                Launch::Shell(script) => {
                    // An absolute path: no PATH search per step (and the
                    // check made once).
                    static SH: std::sync::OnceLock<&str> = std::sync::OnceLock::new();
                    let sh = *SH.get_or_init(|| {
                        if std::path::Path::new("/bin/sh").exists() {
                            "/bin/sh"
                        } else {
                            "sh"
                        }
                    });
                    let mut c = tokio::process::Command::new(sh);
                    c.arg("-c").arg(script);
                    c
                }
                Launch::Argv(args) => {
                    let Some((prog, rest)) = args.split_first() else {
                        return Outcome::FailedToStart("the command is empty".into());
                    };
                    let mut c = tokio::process::Command::new(prog);
                    c.args(rest);
                    c
                }
            };
            // One pipe for both streams, as a terminal would show them: the
            // log keeps the order in which the step wrote, and a step costs
            // one pipe and one reader rather than two.
            let (reader, writer) = match output_pipe() {
                Ok(p) => p,
                Err(e) => return Outcome::FailedToStart(format!("cannot create a pipe: {e}")),
            };
            let stderr = match writer.try_clone() {
                Ok(w) => w,
                Err(e) => return Outcome::FailedToStart(format!("cannot create a pipe: {e}")),
            };
            cmd.env_clear()
                .envs(job.env.iter().map(|(k, v)| (k, v)))
                .current_dir(&job.workdir)
                .stdin(Stdio::null())
                .stdout(writer)
                .stderr(stderr)
                .process_group(0)
                .kill_on_drop(true);
            let spawned = cmd.spawn();
            // The command holds the pipe's write ends: close them here, or the
            // reader would never see the end of the output.
            drop(cmd);
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    let what = match &job.launch {
                        Launch::Shell(_) => "sh".to_owned(),
                        Launch::Argv(a) => a.first().cloned().unwrap_or_default(),
                    };
                    let msg = if e.kind() == std::io::ErrorKind::NotFound {
                        if job.workdir.exists() {
                            format!("command not found: `{what}`")
                        } else {
                            format!(
                                "the working directory `{}` does not exist",
                                job.workdir.display()
                            )
                        }
                    } else {
                        format!("cannot start `{what}`: {e}")
                    };
                    return Outcome::FailedToStart(msg);
                }
            };
            let pgid = child.id().map_or(0, |id| id as i32);
            // `output_pipe` made `reader` the non-blocking read end of a pipe,
            // which is what this conversion requires without checking.
            let output = match tokio::net::unix::pipe::Receiver::from_owned_fd_unchecked(reader) {
                Ok(r) => r,
                Err(e) => {
                    signal_group(pgid, libc::SIGKILL);
                    return Outcome::FailedToStart(format!("cannot read the step's output: {e}"));
                }
            };
            let tx = io.output.clone();
            let reader = tokio::spawn(async move {
                let mut stream = output;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let _ = tx.send(buf[..n].to_vec());
                        }
                    }
                }
            });
            let deadline = job.timeout.map(|t| tokio::time::Instant::now() + t);
            let sleep_until = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let cancelled = async {
                loop {
                    if *io.cancel.borrow() {
                        return;
                    }
                    if io.cancel.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
            };
            let outcome = tokio::select! {
                status = child.wait() => match status {
                    Ok(s) => {
                        use std::os::unix::process::ExitStatusExt;
                        match (s.code(), s.signal()) {
                            (Some(c), _) => Outcome::Exited(c),
                            (None, Some(sig)) => Outcome::Signalled(sig),
                            _ => Outcome::Exited(1),
                        }
                    }
                    Err(e) => Outcome::FailedToStart(format!("lost the process: {e}")),
                },
                () = sleep_until => Outcome::TimedOut,
                () = cancelled => Outcome::Cancelled,
            };
            if matches!(outcome, Outcome::TimedOut | Outcome::Cancelled) {
                signal_group(pgid, libc::SIGTERM);
                let waited = tokio::time::timeout(self.grace, child.wait()).await;
                if waited.is_err() || group_alive(pgid) {
                    // Give the rest of the group the same grace, then kill.
                    let until = tokio::time::Instant::now() + self.grace;
                    while group_alive(pgid) && tokio::time::Instant::now() < until {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    signal_group(pgid, libc::SIGKILL);
                    let _ = child.wait().await;
                }
            }
            // Whatever the step left running in its group goes with it.
            signal_group(pgid, libc::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
            outcome
        })
    }
}
