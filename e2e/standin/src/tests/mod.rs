//! Tests that go through several modules: pulls from an in-process registry, the
//! pack → `ocifile:` round trip, build-iso and netboot with the real tools, the disk action.

mod disk;
mod iso;
mod pull;
mod registry_double;

use std::fs;
use std::io::Write;
use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

pub fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// A tar stream of (name, content) regular files and directories (names ending in `/`).
pub fn tar_of(entries: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut h = tar::Header::new_gnu();
        if name.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(content.len() as u64);
        }
        h.set_mtime(1_600_000_000);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, content.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A small Kairos-like rootfs: release file, kernel, initrd, a few files.
pub fn kairos_rootfs(dir: &Path, release: &str) {
    fs::create_dir_all(dir.join("etc/cos")).unwrap();
    fs::create_dir_all(dir.join("boot")).unwrap();
    fs::create_dir_all(dir.join("usr/bin")).unwrap();
    fs::write(dir.join("etc/kairos-release"), release).unwrap();
    fs::write(dir.join("etc/os-release"), "ID=test\n").unwrap();
    fs::write(dir.join("etc/cos/grub.cfg"), "menuentry recovery {}\n").unwrap();
    fs::write(dir.join("boot/vmlinuz-6.1.0"), "KERNEL").unwrap();
    std::os::unix::fs::symlink("vmlinuz-6.1.0", dir.join("boot/vmlinuz")).unwrap();
    fs::write(dir.join("boot/initrd-6.1.0"), "INITRD").unwrap();
    fs::write(dir.join("usr/bin/hello"), "#!/bin/sh\necho hi\n").unwrap();
}

pub const RELEASE: &str = "KAIROS_FLAVOR=opensuse\nKAIROS_FLAVOR_RELEASE=leap-15.6\n\
                           KAIROS_VARIANT=core\nKAIROS_ARCH=amd64\nKAIROS_TARGETARCH=amd64\n\
                           KAIROS_MODEL=generic\nKAIROS_VERSION=v3.6.0\n";
