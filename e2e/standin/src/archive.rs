//! Docker archives (the `docker save` format: `manifest.json`, a config blob, layer files), read
//! as go-containerregistry's `tarball.ImageFromPath` does for `auroraboot unpack ocifile:` and
//! `luet util unpack --local file://`, and written as its `tarball.Write` does for
//! `luet util pack`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use crate::digest::Sha256;
use crate::layers;
use crate::log;

struct Loc {
    offset: u64,
    size: u64,
    link: Option<String>,
}

pub struct DockerArchive {
    path: PathBuf,
    entries: HashMap<String, Loc>,
    pub config: String,
    pub repo_tags: Vec<String>,
    pub layers: Vec<String>,
}

fn norm(name: &str) -> String {
    name.trim_start_matches("./").to_string()
}

impl DockerArchive {
    pub fn open(path: &Path) -> Result<DockerArchive> {
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = HashMap::new();
        let mut manifest: Option<Vec<u8>> = None;
        for entry in archive
            .entries()
            .with_context(|| format!("reading {}", path.display()))?
        {
            let mut entry = entry.with_context(|| format!("reading {}", path.display()))?;
            let name = norm(&String::from_utf8_lossy(&entry.path_bytes()));
            let kind = entry.header().entry_type();
            let link = if kind.is_symlink() || kind.is_hard_link() {
                entry
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
            } else {
                None
            };
            if name == "manifest.json" {
                let mut buf = Vec::new();
                entry.read_to_end(&mut buf)?;
                manifest = Some(buf);
                continue;
            }
            entries.insert(
                name,
                Loc {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                    link,
                },
            );
        }
        let manifest = manifest.context("file manifest.json not found in tar")?;
        let manifest: Value = serde_json::from_slice(&manifest).context("parsing manifest.json")?;
        let images = manifest.as_array().context("manifest.json is not a list")?;
        if images.len() != 1 {
            bail!(
                "tarball must contain only a single image to be used with tarball.Image ({} found in {})",
                images.len(),
                path.display()
            );
        }
        let image = &images[0];
        let config = image
            .get("Config")
            .and_then(Value::as_str)
            .context("manifest.json without Config")?
            .to_string();
        let strings = |key: &str| -> Vec<String> {
            image
                .get(key)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(DockerArchive {
            path: path.to_path_buf(),
            entries,
            config,
            repo_tags: strings("RepoTags"),
            layers: strings("Layers"),
        })
    }

    /// The bytes of a member, following symlinks and hard links inside the archive.
    pub fn member(&self, name: &str) -> Result<impl Read + use<>> {
        let mut name = norm(name);
        for _ in 0..16 {
            let loc = self
                .entries
                .get(&name)
                .with_context(|| format!("file {name} not found in tar {}", self.path.display()))?;
            match &loc.link {
                Some(target) => {
                    let dir = Path::new(&name)
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    name = if target.starts_with('/') {
                        norm(target.trim_start_matches('/'))
                    } else if self.entries.contains_key(&norm(target)) && !target.starts_with("..")
                    {
                        // Hard links name the target from the archive root.
                        norm(target)
                    } else {
                        let joined = dir.join(target);
                        let parts = layers::clean_components(joined.to_string_lossy().as_bytes())
                            .context("link in the archive points outside it")?;
                        parts
                            .iter()
                            .map(|p| p.to_string_lossy().into_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    };
                }
                None => {
                    let mut f = File::open(&self.path)?;
                    f.seek(SeekFrom::Start(loc.offset))?;
                    return Ok(f.take(loc.size));
                }
            }
        }
        bail!("too many links resolving {name} in {}", self.path.display())
    }

    /// The image config.
    pub fn config_json(&self) -> Result<Value> {
        let mut buf = Vec::new();
        self.member(&self.config)?.read_to_end(&mut buf)?;
        serde_json::from_slice(&buf).context("parsing the image config")
    }

    /// Applies every layer, in order, onto `dest`.
    pub fn unpack_to(&self, dest: &Path) -> Result<()> {
        if log::debug_enabled() {
            let config = self.config_json()?;
            log::debug(format!(
                "unpacking {} ({:?}, config {}, {}/{})",
                self.path.display(),
                self.repo_tags,
                self.config,
                config["os"].as_str().unwrap_or("?"),
                config["architecture"].as_str().unwrap_or("?"),
            ));
        }
        for (i, layer) in self.layers.iter().enumerate() {
            let what = format!("layer {layer} of {}", self.path.display());
            let reader = layers::decompress(self.member(layer)?, &what)?;
            let n =
                layers::apply_layer(dest, reader).with_context(|| format!("applying {what}"))?;
            log::debug(format!(
                "applied layer {} of {} ({layer}, {n} entries)",
                i + 1,
                self.layers.len()
            ));
        }
        Ok(())
    }
}

/// Writes everything it gets to `inner` and hashes it.
struct HashingWriter<W> {
    inner: W,
    hash: Sha256,
    len: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The image `luet util pack` writes: one layer made from `src_tar` (plain or gzip), a config
/// with the given architecture and OS, written to `dst` as a Docker archive tagged `tag`.
pub fn pack(tag: Option<&str>, arch: &str, os: &str, src_tar: &Path, dst: &Path) -> Result<()> {
    let src = File::open(src_tar).with_context(|| format!("cannot open {}", src_tar.display()))?;
    let mut plain = layers::decompress(src, &format!("cannot open {}", src_tar.display()))?;

    // The layer blob: gzip of the uncompressed tar; diff_id hashes the uncompressed bytes.
    let tmp = tempfile::Builder::new()
        .prefix("tmpluet")
        .tempdir()
        .context("creating a temporary directory")?;
    let blob_path = tmp.path().join("layer.tar.gz");
    let blob = File::create(&blob_path)?;
    let gz = GzEncoder::new(
        HashingWriter {
            inner: blob,
            hash: Sha256::new(),
            len: 0,
        },
        Compression::default(),
    );
    let mut diff = HashingWriter {
        inner: gz,
        hash: Sha256::new(),
        len: 0,
    };
    io::copy(&mut plain, &mut diff).with_context(|| format!("reading {}", src_tar.display()))?;
    let diff_id = format!("sha256:{}", diff.hash.finish_hex());
    let mut compressed = diff.inner.finish()?;
    compressed.flush()?;
    let layer_hex = compressed.hash.finish_hex();
    let layer_size = compressed.len;

    let now = crate::log::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let config = json!({
        "architecture": arch,
        "os": os,
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": now, "created_by": "luet", "comment": "Custom image"}],
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "config": {},
    });
    let config_bytes = serde_json::to_vec(&config)?;
    let config_name = format!("sha256:{}", crate::digest::sha256_hex(&config_bytes));
    let layer_name = format!("{layer_hex}.tar.gz");
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": tag.map(|t| vec![t.to_string()]).unwrap_or_default(),
        "Layers": [layer_name],
    }]);
    let manifest_bytes = serde_json::to_vec(&manifest)?;

    let out = File::create(dst).with_context(|| format!("Cannot create {}", dst.display()))?;
    let mut tar = tar::Builder::new(out);
    let mut add = |name: &str, size: u64, data: &mut dyn Read| -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_path(name)?;
        h.set_cksum();
        tar.append(&h, data)?;
        Ok(())
    };
    add(
        &config_name,
        config_bytes.len() as u64,
        &mut &config_bytes[..],
    )?;
    add(&layer_name, layer_size, &mut File::open(&blob_path)?)?;
    add(
        "manifest.json",
        manifest_bytes.len() as u64,
        &mut &manifest_bytes[..],
    )?;
    tar.into_inner()?.sync_all()?;
    Ok(())
}
