//! The images a build pulls, for the one-node cluster, under the very names the operator and
//! `examples/` use: the cluster has no route out, so the registry mirror configuration of
//! containerd (`node`) and of the helper images sends `quay.io`, `docker.io` and `gcr.io` to
//! the local registry, where these images are pushed under the same repository paths.
//!
//! - `quay.io/kairos/auroraboot:v0.24.0`: the AuroraBoot and luet **stand-in** (`e2e/standin`)
//!   with Debian's real file-system tools (xorriso, squashfs-tools, mtools, dosfstools, gdisk,
//!   e2fsprogs) and bash and coreutils as the real image's Fedora has them;
//! - `quay.io/buildah/stable:v1.43.1`: Debian's real buildah;
//! - the Kairos OS images and bundles the examples name: small root file systems with a real
//!   `/etc/kairos-release`, a kernel and an initrd file, busybox as their programs;
//! - the curl and git images of the examples' importers and exporters: Debian's curl and git
//!   on busybox.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::images::Rootfs;
use crate::net;
use crate::node::Node;
use crate::oci::{Config, Entry, Image};
use crate::paths;

/// The registries whose images the cluster's registry stands in for.
pub const MIRRORED_REGISTRIES: &[&str] = &["quay.io", "docker.io", "gcr.io"];

/// The operator's default AuroraBoot image, served by the stand-in.
pub const AURORABOOT: &str = "quay.io/kairos/auroraboot:v0.24.0";
/// The operator's default buildah image, served by Debian's buildah.
pub const BUILDAH: &str = "quay.io/buildah/stable:v1.43.1";
pub const OS_CORE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";
pub const OS_STANDARD: &str =
    "quay.io/kairos/opensuse:leap-15.6-standard-amd64-generic-v3.6.0-k3sv1.35.0-k3s1";
/// The bundles the examples name, and the program each one adds.
pub const BUNDLES: &[(&str, &str)] = &[
    ("quay.io/kairos/packages:helm-utils-3.10.1", "helm"),
    ("quay.io/kairos/packages:docker-utils-27.3.1", "docker"),
    ("quay.io/kairos/packages:k3s-utils-1.35.0", "k3s-killall.sh"),
];
pub const CURL_IMAGES: &[&str] = &["quay.io/curl/curl:latest", "curlimages/curl:latest"];
/// The build-context example's importer, and the cluster's file server.
pub const GIT_IMAGE: &str = "alpine/git:latest";

/// A file the OS images carry and every bundle deletes with a whiteout, so that a build shows
/// whether bundles are applied as layers are.
pub const WHITED_OUT: &str = "/etc/kairos-e2e/removed-by-bundles";

/// `PATH` of every image here.
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where `reference` (as a user writes it) lives in the cluster's registry.
pub fn local_reference(reference: &str) -> String {
    let (first, rest) = reference.split_once('/').unwrap_or(("", reference));
    let path = if first.contains('.') || first.contains(':') {
        rest.to_string()
    } else {
        reference.to_string()
    };
    format!("{}/{path}", net::registry())
}

/// The stand-in's registry mirrors: every mirrored registry and the two local registries,
/// over plain HTTP.
pub fn standin_mirrors() -> String {
    let local = format!("http://{}", net::registry());
    let mut m: BTreeMap<String, String> = MIRRORED_REGISTRIES
        .iter()
        .map(|r| (r.to_string(), local.clone()))
        .collect();
    m.insert(net::registry(), local.clone());
    m.insert(
        net::auth_registry(),
        format!("http://{}", net::auth_registry()),
    );
    serde_json::to_string_pretty(&m).unwrap_or_default()
}

fn labels(title: &str) -> BTreeMap<String, String> {
    BTreeMap::from([("org.opencontainers.image.title".into(), title.into())])
}

/// The AuroraBoot stand-in, laid out like the real image: `/usr/bin/auroraboot` (entrypoint)
/// and `/usr/bin/luet`, bash as `/bin/sh`, GNU coreutils and tar, `TMPDIR=/tmp`.
pub fn auroraboot_standin(standin: &Path) -> Result<Image> {
    let mut r = Rootfs::new();
    r.packages(&[
        "bash",
        "coreutils",
        "tar",
        "gzip",
        "sed",
        "grep",
        "findutils",
        "xorriso",
        "squashfs-tools",
        "mtools",
        "dosfstools",
        "gdisk",
        "e2fsprogs",
    ])?;
    r.dos_code_pages()?;
    r.add(Entry::symlink("/usr/bin/sh", "bash"));
    r.add(Entry::copy("/usr/bin/osartifact-standin", 0o755, standin));
    r.add(Entry::symlink("/usr/bin/auroraboot", "osartifact-standin"));
    r.add(Entry::symlink("/usr/bin/luet", "osartifact-standin"));
    r.add(Entry::file(
        "/etc/osartifact-standin/mirrors.json",
        0o644,
        standin_mirrors(),
    ));
    r.add(Entry::file(
        "/etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/bash\n",
    ));
    r.add(Entry::file("/etc/group", 0o644, "root:x:0:\n"));
    let config = Config {
        entrypoint: vec!["/usr/bin/auroraboot".into()],
        env: vec![
            PATH_ENV.into(),
            "TMPDIR=/tmp".into(),
            "LUET_NOLOCK=true".into(),
        ],
        labels: labels("osartifact e2e AuroraBoot stand-in"),
        ..Config::default()
    };
    Ok(Image {
        entries: r.into_entries(),
        config,
    })
}

/// Debian's buildah with the configuration it reads: the mirrors (plain HTTP), a policy that
/// accepts every image, vfs storage.
pub fn buildah() -> Result<Image> {
    let mut r = Rootfs::new();
    r.packages(&[
        "bash",
        "coreutils",
        "buildah",
        "golang-github-containers-common",
    ])?;
    r.add(Entry::symlink("/usr/bin/sh", "bash"));
    let mut registries = String::from("unqualified-search-registries = [\"docker.io\"]\n");
    for host in MIRRORED_REGISTRIES
        .iter()
        .map(|h| h.to_string())
        .chain([net::registry(), net::auth_registry()])
    {
        let location = if host == net::auth_registry() {
            net::auth_registry()
        } else {
            net::registry()
        };
        registries.push_str(&format!(
            "\n[[registry]]\nprefix = \"{host}\"\nlocation = \"{location}\"\ninsecure = true\n"
        ));
    }
    r.add(Entry::file(
        "/etc/containers/registries.conf",
        0o644,
        registries,
    ));
    r.add(Entry::file(
        "/etc/containers/policy.json",
        0o644,
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    ));
    r.add(Entry::file(
        "/etc/containers/storage.conf",
        0o644,
        "[storage]\ndriver = \"vfs\"\nrunroot = \"/run/containers/storage\"\ngraphroot = \"/var/lib/containers/storage\"\n",
    ));
    r.add(Entry::file(
        "/etc/passwd",
        0o644,
        "root:x:0:0:root:/root:/bin/bash\n",
    ));
    r.add(Entry::file("/etc/group", 0o644, "root:x:0:\n"));
    r.add(Entry::dir("/var/tmp", 0o1777));
    let config = Config {
        entrypoint: vec![],
        cmd: vec!["/bin/sh".into()],
        env: vec![
            PATH_ENV.into(),
            "BUILDAH_ISOLATION=chroot".into(),
            "STORAGE_DRIVER=vfs".into(),
        ],
        labels: labels("osartifact e2e buildah (Debian's)"),
        ..Config::default()
    };
    Ok(Image {
        entries: r.into_entries(),
        config,
    })
}

/// busybox's programs as the OS images' and curl images' shell and tools.
fn busybox_entries() -> Result<Vec<Entry>> {
    let img = crate::oci::busybox_image("unused")?;
    Ok(img.entries)
}

/// A small Kairos-like OS: busybox, an openSUSE `/usr/lib/os-release` behind the usual
/// `/etc/os-release` symlink, a complete `/etc/kairos-release`, `/boot/vmlinuz` (a link, as
/// in Kairos images) and `/boot/initrd`.
pub fn kairos_os(reference: &str, variant: &str) -> Result<Image> {
    let version = "v3.6.0";
    let mut entries = busybox_entries()?;
    entries.retain(|e| e.path != "/etc/passwd" && e.path != "/etc/group");
    entries.extend([
        Entry::file(
            "/etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\nkairos:x:1000:1000::/home/kairos:/bin/sh\n",
        ),
        Entry::file("/etc/group", 0o644, "root:x:0:\nadmin:x:1000:kairos\n"),
        Entry::file(
            "/usr/lib/os-release",
            0o644,
            "NAME=\"openSUSE Leap\"\nVERSION=\"15.6\"\nID=\"opensuse-leap\"\nVERSION_ID=\"15.6\"\n",
        ),
        Entry::symlink("/etc/os-release", "../usr/lib/os-release"),
        Entry::file(
            "/etc/kairos-release",
            0o644,
            format!(
                "KAIROS_NAME=\"kairos-{variant}-opensuse-leap-15.6\"\nKAIROS_VERSION=\"{version}\"\n\
                 KAIROS_ARCH=\"amd64\"\nKAIROS_TARGETARCH=\"amd64\"\nKAIROS_FLAVOR=\"opensuse\"\n\
                 KAIROS_FLAVOR_RELEASE=\"leap-15.6\"\nKAIROS_VARIANT=\"{variant}\"\n\
                 KAIROS_MODEL=\"generic\"\nKAIROS_FAMILY=\"opensuse\"\nKAIROS_RELEASE=\"{version}\"\n\
                 KAIROS_IMAGE_REPO=\"{reference}\"\n"
            ),
        ),
        Entry::file("/etc/hostname", 0o644, "kairos\n"),
        Entry::file("/etc/motd", 0o644, format!("Kairos {variant} {version} (e2e)\n")),
        Entry::file(
            "/boot/vmlinuz-6.4.0-e2e-default",
            0o644,
            format!("osartifact e2e kernel for {reference}\n"),
        ),
        Entry::symlink("/boot/vmlinuz", "vmlinuz-6.4.0-e2e-default"),
        Entry::file(
            "/boot/initrd",
            0o644,
            format!("osartifact e2e initrd for {reference}\n"),
        ),
        // What AuroraBoot's raw-disk builder copies from the rootfs: the installed system's
        // GRUB config and the EFI binaries (any bytes do for a disk that is never booted).
        Entry::file(
            "/etc/cos/grub.cfg",
            0o644,
            "set timeout=5\nmenuentry \"Kairos (e2e)\" {\n  linux /boot/vmlinuz\n  initrd /boot/initrd\n}\n",
        ),
        Entry::file("/usr/share/efi/x86_64/shim.efi", 0o644, "e2e shim\n"),
        Entry::file("/usr/share/efi/x86_64/grub.efi", 0o644, "e2e grub\n"),
        Entry::file(WHITED_OUT, 0o644, "bundles delete this file\n"),
        // The examples' Dockerfiles `RUN zypper install -y ...`; there are no package
        // repositories here, so the image's zypper records what it was asked to install.
        Entry::file(
            "/usr/bin/zypper",
            0o755,
            "#!/bin/sh\n# osartifact e2e: records the packages a build installs (no repositories here)\n\
             set -e\nmkdir -p /var/lib/e2e-packages\nfor p in \"$@\"; do\n  case $p in\n    -*|install|in) ;;\n\
             \x20   *) echo installed > \"/var/lib/e2e-packages/$p\"; echo \"installed $p\" ;;\n  esac\ndone\n",
        ),
        Entry::dir("/home/kairos", 0o750).owner(1000, 1000),
        Entry::dir("/var/lib", 0o755),
        Entry::dir("/run", 0o755),
        Entry::dir("/usr/local/bin", 0o755),
    ]);
    if variant == "standard" {
        entries.push(Entry::file(
            "/usr/bin/k3s",
            0o755,
            "#!/bin/sh\necho 'k3s v1.35.0+k3s1 (e2e)'\n",
        ));
    }
    let config = Config {
        cmd: vec!["/bin/sh".into()],
        env: vec![PATH_ENV.into()],
        labels: labels(reference),
        ..Config::default()
    };
    Ok(Image { entries, config })
}

/// A bundle: one program in `/usr/local/bin`, and a whiteout of [`WHITED_OUT`].
pub fn bundle(reference: &str, program: &str) -> Image {
    let (dir, name) = WHITED_OUT.rsplit_once('/').unwrap_or(("", WHITED_OUT));
    let entries = vec![
        Entry::file(
            &format!("/usr/local/bin/{program}"),
            0o755,
            format!("#!/bin/sh\necho '{program} from {reference}'\n"),
        ),
        Entry::file(&format!("{dir}/.wh.{name}"), 0o644, ""),
    ];
    let config = Config {
        labels: labels(reference),
        ..Config::default()
    };
    Image { entries, config }
}

/// Host programs (at their own paths, with their libraries) on busybox.
fn on_busybox(programs: &[&str]) -> Result<Vec<Entry>> {
    let mut entries = busybox_entries()?;
    let mut r = Rootfs::default().library_links();
    for p in programs {
        r.program(p, Path::new(p))?;
    }
    entries.extend(r.into_entries());
    Ok(entries)
}

fn busybox_config(reference: &str, entrypoint: &str, extra_env: &[&str]) -> Config {
    let mut env = vec![PATH_ENV.to_string()];
    env.extend(extra_env.iter().map(|e| e.to_string()));
    Config {
        entrypoint: vec![entrypoint.into()],
        env,
        labels: labels(reference),
        ..Config::default()
    }
}

/// Debian's curl on busybox (`sh`, `tar`, `gzip` ...), as the curl images the examples use.
pub fn curl(reference: &str) -> Result<Image> {
    Ok(Image {
        entries: on_busybox(&["/usr/bin/curl"])?,
        config: busybox_config(reference, "curl", &[]),
    })
}

/// Debian's git (the command, its HTTP transport and `git daemon`) on busybox: clones, and
/// makes and serves repositories.
pub fn git(reference: &str) -> Result<Image> {
    let mut entries = on_busybox(&[
        "/usr/bin/git",
        "/usr/lib/git-core/git-remote-http",
        "/usr/lib/git-core/git-daemon",
    ])?;
    entries.extend([
        Entry::symlink("/usr/lib/git-core/git-remote-https", "git-remote-http"),
        // `git daemon` runs `git upload-pack` from git's exec path.
        Entry::symlink("/usr/lib/git-core/git", "../../bin/git"),
        Entry::symlink("/usr/lib/git-core/git-upload-pack", "git"),
        Entry::dir("/git", 0o755),
    ]);
    let mut config = busybox_config(reference, "git", &["HOME=/root"]);
    config.working_dir = "/git".into();
    Ok(Image { entries, config })
}

/// Builds every image above and pushes it to the cluster's registry under its mirrored name.
pub fn push_all(node: &Node) -> Result<()> {
    let standin = paths::static_product_binary("osartifact-standin")?;
    node.push_image(
        "auroraboot",
        &auroraboot_standin(&standin)?,
        &local_reference(AURORABOOT),
    )?;
    node.push_image("buildah", &buildah()?, &local_reference(BUILDAH))?;
    node.push_image(
        "os-core",
        &kairos_os(OS_CORE, "core")?,
        &local_reference(OS_CORE),
    )?;
    node.push_image(
        "os-standard",
        &kairos_os(OS_STANDARD, "standard")?,
        &local_reference(OS_STANDARD),
    )?;
    for (i, (reference, program)) in BUNDLES.iter().enumerate() {
        node.push_image(
            &format!("bundle-{i}"),
            &bundle(reference, program),
            &local_reference(reference),
        )?;
    }
    node.push_image("git", &git(GIT_IMAGE)?, &local_reference(GIT_IMAGE))?;
    for (i, reference) in CURL_IMAGES.iter().enumerate() {
        node.push_image(
            &format!("curl-{i}"),
            &curl(reference)?,
            &local_reference(reference),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_map_to_the_same_repository_path_in_the_local_registry() {
        let r = net::registry();
        assert_eq!(
            local_reference("quay.io/kairos/auroraboot:v0.24.0"),
            format!("{r}/kairos/auroraboot:v0.24.0")
        );
        assert_eq!(
            local_reference("curlimages/curl:latest"),
            format!("{r}/curlimages/curl:latest")
        );
        assert_eq!(local_reference("localhost:5000/x:1"), format!("{r}/x:1"));
    }
}
