//! Runs the control plane's kubectl with a given kubeconfig and returns what it printed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// kubectl for one identity.
#[derive(Clone, Debug)]
pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
}

/// Exit status and output of one kubectl run.
#[derive(Clone, Debug)]
pub struct Output {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Output {
    /// Fails with the whole output unless kubectl succeeded.
    pub fn ok(self) -> Result<Self> {
        if !self.success {
            bail!("{self}");
        }
        Ok(self)
    }
    /// Fails with the whole output unless kubectl failed.
    pub fn err(self) -> Result<Self> {
        if self.success {
            bail!("expected a failure: {self}");
        }
        Ok(self)
    }
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "kubectl {} → exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }
}

impl Kubectl {
    pub fn new(bin: &Path, kubeconfig: &Path) -> Self {
        Self {
            bin: bin.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    /// Runs kubectl with `args`.
    pub fn run(&self, args: &[&str]) -> Result<Output> {
        self.run_stdin(args, None)
    }

    /// Runs kubectl with `args`, feeding `stdin` (for `-f -`).
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Result<Output> {
        let mut cmd = Command::new(&self.bin);
        cmd.arg(format!("--kubeconfig={}", self.kubeconfig.display()))
            .arg("--request-timeout=30s")
            .args(args)
            .env_remove("KUBECONFIG")
            // kubectl's colours and pagers would make the text assertions fragile.
            .env("NO_COLOR", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.bin.display()))?;
        if let Some(text) = stdin
            && let Some(mut s) = child.stdin.take()
        {
            s.write_all(text.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        Ok(Output {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            args: args.join(" "),
        })
    }

    /// `kubectl get ... -o json`, parsed.
    pub fn get_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = vec!["get"];
        a.extend_from_slice(args);
        a.extend_from_slice(&["-o", "json"]);
        let out = self.run(&a)?.ok()?;
        serde_json::from_str(&out.stdout).with_context(|| format!("parsing {}", out.stdout))
    }
}
