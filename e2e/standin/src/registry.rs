//! Pulling an image from a registry, as go-containerregistry does for AuroraBoot and luet, over
//! the test cluster's plain-HTTP mirrors.
//!
//! The reference is normalised like Docker's (docker.io by default, `library/` for one-part
//! names, tag `latest`), its registry host is looked up in the mirror map, credentials come
//! from the Docker config that go-containerregistry's default keychain reads, and a 401 is
//! answered with Basic auth or the Bearer token flow the challenge asks for.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::Value;

use crate::http::{self, Url};
use crate::log;

pub const DEFAULT_MIRRORS: &str = "/etc/osartifact-standin/mirrors.json";

/// A normalised image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// `docker.io`, `quay.io`, `10.0.0.1:5000`, ...
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses like go-containerregistry's `name.ParseReference` (strict validation).
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow::anyhow!("could not parse reference: {s}: {why}");
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let hex = d
                    .strip_prefix("sha256:")
                    .ok_or_else(|| bad("unsupported digest algorithm"))?;
                if hex.len() != 64
                    || !hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                {
                    return Err(bad("invalid digest"));
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (repo_part, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (
                &name[..last_slash + i],
                Some(name[last_slash + i + 1..].to_string()),
            ),
            None => (name, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
            if !ok {
                return Err(bad("invalid tag"));
            }
        }
        let (registry, path) = match repo_part.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => ("docker.io".to_string(), repo_part.to_string()),
        };
        let registry = if registry == "index.docker.io" {
            "docker.io".to_string()
        } else {
            registry
        };
        let repository = if registry == "docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        let component_ok = |c: &str| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                && c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        };
        if repository.is_empty() || !repository.split('/').all(component_ok) {
            return Err(bad(
                "repository can only contain the characters `abcdefghijklmnopqrstuvwxyz0123456789_-./`",
            ));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// The tag or digest to ask the registry for (the digest wins).
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// go-containerregistry's `Tag.String()`: the registry spelled `index.docker.io` for Docker Hub.
    pub fn tag_name(&self) -> Option<String> {
        let reg = if self.registry == "docker.io" {
            "index.docker.io"
        } else {
            &self.registry
        };
        self.tag
            .as_ref()
            .map(|t| format!("{reg}/{}:{t}", self.repository))
    }
}

/// Where the mirror map and the Docker config are (from the environment in the binary, explicit
/// in tests, which must not race on process-wide variables).
#[derive(Clone, Debug)]
pub struct Settings {
    pub mirrors: PathBuf,
    pub docker_config: Option<PathBuf>,
}

impl Settings {
    pub fn from_env() -> Settings {
        Settings {
            mirrors: std::env::var_os("OSARTIFACT_STANDIN_MIRRORS")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_MIRRORS)),
            docker_config: docker_config_path(),
        }
    }
}

/// The mirror map: registry host → base URL of the plain-HTTP registry serving it here.
pub fn mirror_for(path: &Path, registry: &str) -> Result<String> {
    let map: BTreeMap<String, String> = match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("parsing the mirror map {}", path.display()))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the mirror map {}", path.display()));
        }
    };
    match map.get(registry) {
        Some(url) => Ok(url.trim_end_matches('/').to_string()),
        None => bail!(
            "no route out of the test cluster: no mirror for {registry} (mirror map {})",
            path.display()
        ),
    }
}

/// Where go-containerregistry's default keychain looks: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => Some(Path::new(&dir).join("config.json")),
        None => std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker/config.json")),
    }
}

/// The host a Docker config `auths` key names (`https://host/v1/` → `host`).
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Username and password for `registry` from the Docker config at `path`, if any.
pub fn credentials(path: Option<&Path>, registry: &str) -> Result<Option<(String, String)>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let config: Value = serde_json::from_slice(&bytes)
        .with_context(|| format!("parsing docker config {}", path.display()))?;
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let matches = |host: &str| host == registry || (hub.contains(&registry) && hub.contains(&host));
    let Some(auths) = config.get("auths").and_then(Value::as_object) else {
        return Ok(None);
    };
    // An exact key first, then any key naming the same host.
    let mut entries: Vec<(&String, &Value)> =
        auths.iter().filter(|(k, _)| matches(key_host(k))).collect();
    entries.sort_by_key(|(k, _)| k.as_str() != registry);
    for (key, entry) in entries {
        if let Some(auth) = entry
            .get("auth")
            .and_then(Value::as_str)
            .filter(|a| !a.is_empty())
        {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .with_context(|| {
                    format!("{}: auths[{key:?}].auth is not base64", path.display())
                })?;
            let decoded = String::from_utf8(decoded)
                .with_context(|| format!("{}: auths[{key:?}].auth is not UTF-8", path.display()))?;
            let (user, pass) = decoded.split_once(':').with_context(|| {
                format!(
                    "{}: auths[{key:?}].auth is not user:password",
                    path.display()
                )
            })?;
            return Ok(Some((user.to_string(), pass.to_string())));
        }
        let user = entry.get("username").and_then(Value::as_str);
        let pass = entry.get("password").and_then(Value::as_str);
        if let (Some(u), Some(p)) = (user, pass) {
            return Ok(Some((u.to_string(), p.to_string())));
        }
    }
    Ok(None)
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

/// One repository on one registry, with the authorization it needs.
pub struct Client {
    base: String,
    registry: String,
    repository: String,
    creds: Option<(String, String)>,
    authorization: Option<String>,
    docker_config: Option<PathBuf>,
}

impl Client {
    pub fn new(settings: &Settings, reference: &Reference) -> Result<Client> {
        let base = mirror_for(&settings.mirrors, &reference.registry)?;
        let creds = credentials(settings.docker_config.as_deref(), &reference.registry)?;
        let mut c = Client {
            base,
            registry: reference.registry.clone(),
            repository: reference.repository.clone(),
            creds,
            authorization: None,
            docker_config: settings.docker_config.clone(),
        };
        c.authenticate()?;
        Ok(c)
    }

    /// go-containerregistry pings `/v2/` first and answers the challenge it gets.
    fn authenticate(&mut self) -> Result<()> {
        let url = Url::parse(&format!("{}/v2/", self.base))?;
        let resp = http::get(&url, &[])?;
        match resp.status {
            200 => return Ok(()),
            401 => {}
            s => bail!(
                "GET {url}: unexpected status {s} {} from {}",
                resp.reason,
                self.registry
            ),
        }
        let challenge = resp.header("WWW-Authenticate").unwrap_or("").to_string();
        let (scheme, params) = parse_challenge(&challenge);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => {
                let (u, p) = self.creds.clone().with_context(|| self.no_creds(&url))?;
                self.authorization = Some(basic(&u, &p));
                Ok(())
            }
            "bearer" => {
                let realm = params
                    .get("realm")
                    .context("Bearer challenge without realm")?;
                let mut query = vec![format!("scope=repository:{}:pull", self.repository)];
                if let Some(service) = params.get("service") {
                    query.insert(0, format!("service={service}"));
                }
                let sep = if realm.contains('?') { '&' } else { '?' };
                let token_url = Url::parse(&format!("{realm}{sep}{}", query.join("&")))?;
                let headers: Vec<(&str, String)> = match &self.creds {
                    Some((u, p)) => vec![("Authorization", basic(u, p))],
                    None => vec![],
                };
                let resp = http::get(&token_url, &headers)?;
                if resp.status == 401 || resp.status == 403 {
                    if self.creds.is_none() {
                        bail!("{}", self.no_creds(&token_url));
                    }
                    bail!(
                        "GET {token_url}: {} {}: the credentials for {} were refused",
                        resp.status,
                        resp.reason,
                        self.registry
                    );
                }
                if resp.status != 200 {
                    bail!(
                        "GET {token_url}: unexpected status {} {}",
                        resp.status,
                        resp.reason
                    );
                }
                let body: Value = serde_json::from_slice(&resp.bytes(1 << 20)?)
                    .context("parsing the token response")?;
                let token = body
                    .get("token")
                    .or_else(|| body.get("access_token"))
                    .and_then(Value::as_str)
                    .context("token response without a token")?;
                self.authorization = Some(format!("Bearer {token}"));
                Ok(())
            }
            _ => bail!(
                "GET {url}: 401 with an unsupported challenge {challenge:?} from {}",
                self.registry
            ),
        }
    }

    fn no_creds(&self, url: &Url) -> String {
        let where_ = self
            .docker_config
            .as_ref()
            .map(|p| format!("looked in {}", p.display()))
            .unwrap_or_else(|| "no docker config (neither DOCKER_CONFIG nor HOME set)".into());
        format!(
            "GET {url}: 401 Unauthorized: registry {} requires authentication and no credentials \
             for it were found ({where_})",
            self.registry
        )
    }

    /// GET with authorization, following redirects (authorization only to the same host).
    /// Fails unless `resp` (to `GET path`) is a 200.
    fn expect_ok(&self, path: &str, resp: &http::Response) -> Result<()> {
        if resp.status != 200 {
            bail!(
                "GET {path}: unexpected status {} {} from {}",
                resp.status,
                resp.reason,
                self.registry
            );
        }
        Ok(())
    }

    fn get(&self, path: &str, accept: Option<&str>) -> Result<http::Response> {
        let mut url = Url::parse(&format!("{}{path}", self.base))?;
        let origin = url.authority();
        for _ in 0..10 {
            let mut headers = Vec::new();
            if let Some(a) = accept {
                headers.push(("Accept", a.to_string()));
            }
            if let Some(auth) = self
                .authorization
                .as_ref()
                .filter(|_| url.authority() == origin)
            {
                headers.push(("Authorization", auth.clone()));
            }
            let resp = http::get(&url, &headers)?;
            match resp.status {
                301 | 302 | 303 | 307 | 308 => {
                    let loc = resp
                        .header("Location")
                        .context("redirect without Location")?;
                    url = url.join(loc)?;
                }
                401 => bail!("{}", self.no_creds(&url)),
                _ => return Ok(resp),
            }
        }
        bail!("GET {path}: too many redirects")
    }

    /// The manifest for `reference` (a tag or a digest) with its media type.
    pub fn manifest(&self, reference: &str) -> Result<(String, Value)> {
        let path = format!("/v2/{}/manifests/{reference}", self.repository);
        let resp = self.get(&path, Some(MANIFEST_TYPES))?;
        if resp.status == 404 {
            bail!(
                "MANIFEST_UNKNOWN: {}/{}:{reference} not found",
                self.registry,
                self.repository
            );
        }
        self.expect_ok(&path, &resp)?;
        let content_type = resp.header("Content-Type").unwrap_or("").to_string();
        let body = resp.bytes(8 << 20)?;
        if let Some(want) = reference.strip_prefix("sha256:") {
            let got = crate::digest::sha256_hex(&body);
            if got != want {
                bail!("manifest digest mismatch for {reference}: got sha256:{got}");
            }
        }
        let json: Value = serde_json::from_slice(&body).context("parsing the manifest")?;
        Ok((media_type(&content_type, &json), json))
    }

    /// Downloads a blob into `dst`, checking its digest.
    pub fn blob_to(&self, digest: &str, dst: &Path) -> Result<()> {
        let path = format!("/v2/{}/blobs/{digest}", self.repository);
        let resp = self.get(&path, None)?;
        self.expect_ok(&path, &resp)?;
        let mut body = resp.body;
        let mut out = File::create(dst).with_context(|| format!("creating {}", dst.display()))?;
        let mut hasher = crate::digest::Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body
                .read(&mut buf)
                .with_context(|| format!("downloading {digest}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        let got = format!("sha256:{}", hasher.finish_hex());
        if got != digest {
            bail!("blob digest mismatch: asked for {digest}, got {got}");
        }
        Ok(())
    }
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

/// `Bearer realm="…",service="…"` → ("Bearer", {realm, service}).
fn parse_challenge(h: &str) -> (String, BTreeMap<String, String>) {
    let (scheme, rest) = h.trim().split_once(' ').unwrap_or((h.trim(), ""));
    let mut params = BTreeMap::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let (v, after) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').unwrap_or(q.len());
            (&q[..end], q.get(end + 1..).unwrap_or(""))
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        params.insert(k.trim().to_ascii_lowercase(), v.to_string());
        rest = after.trim_start_matches([',', ' ']);
    }
    (scheme.to_string(), params)
}

/// The manifest's media type: the header, else `mediaType`, else guessed from its shape (OCI
/// manifests may leave it out).
fn media_type(content_type: &str, json: &Value) -> String {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    if !ct.is_empty() && ct != "application/json" && ct != "application/octet-stream" {
        return ct.to_string();
    }
    if let Some(mt) = json.get("mediaType").and_then(Value::as_str) {
        return mt.to_string();
    }
    if json.get("manifests").is_some() {
        "application/vnd.oci.image.index.v1+json".into()
    } else {
        "application/vnd.oci.image.manifest.v1+json".into()
    }
}

pub const INDEX_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
pub const IMAGE_TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

/// The digest of the `linux/<arch>` image in an index.
pub fn pick_platform(index: &Value, arch: &str, what: &str) -> Result<String> {
    let manifests = index
        .get("manifests")
        .and_then(Value::as_array)
        .context("index without manifests")?;
    for m in manifests {
        let p = m.get("platform");
        let os = p.and_then(|p| p.get("os")).and_then(Value::as_str);
        let a = p
            .and_then(|p| p.get("architecture"))
            .and_then(Value::as_str);
        if os == Some("linux") && a == Some(arch) {
            return m
                .get("digest")
                .and_then(Value::as_str)
                .map(str::to_string)
                .context("index entry without digest");
        }
    }
    bail!("no child with platform linux/{arch} in index {what}")
}

/// A layer of an image manifest, checked to be something the stand-in can unpack.
#[derive(Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: String,
    pub media_type: String,
}

pub fn layers(manifest: &Value) -> Result<Vec<Layer>> {
    let mut out = Vec::new();
    for l in manifest
        .get("layers")
        .and_then(Value::as_array)
        .context("image manifest without layers")?
    {
        let digest = l
            .get("digest")
            .and_then(Value::as_str)
            .context("layer without digest")?;
        let mt = l.get("mediaType").and_then(Value::as_str).unwrap_or("");
        let tar_or_gzip = mt.ends_with(".tar")
            || mt.ends_with(".tar+gzip")
            || mt.ends_with(".tar.gzip")
            || mt.ends_with("diff.tar.gzip");
        if mt.contains("zstd") {
            bail!("layer {digest} is {mt}: the stand-in unpacks tar and tar+gzip layers only");
        }
        if !tar_or_gzip || !(mt.contains("layer") || mt.contains("rootfs")) {
            bail!(
                "layer {digest} has media type {mt:?}, which is not an image layer the stand-in can unpack (tar, tar+gzip)"
            );
        }
        out.push(Layer {
            digest: digest.to_string(),
            media_type: mt.to_string(),
        });
    }
    Ok(out)
}

/// Pulls `reference` for `linux/<arch>` and applies its layers in order onto `dest`.
pub fn pull_and_unpack(
    settings: &Settings,
    reference: &str,
    arch: &str,
    dest: &Path,
) -> Result<()> {
    let r = Reference::parse(reference)?;
    let client = Client::new(settings, &r)?;
    let (mut mt, mut manifest) = client.manifest(r.reference())?;
    if INDEX_TYPES.contains(&mt.as_str()) {
        let digest = pick_platform(&manifest, arch, reference)?;
        log::debug(format!(
            "picked {digest} for linux/{arch} from the index of {reference}"
        ));
        (mt, manifest) = client.manifest(&digest)?;
    }
    if !IMAGE_TYPES.contains(&mt.as_str()) {
        bail!("{reference}: unsupported manifest media type {mt:?}");
    }
    let layers = layers(&manifest)?;
    let tmp = tempfile::Builder::new()
        .prefix("osartifact-standin-pull")
        .tempdir()
        .context("creating a temporary directory")?;
    for (i, layer) in layers.iter().enumerate() {
        log::debug(format!(
            "pulling layer {} of {}: {}",
            i + 1,
            layers.len(),
            layer.digest
        ));
        let file = tmp.path().join(format!("layer-{i}"));
        client.blob_to(&layer.digest, &file)?;
        let n = crate::layers::apply_layer_file(dest, &file)?;
        log::debug(format!("applied layer {} ({n} entries)", layer.digest));
        fs::remove_file(&file)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let r = Reference::parse("ubuntu").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("docker.io", "library/ubuntu", "latest")
        );
        assert_eq!(
            r.tag_name().unwrap(),
            "index.docker.io/library/ubuntu:latest"
        );
        let r = Reference::parse("quay.io/kairos/opensuse:leap-15.6").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("quay.io", "kairos/opensuse", "leap-15.6")
        );
        let r = Reference::parse("10.244.77.1:5001/a/b").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.reference()),
            ("10.244.77.1:5001", "a/b", "latest")
        );
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("localhost/x@{d}")).unwrap();
        assert_eq!(
            (r.registry.as_str(), r.reference(), r.tag.clone()),
            ("localhost", d.as_str(), None)
        );
        let r = Reference::parse("user/img:v1").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("docker.io", "user/img")
        );
        assert!(Reference::parse("Upper/case").is_err());
        assert!(Reference::parse("x:bad tag").is_err());
        assert!(Reference::parse("x@sha256:123").is_err());
    }

    #[test]
    fn challenges() {
        let (s, p) = parse_challenge(
            r#"Bearer realm="http://h/token",service="reg",scope="repository:a:pull""#,
        );
        assert_eq!(s, "Bearer");
        assert_eq!(p["realm"], "http://h/token");
        assert_eq!(p["service"], "reg");
        let (s, p) = parse_challenge(r#"Basic realm="Registry Realm""#);
        assert_eq!(s, "Basic");
        assert_eq!(p["realm"], "Registry Realm");
    }

    #[test]
    fn index_selection() {
        let idx: Value = serde_json::json!({"manifests": [
            {"digest": "sha256:a", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:b", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:c", "platform": {"os": "windows", "architecture": "amd64"}},
        ]});
        assert_eq!(pick_platform(&idx, "amd64", "x").unwrap(), "sha256:b");
        assert_eq!(pick_platform(&idx, "arm64", "x").unwrap(), "sha256:a");
        assert_eq!(
            pick_platform(&idx, "s390x", "img").unwrap_err().to_string(),
            "no child with platform linux/s390x in index img"
        );
        assert_eq!(
            media_type("", &idx),
            "application/vnd.oci.image.index.v1+json"
        );
        assert_eq!(
            media_type("application/vnd.docker.distribution.manifest.v2+json", &idx),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
    }

    #[test]
    fn layer_media_types() {
        let m = serde_json::json!({"layers": [
            {"digest": "sha256:1", "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"},
            {"digest": "sha256:2", "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip"},
            {"digest": "sha256:3", "mediaType": "application/vnd.oci.image.layer.v1.tar"},
        ]});
        assert_eq!(layers(&m).unwrap().len(), 3);
        let z = serde_json::json!({"layers": [{"digest": "sha256:1", "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd"}]});
        assert!(
            layers(&z)
                .unwrap_err()
                .to_string()
                .contains("tar and tar+gzip")
        );
        let other = serde_json::json!({"layers": [{"digest": "sha256:1", "mediaType": "application/vnd.in-toto+json"}]});
        assert!(layers(&other).is_err());
    }
}
