//! End-to-end harness: a real etcd + kube-apiserver + kube-controller-manager on loopback,
//! the product binaries as local processes with their ServiceAccount identities, and kubectl.
//! See docs/testing.md.

pub mod artifacts;
pub mod controlplane;
pub mod env;
pub mod identity;
pub mod kubectl;
pub mod operator;
pub mod paths;
pub mod pki;
pub mod procs;
pub mod wait;
pub mod webhook;

pub use env::{Env, Ns, env};
