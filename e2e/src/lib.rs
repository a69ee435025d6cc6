//! End-to-end harness: a real etcd + kube-apiserver + kube-controller-manager on loopback,
//! the product binaries as local processes with their ServiceAccount identities, and kubectl;
//! or, for test binaries that declare `cluster_namespaces!()`, a one-node cluster (kubelet,
//! containerd, kube-proxy, CoreDNS, registries) in private namespaces with the product
//! installed from manifests/ as Pods. See docs/testing.md.

pub mod artifacts;
pub mod audit;
pub mod builder_images;
pub mod controlplane;
pub mod drill;
pub mod env;
pub mod files;
pub mod gitops;
pub mod http;
pub mod identity;
pub mod images;
pub mod isolation;
pub mod kubectl;
pub mod net;
pub mod node;
pub mod oci;
pub mod operator;
pub mod paths;
pub mod pki;
pub mod procs;
pub mod wait;
pub mod webhook;

pub use env::{Env, Ns, env};
