//! A short-lived cache of **allowed** authorization answers, in front of any [`Authorizer`].
//!
//! The apiserver's own webhook authorizer keeps allowed answers for minutes and denied ones for
//! seconds (`--authorization-webhook-cache-authorized-ttl` 5m, `...-unauthorized-ttl` 30s). Here
//! the trade is the same in kind, tighter in degree:
//!
//! - Only "allowed for every required permission" is cached, never a denial and never an error,
//!   so a permission that is granted takes effect on the very next review.
//! - An answer lives for a fixed time from when it was fetched (`--authorization-cache-ttl`,
//!   10 s by default), never extended by use: a revoked permission is refused again at most
//!   that long after the revocation (plus the apiserver's own RBAC propagation).
//! - The key is the requester's whole userInfo (username, uid, groups, extra) and the namespace;
//!   the permissions checked are the fixed [`crate::authz::REQUIRED`] set, so they are implied.
//! - At most `--authorization-cache-size` entries; when full, expired entries go first, then the
//!   one closest to expiry.
//!
//! Written here rather than taken from a cache crate: expiry is fixed from insertion and denials
//! are never stored, so a mutex over a `HashMap` with a deadline per entry is all it takes, and
//! a general-purpose cache (moka) would add two dozen crates for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::authentication::v1::UserInfo;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use crate::authz::{Authorizer, AuthzError, Permission};

pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
pub const DEFAULT_SIZE: usize = 1024;

/// Everything of the request that an authorizer may decide on.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Key {
    username: Option<String>,
    uid: Option<String>,
    groups: Option<Vec<String>>,
    extra: Option<BTreeMap<String, Vec<String>>>,
    namespace: String,
}

impl Key {
    fn new(user: &UserInfo, namespace: &str) -> Self {
        Self {
            username: user.username.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user
                .extra
                .as_ref()
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            namespace: namespace.to_string(),
        }
    }
}

/// Counts of cache lookups, exported as `osartifact_webhook_authorization_cache_{hits,misses}_total`.
#[derive(Clone, Default)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
}

pub struct CachingAuthorizer {
    inner: Arc<dyn Authorizer>,
    ttl: Duration,
    size: usize,
    entries: Mutex<HashMap<Key, Instant>>,
    counters: CacheCounters,
}

impl CachingAuthorizer {
    pub fn new(
        inner: Arc<dyn Authorizer>,
        ttl: Duration,
        size: usize,
        counters: CacheCounters,
    ) -> Self {
        Self {
            inner,
            ttl,
            size,
            entries: Mutex::new(HashMap::new()),
            counters,
        }
    }

    /// Entries held now (expired ones included until they are evicted).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Instant>> {
        // A panic while holding the lock cannot leave the map inconsistent (single inserts and
        // removals), so a poisoned lock is still usable.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn fresh(&self, key: &Key, now: Instant) -> bool {
        let mut entries = self.lock();
        match entries.get(key) {
            Some(deadline) if *deadline > now => true,
            Some(_) => {
                entries.remove(key);
                false
            }
            None => false,
        }
    }

    fn remember(&self, key: Key, now: Instant) {
        if self.size == 0 {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= self.size && !entries.contains_key(&key) {
            entries.retain(|_, deadline| *deadline > now);
            if entries.len() >= self.size
                && let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, deadline)| **deadline)
                    .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, now + self.ttl);
    }
}

impl Authorizer for CachingAuthorizer {
    fn missing<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Permission>, AuthzError>> {
        Box::pin(async move {
            let key = Key::new(user, namespace);
            if self.fresh(&key, Instant::now()) {
                self.counters.hits.inc();
                return Ok(Vec::new());
            }
            self.counters.misses.inc();
            // The deadline counts from before the question was asked: an answer is never
            // older than the TTL when it is last used.
            let asked = Instant::now();
            let missing = self.inner.missing(user, namespace).await?;
            if missing.is_empty() {
                self.remember(key, asked);
            }
            Ok(missing)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::REQUIRED;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Allows or denies everyone, switchable, and counts the questions it is asked.
    #[derive(Default)]
    struct Switch {
        denied: Mutex<bool>,
        asked: AtomicUsize,
    }

    impl Authorizer for Switch {
        fn missing<'a>(
            &'a self,
            _user: &'a UserInfo,
            _namespace: &'a str,
        ) -> BoxFuture<'a, Result<Vec<Permission>, AuthzError>> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            let denied = *self.denied.lock().unwrap();
            Box::pin(async move { Ok(if denied { REQUIRED.to_vec() } else { vec![] }) })
        }
    }

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: Some(name.into()),
            groups: Some(vec!["system:authenticated".into()]),
            ..Default::default()
        }
    }

    fn cache(inner: Arc<Switch>, size: usize) -> CachingAuthorizer {
        CachingAuthorizer::new(inner, DEFAULT_TTL, size, CacheCounters::default())
    }

    #[tokio::test(start_paused = true)]
    async fn allowed_answers_are_reused_until_they_expire() {
        let inner = Arc::new(Switch::default());
        let c = cache(inner.clone(), 8);
        let u = user("alice");
        for _ in 0..3 {
            assert!(c.missing(&u, "ns").await.unwrap().is_empty());
        }
        assert_eq!(inner.asked.load(Ordering::SeqCst), 1);
        tokio::time::advance(DEFAULT_TTL - Duration::from_millis(1)).await;
        c.missing(&u, "ns").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_millis(1)).await;
        c.missing(&u, "ns").await.unwrap();
        assert_eq!(
            inner.asked.load(Ordering::SeqCst),
            2,
            "expired: asked again"
        );
        assert_eq!(c.counters.hits.get(), 3);
        assert_eq!(c.counters.misses.get(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_permission_is_refused_within_the_ttl() {
        let inner = Arc::new(Switch::default());
        let c = cache(inner.clone(), 8);
        let u = user("alice");
        assert!(c.missing(&u, "ns").await.unwrap().is_empty());
        *inner.denied.lock().unwrap() = true;
        tokio::time::advance(DEFAULT_TTL).await;
        assert_eq!(c.missing(&u, "ns").await.unwrap(), REQUIRED.to_vec());
    }

    #[tokio::test(start_paused = true)]
    async fn denials_are_never_cached() {
        let inner = Arc::new(Switch::default());
        *inner.denied.lock().unwrap() = true;
        let c = cache(inner.clone(), 8);
        let u = user("bob");
        assert!(!c.missing(&u, "ns").await.unwrap().is_empty());
        *inner.denied.lock().unwrap() = false;
        assert!(
            c.missing(&u, "ns").await.unwrap().is_empty(),
            "granted: allowed at once"
        );
        assert_eq!(inner.asked.load(Ordering::SeqCst), 2);
        assert_eq!(c.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_key_is_the_whole_user_info_and_namespace() {
        let inner = Arc::new(Switch::default());
        let c = cache(inner.clone(), 64);
        let base = user("alice");
        let mut other_group = base.clone();
        other_group.groups = Some(vec!["system:masters".into()]);
        let mut other_uid = base.clone();
        other_uid.uid = Some("1".into());
        let mut other_extra = base.clone();
        other_extra.extra = Some([("scopes".to_string(), vec!["x".to_string()])].into());
        for u in [&base, &other_group, &other_uid, &other_extra] {
            c.missing(u, "ns").await.unwrap();
        }
        c.missing(&base, "other-ns").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::SeqCst), 5);
        assert_eq!(c.len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn the_size_is_bounded() {
        let inner = Arc::new(Switch::default());
        let c = cache(inner.clone(), 4);
        for i in 0..10 {
            c.missing(&user(&format!("u{i}")), "ns").await.unwrap();
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        assert_eq!(c.len(), 4);
        // The newest four are kept, the oldest went first.
        let before = inner.asked.load(Ordering::SeqCst);
        c.missing(&user("u9"), "ns").await.unwrap();
        c.missing(&user("u6"), "ns").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::SeqCst), before);
        c.missing(&user("u0"), "ns").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::SeqCst), before + 1);
        assert_eq!(c.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn size_zero_caches_nothing() {
        let inner = Arc::new(Switch::default());
        let c = cache(inner.clone(), 0);
        c.missing(&user("a"), "ns").await.unwrap();
        c.missing(&user("a"), "ns").await.unwrap();
        assert_eq!(inner.asked.load(Ordering::SeqCst), 2);
        assert!(c.is_empty());
    }
}
