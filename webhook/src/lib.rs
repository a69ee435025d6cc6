//! The OSArtifact admission webhook: validating and defaulting AdmissionReviews over TLS with
//! hot-reloaded certificates, plus the `certs` and `check` subcommands.

pub mod admin;
pub mod admission;
pub mod authz;
pub mod authz_cache;
pub mod certs_cmd;
pub mod check;
pub mod cli;
pub mod client;
pub mod metrics;
pub mod review;
pub mod secrets;
pub mod selfmanaged;
pub mod serve;
pub mod server;
pub mod tls;
