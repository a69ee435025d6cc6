//! Contents the builder writes into the image and AuroraBoot reads back: `/etc/kairos-release`
//! (`kairosRelease`, read with an env-file parser: the ISO step needs the architecture, the disk
//! steps the flavor and model, and without them a build fails long after it started) and the
//! live ISO's `grub.cfg` (`grubConfig`, which replaces the whole boot menu).

use std::collections::BTreeMap;

use super::{FieldError, Report};
use crate::types::OSArtifactSpec;

/// Why a text is not an env file: the 1-based line and the offending text.
#[derive(Debug, PartialEq, Eq)]
pub struct EnvFileError {
    pub line: usize,
    pub text: String,
}

/// Parses `KEY=VALUE` lines as an env-file reader does: blank lines and `#` comments are
/// skipped, `export ` is allowed in front, values may be single- or double-quoted (a double-quoted
/// value may span lines), and an unquoted value ends at ` #`.
pub fn parse_env_file(text: &str) -> Result<BTreeMap<String, String>, EnvFileError> {
    let mut vars = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = || EnvFileError {
            line: i + 1,
            text: raw.to_string(),
        };
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = line.split_once('=').ok_or_else(err)?;
        let key = key.trim();
        if key.is_empty()
            || !key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
        {
            return Err(err());
        }
        let value = value.trim();
        let value = match value.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let mut body = value[1..].to_string();
                loop {
                    if let Some(end) = body.find(q) {
                        let rest = body[end + 1..].trim();
                        if !(rest.is_empty() || rest.starts_with('#')) {
                            return Err(err());
                        }
                        body.truncate(end);
                        break body;
                    }
                    match lines.next() {
                        Some((_, more)) if q == '"' => {
                            body.push('\n');
                            body.push_str(more);
                        }
                        _ => return Err(err()),
                    }
                }
            }
            _ => match value.find(" #") {
                Some(end) => value[..end].trim_end().to_string(),
                None => value.to_string(),
            },
        };
        vars.insert(key.to_string(), value);
    }
    Ok(vars)
}

fn has(vars: &BTreeMap<String, String>, key: &str) -> bool {
    vars.get(key).is_some_and(|v| !v.is_empty())
}

/// The first `max` characters of `s`, for quoting an offending line.
fn excerpt(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &s[..end]),
        None => s.to_string(),
    }
}

pub(super) fn check(spec: &OSArtifactSpec, r: &mut Report) {
    if let Some(text) = spec.kairos_release.as_deref().filter(|t| !t.is_empty()) {
        kairos_release(spec, text, r);
    }
    if let Some(text) = spec.os_release.as_deref().filter(|t| !t.is_empty())
        && let Err(e) = parse_env_file(text)
    {
        r.warn(
            "spec.osRelease",
            format!(
                "line {} ({:?}) is not KEY=VALUE: /etc/os-release is an env file (NAME=..., ID=..., VERSION_ID=...), and programs in the booted system read it as one",
                e.line,
                excerpt(&e.text, 40)
            ),
        );
    }
    if let Some(text) = spec.grub_config.as_deref().filter(|t| !t.is_empty())
        && (spec.iso || spec.netboot)
        && !has_menuentry(text)
    {
        r.warn(
            "spec.grubConfig",
            "has no menuentry: it replaces the live ISO's whole boot menu (boot/grub2/grub.cfg), so unless it loads another file with source or configfile the ISO boots to a GRUB prompt; give a complete grub.cfg",
        );
    }
}

fn kairos_release(spec: &OSArtifactSpec, text: &str, r: &mut Report) {
    const FIELD: &str = "spec.kairosRelease";
    let vars = match parse_env_file(text) {
        Ok(vars) => vars,
        Err(e) => {
            r.error(FieldError::invalid(
                FIELD,
                &excerpt(&e.text, 60),
                format!(
                    "line {} is not KEY=VALUE: the text replaces /etc/kairos-release, an env file (KAIROS_NAME=..., KAIROS_VERSION=..., KAIROS_ARCH=..., KAIROS_FLAVOR=..., KAIROS_MODEL=...), which AuroraBoot reads to build the outputs; give the whole file, or leave kairosRelease unset to keep the image's own",
                    e.line
                ),
            ));
            return;
        }
    };
    if (spec.iso || spec.netboot) && !has(&vars, "KAIROS_ARCH") && !has(&vars, "KAIROS_TARGETARCH")
    {
        r.error(FieldError::required(
            FIELD,
            "KAIROS_ARCH (or KAIROS_TARGETARCH) is missing or empty: AuroraBoot reads the architecture from /etc/kairos-release to build the ISO (iso or netboot is selected), e.g. KAIROS_ARCH=amd64",
        ));
    }
    if spec.cloud_image || spec.azure_image || spec.gce_image {
        for key in ["KAIROS_FLAVOR", "KAIROS_MODEL"] {
            if !has(&vars, key) {
                r.error(FieldError::required(
                    FIELD,
                    format!(
                        "{key} is missing or empty: AuroraBoot reads the flavor and model from /etc/kairos-release to build disk images (cloudImage, azureImage or gceImage is selected), e.g. KAIROS_FLAVOR=opensuse and KAIROS_MODEL=generic"
                    ),
                ));
            }
        }
    }
}

/// True when some line starts a `menuentry` (directly or inside a `submenu`).
fn has_menuentry(text: &str) -> bool {
    text.lines().any(|l| {
        l.trim_start()
            .strip_prefix("menuentry")
            .is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            })
    })
}
