//! `osartifact-webhook certs …`: bootstrap files for local runs, or the one-shot in-cluster step.

use std::path::Path;

use anyhow::Context;
use osartifact_certs::{Ca, Policy, Subject, issue, new_ca, unix_now};

use crate::cli::{BootstrapArgs, CertsCommand, EnsureArgs};
use crate::selfmanaged;

pub async fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    match cmd {
        CertsCommand::Bootstrap(a) => bootstrap(&a),
        CertsCommand::Ensure(a) => ensure(&a).await,
    }
}

fn write(dir: &Path, name: &str, data: &str, secret: bool) -> anyhow::Result<()> {
    let path = dir.join(name);
    // Write then rename, so a webhook polling the directory never reads half a file.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = secret;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes ca.crt, ca.key, tls.crt and tls.key. An existing CA in the directory is reused.
pub fn bootstrap(a: &BootstrapArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&a.out_dir)
        .with_context(|| format!("creating {}", a.out_dir.display()))?;
    let now = unix_now();
    let ca_crt = a.out_dir.join("ca.crt");
    let ca_key = a.out_dir.join("ca.key");
    let ca = match (
        std::fs::read_to_string(&ca_crt),
        std::fs::read_to_string(&ca_key),
    ) {
        (Ok(cert_pem), Ok(key_pem)) => {
            eprintln!("reusing the CA in {}", a.out_dir.display());
            Ca { cert_pem, key_pem }
        }
        _ => {
            let ca = new_ca(Policy::default().ca_validity, now)?;
            write(&a.out_dir, "ca.crt", &ca.cert_pem, false)?;
            write(&a.out_dir, "ca.key", &ca.key_pem, true)?;
            ca
        }
    };
    let mut subject = Subject {
        dns_names: a.dns_names.clone(),
        ips: a.ips.clone(),
    };
    if subject.dns_names.is_empty() && subject.ips.is_empty() {
        subject.dns_names = vec!["localhost".into()];
        subject.ips = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    }
    let (crt, key) = issue(&ca, &subject, a.cert_validity, now)?;
    // Key first: a reloader that sees the new cert with the old key refuses the pair and retries.
    write(&a.out_dir, "tls.key", &key, true)?;
    write(&a.out_dir, "tls.crt", &crt, false)?;
    println!("{}", a.out_dir.display());
    Ok(())
}

pub async fn ensure(a: &EnsureArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes API configuration (set KUBECONFIG or run in a Pod)")?;
    let (set, synced) = selfmanaged::reconcile_once(&client, &a.target).await;
    let set = set.ok_or_else(|| {
        anyhow::anyhow!(
            "could not create or read Secret {}/{}: {}",
            a.target.namespace,
            a.target.cert_secret,
            synced.clone().err().unwrap_or_default()
        )
    })?;
    if let Some(dir) = &a.write_dir {
        std::fs::create_dir_all(dir)?;
        write(dir, "ca.crt", &set.ca_bundle, false)?;
        write(dir, "tls.key", &set.tls_key, true)?;
        write(dir, "tls.crt", &set.tls_crt, false)?;
    }
    synced.map_err(|e| anyhow::anyhow!("caBundle not updated: {e}"))?;
    Ok(())
}
