//! Child processes: each one's stdout and stderr go to a log file, it is stopped on Drop, and
//! it dies with the test process even when that process is killed (PR_SET_PDEATHSIG).
//!
//! PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, and the test harness
//! runs each test on its own short-lived thread; so every child is forked by one spawner thread
//! that lives as long as the process.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

fn spawner() -> Result<Sender<SpawnRequest>> {
    static TX: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let tx = TX.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        let _ = std::thread::Builder::new()
            .name("e2e-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // Keep the thread (and so the children's parent-death signal) alive until exit.
                loop {
                    std::thread::park();
                }
            });
        Mutex::new(tx)
    });
    Ok(tx
        .lock()
        .map_err(|_| anyhow!("spawner lock poisoned"))?
        .clone())
}

/// Pids of live children, killed by the exit hook (statics are never dropped).
fn live() -> &'static Mutex<Vec<i32>> {
    static LIVE: OnceLock<Mutex<Vec<i32>>> = OnceLock::new();
    LIVE.get_or_init(|| {
        // SAFETY: registering a plain extern "C" fn with atexit.
        unsafe {
            libc::atexit(kill_all_at_exit);
        }
        Mutex::new(Vec::new())
    })
}

extern "C" fn kill_all_at_exit() {
    kill_all();
}

/// Kills every live child (SIGKILL) and reaps it.
pub fn kill_all() {
    if let Ok(mut pids) = live().lock() {
        for &pid in pids.iter() {
            // SAFETY: signalling and reaping a pid this process spawned and has not reaped.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        pids.clear();
    }
}

/// A running child process with its log file.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
    pub pid: u32,
}

impl Proc {
    /// Spawns `cmd`; stdout and stderr are appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // Own process group: a Ctrl-C in the terminal (sent to the foreground group)
                // reaches only the harness, which then stops the children in order.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let (rtx, rrx) = channel();
        spawner()?
            .send((cmd, rtx))
            .map_err(|_| anyhow!("spawner thread gone"))?;
        let child = rrx
            .recv()
            .map_err(|_| anyhow!("spawner thread gone"))?
            .with_context(|| format!("starting {name}"))?;
        let pid = child.id();
        if let Ok(mut l) = live().lock() {
            l.push(pid as i32);
        }
        Ok(Self {
            name: name.to_string(),
            child: Some(child),
            log: log.to_path_buf(),
            pid,
        })
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Sends SIGTERM and waits up to `grace` before SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: our own unreaped child.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        if let Ok(mut l) = live().lock() {
            l.retain(|&p| p != self.pid as i32);
        }
    }

    /// Kills the process at once (SIGKILL), like a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Ok(mut l) = live().lock() {
            l.retain(|&p| p != self.pid as i32);
        }
    }

    /// The last `n` lines of the log.
    pub fn tail(&self, n: usize) -> String {
        tail_file(&self.log, n)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- last lines of {} ({}) -----\n{}",
                self.name,
                self.log.display(),
                self.tail(40)
            );
        }
        self.stop(Duration::from_secs(5));
    }
}

/// The last `n` lines of a file (reads at most the last 64 KiB).
pub fn tail_file(path: &Path, n: usize) -> String {
    let Ok(mut f) = File::open(path) else {
        return String::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut s = String::new();
    let _ = f.read_to_string(&mut s);
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A free TCP port on 127.0.0.1 (the kernel picks it; not reserved, so a race is possible).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Proc {
    /// Waits until the process answers `GET path` on its plain-HTTP admin `port` with a status
    /// `accept` takes; fails at once, with its log, if the process exits first.
    pub fn wait_http(
        &mut self,
        port: u16,
        path: &str,
        timeout: Duration,
        accept: impl Fn(u16) -> bool,
    ) -> Result<()> {
        let what = format!("{} {path}", self.name);
        crate::wait::poll(&what, timeout, |last| {
            if !self.is_running() {
                anyhow::bail!("{} exited:\n{}", self.name, self.tail(30));
            }
            match crate::http::get_local(port, path) {
                Ok((code, _)) if accept(code) => Ok(Some(())),
                Ok((code, body)) => {
                    *last = format!("{code} {body}");
                    Ok(None)
                }
                Err(e) => {
                    *last = e.to_string();
                    Ok(None)
                }
            }
        })
    }
}
