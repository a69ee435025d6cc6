//! Command line: every setting is a flag with an environment fallback, so the binary runs the same
//! as a local process (e2e) and in a Pod.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "osartifact-webhook",
    version,
    about = "Admission webhook for OSArtifacts (build.kairos.io). Without a subcommand it serves.",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub serve: ServeArgs,

    /// Log format.
    #[arg(
        long,
        global = true,
        env = "OSARTIFACT_LOG_FORMAT",
        default_value = "text"
    )]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve /validate and /mutate over TLS (the default).
    // Boxed: the serve flags are much larger than the other subcommands'.
    Serve(Box<ServeArgs>),
    /// Create and rotate the webhook's CA and serving certificate.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Validate OSArtifacts in YAML files with the webhook's rules.
    Check(crate::check::CheckArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the TLS listener for AdmissionReviews.
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_LISTEN",
        default_value = "0.0.0.0:9443"
    )]
    pub listen: SocketAddr,

    /// PEM serving certificate (chain). Reloaded when its contents change.
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_TLS_CERT_FILE",
        required_unless_present = "self_managed_certs"
    )]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key of the serving certificate.
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_TLS_PRIVATE_KEY_FILE",
        required_unless_present = "self_managed_certs"
    )]
    pub tls_private_key_file: Option<PathBuf>,

    /// Address of the plain-HTTP admin listener (/livez, /readyz, /metrics).
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_ADMIN_LISTEN",
        default_value = "0.0.0.0:8080"
    )]
    pub admin_listen: SocketAddr,

    /// Deny creates/updates by users who could not create Pods and Jobs in the namespace
    /// themselves (SubjectAccessReview). `--authorization-check=false` switches it off.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_AUTHORIZATION_CHECK", default_value_t = true, action = ArgAction::Set)]
    pub authorization_check: bool,

    /// How long an allowed authorization answer is reused for the same user (the whole
    /// userInfo) and namespace; denials are never reused. A revoked permission is refused again
    /// at most this long after the revocation. 0 asks the apiserver on every review.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_AUTHORIZATION_CACHE_TTL", default_value = "10s", value_parser = parse_duration)]
    pub authorization_cache_ttl: Duration,

    /// Most users-and-namespaces whose allowed answers are held at once.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_AUTHORIZATION_CACHE_SIZE", default_value_t = crate::authz_cache::DEFAULT_SIZE)]
    pub authorization_cache_size: usize,

    /// Deadline of each Secret GET and SubjectAccessReview (at most 9s).
    #[arg(long, env = "OSARTIFACT_WEBHOOK_API_TIMEOUT", default_value = "2s", value_parser = parse_api_timeout)]
    pub api_timeout: Duration,

    /// How often the certificate files are re-read (contents compared, so symlink swaps count).
    #[arg(long, env = "OSARTIFACT_WEBHOOK_CERT_RELOAD_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub cert_reload_interval: Duration,

    /// Time between readiness turning false and the listener closing, so endpoints stop
    /// routing to this replica before it stops accepting.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_SHUTDOWN_DELAY", default_value = "3s", value_parser = parse_duration)]
    pub shutdown_delay: Duration,

    /// Longest wait for in-flight requests after the listener closed.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_SHUTDOWN_GRACE", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Deadline for a client to finish the TLS handshake (an HTTP/1 connection may wait for its
    /// next request's headers at least 120 s, longer than the apiserver keeps idle connections).
    #[arg(long, env = "OSARTIFACT_WEBHOOK_HEADER_READ_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// Most connections served at once, TLS handshakes included; beyond it new connections
    /// wait in the listen backlog until one closes. 0 means no limit.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_MAX_CONNECTIONS", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    #[command(flatten)]
    pub self_managed: SelfManagedArgs,
}

/// In-cluster certificate management: the CA and serving certificate live in one Secret shared
/// by all replicas; the webhook configurations' caBundle is kept in step.
#[derive(Args, Debug, Clone)]
pub struct SelfManagedArgs {
    /// Manage certificates in-cluster instead of reading --tls-cert-file/--tls-private-key-file.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_SELF_MANAGED_CERTS", default_value_t = false, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub self_managed_certs: bool,

    #[command(flatten)]
    pub target: CertTargetArgs,

    /// How often the Secret is checked for renewal and changes made by other replicas.
    #[arg(long, env = "OSARTIFACT_WEBHOOK_CERT_CHECK_INTERVAL", default_value = "10m", value_parser = parse_duration)]
    pub cert_check_interval: Duration,
}

/// Where the certificates live and who uses them.
#[derive(Args, Debug, Clone)]
pub struct CertTargetArgs {
    /// Namespace of the webhook Service and certificate Secret.
    #[arg(long, env = "POD_NAMESPACE", default_value = "osartifact-system")]
    pub namespace: String,

    /// Name of the Secret holding the CA and serving certificate.
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_CERT_SECRET",
        default_value = "osartifact-webhook-tls"
    )]
    pub cert_secret: String,

    /// Name of the webhook Service (its DNS names go into the certificate).
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_SERVICE",
        default_value = "osartifact-webhook"
    )]
    pub service: String,

    /// Webhook configurations whose caBundle is kept up to date ("validating:NAME" or
    /// "mutating:NAME"; a bare name is looked up in both kinds).
    #[arg(
        long,
        env = "OSARTIFACT_WEBHOOK_CONFIGS",
        value_delimiter = ',',
        default_value = "osartifact-validating,osartifact-mutating"
    )]
    pub webhook_configs: Vec<String>,

    /// Extra DNS names for the serving certificate (repeatable).
    #[arg(
        long = "extra-dns-name",
        env = "OSARTIFACT_WEBHOOK_EXTRA_DNS_NAMES",
        value_delimiter = ','
    )]
    pub extra_dns_names: Vec<String>,

    #[command(flatten)]
    pub policy: PolicyArgs,
}

#[derive(Args, Debug, Clone)]
pub struct PolicyArgs {
    /// Lifetime of a new CA.
    #[arg(long, default_value = "3650d", value_parser = parse_duration)]
    pub ca_validity: Duration,
    /// Lifetime of a new serving certificate.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub cert_validity: Duration,
    /// Start a CA rotation when the CA has less than this left.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub ca_renew_before: Duration,
    /// Re-issue the serving certificate when it has less than this left.
    #[arg(long, default_value = "60d", value_parser = parse_duration)]
    pub cert_renew_before: Duration,
    /// How long a new CA sits in caBundle beside the old one before certificates switch to it.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub ca_overlap: Duration,
}

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Write a CA and a serving certificate to files, for local runs (reuses ca.crt/ca.key in
    /// the directory when present, so a registered caBundle stays valid).
    Bootstrap(BootstrapArgs),
    /// One-shot in-cluster step: create or renew the certificate Secret and patch caBundle.
    Ensure(EnsureArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BootstrapArgs {
    /// Directory for ca.crt, ca.key, tls.crt, tls.key.
    #[arg(long)]
    pub out_dir: PathBuf,
    /// DNS names of the serving certificate (repeatable). `localhost` by default.
    #[arg(long = "dns-name", value_delimiter = ',')]
    pub dns_names: Vec<String>,
    /// IP addresses of the serving certificate (repeatable). `127.0.0.1` by default.
    #[arg(long = "ip", value_delimiter = ',')]
    pub ips: Vec<std::net::IpAddr>,
    /// Lifetime of the serving certificate.
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    pub cert_validity: Duration,
}

#[derive(Args, Debug, Clone)]
pub struct EnsureArgs {
    #[command(flatten)]
    pub target: CertTargetArgs,
    /// Also write tls.crt, tls.key and ca.crt into this directory (e.g. an emptyDir).
    #[arg(long)]
    pub write_dir: Option<PathBuf>,
}

/// `--api-timeout` is at most the request timeout: a review waits on its Secret GETs and its SAR
/// (concurrently), and a longer deadline would only let the request timeout (below the webhook
/// configurations' `timeoutSeconds` of 10) cut them off with a 503 instead of the answer the
/// deadline exists for.
fn parse_api_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    let max = crate::admission::REQUEST_TIMEOUT;
    if d > max {
        return Err(format!(
            "{s:?} is too long: at most {}s, below the webhook configurations' timeoutSeconds (10), or the apiserver gives up before the webhook answers",
            max.as_secs()
        ));
    }
    Ok(d)
}

/// Parses `500ms`, `2s`, `10m`, `12h`, `365d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 2s, 10m, 12h or 365d"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("365d").unwrap(),
            Duration::from_secs(365 * 86400)
        );
        assert_eq!(parse_duration("7").unwrap(), Duration::from_secs(7));
        assert!(parse_duration("2 weeks").is_err());
    }

    #[test]
    fn api_timeout_stays_below_the_apiservers_deadline() {
        assert_eq!(parse_api_timeout("9s").unwrap(), Duration::from_secs(9));
        let err = parse_api_timeout("30s").unwrap_err();
        assert!(err.contains("at most 9s"), "{err}");
        assert!(err.contains("timeoutSeconds (10)"), "{err}");
        let err = Cli::try_parse_from(["osartifact-webhook", "serve", "--api-timeout", "1m"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--api-timeout"), "{err}");
        assert!(err.contains("too long"), "{err}");
    }

    #[test]
    fn serve_is_the_default() {
        let cli = Cli::try_parse_from([
            "osartifact-webhook",
            "--tls-cert-file",
            "c",
            "--tls-private-key-file",
            "k",
            "--authorization-check=false",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert!(!cli.serve.authorization_check);
        let cli =
            Cli::try_parse_from(["osartifact-webhook", "serve", "--self-managed-certs"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Serve(a)) if a.self_managed.self_managed_certs)
        );
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
