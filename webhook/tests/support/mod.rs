//! What several webhook test binaries share: the binary run as a local process, free loopback
//! ports, and the test process's own limits. Each binary uses part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_osartifact-webhook");

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A CA and a serving certificate for localhost from `osartifact-webhook certs bootstrap`.
pub fn bootstrap_certs() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["certs", "bootstrap", "--out-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

/// `osartifact-webhook serve` on loopback with the certificates in `certs`, no authorization
/// check and no reachable cluster; the caller adds flags and spawns it.
pub fn serve(certs: &Path, port: u16, admin: u16) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--admin-listen=127.0.0.1:{admin}"))
        .arg(format!(
            "--tls-cert-file={}",
            certs.join("tls.crt").display()
        ))
        .arg(format!(
            "--tls-private-key-file={}",
            certs.join("tls.key").display()
        ))
        .arg("--authorization-check=false")
        .env("KUBECONFIG", certs.join("no-such-kubeconfig"));
    cmd
}

/// The soft limit on open files of this process.
pub fn fd_limit() -> usize {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(1024)
}
