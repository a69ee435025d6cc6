//! osartifact-operator as a local process authenticating as its ServiceAccount.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::http;
use crate::identity::{Identity, SYSTEM_NAMESPACE};
use crate::paths;
use crate::procs::{Proc, free_port};

/// A running operator replica.
pub struct Operator {
    pub proc: Option<Proc>,
    pub admin_port: u16,
    /// The replica's identity in the Lease (`holderIdentity`).
    pub replica: String,
    bin: PathBuf,
    kubeconfig: PathBuf,
    log: PathBuf,
    extra_args: Vec<String>,
}

impl Operator {
    /// Starts a replica named `replica` (also its log file name) as `id`.
    pub fn start(
        log_dir: &Path,
        replica: &str,
        id: &Identity,
        extra_args: &[&str],
    ) -> Result<Self> {
        let mut o = Self {
            proc: None,
            admin_port: free_port()?,
            replica: replica.to_string(),
            bin: paths::product_binary("osartifact-operator")?,
            kubeconfig: id.kubeconfig.clone(),
            log: log_dir.join(format!("{replica}.log")),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        o.spawn()?;
        Ok(o)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("run")
            .arg(format!("--admin-listen=127.0.0.1:{}", self.admin_port))
            .arg(format!("--leader-election-namespace={SYSTEM_NAMESPACE}"))
            .args(&self.extra_args)
            .env("KUBECONFIG", &self.kubeconfig)
            // The Lease holder identity; in a Pod this is the Pod name.
            .env("POD_NAME", &self.replica)
            .env("HOSTNAME", &self.replica)
            .env("RUST_LOG", "info")
            // Tests keep many builds open at once and finish them by hand: no queue, unless a
            // test asks for one with `--max-concurrent-builds`.
            .env("OSARTIFACT_MAX_CONCURRENT_BUILDS", "0");
        let mut p = Proc::spawn(&self.replica, cmd, &self.log)?;
        // Any HTTP answer means it is up; a standby replica may report not-ready on purpose.
        p.wait_http(self.admin_port, "/livez", Duration::from_secs(30), |code| {
            code > 0
        })?;
        self.proc = Some(p);
        Ok(())
    }

    /// Graceful stop (SIGTERM): a leader should release its Lease.
    pub fn stop(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.stop(Duration::from_secs(15));
        }
    }

    /// SIGKILL, like a crash or an evicted Pod.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the replica again with the same settings.
    pub fn restart(&mut self) -> Result<()> {
        self.stop();
        self.spawn()
    }

    /// The replica's /metrics.
    pub fn metrics(&self) -> Result<String> {
        Ok(http::get_local(self.admin_port, "/metrics")?.1)
    }

    /// Whether the process is running.
    pub fn is_running(&mut self) -> bool {
        self.proc.as_mut().map(|p| p.is_running()).unwrap_or(false)
    }

    /// Last log lines.
    pub fn tail(&self, n: usize) -> String {
        crate::procs::tail_file(&self.log, n)
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "----- last lines of {} -----\n{}",
                self.replica,
                self.tail(40)
            );
        }
        self.stop();
    }
}
