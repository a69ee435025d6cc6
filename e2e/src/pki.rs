//! Test certificates with rcgen: a CA, serving certificates for loopback, and client
//! certificates whose CN is the user name and whose O entries are the groups (how the
//! apiserver's x509 authenticator maps them).

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// A CA whose certificate and key are kept in memory and on disk.
pub struct Ca {
    pub cert_pem: String,
    key_pem: String,
    /// `<dir>/<name>.crt`
    pub cert_path: PathBuf,
}

/// A certificate and key written to `<dir>/<name>.crt` and `<dir>/<name>.key`.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub cert_pem: String,
    pub key_pem: String,
}

fn validity(p: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::hours(1);
    p.not_after = now + Duration::days(2);
}

impl Ca {
    /// Creates a self-signed CA named `name` and writes `<dir>/<name>.crt`.
    pub fn new(dir: &Path, name: &str) -> Result<Self> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let cert = params.self_signed(&key)?;
        let cert_path = dir.join(format!("{name}.crt"));
        std::fs::write(&cert_path, cert.pem())
            .with_context(|| format!("writing {}", cert_path.display()))?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_path,
        })
    }

    fn issue(&self, params: CertificateParams, dir: &Path, name: &str) -> Result<CertFiles> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        let files = CertFiles {
            cert: dir.join(format!("{name}.crt")),
            key: dir.join(format!("{name}.key")),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        };
        files.write()?;
        Ok(files)
    }

    /// A serving certificate for 127.0.0.1 and localhost.
    pub fn issue_server(&self, dir: &Path, name: &str) -> Result<CertFiles> {
        self.issue_server_for(dir, name, &[], &[])
    }

    /// A serving certificate for 127.0.0.1, localhost and the extra `dns` names and `ips`.
    pub fn issue_server_for(
        &self,
        dir: &Path,
        name: &str,
        dns: &[&str],
        ips: &[IpAddr],
    ) -> Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into()?),
        ];
        for d in dns {
            params
                .subject_alt_names
                .push(SanType::DnsName((*d).try_into()?));
        }
        for ip in ips {
            params.subject_alt_names.push(SanType::IpAddress(*ip));
        }
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params);
        self.issue(params, dir, name)
    }

    /// A client certificate: CN = `user`, one O per group (at most two).
    pub fn issue_client(
        &self,
        dir: &Path,
        file_name: &str,
        user: &str,
        groups: &[&str],
    ) -> Result<CertFiles> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, user);
        // rcgen keys a name by attribute type, so a second O goes in under the same OID
        // spelled as a custom type; two groups are all the tests need.
        match groups {
            [] => {}
            [a] => dn.push(DnType::OrganizationName, *a),
            [a, b] => {
                dn.push(DnType::OrganizationName, *a);
                dn.push(DnType::CustomDnType(vec![2, 5, 4, 10]), *b);
            }
            _ => anyhow::bail!("at most two groups per client certificate"),
        }
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        validity(&mut params);
        self.issue(params, dir, file_name)
    }
}

impl CertFiles {
    /// Writes (or rewrites) the files; the key last, so a reader polling the certificate
    /// never pairs a new key with an old certificate for long.
    pub fn write(&self) -> Result<()> {
        std::fs::write(&self.cert, &self.cert_pem)
            .with_context(|| format!("writing {}", self.cert.display()))?;
        std::fs::write(&self.key, &self.key_pem)
            .with_context(|| format!("writing {}", self.key.display()))?;
        Ok(())
    }
}

/// A key pair for service-account token signing: private key to `key`, public key to `public`.
pub fn write_signing_key(key: &Path, public: &Path) -> Result<()> {
    let pair = KeyPair::generate()?;
    std::fs::write(key, pair.serialize_pem())
        .with_context(|| format!("writing {}", key.display()))?;
    std::fs::write(public, pair.public_key_pem())
        .with_context(|| format!("writing {}", public.display()))
}
