//! Kubernetes' format rules (DNS names, labels, Secret keys, quantities) and image references.
//! Each check returns the problem in the words Kubernetes uses, or `None`.

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// RFC 1123 label: what Kubernetes requires of volume, container and many object names.
pub fn dns1123_label(s: &str) -> Option<String> {
    if s.len() > 63 {
        return Some("must be no more than 63 characters".into());
    }
    let b = s.as_bytes();
    let ok = !b.is_empty()
        && is_alnum_lower(b[0])
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum_lower(c) || c == b'-');
    (!ok).then(|| {
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name')".into()
    })
}

/// RFC 1123 subdomain: what Kubernetes requires of Secret, ConfigMap and most object names.
pub fn dns1123_subdomain(s: &str) -> Option<String> {
    if s.len() > 253 {
        return Some("must be no more than 253 characters".into());
    }
    let ok = !s.is_empty() && s.split('.').all(|part| dns1123_label(part).is_none());
    (!ok).then(|| {
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')".into()
    })
}

fn qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A label or annotation key: an optional DNS subdomain prefix and a name.
pub fn qualified_name(s: &str) -> Option<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    if let Some(p) = prefix
        && dns1123_subdomain(p).is_some()
    {
        return Some("prefix part must be a lowercase RFC 1123 subdomain".into());
    }
    (!qualified_name_part(name)).then(|| {
        "name part must consist of alphanumeric characters, '-', '_' or '.', must start and end with an alphanumeric character and be at most 63 characters (e.g. 'MyName', 'my.name' or 'example.com/my-name')".into()
    })
}

/// A label value: empty, or a qualified name part.
pub fn label_value(s: &str) -> Option<String> {
    (!s.is_empty() && !qualified_name_part(s)).then(|| {
        "a valid label value must be an empty string or at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character".into()
    })
}

/// A key in a Secret or ConfigMap.
pub fn config_map_key(s: &str) -> Option<String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    (!ok).then(|| "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name')".into())
}

/// A resource quantity such as `10Gi`, `500m` or `1e3`.
pub fn quantity(s: &str) -> Option<String> {
    const SUFFIXES: &[&str] = &[
        "", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E",
    ];
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (num, suffix) = body.split_at(num_end);
    let digits = num.replace('.', "");
    let number_ok = !digits.is_empty() && num.matches('.').count() <= 1;
    let suffix_ok = SUFFIXES.contains(&suffix) || {
        let exp = suffix
            .strip_prefix(['e', 'E'])
            .map(|e| e.strip_prefix(['+', '-']).unwrap_or(e));
        exp.is_some_and(|e| !e.is_empty() && e.bytes().all(|c| c.is_ascii_digit()))
    };
    (!(number_ok && suffix_ok))
        .then(|| "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'".into())
}

/// A container image reference. The user docs' `@flavor` placeholders get a message of their own.
pub fn image_reference(s: &str) -> Option<String> {
    if s.contains("@flavor") {
        return Some(
            "\"@flavor\" and \"@flavorRelease\" are placeholders from the documentation: replace them with a real flavor and release, e.g. quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0"
                .into(),
        );
    }
    if s.trim() != s || s.is_empty() {
        return Some("must be a container image reference without surrounding whitespace".into());
    }
    super::image::problem(s).map(|e| {
        format!("not a valid container image reference ({e}); expected [registry/]repository[:tag][@digest]")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(dns1123_label("my-vol").is_none());
        assert!(dns1123_label("My-vol").is_some());
        assert!(dns1123_label("-a").is_some());
        assert!(dns1123_label(&"a".repeat(64)).is_some());
        assert!(dns1123_subdomain("a.b-c").is_none());
        assert!(dns1123_subdomain("a..b").is_some());
    }

    #[test]
    fn labels() {
        assert!(qualified_name("app.kubernetes.io/name").is_none());
        assert!(qualified_name("Team_A").is_none());
        assert!(qualified_name("bad key").is_some());
        assert!(qualified_name("UPPER.example/x").is_some());
        assert!(label_value("").is_none());
        assert!(label_value("v1.2_3").is_none());
        assert!(label_value("-x").is_some());
    }

    #[test]
    fn quantities() {
        for ok in ["10Gi", "1", "500m", "1.5G", "1e3", "+2Ki", ".5"] {
            assert!(quantity(ok).is_none(), "{ok}");
        }
        for bad in ["", "10 GB", "ten", "1.2.3", "10GiB", "Gi", "1e"] {
            assert!(quantity(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn images() {
        assert!(
            image_reference("quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0")
                .is_none()
        );
        assert!(image_reference("docker").is_none());
        assert!(image_reference("localhost:5000/a/b@sha256:0123456789012345678901234567890123456789012345678901234567890123").is_none());
        assert!(
            image_reference("quay.io/kairos/@flavor:@flavorRelease-core")
                .unwrap()
                .contains("placeholder")
        );
        assert!(image_reference("foo; rm -rf /").is_some());
        assert!(image_reference("Foo/Bar").is_some());
        assert!(image_reference(" a").is_some());
    }
}
