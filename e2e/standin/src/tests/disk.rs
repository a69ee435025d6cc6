//! The disk action: its refusals, the loop-device privilege check, a real raw image (as root
//! with loop devices), the VHD footer and the GCE tarball.

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use super::{RELEASE, args, kairos_rootfs};
use crate::auroraboot::APP_FLAGS;
use crate::cli::parse_go;
use crate::disk::{self, MB, chs, raw_to_gce, raw_to_vhd, vhd_footer};
use crate::tools::test_support::require;

/// A rootfs with the EFI binaries a Kairos image ships.
fn disk_rootfs(dir: &Path) {
    kairos_rootfs(dir, RELEASE);
    fs::create_dir_all(dir.join("usr/share/efi/x86_64")).unwrap();
    fs::write(dir.join("usr/share/efi/x86_64/shim.efi"), "SHIM").unwrap();
    fs::write(dir.join("usr/share/efi/x86_64/grub.efi"), "GRUB").unwrap();
}

/// Runs the top-level action with `sets` (and extra app flags) against a loop control path.
fn run(extra: &[&str], sets: &[&str], tmp: &Path, loop_control: &Path) -> anyhow::Result<()> {
    let mut v: Vec<String> = args(extra);
    for s in sets {
        v.push("--set".into());
        v.push(s.to_string());
    }
    let parsed = parse_go(APP_FLAGS, &v).unwrap();
    assert!(parsed.rest.is_empty());
    disk::run_with(&parsed.flags, tmp, loop_control)
}

fn base_sets(state: &Path, src: &Path, format: &str) -> Vec<String> {
    vec![
        format!("{format}=true"),
        "disable_netboot=true".into(),
        "disable_http_server=true".into(),
        format!("state_dir={}", state.display()),
        format!("container_image=dir:{}", src.display()),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn refusals() {
    let t = tempfile::tempdir().unwrap();
    let (src, state) = (t.path().join("rootfs"), t.path().join("work"));
    disk_rootfs(&src);
    let lc = t.path().join("no-loop-control");
    let sets = base_sets(&state, &src, "disk.raw");
    let err = |sets: &[&str]| format!("{:#}", run(&[], sets, t.path(), &lc).unwrap_err());

    let mut s = strs(&sets);
    s.retain(|x| !x.starts_with("disable_netboot"));
    assert!(err(&s).contains("--set disable_netboot=true is required"));
    let mut s = strs(&sets);
    s.push("disable_http_server=True");
    assert!(
        err(&s).contains("disable_http_server=true is required"),
        "only the literal true counts"
    );
    let mut s = strs(&sets);
    s.push("disk.vhd=true");
    assert!(err(&s).contains("several disk formats set (raw, vhd)"));
    let mut s = strs(&sets);
    s.retain(|x| !x.starts_with("disk.raw"));
    assert!(err(&s).contains("no disk format set"));
    let mut s = strs(&sets);
    s.push("container_image=docker://quay.io/x:1");
    assert!(err(&s).contains("only dir:PATH"));
    let mut s = strs(&sets);
    s.push("disk.size=10G");
    assert!(err(&s).contains("disk.size=10G: not a number of MB"));
    let mut s = strs(&sets);
    s.push("novalue");
    assert!(err(&s).contains("is not key=value"));
    // A comma inside a --set value becomes a second value (urfave's StringSliceFlag).
    let bad = format!("state_dir={},x", state.display());
    let mut s = strs(&sets);
    s.push(&bad);
    assert!(err(&s).contains("'x' is not key=value"));

    let empty = t.path().join("empty.yaml");
    fs::write(&empty, "\n").unwrap();
    let e = format!(
        "{:#}",
        run(
            &["--cloud-config", empty.to_str().unwrap()],
            &strs(&sets),
            t.path(),
            &lc
        )
        .unwrap_err()
    );
    assert!(e.contains("is empty"), "{e}");

    // The raw builder needs FLAVOR and MODEL.
    fs::write(
        src.join("etc/kairos-release"),
        "KAIROS_ARCH=amd64\nKAIROS_FLAVOR=x\n",
    )
    .unwrap();
    assert!(err(&strs(&sets)).contains("failed to get model: KAIROS_MODEL key not found"));
    assert!(!state.join("temp-rootfs").exists() && !state.join("config.yaml").exists());
}

#[test]
fn without_loop_devices_it_fails_like_an_unprivileged_container() {
    require(&["mkfs.ext4"]);
    let t = tempfile::tempdir().unwrap();
    let (src, state, tmp) = (
        t.path().join("rootfs"),
        t.path().join("work"),
        t.path().join("tmp"),
    );
    disk_rootfs(&src);
    fs::create_dir(&tmp).unwrap();
    let lc = t.path().join("dev/loop-control");
    let sets = base_sets(&state, &src, "disk.raw");
    let e = format!("{:#}", run(&[], &strs(&sets), &tmp, &lc).unwrap_err());
    assert!(
        e.contains("failed to attach") && e.contains("loop-control"),
        "{e}"
    );
    assert!(e.contains("privileged container"), "{e}");
    assert!(e.contains("No such file or directory"), "{e}");
    assert_eq!(
        fs::read_dir(&tmp).unwrap().count(),
        0,
        "temporary images removed"
    );
    let left: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "state dir cleaned: {left:?}");
}

fn loop_devices_usable() -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    root && Path::new("/dev/loop-control").exists()
}

/// Start and end sectors of partition `n` as `sgdisk -i` reports them.
fn partition_sectors(raw: &Path, n: u32) -> (u64, u64) {
    let out = Command::new("sgdisk")
        .args(["-i", &n.to_string(), raw.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} in {text}"));
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("First sector:"), field("Last sector:"))
}

/// Reads a file from an ext file system inside the raw image with debugfs.
fn read_from_partition(raw: &Path, n: u32, file: &str, tmp: &Path) -> String {
    let (first, last) = partition_sectors(raw, n);
    let mut f = fs::File::open(raw).unwrap();
    let mut buf = vec![0u8; ((last - first + 1) * 512) as usize];
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(first * 512)).unwrap();
    f.read_exact(&mut buf).unwrap();
    let img = tmp.join(format!("part{n}.img"));
    fs::write(&img, buf).unwrap();
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {file}"), img.to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn raw_image_with_a_gpt_when_loop_devices_are_usable() {
    require(&["mkfs.ext4", "mkfs.vfat", "mcopy", "sgdisk", "debugfs"]);
    if !loop_devices_usable() {
        eprintln!(
            "not root or no /dev/loop-control: the raw image test needs real loop devices; only the refusal tests ran"
        );
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let (src, state, tmp) = (
        t.path().join("rootfs"),
        t.path().join("work"),
        t.path().join("tmp"),
    );
    disk_rootfs(&src);
    fs::create_dir(&tmp).unwrap();
    let mut sets = base_sets(&state, &src, "disk.raw");
    sets.push("disk.size=400".into());
    sets.push("arch=amd64".into());
    run(
        &["--debug"],
        &strs(&sets),
        &tmp,
        Path::new("/dev/loop-control"),
    )
    .unwrap();

    let raw = state.join("kairos-opensuse-leap-15.6-core-amd64-generic-v3.6.0.raw");
    let md = fs::metadata(&raw).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o777);
    assert_eq!(md.len(), 400 * MB, "disk.size grows the image");
    let names: Vec<_> = fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "only the raw is left in the state dir: {names:?}"
    );
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);

    let out = Command::new("sgdisk")
        .args(["-p", raw.to_str().unwrap()])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    for (n, name, code) in [
        ("1", "efi", "EF00"),
        ("2", "oem", "8300"),
        ("3", "recovery", "8300"),
    ] {
        assert!(
            table.lines().any(|l| {
                let w: Vec<_> = l.split_whitespace().collect();
                w.first() == Some(&n) && w.contains(&code) && w.last() == Some(&name)
            }),
            "partition {n} {name} {code} in:\n{table}"
        );
    }
    let (first, _) = partition_sectors(&raw, 1);
    assert_eq!(first, 2048);
    // The default user lands in the OEM partition when no cloud-config is given.
    let custom = read_from_partition(&raw, 2, "/90_custom.yaml", t.path());
    assert_eq!(custom, disk::DEFAULT_CLOUD_CONFIG);
    assert!(read_from_partition(&raw, 3, "/etc/cos/grub.cfg", t.path()).contains("menuentry"));

    // With a cloud-config and a missing shim.
    fs::remove_file(src.join("usr/share/efi/x86_64/shim.efi")).unwrap();
    let cc = t.path().join("cc.yaml");
    fs::write(&cc, "#cloud-config\nusers: []\n").unwrap();
    let e = format!(
        "{:#}",
        run(
            &["--cloud-config", cc.to_str().unwrap()],
            &strs(&base_sets(&state, &src, "disk.vhd")),
            &tmp,
            Path::new("/dev/loop-control")
        )
        .unwrap_err()
    );
    assert!(e.contains("could not find any shim file to copy"), "{e}");
}

#[test]
fn vhd_footer_bytes_and_checksum() {
    let size = 64 * MB - 512;
    let f = vhd_footer(size, 0x1234_5678, "0123456789abcdef-ignored");
    assert_eq!(&f[0..8], b"conectix");
    assert_eq!(&f[8..12], &[0, 0, 0, 2]);
    assert_eq!(&f[12..16], &[0, 1, 0, 0]);
    assert_eq!(&f[16..24], &[0xff; 8]);
    assert_eq!(&f[24..28], &0x1234_5678u32.to_be_bytes());
    assert_eq!(&f[28..32], b"elem");
    assert_eq!(&f[36..40], b"suse");
    assert_eq!(&f[40..48], &size.to_be_bytes());
    assert_eq!(&f[48..56], &size.to_be_bytes());
    assert_eq!(&f[60..64], &[0, 0, 0, 2]);
    assert_eq!(&f[68..84], b"0123456789abcdef");
    assert!(f[84..].iter().all(|b| *b == 0));
    let stored = u32::from_be_bytes(f[64..68].try_into().unwrap());
    let mut zeroed = f;
    zeroed[64..68].copy_from_slice(&[0; 4]);
    let sum: u32 = zeroed.iter().map(|b| u32::from(*b)).sum();
    assert_eq!(stored, !sum);
    // CHS per the VHD specification.
    assert_eq!(chs(131_071), (963, 8, 17));
    assert_eq!(chs(65535 * 16 * 255 + 10), (65535, 16, 255));
    let (c, h, s) = chs(size / 512);
    assert_eq!(u16::from_be_bytes([f[56], f[57]]) as u64, c);
    assert_eq!((f[58] as u64, f[59] as u64), (h, s));

    // The conversion: renamed, whole MiBs, footer at the end describing the disk before it.
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("kairos-x.raw");
    fs::write(&raw, vec![1u8; 3 * MB as usize + 100]).unwrap();
    let vhd = raw_to_vhd(&raw).unwrap();
    assert!(!raw.exists());
    assert_eq!(vhd, t.path().join("kairos-x.raw.vhd"));
    let bytes = fs::read(&vhd).unwrap();
    assert_eq!(bytes.len() as u64, 4 * MB);
    let footer = &bytes[bytes.len() - 512..];
    assert_eq!(&footer[0..8], b"conectix");
    assert_eq!(
        u64::from_be_bytes(footer[48..56].try_into().unwrap()),
        4 * MB - 512
    );
}

#[test]
fn gce_tarball_holds_one_disk_raw() {
    let t = tempfile::tempdir().unwrap();
    let raw = t.path().join("kairos-x.raw");
    fs::write(&raw, b"disk").unwrap();
    fs::set_permissions(&raw, fs::Permissions::from_mode(0o777)).unwrap();
    // One MiB stands in for the GiB unit so the test does not compress a gigabyte.
    let gce = raw_to_gce(&raw, MB).unwrap();
    assert_eq!(gce, t.path().join("kairos-x.raw.gce.tar.gz"));
    assert!(!raw.exists(), "the raw is removed");
    let mut archive =
        tar::Archive::new(flate2::read::GzDecoder::new(fs::File::open(&gce).unwrap()));
    let mut entries = Vec::new();
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        entries.push((
            e.path().unwrap().display().to_string(),
            e.header().mode().unwrap(),
            data,
        ));
    }
    assert_eq!(entries.len(), 1);
    let (name, mode, data) = &entries[0];
    assert_eq!(name, "disk.raw");
    assert_eq!(*mode, 0o777);
    assert_eq!(data.len() as u64, MB, "rounded up to the next whole unit");
    assert_eq!(&data[..4], b"disk");
}
