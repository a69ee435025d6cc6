//! build-iso and netboot with the real mksquashfs, mkfs.vfat, mcopy and xorriso.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::process::Command;

use super::{RELEASE, args, kairos_rootfs};
use crate::iso::build_iso_in;
use crate::tools::test_support::require;

const TOOLS: &[&str] = &["mksquashfs", "xorriso", "mkfs.vfat", "mcopy"];

/// The files of an ISO, as xorriso lists them.
fn iso_files(iso: &Path) -> Vec<String> {
    let out = Command::new("xorriso")
        .args(["-indev", iso.to_str().unwrap(), "-find", "/", "-type", "f"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().trim_matches('\'').to_string())
        .collect();
    v.sort();
    v
}

fn iso_cat(iso: &Path, inside: &str, tmp: &Path) -> String {
    let dest = tmp.join("cat.out");
    let _ = fs::remove_file(&dest);
    let st = Command::new("xorriso")
        .args([
            "-osirrox",
            "on",
            "-indev",
            iso.to_str().unwrap(),
            "-extract",
            inside,
            dest.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    fs::read_to_string(&dest).unwrap()
}

fn temp_entries(dir: &Path) -> usize {
    fs::read_dir(dir).unwrap().count()
}

#[test]
fn build_iso_then_netboot() {
    require(TOOLS);
    let t = tempfile::tempdir().unwrap();
    let (root, out, tmp) = (
        t.path().join("rootfs"),
        t.path().join("work"),
        t.path().join("tmp"),
    );
    fs::create_dir_all(&tmp).unwrap();
    kairos_rootfs(&root, RELEASE);
    let cc = t.path().join("cloud-config.yaml");
    fs::write(&cc, "#cloud-config\nhostname: test\n").unwrap();
    let overlay = t.path().join("overlay-iso");
    fs::create_dir_all(overlay.join("extra")).unwrap();
    fs::write(overlay.join("extra/readme.txt"), "from the overlay").unwrap();

    build_iso_in(
        &args(&[
            "--override-name",
            "test",
            "--date=false",
            "--output",
            out.to_str().unwrap(),
            "--cloud-config",
            cc.to_str().unwrap(),
            "--overlay-iso",
            overlay.to_str().unwrap(),
            "--loglevel",
            "debug",
            "--arch",
            "amd64",
            &format!("dir:{}", root.display()),
        ]),
        &tmp,
    )
    .unwrap();

    let iso = out.join("test.iso");
    let files = iso_files(&iso);
    for want in [
        "/rootfs.squashfs",
        "/boot/kernel",
        "/boot/initrd",
        "/boot/uefi.img",
        "/boot/grub2/grub.cfg",
        "/EFI/BOOT/grub.cfg",
        "/config.yaml",
        "/extra/readme.txt",
    ] {
        assert!(
            files.iter().any(|f| f == want),
            "{want} missing from {files:?}"
        );
    }
    assert_eq!(
        iso_cat(&iso, "/config.yaml", t.path()),
        "#cloud-config\nhostname: test\n"
    );
    assert!(iso_cat(&iso, "/boot/grub2/grub.cfg", t.path()).contains("menuentry"));
    assert_eq!(iso_cat(&iso, "/boot/kernel", t.path()), "KERNEL");

    let sum = fs::read_to_string(out.join("test.iso.sha256")).unwrap();
    assert_eq!(
        sum,
        format!("{} test.iso\n", crate::digest::sha256_file(&iso).unwrap())
    );
    assert_eq!(temp_entries(&tmp), 0, "the temporary tree is removed");

    // netboot: the three files, 0600, with the ISO's content.
    let nb = t.path().join("nb");
    fs::create_dir(&nb).unwrap();
    crate::iso::netboot(&args(&[
        "--debug",
        iso.to_str().unwrap(),
        nb.to_str().unwrap(),
        "test",
    ]))
    .unwrap();
    for (name, content) in [
        ("test-kernel", Some("KERNEL")),
        ("test-initrd", Some("INITRD")),
        ("test.squashfs", None),
    ] {
        let md = fs::metadata(nb.join(name)).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600, "{name}");
        if let Some(c) = content {
            assert_eq!(fs::read_to_string(nb.join(name)).unwrap(), c);
        }
    }
    let sq = fs::read(nb.join("test.squashfs")).unwrap();
    assert_eq!(&sq[..4], b"hsqs", "a squashfs image");
    let names: Vec<_> = fs::read_dir(&nb)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 3, "no partial files left: {names:?}");

    let err = crate::iso::netboot(&args(&[
        iso.to_str().unwrap(),
        t.path().join("absent").to_str().unwrap(),
        "x",
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let err = crate::iso::netboot(&args(&[
        iso.to_str().unwrap(),
        nb.to_str().unwrap(),
        "x",
        "--debug",
    ]))
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("'--debug' after the first positional"),
        "{err}"
    );
    let err =
        crate::iso::netboot(&args(&[iso.to_str().unwrap(), nb.to_str().unwrap()])).unwrap_err();
    assert_eq!(err.to_string(), "output-artifact-prefix is required");
}

#[test]
fn overlay_grub_cfg_wins_and_date_adds_a_suffix() {
    require(TOOLS);
    let t = tempfile::tempdir().unwrap();
    let (root, out, tmp) = (
        t.path().join("rootfs"),
        t.path().join("work"),
        t.path().join("tmp"),
    );
    fs::create_dir_all(&tmp).unwrap();
    kairos_rootfs(&root, RELEASE);
    let overlay = t.path().join("ov");
    fs::create_dir_all(overlay.join("boot/grub2")).unwrap();
    fs::write(overlay.join("boot/grub2/grub.cfg"), "set timeout=1\n").unwrap();
    build_iso_in(
        &args(&[
            "-n",
            "d",
            "--date",
            "-o",
            out.to_str().unwrap(),
            "--overlay-iso",
            overlay.to_str().unwrap(),
            &format!("dir:{}", root.display()),
        ]),
        &tmp,
    )
    .unwrap();
    let isos: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".iso"))
        .collect();
    assert_eq!(isos.len(), 1);
    assert!(
        isos[0].starts_with("d.20") && isos[0].len() == "d.YYYYMMDD.iso".len(),
        "{isos:?}"
    );
    assert_eq!(
        iso_cat(&out.join(&isos[0]), "/boot/grub2/grub.cfg", t.path()),
        "set timeout=1\n"
    );
}

#[test]
fn build_iso_refuses_what_auroraboot_refuses() {
    require(TOOLS);
    let t = tempfile::tempdir().unwrap();
    let (root, out, tmp) = (
        t.path().join("rootfs"),
        t.path().join("work"),
        t.path().join("tmp"),
    );
    fs::create_dir_all(&tmp).unwrap();
    kairos_rootfs(&root, RELEASE);
    let dir = format!("dir:{}", root.display());
    let o = out.to_str().unwrap().to_string();
    let run = |v: &[&str]| build_iso_in(&args(v), &tmp).unwrap_err();

    assert_eq!(
        run(&["--overlay-iso", "/nope", &dir]).to_string(),
        "invalid path '/nope'"
    );
    assert!(
        run(&["-o", &o, &dir, "--overlay-iso", "/nope"])
            .to_string()
            .contains("after the first positional")
    );
    assert_eq!(
        run(&["--bogus", &dir]).to_string(),
        "flag provided but not defined: -bogus"
    );
    // --debug is an app-level flag; build-iso has --loglevel instead.
    assert_eq!(
        run(&["--debug", &dir]).to_string(),
        "flag provided but not defined: -debug"
    );
    assert_eq!(run(&["-o", &o]).to_string(), "No source defined");
    assert!(
        run(&["-o", &o, "quay.io/x/y:1"])
            .to_string()
            .contains("not supported by the stand-in")
    );
    let empty = t.path().join("empty.yaml");
    fs::write(&empty, "").unwrap();
    assert!(
        run(&["-c", empty.to_str().unwrap(), &dir])
            .to_string()
            .contains("is empty")
    );
    assert!(format!("{:#}", run(&["-c", "/no/such.yaml", &dir])).contains("No such file"));

    // A kairos-release without the architecture (e.g. only a version string's keys).
    fs::write(root.join("etc/kairos-release"), "KAIROS_VERSION=v3.6.0\n").unwrap();
    assert_eq!(
        run(&["-o", &o, &dir]).to_string(),
        "KAIROS_ARCH/KAIROS_TARGETARCH not found in etc/kairos-release"
    );
    fs::write(root.join("etc/kairos-release"), "v3.6.0\n").unwrap();
    assert!(format!("{:#}", run(&["-o", &o, &dir])).contains("unexpected character"));
    fs::write(root.join("etc/kairos-release"), RELEASE).unwrap();

    // An --overlay-rootfs straight from a ConfigMap volume (kubelet's ..data links) meets the
    // rootfs's real /etc and fails as rsync does (builder-cli.md §4.2).
    let vol = t.path().join("cm");
    fs::create_dir_all(vol.join("..2026_06_17_00_00_00.1/etc")).unwrap();
    fs::write(vol.join("..2026_06_17_00_00_00.1/etc/motd"), "hi").unwrap();
    symlink("..2026_06_17_00_00_00.1", vol.join("..data")).unwrap();
    symlink("..data/etc", vol.join("etc")).unwrap();
    let err = format!(
        "{:#}",
        run(&["-o", &o, "--overlay-rootfs", vol.to_str().unwrap(), &dir])
    );
    assert!(err.contains("Failed installing OS packages"), "{err}");
    assert!(
        err.contains("could not make way for new symlink: etc"),
        "{err}"
    );
    assert_eq!(
        temp_entries(&tmp),
        0,
        "the temporary tree is removed on failure too"
    );
    assert!(!out.join("d.iso").exists());
}
