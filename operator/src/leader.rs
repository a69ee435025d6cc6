//! Leader election with a coordination.k8s.io Lease (kube-lease-manager): only the holder runs the
//! controller. Losing the lease after holding it ends the process, so a restarted pod starts clean.

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;
use tokio::sync::watch;

pub struct LeaderArgs {
    pub namespace: String,
    pub lease_name: String,
    pub identity: String,
}

/// Starts the lease manager; the receiver says whether this process holds the lease.
pub async fn elect(
    client: Client,
    args: &LeaderArgs,
) -> Result<
    (
        watch::Receiver<bool>,
        tokio::task::JoinHandle<
            Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>,
        >,
    ),
    kube_lease_manager::LeaseManagerError,
> {
    let manager = LeaseManagerBuilder::new(client, &args.lease_name)
        .with_namespace(&args.namespace)
        .with_identity(&args.identity)
        .with_duration(15)
        .with_grace(5)
        .build()
        .await?;
    Ok(manager.watch().await)
}
