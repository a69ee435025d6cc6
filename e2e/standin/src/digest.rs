//! SHA-256 (digests, checksum files) and name-based UUIDs (GPT partition GUIDs), via ring.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use ring::digest::{Context as RingContext, SHA1_FOR_LEGACY_USE_ONLY, SHA256};

pub struct Sha256(RingContext);

impl Sha256 {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Sha256 {
        Sha256(RingContext::new(&SHA256))
    }
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }
    pub fn finish_hex(self) -> String {
        hex(self.0.finish().as_ref())
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(data);
    h.finish_hex()
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish_hex())
}

/// RFC 4122 version-5 UUID of `name` in the URL namespace (what `uuid.NewV5(uuid.NamespaceURL,
/// label)` gives AuroraBoot for its partition GUIDs).
pub fn uuid_v5_url(name: &str) -> String {
    const NAMESPACE_URL: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut ctx = RingContext::new(&SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&NAMESPACE_URL);
    ctx.update(name.as_bytes());
    let d = ctx.finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    uuid(b, 5)
}

/// `b` as an RFC 4122 UUID of `version`: the version and variant bits set, in the 8-4-4-4-12
/// form.
pub fn uuid(mut b: [u8; 16], version: u8) -> String {
    b[6] = (b[6] & 0x0f) | (version << 4);
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "http://example.com")
        assert_eq!(
            uuid_v5_url("http://example.com"),
            "8c9ddcb0-8084-5a7f-a988-1095ab18b5df"
        );
    }
}
