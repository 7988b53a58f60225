//! Running untrusted Python so that nothing it does outlives, escapes or stalls the run.
//!
//! Where the kernel allows it (r1 runs as root, or unprivileged user namespaces are enabled),
//! every run gets its own namespaces:
//!
//! ```text
//! r1 ──fork──▶ keeper (host PID namespace, own session)
//!                 │ unshare(PID | mount | network | IPC [| user])
//!                 └──fork──▶ init = python (PID 1 of the new namespace)
//!                                 └── whatever the code forks
//! ```
//!
//! - **PID namespace.** Python is the namespace's init: when it exits or is killed, the kernel
//!   kills every process left in the namespace, however it detached (`setsid`, double forks),
//!   and the keeper only returns once they are all gone. The code cannot see or signal any
//!   process outside (its `/proc` is the namespace's own).
//! - **Mount namespace.** Fresh, empty `tmpfs` mounts over `/tmp`, `/var/tmp`, `/dev/shm` and
//!   `/run/lock` (every world-writable directory of a usual system), sized to the file-size
//!   limit; the script and its working directory live in that `/tmp`. Nothing written there is
//!   visible to the host or survives the run.
//! - **Network namespace.** No interfaces but a down loopback.
//! - **Credentials.** As root, each run gets its own unprivileged uid and gid (so the process
//!   limit counts this run alone, and runs cannot signal each other), no supplementary groups
//!   and `no_new_privs` (set-uid programs gain nothing).
//! - **Limits.** `setrlimit` on CPU seconds, address space, file size, open files and
//!   processes; a wall-clock deadline; standard output and error are read without blocking,
//!   capped (the run is killed past the cap), and never waited on past the deadline.
//! - **Parent death.** Python gets `SIGKILL` if the keeper dies, and the keeper if r1 dies.
//!
//! Where a protection cannot be set up, [`Sandbox::new`] falls back to what can (a process
//! group killed at the deadline; a private directory under the system's temporary directory)
//! and logs a warning naming what is missing; [`Sandbox::isolation`] reports it.

use std::ffi::{CString, c_int};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Result, RewardError};

/// The unprivileged user of the fallback (non-namespaced) mode.
const NOBODY: u32 = 65534;
/// Runs as root get uids `UID_BASE + n % UID_SLOTS`, one per run in flight.
const UID_BASE: u32 = 1_900_000_000;
const UID_SLOTS: u64 = 1 << 16;
/// Open files per process.
const MAX_OPEN_FILES: u64 = 64;
/// Each private tmpfs holds at most this many bytes (or the file-size limit, if larger).
const MIN_TMPFS_BYTES: u64 = 64 << 20;
/// Directories that get a private tmpfs, when they exist.
const PRIVATE_DIRS: &[&str] = &["/tmp", "/var/tmp", "/dev/shm", "/run/lock"];

/// Resource limits of one sandboxed run.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Wall-clock limit of the run.
    pub wall: Duration,
    /// Address space in bytes (`RLIMIT_AS`).
    pub memory_bytes: u64,
    /// Processes (and threads) of the run (`RLIMIT_NPROC`, counted per uid).
    pub max_processes: u64,
    /// Largest file the code may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// Bytes kept of standard output and of standard error; the run is killed when it writes
    /// more.
    pub max_output_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_seconds: 5,
            wall: Duration::from_secs(10),
            memory_bytes: 1 << 30,
            max_processes: 64,
            max_file_bytes: 16 << 20,
            max_output_bytes: 1 << 20,
        }
    }
}

/// Which protections are in force on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Isolation {
    /// Each run is PID 1 of its own PID namespace: its death ends every descendant.
    pub pid_namespace: bool,
    /// Each run has a private mount namespace with empty `/tmp`, `/var/tmp`, `/dev/shm`.
    pub private_tmp: bool,
    /// The run's `/proc` shows only its own processes.
    pub private_proc: bool,
    /// A new network namespace (no interfaces but a down loopback).
    pub network: bool,
    /// Runs as an unprivileged user of its own (r1 runs as root).
    pub unprivileged_user: bool,
}

impl Isolation {
    /// The protections that are missing, in words (empty when none is).
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.pid_namespace {
            out.push(
                "PID namespace (a process that leaves its process group outlives the run until its CPU limit)",
            );
        }
        if !self.private_tmp {
            out.push("private /tmp and /dev/shm (files written there stay)");
        }
        if self.pid_namespace && !self.private_proc {
            out.push("private /proc (other processes are listed)");
        }
        if !self.network {
            out.push("network namespace (the code can reach the network)");
        }
        if !self.unprivileged_user {
            out.push(
                "unprivileged user (r1 is not root: the code runs as this user and can write what it can)",
            );
        }
        out
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Exit code, when the process exited by itself in time.
    pub code: Option<i32>,
    /// The signal that ended it, when one did (`SIGKILL` at the deadline, `SIGXCPU` / `SIGKILL`
    /// at the CPU limit).
    pub signal: Option<i32>,
    /// Killed for passing the wall-clock limit.
    pub timed_out: bool,
    /// Killed for writing more than [`Limits::max_output_bytes`] to stdout or stderr.
    pub output_limited: bool,
    /// Standard output (at most [`Limits::max_output_bytes`]).
    pub stdout: String,
    /// Standard error (at most [`Limits::max_output_bytes`]).
    pub stderr: String,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Outcome {
    /// Exited with code 0, in time and within the output limit.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out && !self.output_limited
    }
}

/// How runs are set up: decided once by probing the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mode {
    /// Namespaces (PID, mount, network, IPC) through a keeper process.
    namespaces: bool,
    /// Also a user namespace (r1 is not root).
    user_ns: bool,
    /// Mount a fresh `/proc` for the PID namespace.
    proc: bool,
    /// Also a network namespace, in the plain mode (namespaced mode always has one).
    plain_net: bool,
}

impl Mode {
    fn isolation(self, root: bool) -> Isolation {
        Isolation {
            pid_namespace: self.namespaces,
            private_tmp: self.namespaces,
            private_proc: self.namespaces && self.proc,
            network: self.namespaces || self.plain_net,
            unprivileged_user: root,
        }
    }
}

/// Runs Python code under [`Limits`], isolated as far as this machine allows.
#[derive(Debug, Clone)]
pub struct Sandbox {
    python: PathBuf,
    limits: Limits,
    mode: Mode,
    root: bool,
    /// Fallback mode only: where run directories are made.
    dir: PathBuf,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Setup steps of the child, reported on failure with the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    Setsid = 1,
    Unshare,
    UserMap,
    Fork,
    MountPrivate,
    MountTmp,
    MountProc,
    Script,
    Chdir,
    Stdio,
    Rlimit,
    Credentials,
    Prctl,
    Exec,
}

impl Step {
    fn from_u8(b: u8) -> &'static str {
        match b {
            1 => "setsid",
            2 => "unshare (namespaces)",
            3 => "user namespace id maps",
            4 => "fork",
            5 => "make mounts private",
            6 => "mount a private tmpfs",
            7 => "mount /proc",
            8 => "write the script",
            9 => "chdir",
            10 => "redirect stdio",
            11 => "setrlimit",
            12 => "drop privileges",
            13 => "prctl",
            _ => "exec python",
        }
    }
}

/// Everything the child needs, prepared before `fork` so that the child allocates nothing.
struct Plan {
    python: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    workdir: CString,
    /// Namespaced mode: the script is written by the child into its private /tmp.
    script_path: CString,
    script: Vec<u8>,
    private_dirs: Vec<CString>,
    tmpfs_options: CString,
    uid: u32,
    gid: u32,
    /// User-namespace maps: (`/proc/self/setgroups`, "deny"), uid_map, gid_map.
    user_maps: Vec<(CString, Vec<u8>)>,
    limits: Limits,
    mode: Mode,
}

fn cstr(s: impl AsRef<[u8]>) -> Result<CString> {
    CString::new(s.as_ref().to_vec())
        .map_err(|_| RewardError::Sandbox("a path or argument contains a NUL byte".into()))
}

fn os_err(what: &str) -> RewardError {
    RewardError::Sandbox(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// `pipe2(O_CLOEXEC)`: (read end, write end).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_err("pipe"));
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

impl Sandbox {
    /// A sandbox running `python` (e.g. `python3`) under `limits`. Probes which protections
    /// this machine allows and warns about the missing ones.
    pub fn new(python: impl Into<PathBuf>, limits: Limits) -> Result<Self> {
        let python = resolve(&python.into());
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        let dir = std::env::temp_dir().join("r1-sandbox");
        let mut sandbox = Self {
            python,
            limits,
            mode: Mode {
                namespaces: true,
                user_ns: !root,
                proc: true,
                plain_net: false,
            },
            root,
            dir,
        };
        sandbox.mode = sandbox.probe()?;
        for missing in sandbox.isolation().missing() {
            tracing::warn!("code sandbox: no {missing}");
        }
        Ok(sandbox)
    }

    /// The protections in force.
    pub fn isolation(&self) -> Isolation {
        self.mode.isolation(self.root)
    }

    /// The limits of every run.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Tries the strongest mode first, then weaker ones, with a trivial script.
    fn probe(&self) -> Result<Mode> {
        let candidates = [
            Mode {
                namespaces: true,
                user_ns: !self.root,
                proc: true,
                plain_net: false,
            },
            Mode {
                namespaces: true,
                user_ns: !self.root,
                proc: false,
                plain_net: false,
            },
            Mode {
                namespaces: false,
                user_ns: false,
                proc: false,
                plain_net: true,
            },
        ];
        let mut last = None;
        for mode in candidates {
            match self.run_with(mode, "print(6 * 7)", "") {
                Ok(out) if out.success() && out.stdout.trim() == "42" => return Ok(mode),
                Ok(out) => last = Some(format!("{out:?}")),
                Err(e) => last = Some(e.to_string()),
            }
        }
        let plain = Mode {
            namespaces: false,
            user_ns: false,
            proc: false,
            plain_net: false,
        };
        match self.run_with(plain, "print(6 * 7)", "") {
            Ok(out) if out.success() && out.stdout.trim() == "42" => Ok(plain),
            _ => Err(RewardError::Sandbox(format!(
                "cannot run `{}` (is Python installed?): {}",
                self.python.display(),
                last.unwrap_or_default()
            ))),
        }
    }

    /// Runs `code` with `stdin` and returns what happened. Nothing of the run is left when
    /// this returns (in the namespaced mode).
    pub fn run(&self, code: &str, stdin: &str) -> Result<Outcome> {
        self.run_with(self.mode, code, stdin)
    }

    fn run_with(&self, mode: Mode, code: &str, stdin: &str) -> Result<Outcome> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        if mode.namespaces {
            let plan = self.plan(mode, n, Path::new("/tmp"), code)?;
            return execute(&plan, stdin.as_bytes());
        }
        // Fallback: a private directory under the system's temporary directory.
        let dir = self.dir.join(format!("run-{}-{n}", std::process::id()));
        let io = |path: &Path, e: std::io::Error| RewardError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let script = dir.join("main.py");
        let result = std::fs::write(&script, code)
            .map_err(|e| io(&script, e))
            .and_then(|()| {
                let plan = self.plan(mode, n, &dir, code)?;
                if self.root {
                    let c = cstr(dir.as_os_str().as_bytes())?;
                    // SAFETY: valid C string; the run's user may write its own directory.
                    unsafe { libc::chown(c.as_ptr(), plan.uid, plan.gid) };
                }
                execute(&plan, stdin.as_bytes())
            });
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    fn plan(&self, mode: Mode, n: u64, workdir: &Path, code: &str) -> Result<Plan> {
        let (uid, gid) = if !self.root {
            // SAFETY: no preconditions.
            unsafe { (libc::getuid(), libc::getgid()) }
        } else if mode.namespaces {
            let id = UID_BASE + (n % UID_SLOTS) as u32;
            (id, id)
        } else {
            (NOBODY, NOBODY)
        };
        let home = workdir.as_os_str().as_bytes();
        let env = vec![
            [b"PATH=".as_slice(), SANDBOX_PATH.as_bytes()].concat(),
            [b"HOME=".as_slice(), home].concat(),
            [b"TMPDIR=".as_slice(), home].concat(),
            b"PYTHONDONTWRITEBYTECODE=1".to_vec(),
            b"PYTHONUTF8=1".to_vec(),
            b"LANG=C.UTF-8".to_vec(),
        ];
        let tmpfs_bytes = MIN_TMPFS_BYTES.max(self.limits.max_file_bytes.saturating_mul(2));
        let mut user_maps = Vec::new();
        if mode.user_ns {
            // SAFETY: no preconditions.
            let (outer_uid, outer_gid) = unsafe { (libc::getuid(), libc::getgid()) };
            user_maps.push((cstr("/proc/self/setgroups")?, b"deny".to_vec()));
            user_maps.push((
                cstr("/proc/self/uid_map")?,
                format!("{outer_uid} {outer_uid} 1").into_bytes(),
            ));
            user_maps.push((
                cstr("/proc/self/gid_map")?,
                format!("{outer_gid} {outer_gid} 1").into_bytes(),
            ));
        }
        Ok(Plan {
            python: cstr(self.python.as_os_str().as_bytes())?,
            argv: vec![
                cstr(self.python.as_os_str().as_bytes())?,
                cstr("-I")?,
                cstr("main.py")?,
            ],
            envp: env.into_iter().map(cstr).collect::<Result<_>>()?,
            workdir: cstr(home)?,
            script_path: cstr(workdir.join("main.py").as_os_str().as_bytes())?,
            script: code.as_bytes().to_vec(),
            private_dirs: PRIVATE_DIRS
                .iter()
                .filter(|d| Path::new(d).is_dir())
                .map(cstr)
                .collect::<Result<_>>()?,
            tmpfs_options: cstr(format!("size={tmpfs_bytes},mode=1777"))?,
            uid,
            gid,
            user_maps,
            limits: self.limits.clone(),
            mode,
        })
    }
}

/// The sandbox's `PATH`: the run's user must be able to reach the interpreter, so a `python3`
/// under a home directory (a pyenv shim, say) is not taken.
const SANDBOX_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// `python3` → `/usr/bin/python3`: a bare name is looked up in the sandbox's `PATH` first, then
/// in r1's (exec in the child does no search).
fn resolve(python: &Path) -> PathBuf {
    if python.components().count() > 1 || python.is_absolute() {
        return python.to_path_buf();
    }
    let host = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(SANDBOX_PATH)
        .chain(std::env::split_paths(&host))
        .map(|d| d.join(python))
        .find(|p| p.is_file())
        .unwrap_or_else(|| python.to_path_buf())
}

/// Forks the run, feeds stdin, collects output under the deadline and the cap, and reaps it.
fn execute(plan: &Plan, stdin: &[u8]) -> Result<Outcome> {
    let started = Instant::now();
    let (in_r, in_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (rep_r, rep_w) = pipe()?;
    let argv: Vec<*const libc::c_char> = plan
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = plan
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let fds = ChildFds {
        stdin: in_r.as_raw_fd(),
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
        report: rep_w.as_raw_fd(),
    };
    // SAFETY: the child runs only async-signal-safe system calls on memory prepared above and
    // never returns (it execs or `_exit`s).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(os_err("fork"));
    }
    if pid == 0 {
        // SAFETY: in the child, see above.
        unsafe { child(plan, &fds, &argv, &envp) }
    }
    drop((in_r, out_w, err_w, rep_w));
    let mut child = Reaper::new(pid, plan.mode.namespaces);
    // The keeper reports python's pid; either process reports a failed setup step.
    let report = read_report(rep_r, started + Duration::from_secs(10));
    let mut report = match report {
        Ok(r) => r,
        Err(e) => {
            child.kill_all();
            child.wait();
            return Err(e);
        }
    };
    child.init = report.init_pid.take();
    if let Some((step, errno)) = report.failure {
        child.kill_all();
        child.wait();
        return Err(RewardError::Sandbox(format!(
            "setting up the run failed at `{}`: {}",
            Step::from_u8(step),
            std::io::Error::from_raw_os_error(errno)
        )));
    }
    let deadline = started + plan.limits.wall;
    let collected = collect(
        &mut child,
        Some(in_w),
        out_r,
        err_r,
        stdin,
        deadline,
        plan.limits.max_output_bytes,
    );
    let status = child.wait();
    let (stdout, stderr, timed_out, output_limited) = collected;
    let (code, signal) = match status {
        Some(s) if libc::WIFEXITED(s) => (Some(libc::WEXITSTATUS(s)), None),
        Some(s) if libc::WIFSIGNALED(s) => (None, Some(libc::WTERMSIG(s))),
        _ => (None, None),
    };
    Ok(Outcome {
        code: if timed_out || output_limited {
            None
        } else {
            code
        },
        signal,
        timed_out,
        output_limited,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        elapsed: started.elapsed(),
    })
}

struct Report {
    init_pid: Option<i32>,
    failure: Option<(u8, i32)>,
}

/// Reads the report pipe to its end (the keeper closes it after sending python's pid; python's
/// copy closes at exec): `P` + pid, or `E` + step + errno.
fn read_report(fd: OwnedFd, deadline: Instant) -> Result<Report> {
    set_nonblocking(fd.as_raw_fd());
    let mut buf = Vec::new();
    loop {
        let mut chunk = [0u8; 64];
        // SAFETY: reading into a local buffer from a descriptor we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if n > 0 {
            buf.extend_from_slice(&chunk[..n as usize]);
            continue;
        }
        if n == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::Interrupted
        {
            return Err(RewardError::Sandbox(format!("report pipe: {e}")));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(RewardError::Sandbox(
                "the run did not finish its setup in 10 s".into(),
            ));
        }
        poll_one(
            fd.as_raw_fd(),
            libc::POLLIN,
            left.min(Duration::from_millis(100)),
        );
    }
    let mut report = Report {
        init_pid: None,
        failure: None,
    };
    let mut i = 0;
    while i < buf.len() {
        match buf[i] {
            b'P' if i + 5 <= buf.len() => {
                let b = [buf[i + 1], buf[i + 2], buf[i + 3], buf[i + 4]];
                report.init_pid = Some(i32::from_ne_bytes(b));
                i += 5;
            }
            b'E' if i + 6 <= buf.len() => {
                let b = [buf[i + 2], buf[i + 3], buf[i + 4], buf[i + 5]];
                report.failure = Some((buf[i + 1], i32::from_ne_bytes(b)));
                i += 6;
            }
            _ => break,
        }
    }
    Ok(report)
}

fn poll_one(fd: RawFd, events: libc::c_short, timeout: Duration) {
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe {
        libc::poll(
            &mut p,
            1,
            timeout.as_millis().min(i32::MAX as u128) as c_int,
        )
    };
}

/// The forked process and, in the namespaced mode, python's pid in the host namespace.
struct Reaper {
    pid: i32,
    init: Option<i32>,
    namespaced: bool,
    status: Option<c_int>,
}

impl Reaper {
    fn new(pid: i32, namespaced: bool) -> Self {
        Self {
            pid,
            init: None,
            namespaced,
            status: None,
        }
    }

    /// Reaps the child if it has exited; true when it has.
    fn try_wait(&mut self) -> bool {
        if self.status.is_some() {
            return true;
        }
        let mut s: c_int = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(self.pid, &mut s, libc::WNOHANG) };
        if r == self.pid {
            self.status = Some(s);
        }
        self.status.is_some()
    }

    /// Kills the run: python (the namespace's init: the kernel then kills the rest) or the
    /// process group.
    fn kill_all(&mut self) {
        if self.try_wait() {
            if !self.namespaced {
                // SAFETY: signalling the process group we created (it may be gone).
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            }
            return;
        }
        // SAFETY: signalling processes of our own run. The keeper has not been reaped, and it
        // reaps python only when python is gone, so python's pid cannot have been reused.
        unsafe {
            match (self.namespaced, self.init) {
                // Killing the namespace's init ends the namespace; the keeper then returns.
                (true, Some(init)) => {
                    libc::kill(init, libc::SIGKILL);
                }
                _ => {
                    libc::kill(-self.pid, libc::SIGKILL);
                    libc::kill(self.pid, libc::SIGKILL);
                }
            }
        }
    }

    /// Blocks until the child is reaped (the keeper returns once its namespace is empty).
    fn wait(&mut self) -> Option<c_int> {
        if self.status.is_none() {
            let grace = Instant::now() + Duration::from_secs(5);
            loop {
                if self.try_wait() {
                    break;
                }
                if Instant::now() >= grace {
                    // The keeper should have returned: end it (python dies with it).
                    // SAFETY: signalling our own unreaped child.
                    unsafe { libc::kill(self.pid, libc::SIGKILL) };
                    let mut s: c_int = 0;
                    // SAFETY: waiting for our own child.
                    if unsafe { libc::waitpid(self.pid, &mut s, 0) } == self.pid {
                        self.status = Some(s);
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        if !self.namespaced {
            // SAFETY: the group we created; stragglers that kept it die now.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        self.status
    }
}

/// Feeds stdin and reads stdout/stderr until both close or the deadline passes; kills the run
/// at the deadline or when an output passes `cap`. Returns (stdout, stderr, timed out, output
/// limited).
fn collect(
    child: &mut Reaper,
    mut stdin_w: Option<OwnedFd>,
    out_r: OwnedFd,
    err_r: OwnedFd,
    stdin: &[u8],
    deadline: Instant,
    cap: usize,
) -> (Vec<u8>, Vec<u8>, bool, bool) {
    for fd in [out_r.as_raw_fd(), err_r.as_raw_fd()] {
        set_nonblocking(fd);
    }
    if let Some(w) = &stdin_w {
        set_nonblocking(w.as_raw_fd());
    }
    let mut written = 0usize;
    if stdin.is_empty() {
        stdin_w = None;
    }
    let mut bufs = [Vec::new(), Vec::new()];
    let mut open = [true, true];
    let fds = [out_r.as_raw_fd(), err_r.as_raw_fd()];
    let (mut timed_out, mut limited) = (false, false);
    // After the child exits, processes that escaped it (fallback mode) may hold the pipes:
    // read what is there for a moment, then stop.
    let mut exited_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if exited_at.is_none() && child.try_wait() {
            exited_at = Some(now);
        }
        match exited_at {
            Some(_) if !open[0] && !open[1] => break,
            Some(t) if now.duration_since(t) > Duration::from_millis(50) => break,
            _ => {}
        }
        if now >= deadline {
            timed_out = exited_at.is_none();
            break;
        }
        let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(3);
        for k in 0..2 {
            if open[k] {
                pfds.push(libc::pollfd {
                    fd: fds[k],
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        if let Some(w) = &stdin_w {
            pfds.push(libc::pollfd {
                fd: w.as_raw_fd(),
                events: libc::POLLOUT,
                revents: 0,
            });
        }
        let wait = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(20));
        // SAFETY: a valid array of pollfds.
        unsafe {
            libc::poll(
                pfds.as_mut_ptr(),
                pfds.len() as libc::nfds_t,
                wait.as_millis() as c_int,
            )
        };
        for k in 0..2 {
            if !open[k] {
                continue;
            }
            let mut chunk = [0u8; 65536];
            loop {
                // SAFETY: reading into a local buffer from a descriptor we own.
                let n = unsafe { libc::read(fds[k], chunk.as_mut_ptr().cast(), chunk.len()) };
                if n > 0 {
                    let n = n as usize;
                    let room = cap.saturating_sub(bufs[k].len());
                    bufs[k].extend_from_slice(&chunk[..n.min(room)]);
                    if n > room {
                        limited = true;
                        break;
                    }
                    continue;
                }
                if n == 0 {
                    open[k] = false;
                } else {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::Interrupted
                    {
                        open[k] = false;
                    }
                }
                break;
            }
        }
        if limited {
            break;
        }
        if let Some(w) = &stdin_w {
            let rest = &stdin[written..];
            // SAFETY: writing from a live slice to a descriptor we own.
            let n = unsafe { libc::write(w.as_raw_fd(), rest.as_ptr().cast(), rest.len()) };
            if n > 0 {
                written += n as usize;
            }
            let broken =
                n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::WouldBlock;
            if written >= stdin.len() || broken {
                stdin_w = None; // closes it: the code sees end of input
            }
        }
    }
    if timed_out || limited || !child.try_wait() {
        child.kill_all();
    } else if open[0] || open[1] {
        // Exited, but something it started still holds the pipes (fallback mode).
        child.kill_all();
    }
    let [out, err] = bufs;
    (out, err, timed_out, limited)
}

struct ChildFds {
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    report: RawFd,
}

/// Reports a failed step on the report pipe and exits.
///
/// # Safety
/// Only in the forked child.
unsafe fn fail(report: RawFd, step: Step) -> ! {
    // SAFETY: async-signal-safe calls only.
    unsafe {
        let errno = *libc::__errno_location();
        let mut msg = [0u8; 6];
        msg[0] = b'E';
        msg[1] = step as u8;
        msg[2..6].copy_from_slice(&errno.to_ne_bytes());
        libc::write(report, msg.as_ptr().cast(), msg.len());
        libc::_exit(127)
    }
}

fn check(r: c_int, report: RawFd, step: Step) {
    if r < 0 {
        // SAFETY: only called in the forked child.
        unsafe { fail(report, step) }
    }
}

/// The forked child: the keeper in the namespaced mode, python itself otherwise.
///
/// # Safety
/// Only in a freshly forked child; calls only async-signal-safe functions and never returns.
unsafe fn child(
    plan: &Plan,
    fds: &ChildFds,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    let rep = fds.report;
    // SAFETY: async-signal-safe system calls on memory prepared before fork.
    unsafe {
        // If r1 dies, the run dies.
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        // Own session and process group: `kill(0, ..)` from inside never reaches r1.
        check(libc::setsid(), rep, Step::Setsid);
        // No core files from a keeper that re-raises python's signal.
        let no_core = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        libc::setrlimit(libc::RLIMIT_CORE, &no_core);
        for (fd, target) in [(fds.stdin, 0), (fds.stdout, 1), (fds.stderr, 2)] {
            if fd == target {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                check(libc::fcntl(fd, libc::F_SETFD, 0), rep, Step::Stdio);
            } else {
                check(libc::dup2(fd, target), rep, Step::Stdio);
            }
        }
        if !plan.mode.namespaces {
            if plan.mode.plain_net {
                check(libc::unshare(libc::CLONE_NEWNET), rep, Step::Unshare);
            }
            exec_python(plan, rep, argv, envp)
        }
        // The keeper never execs, so close-on-exec does not help: drop every descriptor r1
        // had (the write end of this run's stdin among them, or python would never see its
        // end) but the report pipe.
        close_from(3, rep);
        let mut flags =
            libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWIPC;
        if plan.mode.user_ns {
            flags |= libc::CLONE_NEWUSER;
        }
        check(libc::unshare(flags), rep, Step::Unshare);
        for (path, content) in &plan.user_maps {
            let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            check(fd, rep, Step::UserMap);
            let n = libc::write(fd, content.as_ptr().cast(), content.len());
            if n < 0 {
                fail(rep, Step::UserMap);
            }
            libc::close(fd);
        }
        // The keeper holds `alive_w` until it exits, so python can tell if it died early.
        let mut alive = [0 as c_int; 2];
        check(
            libc::pipe2(alive.as_mut_ptr(), libc::O_CLOEXEC),
            rep,
            Step::Fork,
        );
        let init = libc::fork();
        check(init, rep, Step::Fork);
        if init == 0 {
            libc::close(alive[1]);
            init_process(plan, rep, alive[0], argv, envp)
        }
        libc::close(alive[0]);
        let mut msg = [0u8; 5];
        msg[0] = b'P';
        msg[1..5].copy_from_slice(&init.to_ne_bytes());
        libc::write(rep, msg.as_ptr().cast(), msg.len());
        libc::close(rep);
        // Only python holds the run's stdio from here on.
        for fd in [0, 1, 2] {
            libc::close(fd);
        }
        let mut status: c_int = 0;
        loop {
            let r = libc::waitpid(init, &mut status, 0);
            if r == init {
                break;
            }
            if r < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(126);
            }
        }
        if libc::WIFSIGNALED(status) {
            // Die of the same signal, so that r1 sees what ended python.
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Closes every descriptor from `first` on, except `keep`.
///
/// # Safety
/// Only in the forked child.
unsafe fn close_from(first: RawFd, keep: RawFd) {
    // SAFETY: closing descriptors of this process only.
    unsafe {
        let range = |lo: RawFd, hi: libc::c_uint| {
            libc::syscall(
                libc::SYS_close_range,
                lo as libc::c_uint,
                hi,
                0 as libc::c_uint,
            )
        };
        let ok = if keep >= first {
            (keep == first || range(first, (keep - 1) as libc::c_uint) == 0)
                && range(keep + 1, libc::c_uint::MAX) == 0
        } else {
            range(first, libc::c_uint::MAX) == 0
        };
        if !ok {
            for fd in first..4096 {
                if fd != keep {
                    libc::close(fd);
                }
            }
        }
    }
}

/// PID 1 of the new namespace: private mounts, the script, limits, credentials, then python.
///
/// # Safety
/// Only in the forked child.
unsafe fn init_process(
    plan: &Plan,
    rep: RawFd,
    alive_r: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe system calls on memory prepared before fork.
    unsafe {
        check(libc::setsid(), rep, Step::Setsid);
        let none = std::ptr::null();
        check(
            libc::mount(
                none,
                c"/".as_ptr(),
                none,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ),
            rep,
            Step::MountPrivate,
        );
        for dir in &plan.private_dirs {
            check(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    plan.tmpfs_options.as_ptr().cast(),
                ),
                rep,
                Step::MountTmp,
            );
        }
        if plan.mode.proc {
            check(
                libc::mount(
                    c"proc".as_ptr(),
                    c"/proc".as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ),
                rep,
                Step::MountProc,
            );
        }
        let fd = libc::open(
            plan.script_path.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0o644,
        );
        check(fd, rep, Step::Script);
        let mut off = 0usize;
        while off < plan.script.len() {
            let n = libc::write(
                fd,
                plan.script[off..].as_ptr().cast(),
                plan.script.len() - off,
            );
            if n <= 0 {
                fail(rep, Step::Script);
            }
            off += n as usize;
        }
        libc::close(fd);
        // Credentials change clears the parent-death signal: set it after, then make sure the
        // keeper did not die in between.
        drop_privileges(plan, rep);
        check(
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ),
            rep,
            Step::Prctl,
        );
        let mut p = libc::pollfd {
            fd: alive_r,
            events: libc::POLLIN,
            revents: 0,
        };
        if libc::poll(&mut p, 1, 0) > 0 && (p.revents & libc::POLLHUP) != 0 {
            libc::_exit(137);
        }
        libc::close(alive_r);
        exec_after_privileges(plan, rep, argv, envp)
    }
}

/// Limits and credentials, then exec (the fallback mode's whole child).
///
/// # Safety
/// Only in the forked child.
unsafe fn exec_python(
    plan: &Plan,
    rep: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: as the caller.
    unsafe {
        drop_privileges(plan, rep);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        exec_after_privileges(plan, rep, argv, envp)
    }
}

/// # Safety
/// Only in the forked child.
unsafe fn drop_privileges(plan: &Plan, rep: RawFd) {
    let set = |resource, value: u64| {
        let lim = libc::rlimit {
            rlim_cur: value as libc::rlim_t,
            rlim_max: value as libc::rlim_t,
        };
        // SAFETY: plain system call on a valid struct.
        check(
            unsafe { libc::setrlimit(resource, &lim) },
            rep,
            Step::Rlimit,
        );
    };
    let l = &plan.limits;
    set(libc::RLIMIT_CPU, l.cpu_seconds);
    set(libc::RLIMIT_AS, l.memory_bytes);
    set(libc::RLIMIT_FSIZE, l.max_file_bytes);
    set(libc::RLIMIT_NOFILE, MAX_OPEN_FILES);
    set(libc::RLIMIT_CORE, 0);
    // SAFETY: async-signal-safe credential calls.
    unsafe {
        // SAFETY: geteuid has no preconditions.
        if libc::geteuid() == 0 && !plan.mode.user_ns {
            check(libc::setgroups(0, std::ptr::null()), rep, Step::Credentials);
            check(libc::setgid(plan.gid), rep, Step::Credentials);
            check(libc::setuid(plan.uid), rep, Step::Credentials);
        }
        check(
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0),
            rep,
            Step::Prctl,
        );
    }
    set(libc::RLIMIT_NPROC, l.max_processes);
}

/// # Safety
/// Only in the forked child.
unsafe fn exec_after_privileges(
    plan: &Plan,
    rep: RawFd,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> ! {
    // SAFETY: async-signal-safe calls on prepared memory.
    unsafe {
        check(libc::chdir(plan.workdir.as_ptr()), rep, Step::Chdir);
        // Descriptors r1 had open (other runs' pipes among them) must not reach the code.
        // (The raw system call: glibc's wrapper is newer than some systems r1 runs on.)
        let all = libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        if all != 0 {
            for fd in 3..1024 {
                if fd != rep {
                    libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                }
            }
        }
        libc::execve(plan.python.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(rep, Step::Exec)
    }
}
