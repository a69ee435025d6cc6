//! `auroraboot build-iso` and `auroraboot netboot`.
//!
//! build-iso follows AuroraBoot's `BuildISOAction`: the rootfs (and `--overlay-rootfs`) copied
//! into a temporary tree with rsync semantics, the ISO tree built from the live GRUB files, the
//! cloud-config (`config.yaml`) and `--overlay-iso`, the kernel and initrd copied to
//! `boot/kernel` and `boot/initrd`, an EFI image at `boot/uefi.img`, `rootfs.squashfs` made by
//! mksquashfs, the ISO 9660 image (label `COS_LIVE`) made by xorriso, and `<N>.iso.sha256`.
//! netboot extracts `rootfs.squashfs`, `boot/kernel` and `boot/initrd` into `PREFIX.squashfs`,
//! `PREFIX-kernel` and `PREFIX-initrd`, created 0600 as kairos-sdk's `ExtractFileFromIso` does.

use std::fs::{self, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::auroraboot::refuse_extra;
use crate::cli::{self, Kind, Spec};
use crate::copy::archive_copy;
use crate::release::Release;
use crate::{digest, log, tools};

pub const BUILD_ISO_FLAGS: &[Spec] = &[
    Spec::new(&["cloud-config", "c"], Kind::String),
    Spec::new(&["override-name", "n"], Kind::String),
    Spec::new(&["output", "o"], Kind::String),
    Spec::new(&["date"], Kind::Bool),
    Spec::new(&["overlay-rootfs"], Kind::String),
    Spec::new(&["overlay-iso"], Kind::String),
    Spec::new(&["loglevel"], Kind::String),
    Spec::new(&["arch"], Kind::String),
    Spec::new(&["extend-live-cmdline"], Kind::String),
    Spec::new(&["allow-insecure-registries"], Kind::Bool),
];

pub const NETBOOT_FLAGS: &[Spec] = &[Spec::new(&["debug"], Kind::Bool)];

pub const ISO_LABEL: &str = "COS_LIVE";
pub const EFI_LABEL: &str = "COS_GRUB";
/// The EFI GRUB config that chainloads the live one (AuroraBoot's `GrubEfiCfg`).
pub const GRUB_EFI_CFG: &str = "search --no-floppy --file --set=root /boot/kernel\n\
                                set prefix=($root)/boot/grub2\n\
                                configfile $prefix/grub.cfg";

/// Reads a cloud-config file as AuroraBoot does: it must exist and not be empty.
pub fn read_cloud_config(path: &str) -> Result<String> {
    let text =
        fs::read_to_string(path).with_context(|| format!("reading cloud config: open {path}"))?;
    if text.trim().is_empty() {
        bail!("reading cloud config: the cloud config file {path} is empty");
    }
    if text.contains("[[[") {
        log::warn(format!(
            "{path} contains '[[[': AuroraBoot renders cloud-configs as Go templates with [[[ ]]] delimiters, so it would be altered"
        ));
    }
    Ok(text)
}

/// kairos-agent's `CreateDirStructure`.
fn create_dir_structure(root: &Path) -> Result<()> {
    for (dir, mode) in [
        ("run", 0o755),
        ("dev", 0o755),
        ("boot", 0o755),
        ("usr/local", 0o755),
        ("oem", 0o755),
        ("proc", 0o555),
        ("sys", 0o555),
        ("tmp", 0o755),
    ] {
        let p = root.join(dir);
        if !p.exists() {
            fs::create_dir_all(&p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(mode))?;
        }
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
    Ok(())
}

/// Finds the first file in `root/boot` whose name starts with one of `prefixes` (elemental's
/// `FindFileWithPrefix`: directory order, symlinks followed inside the rootfs).
fn find_with_prefix(root: &Path, prefixes: &[&str]) -> Result<PathBuf> {
    let boot = root.join("boot");
    let mut names: Vec<_> = fs::read_dir(&boot)
        .with_context(|| format!("open {}", boot.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .collect();
    names.sort();
    for name in names {
        let Some(n) = name.to_str() else { continue };
        if !prefixes.iter().any(|p| n.starts_with(p)) {
            continue;
        }
        let path = boot.join(&name);
        let md = fs::symlink_metadata(&path)?;
        if md.is_dir() {
            continue;
        }
        if md.file_type().is_symlink() {
            let target = fs::read_link(&path)?;
            let resolved = if target.is_absolute() {
                root.join(target.strip_prefix("/").unwrap_or(&target))
            } else {
                boot.join(&target)
            };
            if resolved.is_file() {
                return Ok(resolved);
            }
            continue;
        }
        return Ok(path);
    }
    bail!("No file found with prefixes: [{}]", prefixes.join(" "))
}

/// Kernel and initrd of a rootfs, by AuroraBoot's name prefixes.
pub fn find_kernel_initrd(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let kernel = find_with_prefix(root, &["uImage", "Image", "zImage", "vmlinuz", "image"])
        .context("No Kernel file found")?;
    let initrd =
        find_with_prefix(root, &["initrd", "initramfs"]).context("No initrd file found")?;
    Ok((kernel, initrd))
}

/// Shim and GRUB EFI binaries a rootfs may carry, per architecture (kairos-sdk's lists).
pub fn efi_candidates(arch: &str, which: &str) -> Vec<&'static str> {
    let arm = matches!(arch, "arm64" | "aarch64");
    match (which, arm) {
        ("shim", false) => vec![
            "usr/share/efi/x86_64/shim.efi",
            "usr/lib/shim/shimx64.efi.dualsigned",
            "usr/lib/shim/shimx64.efi.signed.latest",
            "usr/lib/shim/shimx64.efi.signed",
            "boot/efi/EFI/fedora/shim.efi",
            "boot/efi/EFI/rocky/shim.efi",
            "boot/efi/EFI/redhat/shim.efi",
            "boot/efi/EFI/almalinux/shim.efi",
        ],
        ("shim", true) => vec![
            "usr/share/efi/aarch64/shim.efi",
            "usr/lib/shim/shimaa64.efi.dualsigned",
            "usr/lib/shim/shimaa64.efi.signed.latest",
            "usr/lib/shim/shimaa64.efi.signed",
            "boot/efi/EFI/fedora/shim.efi",
            "boot/efi/EFI/rocky/shim.efi",
            "boot/efi/EFI/redhat/shim.efi",
            "boot/efi/EFI/almalinux/shim.efi",
        ],
        (_, false) => vec![
            "usr/share/efi/x86_64/grub.efi",
            "usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed",
            "boot/efi/EFI/fedora/grubx64.efi",
            "boot/efi/EFI/rocky/grubx64.efi",
            "boot/efi/EFI/redhat/grubx64.efi",
            "boot/efi/EFI/almalinux/grubx64.efi",
        ],
        (_, true) => vec![
            "usr/share/efi/aarch64/grub.efi",
            "usr/lib/grub/arm64-efi-signed/grubaa64.efi.signed",
            "boot/efi/EFI/fedora/grubaa64.efi",
            "boot/efi/EFI/rocky/grubaa64.efi",
            "boot/efi/EFI/redhat/grubaa64.efi",
            "boot/efi/EFI/almalinux/grubaa64.efi",
        ],
    }
}

/// The shim's fallback name (what firmware boots without a boot entry).
pub fn fallback_efi(arch: &str) -> &'static str {
    if matches!(arch, "arm64" | "aarch64") {
        "bootaa64.efi"
    } else {
        "bootx64.efi"
    }
}

/// Copies the shim (also under its fallback name) and GRUB from the rootfs into `efi/EFI/BOOT`.
/// Returns false when the rootfs has none of them.
pub fn copy_efi_binaries(root: &Path, arch: &str, efi: &Path) -> Result<bool> {
    let boot = efi.join("EFI/BOOT");
    fs::create_dir_all(&boot)?;
    let mut found = true;
    for which in ["shim", "grub"] {
        let hit = efi_candidates(arch, which)
            .into_iter()
            .find(|c| root.join(c).is_file());
        let Some(hit) = hit else {
            found = false;
            continue;
        };
        let name = Path::new(hit)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("x.efi")
            .trim_end_matches(".signed.latest")
            .trim_end_matches(".dualsigned")
            .trim_end_matches(".signed")
            .to_string();
        fs::copy(root.join(hit), boot.join(&name))?;
        if which == "shim" {
            fs::copy(root.join(hit), boot.join(fallback_efi(arch)))?;
        }
        log::debug(format!("Copying {hit} to {}", boot.join(&name).display()));
    }
    Ok(found)
}

/// Size of a directory tree in bytes (regular files by length, plus a block per entry).
pub fn dir_size(path: &Path) -> Result<u64> {
    let mut total = 0;
    let md = fs::symlink_metadata(path)?;
    if md.is_dir() {
        for e in fs::read_dir(path)? {
            total += dir_size(&e?.path())? + 4096;
        }
    } else if md.is_file() {
        total += md.len();
    }
    Ok(total)
}

/// A FAT image of `size` bytes labelled `label` holding the top-level entries of `dir`.
pub fn make_vfat(img: &Path, size: u64, label: &str, dir: &Path) -> Result<()> {
    let f = fs::File::create(img)?;
    f.set_len(size)?;
    drop(f);
    tools::run(
        "mkfs.vfat",
        ["-n".as_ref(), label.as_ref(), img.as_os_str()],
    )?;
    let mut names: Vec<_> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    for entry in names {
        tools::run(
            "mcopy",
            [
                "-s".as_ref(),
                "-i".as_ref(),
                img.as_os_str(),
                entry.as_os_str(),
                "::".as_ref(),
            ],
        )?;
    }
    Ok(())
}

/// The live menu the stand-in writes when no overlay provides `boot/grub2/grub.cfg`.
fn default_grub_cfg(extra_cmdline: &str) -> String {
    let extra = if extra_cmdline.is_empty() {
        String::new()
    } else {
        format!(" {extra_cmdline}")
    };
    format!(
        "set timeout=5\nset default=0\n\nmenuentry \"Kairos\" {{\n    \
         linux /boot/kernel cdroot root=live:CDLABEL={ISO_LABEL} rd.live.dir=/ \
         rd.live.squashimg=rootfs.squashfs console=tty1 console=ttyS0 rd.cos.disable \
         install-mode{extra}\n    initrd /boot/initrd\n}}\n"
    )
}

pub fn build_iso(args: &[String]) -> Result<()> {
    build_iso_in(args, &std::env::temp_dir())
}

/// build-iso with its temporary files under `tmp_base` (Go's `os.TempDir()`: `$TMPDIR` or /tmp).
pub fn build_iso_in(args: &[String], tmp_base: &Path) -> Result<()> {
    let p = cli::parse_go(BUILD_ISO_FLAGS, args)?;
    if p.flags.help {
        println!("auroraboot build-iso [flags] <source>");
        return Ok(());
    }
    cli::refuse_flags_after_positional(&p)?;
    log::set_level(p.flags.string("loglevel").unwrap_or("info"));
    let Some(source) = p.rest.first() else {
        bail!("No source defined");
    };
    refuse_extra("build-iso", &p.rest, 1, "<source>")?;
    let f = &p.flags;
    for path in [f.string("overlay-iso"), f.string("overlay-rootfs")]
        .into_iter()
        .flatten()
    {
        if !path.is_empty() && fs::symlink_metadata(path).is_err() {
            bail!("invalid path '{path}'");
        }
    }
    let cloud_config = match f.string("cloud-config").filter(|c| !c.is_empty()) {
        Some(path) => Some(read_cloud_config(path)?),
        None => None,
    };
    let Some(src) = source.strip_prefix("dir:") else {
        bail!(
            "source '{source}' is not supported by the stand-in: only dir:PATH sources are \
             (AuroraBoot would pull or download it)"
        );
    };
    let src = Path::new(src);
    if !src.is_dir() {
        bail!("source directory {} does not exist", src.display());
    }
    let release = Release::read(src)?;
    let arch = release.arch()?.to_string();
    if release.get("FLAVOR").is_err() {
        log::warn(
            "no KAIROS_FLAVOR in the rootfs: AuroraBoot reads it to decide on the Ubuntu EFI path",
        );
    }
    let name = match f.string("override-name").filter(|n| !n.is_empty()) {
        Some(n) => n.to_string(),
        None => format!("kairos-{}", release.name()),
    };
    let output = PathBuf::from(f.string("output").filter(|o| !o.is_empty()).unwrap_or("."));
    let iso_name = if f.bool("date") {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        format!("{name}.{}.iso", log::yyyymmdd(now))
    } else {
        format!("{name}.iso")
    };
    log::info(format!(
        "Generating iso '{name}' from '{}' to '{}'",
        src.display(),
        output.display()
    ));

    let tmp = tempfile::Builder::new()
        .prefix("auroraboot-iso")
        .tempdir_in(tmp_base)
        .context("creating the temporary directory")?;
    let root = tmp.path().join("rootfs");
    let iso = tmp.path().join("iso");
    fs::create_dir_all(&root)?;
    fs::create_dir_all(&iso)?;
    fs::create_dir_all(&output)
        .with_context(|| format!("Failed creating output folder: {}", output.display()))?;

    log::info("Preparing squashfs root...");
    let mut rootfs_sources = vec![src.to_path_buf()];
    rootfs_sources.extend(
        f.string("overlay-rootfs")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
    );
    for s in &rootfs_sources {
        archive_copy(s, &root).context("Failed installing OS packages")?;
    }
    create_dir_structure(&root).context("Failed creating root directory structure")?;

    log::info("Preparing ISO image root tree...");
    // What AuroraBoot's image ships under /grub2 lands here first; the stand-in has no GRUB
    // artifacts, only the directory they create, so overlays meet the same tree shape.
    fs::create_dir_all(iso.join("boot/grub2"))?;
    if let Some(cc) = &cloud_config {
        fs::write(iso.join("config.yaml"), cc)?;
    }
    if let Some(overlay) = f.string("overlay-iso").filter(|s| !s.is_empty()) {
        archive_copy(Path::new(overlay), &iso).context("Failed installing ISO image packages")?;
    }

    let (kernel, initrd) = find_kernel_initrd(&root).context("Failed preparing ISO's root tree")?;
    log::debug(format!(
        "Copying Kernel file {} to iso root tree",
        kernel.display()
    ));
    fs::create_dir_all(iso.join("boot"))?;
    fs::copy(&kernel, iso.join("boot/kernel"))?;
    log::debug(format!(
        "Copying initrd file {} to iso root tree",
        initrd.display()
    ));
    fs::copy(&initrd, iso.join("boot/initrd"))?;

    log::info("Creating EFI image...");
    let efi = tmp.path().join("efi");
    if !copy_efi_binaries(&root, &arch, &efi)? {
        log::warn(
            "no shim/GRUB EFI binaries in the rootfs: AuroraBoot falls back to the ones its image \
             ships; the stand-in has none, so the EFI image holds only the GRUB config",
        );
    }
    fs::write(efi.join("EFI/BOOT/grub.cfg"), GRUB_EFI_CFG)?;
    fs::create_dir_all(iso.join("EFI/BOOT"))?;
    fs::write(iso.join("EFI/BOOT/grub.cfg"), GRUB_EFI_CFG)?;
    if release
        .get("FLAVOR")
        .is_ok_and(|fl| fl.to_lowercase().contains("ubuntu"))
    {
        for base in [&efi, &iso] {
            fs::create_dir_all(base.join("EFI/ubuntu"))?;
            fs::write(base.join("EFI/ubuntu/grub.cfg"), GRUB_EFI_CFG)?;
        }
    }
    let align = 4 << 20;
    let efi_size = dir_size(&efi)? / align * align + align;
    make_vfat(&iso.join("boot/uefi.img"), efi_size, EFI_LABEL, &efi)?;

    let grub_cfg = iso.join("boot/grub2/grub.cfg");
    let extra = f.string("extend-live-cmdline").unwrap_or("");
    if grub_cfg.exists() {
        log::info("boot/grub2/grub.cfg provided by the overlay: not writing the default live menu");
        if !extra.is_empty() {
            log::warn("--extend-live-cmdline has no effect on a grub.cfg the overlay provides");
        }
    } else {
        fs::write(&grub_cfg, default_grub_cfg(extra))?;
    }

    log::info("Creating squashfs...");
    tools::run(
        "mksquashfs",
        [
            root.as_os_str(),
            iso.join("rootfs.squashfs").as_os_str(),
            "-b".as_ref(),
            "1024k".as_ref(),
        ],
    )?;

    log::info("Creating ISO image...");
    let out = output.join(&iso_name);
    if out.exists() {
        log::warn(format!("Overwriting already existing {}", out.display()));
        fs::remove_file(&out)?;
    }
    let efi_img = iso.join("boot/uefi.img");
    tools::run(
        "xorriso",
        [
            "-volid".as_ref(),
            ISO_LABEL.as_ref(),
            "-joliet".as_ref(),
            "on".as_ref(),
            "-padding".as_ref(),
            "0".as_ref(),
            "-outdev".as_ref(),
            out.as_os_str(),
            "-map".as_ref(),
            iso.as_os_str(),
            "/".as_ref(),
            "-chmod".as_ref(),
            "0755".as_ref(),
            "--".as_ref(),
            "-append_partition".as_ref(),
            "2".as_ref(),
            "0xef".as_ref(),
            efi_img.as_os_str(),
            "-boot_image".as_ref(),
            "any".as_ref(),
            "efi_path=--interval:appended_partition_2:all::".as_ref(),
        ],
    )
    .context("Failed creating ISO image")?;
    let sum = digest::sha256_file(&out)?;
    let sum_path = output.join(format!("{iso_name}.sha256"));
    fs::write(&sum_path, format!("{sum} {iso_name}\n"))?;
    fs::set_permissions(&sum_path, fs::Permissions::from_mode(0o644))?;
    drop(tmp);
    log::info(format!("Wrote {}", out.display()));
    Ok(())
}

pub fn netboot(args: &[String]) -> Result<()> {
    let p = cli::parse_go(NETBOOT_FLAGS, args)?;
    if p.flags.help {
        println!("auroraboot netboot [--debug] <iso-file> <output-dir> <output-artifact-prefix>");
        return Ok(());
    }
    cli::refuse_flags_after_positional(&p)?;
    let arg = |i: usize| p.rest.get(i).filter(|s| !s.is_empty());
    let Some(iso) = arg(0) else {
        bail!("iso-file is required")
    };
    let Some(output) = arg(1) else {
        bail!("output-dir is required")
    };
    let Some(prefix) = arg(2) else {
        bail!("output-artifact-prefix is required")
    };
    refuse_extra(
        "netboot",
        &p.rest,
        3,
        "<iso-file> <output-dir> <output-artifact-prefix>",
    )?;
    log::set_debug(p.flags.bool("debug"));
    let output = Path::new(output);
    if !output.exists() {
        bail!("destination directory {} does not exist", output.display());
    }
    log::info(format!(
        "Extracting netboot artifacts prefix={prefix} source={iso} destination={}",
        output.display()
    ));
    // go-diskfs opens the image O_RDWR|O_EXCL: a read-only ISO (or volume) fails there.
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL)
        .open(iso)
        .with_context(|| {
            format!("could not open ISO {iso} read-write (go-diskfs opens it O_RDWR|O_EXCL)")
        })?;
    for (inside, name) in [
        ("/rootfs.squashfs", format!("{prefix}.squashfs")),
        ("/boot/kernel", format!("{prefix}-kernel")),
        ("/boot/initrd", format!("{prefix}-initrd")),
    ] {
        let dest = output.join(&name);
        extract(iso, inside, &dest).with_context(|| {
            format!(
                "Failed extracting netboot artifact {} from {iso}",
                dest.display()
            )
        })?;
    }
    log::info("Artifacts extracted");
    Ok(())
}

/// Extracts one file from an ISO into `dest`, which ends up mode 0600 like a file kairos-sdk
/// creates with `os.OpenFile(dest, O_CREATE|O_WRONLY, 0600)`.
fn extract(iso: &str, inside: &str, dest: &Path) -> Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let partial = dir.join(format!(
        ".{}.partial",
        dest.file_name().and_then(|n| n.to_str()).unwrap_or("x")
    ));
    match fs::remove_file(&partial) {
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    tools::run(
        "xorriso",
        [
            "-osirrox".as_ref(),
            "on".as_ref(),
            "-indev".as_ref(),
            iso.as_ref(),
            "-extract".as_ref(),
            inside.as_ref(),
            partial.as_os_str(),
        ],
    )?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(0o600))?;
    fs::rename(&partial, dest)?;
    Ok(())
}
