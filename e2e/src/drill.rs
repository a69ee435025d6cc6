//! Failure drills: find the processes of this run (the control plane and node components this
//! process started, the product's containers in this run's cgroup root), kill them with SIGKILL
//! or freeze them, and start a killed component again with its command line, environment and
//! log file, as a supervisor would.
//!
//! Processes are found through /proc rather than through the harness's handles, which live in
//! the shared environment: a restarted process replaces the handle's process, and the handle
//! only reaps the dead one at exit.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::procs::Proc;
use crate::wait::poll;

/// Processes started by a restart; kept until exit (the exit hook of `procs` kills them).
fn restarted() -> &'static Mutex<Vec<Proc>> {
    static R: OnceLock<Mutex<Vec<Proc>>> = OnceLock::new();
    R.get_or_init(|| Mutex::new(Vec::new()))
}

fn argv(pid: u32) -> Vec<OsString> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect()
}

fn ppid(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn basename(a: &OsString) -> String {
    Path::new(a)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The child of this process whose program is `program` and whose arguments contain `arg`
/// (etcd, kube-apiserver, kubelet; `unshare` with the containerd config for the PID namespace
/// of containerd and its supervisor).
pub fn child(program: &str, arg: &str) -> Result<u32> {
    let me = std::process::id();
    let children = pids().into_iter().filter(|&p| ppid(p) == Some(me));
    the_one(children, program, arg, "started by this run")
}

/// The one process of `candidates` whose program is `program` and whose arguments contain
/// `arg`; `whence` says where they were looked for, in the error.
fn the_one(
    candidates: impl IntoIterator<Item = u32>,
    program: &str,
    arg: &str,
    whence: &str,
) -> Result<u32> {
    let found: Vec<u32> = candidates
        .into_iter()
        .filter(|&p| {
            let a = argv(p);
            a.first().is_some_and(|a0| basename(a0) == program)
                && a.iter().any(|x| x.to_string_lossy().contains(arg))
        })
        .collect();
    match found.as_slice() {
        [p] => Ok(*p),
        _ => bail!(
            "{} processes {program} ... {arg} {whence}: {found:?}",
            found.len()
        ),
    }
}

/// The one process below this one, at any depth, whose program is `program` and whose
/// arguments contain `arg`: containerd itself, which runs under a supervisor in a PID
/// namespace of its own (not the supervisor, which passes it the same arguments).
pub fn descendant(program: &str, arg: &str) -> Result<u32> {
    let all: Vec<(u32, Option<u32>)> = pids().into_iter().map(|p| (p, ppid(p))).collect();
    let mut below = vec![std::process::id()];
    let mut i = 0;
    while let Some(&parent) = below.get(i) {
        below.extend(
            all.iter()
                .filter(|(_, pp)| *pp == Some(parent))
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    the_one(below[1..].iter().copied(), program, arg, "below this run")
}

/// Children of `pid` that ended and were not reaped (zombies).
pub fn zombie_children(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|&p| state(p).is_some_and(|s| s == "Z"))
        .collect()
}

/// Processes of this run's pods (by cgroup root) whose program is `program`.
pub fn pod_processes(program: &str) -> Vec<u32> {
    let root = format!("/osartifact-e2e-{}/", std::process::id());
    pids()
        .into_iter()
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/cgroup"))
                .is_ok_and(|c| c.lines().any(|l| l.contains(&root)))
                && argv(p).first().is_some_and(|a0| basename(a0) == program)
        })
        .collect()
}

fn signal(pid: u32, sig: i32) -> Result<()> {
    let pid = i32::try_from(pid)?;
    // SAFETY: sending a signal to a pid this run found as its own (child or pod process).
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(std::io::Error::last_os_error()).context("kill");
    }
    Ok(())
}

/// SIGKILL, like a crash or the OOM killer.
pub fn kill9(pid: u32) -> Result<()> {
    signal(pid, libc::SIGKILL)
}

/// Freezes a process (SIGSTOP): its connections stay open and nothing is answered.
pub fn freeze(pid: u32) -> Result<()> {
    signal(pid, libc::SIGSTOP)
}

/// Thaws a frozen process (SIGCONT).
pub fn thaw(pid: u32) -> Result<()> {
    signal(pid, libc::SIGCONT)
}

/// The state letter of `pid` (R, S, Z, ...), `None` when it is gone.
fn state(pid: u32) -> Option<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and parentheses.
    s.get(s.rfind(')')? + 2..)?
        .split_whitespace()
        .next()
        .map(str::to_string)
}

/// Whether `pid` is gone or a zombie.
pub fn is_dead(pid: u32) -> bool {
    state(pid).is_none_or(|s| s == "Z" || s == "X")
}

/// A process as it was started: argv, environment and working directory.
pub struct Launch {
    pub name: String,
    argv: Vec<OsString>,
    env: BTreeMap<OsString, OsString>,
    cwd: PathBuf,
    log: PathBuf,
}

impl Launch {
    /// Reads how `pid` was started; its output goes on to `log` after a restart.
    pub fn of(pid: u32, name: &str, log: &Path) -> Result<Self> {
        let argv = argv(pid);
        if argv.is_empty() {
            bail!("process {pid} ({name}) has no command line");
        }
        let env = std::fs::read(format!("/proc/{pid}/environ"))
            .with_context(|| format!("environment of {pid}"))?
            .split(|b| *b == 0)
            .filter_map(|kv| {
                let i = kv.iter().position(|b| *b == b'=')?;
                Some((
                    OsString::from_vec(kv[..i].to_vec()),
                    OsString::from_vec(kv[i + 1..].to_vec()),
                ))
            })
            .collect();
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd"))?;
        Ok(Self {
            name: name.to_string(),
            argv,
            env,
            cwd,
            log: log.to_path_buf(),
        })
    }

    /// Starts the process again; returns its pid.
    pub fn start(&self) -> Result<u32> {
        let mut cmd = Command::new(&self.argv[0]);
        cmd.args(&self.argv[1..])
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd);
        let p = Proc::spawn(&self.name, cmd, &self.log)?;
        let pid = p.pid;
        restarted()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(p);
        Ok(pid)
    }
}

/// Kills `pid` with SIGKILL, waits until it and `also` (processes that die with it) are gone,
/// keeps it down for `down`, and starts it again as it was started. Returns the new pid.
pub fn kill_and_restart(
    pid: u32,
    name: &str,
    log: &Path,
    also: &[u32],
    down: Duration,
) -> Result<u32> {
    let launch = Launch::of(pid, name, log)?;
    kill9(pid)?;
    poll(&format!("{name} to die"), Duration::from_secs(30), |_| {
        Ok((is_dead(pid) && also.iter().all(|&p| is_dead(p))).then_some(()))
    })?;
    std::thread::sleep(down);
    launch.start()
}

/// The children of `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    pids()
        .into_iter()
        .filter(|&p| ppid(p) == Some(pid))
        .collect()
}
