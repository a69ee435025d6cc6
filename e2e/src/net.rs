//! The one-node cluster's addresses. They exist only inside the cluster's own network
//! namespace (see `isolation`), so fixed values never clash with the host or another run.

use std::net::Ipv4Addr;

/// The node's address: the gateway of the pod bridge, where the kubelet, CoreDNS, the
/// registries and NodePorts listen (the kubelet refuses a loopback node IP).
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(10, 244, 77, 1);
/// The bridge the CNI plugin attaches pods to; created by the harness before the kubelet.
pub const BRIDGE: &str = "nodebr0";
pub const POD_CIDR: &str = "10.244.77.0/24";
pub const SERVICE_CIDR: &str = "10.96.77.0/24";
/// The `kubernetes` Service's ClusterIP (first address of the service range).
pub const KUBERNETES_SERVICE_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 77, 1);
pub const NODE_NAME: &str = "e2e-node";
/// The image registry without authentication: `10.244.77.1:5000`.
pub const REGISTRY_PORT: u16 = 5000;
/// The registry that asks for htpasswd credentials (pull-secret tests).
pub const AUTH_REGISTRY_PORT: u16 = 5001;
/// The credentials of the authenticating registry.
pub const AUTH_REGISTRY_USER: &str = "e2e-puller";
pub const AUTH_REGISTRY_PASSWORD: &str = "e2e-pull-secret";

/// `10.244.77.1:5000`, the prefix of every image the cluster runs.
pub fn registry() -> String {
    format!("{NODE_IP}:{REGISTRY_PORT}")
}

/// `10.244.77.1:5001`.
pub fn auth_registry() -> String {
    format!("{NODE_IP}:{AUTH_REGISTRY_PORT}")
}
