//! Kubeconfigs, one per identity. Every identity authenticates with a client certificate
//! from the cluster CA: CN = user name, O = groups.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::pki::Ca;

/// The operator's ServiceAccount, as the apiserver names it in a Pod.
pub const OPERATOR_USER: &str = "system:serviceaccount:osartifact-system:osartifact-operator";
/// The webhook's ServiceAccount.
pub const WEBHOOK_USER: &str = "system:serviceaccount:osartifact-system:osartifact-webhook";
/// The groups a ServiceAccount of osartifact-system is in.
pub const SA_GROUPS: &[&str] = &[
    "system:serviceaccounts",
    "system:serviceaccounts:osartifact-system",
];
/// The namespace the operator and webhook run in.
pub const SYSTEM_NAMESPACE: &str = "osartifact-system";

/// A user and the kubeconfig that authenticates as it.
#[derive(Clone, Debug)]
pub struct Identity {
    pub user: String,
    pub kubeconfig: PathBuf,
}

/// Issues a client certificate for `user`/`groups` and writes `<dir>/<file>.kubeconfig`.
pub fn create(
    dir: &Path,
    ca: &Ca,
    server: &str,
    file: &str,
    user: &str,
    groups: &[&str],
) -> Result<Identity> {
    let cert = ca.issue_client(dir, file, user, groups)?;
    let kubeconfig = dir.join(format!("{file}.kubeconfig"));
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: e2e
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {file}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: e2e
  context: {{cluster: e2e, user: {file}}}
current-context: e2e
",
        ca = ca.cert_path.display(),
        cert = cert.cert.display(),
        key = cert.key.display(),
    );
    std::fs::write(&kubeconfig, text)?;
    Ok(Identity {
        user: user.to_string(),
        kubeconfig,
    })
}
