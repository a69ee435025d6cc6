//! The webhook's CA and serving certificate: issue them with rcgen, decide when to renew, and
//! rotate the CA without a moment where the apiserver distrusts the certificate being served.
//!
//! Everything lives in one [`CertSet`], stored as one Secret shared by all replicas (see
//! [`k8s`]). The pure part ([`CertSet::reconcile`]) is a function of the set, the policy and the
//! clock, so rotation is tested without a cluster.
//!
//! CA rotation, in order (each step is one reconcile; replicas converge on the Secret):
//! 1. the CA nears expiry: a next CA is generated and added to `ca.crt` (the caBundle), while the
//!    serving certificate stays signed by the current CA;
//! 2. after `ca_overlap` (time for caBundle to reach every apiserver), the next CA becomes the
//!    signing CA and a new serving certificate is issued from it; the old CA stays in the bundle
//!    until it expires, so replicas still serving the old certificate keep working;
//! 3. expired CAs are dropped from the bundle.

pub mod k8s;

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Secret keys. `tls.crt`/`tls.key` make it a valid `kubernetes.io/tls` Secret; `ca.crt` is the
/// caBundle (every CA clients should trust), as cert-manager names it.
pub const TLS_CRT: &str = "tls.crt";
pub const TLS_KEY: &str = "tls.key";
pub const CA_BUNDLE: &str = "ca.crt";
pub const SIGNING_CA_CRT: &str = "ca-signing.crt";
pub const SIGNING_CA_KEY: &str = "ca-signing.key";
pub const NEXT_CA_CRT: &str = "ca-next.crt";
pub const NEXT_CA_KEY: &str = "ca-next.key";
pub const NEXT_CA_SINCE: &str = "ca-next.since";

/// Certificates are back-dated by this much, for clocks that run slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("parsing a certificate: {0}")]
    Parse(String),
    #[error("the certificate Secret lacks {0}")]
    Missing(&'static str),
    #[error("time out of range")]
    Time,
}

/// Lifetimes and renewal thresholds.
#[derive(Clone, Debug)]
pub struct Policy {
    pub ca_validity: Duration,
    pub cert_validity: Duration,
    pub ca_renew_before: Duration,
    pub cert_renew_before: Duration,
    pub ca_overlap: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        const DAY: u64 = 86400;
        Self {
            ca_validity: Duration::from_secs(3650 * DAY),
            cert_validity: Duration::from_secs(365 * DAY),
            ca_renew_before: Duration::from_secs(365 * DAY),
            cert_renew_before: Duration::from_secs(60 * DAY),
            ca_overlap: Duration::from_secs(DAY),
        }
    }
}

/// What the serving certificate must cover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Subject {
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl Subject {
    /// The names the apiserver and in-cluster clients use for a Service.
    pub fn for_service(service: &str, namespace: &str, extra: &[String]) -> Self {
        let mut dns_names = vec![
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
            format!("{service}.{namespace}"),
            service.to_string(),
        ];
        for e in extra {
            if !dns_names.contains(e) {
                dns_names.push(e.clone());
            }
        }
        Self {
            dns_names,
            ips: vec![],
        }
    }
}

/// A CA: certificate and private key, PEM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ca {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Everything in the certificate Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertSet {
    pub tls_crt: String,
    pub tls_key: String,
    pub ca_bundle: String,
    pub signing: Ca,
    pub next: Option<(Ca, i64)>,
}

/// What a reconcile changed, for logs and for deciding to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    DroppedExpiredCa,
    PromotedNextCa,
    AddedNextCa,
    IssuedServingCert(&'static str),
}

fn at(unix: i64) -> Result<OffsetDateTime, CertError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|_| CertError::Time)
}

fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 4)
}

/// Generates a self-signed CA (ECDSA P-256) valid from `now` for `validity`.
pub fn new_ca(validity: Duration, now: i64) -> Result<Ca, CertError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    // A distinct subject per CA, so "which CA signed this leaf" is answered by the issuer name.
    dn.push(DnType::CommonName, format!("osartifact-webhook-ca-{now}"));
    dn.push(DnType::OrganizationName, "osartifact");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = at(now - secs(BACKDATE))?;
    params.not_after = at(now + secs(validity))?;
    let cert = params.self_signed(&key)?;
    Ok(Ca {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Issues a serving certificate for `subject`, signed by `ca`. Returns (cert PEM, key PEM).
pub fn issue(
    ca: &Ca,
    subject: &Subject,
    validity: Duration,
    now: i64,
) -> Result<(String, String), CertError> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key)?;
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut sans = Vec::new();
    for n in &subject.dns_names {
        sans.push(SanType::DnsName(n.clone().try_into()?));
    }
    for ip in &subject.ips {
        sans.push(SanType::IpAddress(*ip));
    }
    params.subject_alt_names = sans;
    let mut dn = DistinguishedName::new();
    let cn = subject
        .dns_names
        .first()
        .cloned()
        .or_else(|| subject.ips.first().map(|i| i.to_string()))
        .unwrap_or_else(|| "osartifact-webhook".into());
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = at(now - secs(BACKDATE))?;
    params.not_after = at(now + secs(validity))?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Facts about one certificate that renewal decisions need.
#[derive(Clone, Debug)]
pub struct CertInfo {
    pub not_after: i64,
    pub subject: Vec<u8>,
    pub issuer: Vec<u8>,
    pub dns_names: Vec<String>,
    pub ips: Vec<IpAddr>,
}

/// Parses every certificate in a PEM bundle.
pub fn parse_pem(pem: &[u8]) -> Result<Vec<CertInfo>, CertError> {
    let mut out = Vec::new();
    for p in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let p = p.map_err(|e| CertError::Parse(e.to_string()))?;
        if p.label != "CERTIFICATE" {
            continue;
        }
        let (_, x) =
            X509Certificate::from_der(&p.contents).map_err(|e| CertError::Parse(e.to_string()))?;
        let mut dns_names = Vec::new();
        let mut ips = Vec::new();
        if let Ok(Some(san)) = x.subject_alternative_name() {
            for n in &san.value.general_names {
                match n {
                    GeneralName::DNSName(d) => dns_names.push(d.to_string()),
                    GeneralName::IPAddress(b) => match b.len() {
                        4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                        16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                        _ => {}
                    },
                    _ => {}
                }
            }
        }
        out.push(CertInfo {
            not_after: x.validity().not_after.timestamp(),
            subject: x.subject().as_raw().to_vec(),
            issuer: x.issuer().as_raw().to_vec(),
            dns_names,
            ips,
        });
    }
    if out.is_empty() {
        return Err(CertError::Parse("no certificate in PEM data".into()));
    }
    Ok(out)
}

/// When the first certificate of a PEM chain expires (Unix seconds).
pub fn not_after_unix(pem: &[u8]) -> Result<i64, CertError> {
    Ok(parse_pem(pem)?[0].not_after)
}

/// Splits a PEM bundle into its certificate blocks (text kept as is).
fn pem_blocks(bundle: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    let mut out = Vec::new();
    let mut rest = bundle;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else {
            break;
        };
        let stop = start + end + END.len();
        out.push(format!("{}\n", &rest[start..stop]));
        rest = &rest[stop..];
    }
    out
}

fn bundle_of(blocks: &[String]) -> String {
    blocks.concat()
}

impl CertSet {
    /// A fresh CA and serving certificate.
    pub fn bootstrap(subject: &Subject, policy: &Policy, now: i64) -> Result<Self, CertError> {
        let signing = new_ca(policy.ca_validity, now)?;
        let (tls_crt, tls_key) = issue(&signing, subject, policy.cert_validity, now)?;
        Ok(Self {
            tls_crt,
            tls_key,
            ca_bundle: signing.cert_pem.clone(),
            signing,
            next: None,
        })
    }

    /// Brings the set up to date: drops expired CAs, promotes or starts a CA rotation, and
    /// re-issues the serving certificate when it nears expiry, lacks a name or was signed by
    /// another CA. Returns the changes; an empty list means nothing to write.
    pub fn reconcile(
        &mut self,
        subject: &Subject,
        policy: &Policy,
        now: i64,
    ) -> Result<Vec<Change>, CertError> {
        let mut changes = Vec::new();
        let signing_info = parse_pem(self.signing.cert_pem.as_bytes())?.remove(0);

        // A CA that expired while nobody was running (a cluster off for years): start over.
        if signing_info.not_after <= now && self.next.is_none() {
            *self = Self::bootstrap(subject, policy, now)?;
            return Ok(vec![
                Change::AddedNextCa,
                Change::PromotedNextCa,
                Change::IssuedServingCert("CA expired"),
            ]);
        }

        // Promote before starting a rotation, so a CA added now waits a full overlap.
        let mut reissue: Option<&'static str> = None;
        if let Some((next, since)) = &self.next
            && now >= since.saturating_add(secs(policy.ca_overlap))
        {
            self.signing = next.clone();
            self.next = None;
            changes.push(Change::PromotedNextCa);
            reissue = Some("CA rotated");
        }
        let signing_info = parse_pem(self.signing.cert_pem.as_bytes())?.remove(0);
        if self.next.is_none() && signing_info.not_after - now < secs(policy.ca_renew_before) {
            let next = new_ca(policy.ca_validity, now)?;
            self.next = Some((next, now));
            changes.push(Change::AddedNextCa);
        }

        // The bundle: every unexpired CA it had, plus the signing and next CAs.
        let mut blocks: Vec<String> = Vec::new();
        let mut dropped = false;
        for b in pem_blocks(&self.ca_bundle) {
            match parse_pem(b.as_bytes()) {
                Ok(info) if info[0].not_after > now => blocks.push(b),
                _ => dropped = true,
            }
        }
        for ca in std::iter::once(&self.signing).chain(self.next.as_ref().map(|(c, _)| c)) {
            for b in pem_blocks(&ca.cert_pem) {
                if !blocks.contains(&b) {
                    blocks.push(b);
                }
            }
        }
        let bundle = bundle_of(&blocks);
        if dropped {
            changes.push(Change::DroppedExpiredCa);
        }
        self.ca_bundle = bundle;

        if reissue.is_none() {
            reissue = match parse_pem(self.tls_crt.as_bytes()) {
                Err(_) => Some("unreadable"),
                Ok(leaf) => {
                    let leaf = &leaf[0];
                    if leaf.issuer != signing_info.subject {
                        Some("signed by another CA")
                    } else if leaf.not_after - now < secs(policy.cert_renew_before) {
                        Some("near expiry")
                    } else if subject
                        .dns_names
                        .iter()
                        .any(|n| !leaf.dns_names.contains(n))
                        || subject.ips.iter().any(|i| !leaf.ips.contains(i))
                    {
                        Some("names changed")
                    } else {
                        None
                    }
                }
            };
        }
        if let Some(why) = reissue {
            // A serving certificate never outlives its CA.
            let room = Duration::from_secs(
                u64::try_from((signing_info.not_after - now).max(0)).unwrap_or(0),
            );
            let (crt, key) = issue(&self.signing, subject, policy.cert_validity.min(room), now)?;
            self.tls_crt = crt;
            self.tls_key = key;
            changes.push(Change::IssuedServingCert(why));
        }
        Ok(changes)
    }

    /// The Secret's data entries.
    pub fn to_data(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut v = vec![
            (TLS_CRT, self.tls_crt.clone().into_bytes()),
            (TLS_KEY, self.tls_key.clone().into_bytes()),
            (CA_BUNDLE, self.ca_bundle.clone().into_bytes()),
            (SIGNING_CA_CRT, self.signing.cert_pem.clone().into_bytes()),
            (SIGNING_CA_KEY, self.signing.key_pem.clone().into_bytes()),
        ];
        if let Some((ca, since)) = &self.next {
            v.push((NEXT_CA_CRT, ca.cert_pem.clone().into_bytes()));
            v.push((NEXT_CA_KEY, ca.key_pem.clone().into_bytes()));
            v.push((NEXT_CA_SINCE, since.to_string().into_bytes()));
        }
        v
    }

    /// Reads a set back from Secret data.
    pub fn from_data(get: impl Fn(&str) -> Option<Vec<u8>>) -> Result<Self, CertError> {
        let s = |k: &'static str| {
            get(k)
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or(CertError::Missing(k))
        };
        let next = match (s(NEXT_CA_CRT), s(NEXT_CA_KEY)) {
            (Ok(cert_pem), Ok(key_pem)) => {
                let since = s(NEXT_CA_SINCE)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                    .unwrap_or(0);
                Some((Ca { cert_pem, key_pem }, since))
            }
            _ => None,
        };
        Ok(Self {
            tls_crt: s(TLS_CRT)?,
            tls_key: s(TLS_KEY)?,
            ca_bundle: s(CA_BUNDLE)?,
            signing: Ca {
                cert_pem: s(SIGNING_CA_CRT)?,
                key_pem: s(SIGNING_CA_KEY)?,
            },
            next,
        })
    }
}

/// Seconds since the epoch, now.
pub fn unix_now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86400;
    const T0: i64 = 1_800_000_000;

    fn subject() -> Subject {
        Subject::for_service("osartifact-webhook", "osartifact-system", &[])
    }

    fn policy() -> Policy {
        Policy::default()
    }

    #[test]
    fn bootstrap_covers_service_names() {
        let set = CertSet::bootstrap(&subject(), &policy(), T0).unwrap();
        let leaf = &parse_pem(set.tls_crt.as_bytes()).unwrap()[0];
        assert!(
            leaf.dns_names
                .contains(&"osartifact-webhook.osartifact-system.svc".to_string())
        );
        assert!(
            leaf.dns_names
                .contains(&"osartifact-webhook.osartifact-system.svc.cluster.local".to_string())
        );
        let ca = &parse_pem(set.signing.cert_pem.as_bytes()).unwrap()[0];
        assert_eq!(leaf.issuer, ca.subject);
        assert_eq!(leaf.not_after, T0 + 365 * DAY);
        assert_eq!(set.ca_bundle, set.signing.cert_pem);
    }

    #[test]
    fn nothing_to_do_when_fresh() {
        let mut set = CertSet::bootstrap(&subject(), &policy(), T0).unwrap();
        let before = set.clone();
        assert!(
            set.reconcile(&subject(), &policy(), T0 + DAY)
                .unwrap()
                .is_empty()
        );
        assert_eq!(set, before);
    }

    #[test]
    fn serving_cert_renews_before_expiry_with_the_same_ca() {
        let mut set = CertSet::bootstrap(&subject(), &policy(), T0).unwrap();
        let bundle = set.ca_bundle.clone();
        let changes = set
            .reconcile(&subject(), &policy(), T0 + 310 * DAY)
            .unwrap();
        assert_eq!(changes, vec![Change::IssuedServingCert("near expiry")]);
        assert_eq!(set.ca_bundle, bundle, "leaf-only rotation keeps caBundle");
    }

    #[test]
    fn new_names_reissue() {
        let mut set = CertSet::bootstrap(&subject(), &policy(), T0).unwrap();
        let s2 = Subject::for_service(
            "osartifact-webhook",
            "osartifact-system",
            &["extra.example".into()],
        );
        let changes = set.reconcile(&s2, &policy(), T0 + DAY).unwrap();
        assert_eq!(changes, vec![Change::IssuedServingCert("names changed")]);
    }

    #[test]
    fn ca_rotation_overlaps() {
        let p = policy();
        let mut set = CertSet::bootstrap(&subject(), &p, T0).unwrap();
        let old_ca = set.signing.clone();
        // Within a year of CA expiry: a next CA joins the bundle, the leaf stays.
        let t1 = T0 + 3300 * DAY;
        let leaf = set.tls_crt.clone();
        let changes = set.reconcile(&subject(), &p, t1).unwrap();
        assert!(changes.contains(&Change::AddedNextCa), "{changes:?}");
        assert_eq!(pem_blocks(&set.ca_bundle).len(), 2);
        assert_eq!(set.signing, old_ca);
        // The leaf may have been renewed but is still signed by the old CA.
        let old_subject = parse_pem(old_ca.cert_pem.as_bytes()).unwrap()[0]
            .subject
            .clone();
        assert_eq!(
            parse_pem(set.tls_crt.as_bytes()).unwrap()[0].issuer,
            old_subject
        );
        let _ = leaf;
        // Before the overlap has passed nothing switches.
        assert!(
            !set.reconcile(&subject(), &p, t1 + 3600)
                .unwrap()
                .contains(&Change::PromotedNextCa)
        );
        // After it: the next CA signs, the old stays trusted.
        let changes = set.reconcile(&subject(), &p, t1 + 2 * DAY).unwrap();
        assert!(changes.contains(&Change::PromotedNextCa), "{changes:?}");
        assert_ne!(set.signing, old_ca);
        assert!(set.next.is_none());
        assert_eq!(pem_blocks(&set.ca_bundle).len(), 2);
        let new_subject = parse_pem(set.signing.cert_pem.as_bytes()).unwrap()[0]
            .subject
            .clone();
        assert_eq!(
            parse_pem(set.tls_crt.as_bytes()).unwrap()[0].issuer,
            new_subject
        );
        // Once the old CA expired it leaves the bundle.
        let changes = set.reconcile(&subject(), &p, T0 + 3651 * DAY).unwrap();
        assert!(changes.contains(&Change::DroppedExpiredCa), "{changes:?}");
        assert_eq!(set.ca_bundle, set.signing.cert_pem);
    }

    #[test]
    fn secret_data_round_trip() {
        let mut set = CertSet::bootstrap(&subject(), &policy(), T0).unwrap();
        set.reconcile(&subject(), &policy(), T0 + 3300 * DAY)
            .unwrap();
        assert!(set.next.is_some());
        let data: std::collections::BTreeMap<_, _> = set.to_data().into_iter().collect();
        let back = CertSet::from_data(|k| data.get(k).cloned()).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn ip_sans() {
        let ca = new_ca(Duration::from_secs(86400), T0).unwrap();
        let s = Subject {
            dns_names: vec!["localhost".into()],
            ips: vec!["127.0.0.1".parse().unwrap()],
        };
        let (crt, _) = issue(&ca, &s, Duration::from_secs(3600), T0).unwrap();
        let info = &parse_pem(crt.as_bytes()).unwrap()[0];
        assert_eq!(info.ips, s.ips);
        assert_eq!(info.dns_names, s.dns_names);
    }
}
