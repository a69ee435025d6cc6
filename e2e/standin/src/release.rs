//! `/etc/kairos-release` as AuroraBoot reads it: godotenv's `KEY=VALUE` format, looked up the
//! way kairos-sdk's `OSRelease` and AuroraBoot's `GetArchFromRootfs`/`NameFromRootfs` do.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Parses a dotenv file like godotenv.Read: comments, `export`, quotes, inline `#` comments.
/// A line that is not an assignment is an error, as in godotenv (so a kairos-release holding
/// only a version string fails here, as it does in AuroraBoot).
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let sep = line.find(['=', ':']);
        let Some(sep) = sep else {
            bail!(
                "unexpected character \"\\n\" in variable name near {:?}",
                format!("{raw}\n")
            );
        };
        let key = line[..sep].trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!(
                "unexpected character in variable name near {:?}",
                format!("{raw}\n")
            );
        }
        let value = line[sep + 1..].trim();
        let value = if let Some(rest) = value.strip_prefix('"') {
            let end = rest.rfind('"').unwrap_or(rest.len());
            rest[..end].replace("\\n", "\n").replace("\\\"", "\"")
        } else if let Some(rest) = value.strip_prefix('\'') {
            let end = rest.rfind('\'').unwrap_or(rest.len());
            rest[..end].to_string()
        } else {
            match value.find(" #") {
                Some(pos) => value[..pos].trim_end().to_string(),
                None => value.to_string(),
            }
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// The release file of a rootfs: `etc/kairos-release`, or `etc/os-release` when that is absent
/// (both AuroraBoot functions fall back like this for pre-3.2 images).
pub struct Release {
    pub file: &'static str,
    pub vars: BTreeMap<String, String>,
}

impl Release {
    pub fn read(rootfs: &Path) -> Result<Release> {
        let file = if rootfs.join("etc/kairos-release").exists() {
            "etc/kairos-release"
        } else {
            "etc/os-release"
        };
        let path = rootfs.join(file);
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("open {}", path.display()))?;
        let vars = parse_env(&text).with_context(|| format!("reading {}", path.display()))?;
        Ok(Release { file, vars })
    }

    /// kairos-sdk `OSRelease(key)`: `KAIROS_<key>`, then `<key>`.
    pub fn get(&self, key: &str) -> Result<&str> {
        self.vars
            .get(&format!("KAIROS_{key}"))
            .or_else(|| self.vars.get(key))
            .map(String::as_str)
            .with_context(|| format!("KAIROS_{key} key not found"))
    }

    /// AuroraBoot's `GetArchFromRootfs`: `KAIROS_ARCH`, else `KAIROS_TARGETARCH`, non-empty.
    pub fn arch(&self) -> Result<&str> {
        for key in ["KAIROS_ARCH", "KAIROS_TARGETARCH"] {
            if let Some(v) = self.vars.get(key).filter(|v| !v.is_empty()) {
                return Ok(v);
            }
        }
        bail!("KAIROS_ARCH/KAIROS_TARGETARCH not found in {}", self.file)
    }

    /// AuroraBoot's `NameFromRootfs`: `<flavor>-<flavor_release>-<variant>-<arch>-<model>-<version>`
    /// (missing values are logged and left empty, as there), plus the Kubernetes provider and
    /// version for the `standard` variant.
    pub fn name(&self) -> String {
        let get = |k: &str| match self.get(k) {
            Ok(v) => v.to_string(),
            Err(e) => {
                crate::log::error(format!("failed to get image {}: {e}", k.to_lowercase()));
                String::new()
            }
        };
        let arch = self
            .get("ARCH")
            .or_else(|_| self.get("TARGETARCH"))
            .map(str::to_string)
            .unwrap_or_default();
        let base = format!(
            "{}-{}-{}-{}-{}-{}",
            get("FLAVOR"),
            get("FLAVOR_RELEASE"),
            get("VARIANT"),
            arch,
            get("MODEL"),
            get("VERSION")
        );
        if self.get("VARIANT").ok() == Some("standard")
            && let (Ok(p), Ok(v)) = (
                self.get("SOFTWARE_VERSION_PREFIX"),
                self.get("SOFTWARE_VERSION"),
            )
        {
            return format!("{base}-{p}{v}");
        }
        base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv() {
        let env =
            parse_env("# c\nKAIROS_ARCH=amd64\nexport A=\"x y\"\nB='z'\nC=v # note\n\nD: e\n")
                .unwrap();
        assert_eq!(env["KAIROS_ARCH"], "amd64");
        assert_eq!(env["A"], "x y");
        assert_eq!(env["B"], "z");
        assert_eq!(env["C"], "v");
        assert_eq!(env["D"], "e");
        assert!(parse_env("v3.6.0\n").is_err());
    }

    #[test]
    fn arch_and_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/kairos-release"),
            "KAIROS_FLAVOR=opensuse\nKAIROS_FLAVOR_RELEASE=tumbleweed\nKAIROS_VARIANT=core\n\
             KAIROS_TARGETARCH=amd64\nKAIROS_MODEL=generic\nKAIROS_VERSION=v3.2.1\n",
        )
        .unwrap();
        let r = Release::read(dir.path()).unwrap();
        assert_eq!(r.arch().unwrap(), "amd64");
        assert_eq!(r.name(), "opensuse-tumbleweed-core-amd64-generic-v3.2.1");

        std::fs::write(dir.path().join("etc/kairos-release"), "KAIROS_FLAVOR=x\n").unwrap();
        let r = Release::read(dir.path()).unwrap();
        assert_eq!(
            r.arch().unwrap_err().to_string(),
            "KAIROS_ARCH/KAIROS_TARGETARCH not found in etc/kairos-release"
        );
        assert_eq!(
            r.get("MODEL").unwrap_err().to_string(),
            "KAIROS_MODEL key not found"
        );
    }
}
