//! Container image references, checked by hand against the grammar of the distribution
//! project's reference package (what docker, containerd and kubelet accept):
//!
//! ```text
//! reference := name [ ":" tag ] [ "@" digest ]
//! name      := [domain "/"] component ("/" component)*      (at most 255 characters)
//! domain    := host [":" port]     host: DNS labels joined by ".", or "[IPv6]"
//! component := [a-z0-9]+ (separator [a-z0-9]+)*     separator: "." | "_" | "__" | "-"+
//! tag       := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest    := algorithm ":" hex       algorithm: [A-Za-z][A-Za-z0-9]* joined by [+._-]
//! ```
//!
//! The first path element is a domain when it contains "." or ":", is "localhost", or has an
//! upper-case letter (then it cannot be a repository component). Hand-written because the
//! webhook checks every image of every review: a regular-expression parser was a sixth of its
//! handler time.

/// Why `s` is not an image reference, or `None` when it is one.
pub fn problem(s: &str) -> Option<String> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (s, None),
    };
    if let Some(d) = digest
        && let Some(p) = digest_problem(d)
    {
        return Some(p);
    }
    // A tag follows the last ":" that comes after the last "/" (a ":" before it is a port).
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag
        && !valid_tag(t)
    {
        return Some(format!(
            "invalid tag {t:?}: a tag is up to 128 letters, digits, '_', '.' and '-', not starting with '.' or '-'"
        ));
    }
    if name.is_empty() {
        return Some("the repository name is empty".into());
    }
    if name.len() > 255 {
        return Some("the repository name is longer than 255 characters".into());
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if is_domain(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(d) = domain
        && !valid_domain(d)
    {
        return Some(format!("invalid registry host {d:?}"));
    }
    for component in path.split('/') {
        if !valid_component(component) {
            return Some(format!(
                "invalid repository path component {component:?}: use lower-case letters, digits and single '.', '_', '__' or '-' separators"
            ));
        }
    }
    None
}

fn is_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        // [IPv6]:port
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        let port = match after {
            "" => None,
            p => match p.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        if v6.is_empty()
            || !v6
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        ("", port)
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let host_ok =
        d.starts_with('[') || (!host.is_empty() && host.split('.').all(valid_domain_component));
    port_ok && host_ok
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: ".", "_", "__" or a run of "-", always followed by an alphanumeric.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || !b.get(i).is_some_and(|&x| alnum(x)) {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

fn digest_problem(d: &str) -> Option<String> {
    let bad = || {
        Some(format!(
            "invalid digest {d:?}: expected algorithm:hex, e.g. sha256: and 64 hex digits"
        ))
    };
    let Some((algorithm, hex)) = d.split_once(':') else {
        return bad();
    };
    let components_ok = !algorithm.is_empty()
        && algorithm.split(['+', '.', '_', '-']).all(|c| {
            let b = c.as_bytes();
            !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
        });
    let want = match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    };
    let hex_ok = hex.bytes().all(|b| b.is_ascii_hexdigit())
        && match want {
            Some(n) => hex.len() == n,
            None => hex.len() >= 32,
        };
    if components_ok && hex_ok { None } else { bad() }
}

#[cfg(test)]
mod tests {
    use super::problem;

    const SHA: &str = "sha256:0123456789012345678901234567890123456789012345678901234567890123";

    #[test]
    fn accepts_what_registries_accept() {
        for ok in [
            "docker",
            "alpine:3.20",
            "library/alpine",
            "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0",
            "quay.io/kairos/packages:helm-utils-3.10.1",
            "localhost/x",
            "localhost:5000/a/b",
            "registry.example.com:443/team/app_name__x/y-z--w:1.0",
            "[::1]:5000/a",
            "Registry.Example.com/a",
            "a.b/c@sha256:0123456789012345678901234567890123456789012345678901234567890123",
            "curlimages/curl:latest",
            "a/b:tag@sha256:0123456789012345678901234567890123456789012345678901234567890123",
        ] {
            assert_eq!(problem(ok), None, "{ok}");
        }
        assert_eq!(problem(&format!("x@{SHA}")), None);
    }

    #[test]
    fn refuses_what_registries_refuse() {
        for bad in [
            "",
            "Foo/Bar",
            "UPPER",
            "a//b",
            "a/b/",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "foo; rm -rf /",
            "a b",
            "a:",
            "a:-tag",
            "a:.tag",
            "a:t@g",
            "a@sha256:123",
            "a@md5",
            "localhost:port/a",
            "[::1/a",
            "a:tag:other",
            "quay.io/kairos/@flavor:x",
        ] {
            assert!(problem(bad).is_some(), "{bad:?} was accepted");
        }
        assert!(problem(&format!("a:{}", "t".repeat(129))).is_some());
        assert!(problem(&format!("{}:t", "a".repeat(256))).is_some());
    }
}
