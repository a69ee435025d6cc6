//! The top-level (disk) action: `auroraboot --set disk.raw=true ...` and the VHD and GCE
//! conversions, as AuroraBoot v0.24.0's raw image builder (`pkg/ops/rawDiskGeneration.go`) and
//! `pkg/ops/rawDiskOutput.go` do them.
//!
//! The raw image is a GPT disk: 1 MiB of table, the EFI partition (FAT, `COS_GRUB`), the OEM
//! partition (ext4, `COS_OEM`, with the cloud-config as `90_custom.yaml`), the recovery
//! partition (ext4, `COS_RECOVERY`, holding `cOS/recovery.img`, an ext2 image of the rootfs),
//! and 1 MiB for the backup table. AuroraBoot formats each partition image on a loop device and
//! mounts it, which needs a privileged container; the stand-in builds the file systems with
//! `mkfs.* -d`/`mcopy`, but attaches each image to a loop device for real first, so an
//! unprivileged builder fails here as it would with the real tool.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

use crate::cli::{Flags, UsageError};
use crate::copy::archive_copy;
use crate::iso::{copy_efi_binaries, dir_size, make_vfat, read_cloud_config};
use crate::release::Release;
use crate::{digest, log, tools};

pub const MB: u64 = 1 << 20;
pub const GB: u64 = 1 << 30;

/// AuroraBoot's `DefaultCloudConfig`: written when no cloud-config is given (builder-cli.md §4.6).
pub const DEFAULT_CLOUD_CONFIG: &str = "#cloud-config\nstages:\n  initramfs:\n    - name: \"Set user and password\"\n      users:\n        kairos:\n          passwd: \"kairos\"\n          groups:\n            - \"admin\"";

/// The EFI GRUB config that chainloads the recovery partition's (AuroraBoot's `GrubEfiRecovery`).
pub const GRUB_EFI_RECOVERY: &str = "search --no-floppy --label --set=root COS_RECOVERY\n\
                                     set root=($root)\n\
                                     set prefix=($root)/grub2\n\
                                     configfile ($root)/etc/cos/grub.cfg";

/// The reset stages AuroraBoot adds to the OEM partition of raw images (`01_reset.yaml`).
fn reset_cloud_config(state_mb: u64) -> String {
    format!(
        "name: Expand disk layout\nstages:\n    after-reset:\n        - if: '[ -f \"/oem/01_reset.yaml\" ]'\n          \
         name: Auto remove this file\n          commands:\n            - rm /oem/01_reset.yaml\n    \
         network:\n        - if: '[ -f \"/run/cos/recovery_mode\" ]'\n          name: Run auto reset\n          \
         commands:\n            - kairos-agent --debug reset --unattended --reboot\n    rootfs.before:\n        \
         - name: Add state partition\n          layout:\n            device:\n                label: COS_RECOVERY\n            \
         add_partitions:\n                - fsLabel: COS_STATE\n                  size: {state_mb}\n                  \
         pLabel: state\n                  filesystem: ext4\n        - name: Add persistent partition\n          \
         layout:\n            device:\n                label: COS_RECOVERY\n            add_partitions:\n                \
         - fsLabel: COS_PERSISTENT\n                  pLabel: persistent\n                  filesystem: ext4\n"
    )
}

/// A GRUB environment block (1024 bytes, `#`-padded) holding `vars`.
pub fn grubenv(vars: &[(&str, &str)]) -> Vec<u8> {
    let mut s = String::from("# GRUB Environment Block\n");
    for (k, v) in vars {
        s.push_str(&format!("{k}={v}\n"));
    }
    let mut b = s.into_bytes();
    b.resize(1024, b'#');
    b
}

const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;

/// A file attached to a loop device; detached when dropped, also on errors.
pub struct LoopDevice {
    dev: File,
    pub path: PathBuf,
}

impl LoopDevice {
    /// Attaches `backing` the way kairos-agent's loopback helper does: `LOOP_CTL_GET_FREE` on
    /// the control device, open `/dev/loopN`, `LOOP_SET_FD`.
    pub fn attach(loop_control: &Path, backing: &Path) -> Result<LoopDevice> {
        let hint = "AuroraBoot attaches the partition images to loop devices and mounts them, \
                    so the disk steps only work in a privileged container";
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open(loop_control)
            .with_context(|| format!("open {}: {hint}", loop_control.display()))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(backing)
            .with_context(|| format!("open {}", backing.display()))?;
        let dir = loop_control.parent().unwrap_or(Path::new("/dev"));
        let mut last = None;
        for _ in 0..5 {
            // SAFETY: ctl is an open file descriptor; LOOP_CTL_GET_FREE takes no argument.
            let n = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(io::Error::last_os_error()).with_context(|| {
                    format!("LOOP_CTL_GET_FREE on {}: {hint}", loop_control.display())
                });
            }
            let path = dir.join(format!("loop{n}"));
            let dev = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .with_context(|| format!("open {}: {hint}", path.display()))?;
            // SAFETY: both descriptors are open; LOOP_SET_FD takes the backing fd by value.
            let rc = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, file.as_raw_fd()) };
            if rc == 0 {
                log::debug(format!(
                    "attached {} to {}",
                    backing.display(),
                    path.display()
                ));
                return Ok(LoopDevice { dev, path });
            }
            let err = io::Error::last_os_error();
            if err.raw_os_error() != Some(libc::EBUSY) {
                return Err(err).with_context(|| format!("LOOP_SET_FD {}: {hint}", path.display()));
            }
            last = Some(err);
        }
        Err(last.unwrap_or_else(|| io::Error::other("busy")))
            .context("no free loop device after 5 tries")
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: dev is an open loop device descriptor.
        let rc = unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD as _, 0) };
        if rc != 0 {
            log::warn(format!(
                "detaching {}: {}",
                self.path.display(),
                io::Error::last_os_error()
            ));
        } else {
            log::debug(format!("detached {}", self.path.display()));
        }
    }
}

/// A sparse file of `size` bytes, attached to (and detached from) a loop device as AuroraBoot
/// does before formatting it.
fn new_image(path: &Path, size: u64, loop_control: &Path) -> Result<()> {
    File::create(path)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("creating {}", path.display()))?;
    let dev = LoopDevice::attach(loop_control, path)
        .with_context(|| format!("failed to attach {} to a loop device", path.display()))?;
    drop(dev);
    Ok(())
}

fn mkfs_ext(kind: &str, label: &str, src: &Path, img: &Path) -> Result<()> {
    tools::run(
        "mkfs.ext4",
        [
            "-F".as_ref(),
            "-q".as_ref(),
            "-t".as_ref(),
            kind.as_ref(),
            "-L".as_ref(),
            label.as_ref(),
            "-d".as_ref(),
            src.as_os_str(),
            img.as_os_str(),
        ],
    )
    .map(drop)
}

fn size_mb(dir: &Path) -> Result<u64> {
    Ok(dir_size(dir)?.div_ceil(MB))
}

/// What a raw build needs.
pub struct RawImage<'a> {
    pub source: &'a Path,
    pub output: &'a Path,
    pub cloud_config: Option<&'a str>,
    pub no_default_cloud_config: bool,
    /// Minimum size of the final image in MB (`disk.size`); 0 for none.
    pub final_size_mb: u64,
    pub tmp_base: &'a Path,
    pub loop_control: &'a Path,
}

impl RawImage<'_> {
    /// Builds `<output>/kairos-<name>.raw` and returns its path.
    pub fn build(&self) -> Result<PathBuf> {
        let release = Release::read(self.source)?;
        let flavor = release
            .get("FLAVOR")
            .context("failed to get flavor")?
            .to_string();
        let model = release
            .get("MODEL")
            .context("failed to get model")?
            .to_string();
        log::info(format!("model and flavor model={model} flavor={flavor}"));
        let name = format!("kairos-{}.raw", release.name());
        let arch = release.get("TARGETARCH").unwrap_or("amd64").to_string();
        let tmp = tempfile::Builder::new()
            .prefix("auroraboot-raw-image-")
            .tempdir_in(self.tmp_base)
            .context("creating the temporary directory")?;
        let t = tmp.path();
        let src_mb = size_mb(self.source)?;

        log::info("Creating RECOVERY image");
        let rec_dir = t.join("recovery");
        fs::create_dir_all(rec_dir.join("cOS"))?;
        let rec_img = rec_dir.join("cOS/recovery.img");
        new_image(&rec_img, (src_mb + 100) * MB, self.loop_control)?;
        mkfs_ext("ext2", "COS_SYSTEM", self.source, &rec_img)
            .context("failed to create recovery image")?;
        let grub_conf = self.source.join("etc/cos/grub.cfg");
        let grub = fs::read(&grub_conf)
            .with_context(|| format!("failed to stat grub.cfg: {}", grub_conf.display()))?;
        fs::create_dir_all(rec_dir.join("etc/cos"))?;
        fs::write(rec_dir.join("etc/cos/grub.cfg"), grub)?;
        let recovery = t.join("recovery.img");
        new_image(&recovery, (src_mb * 2 + 150) * MB, self.loop_control)?;
        mkfs_ext("ext4", "COS_RECOVERY", &rec_dir, &recovery)
            .context("failed to create recovery partition")?;
        let rec_size = fs::metadata(&rec_img)?.len();
        fs::remove_dir_all(&rec_dir)?;
        log::info("Created RECOVERY image");

        log::info("Creating BOOT image");
        let efi_dir = t.join("efi");
        fs::create_dir_all(efi_dir.join("EFI/BOOT"))?;
        if flavor.contains("ubuntu") {
            fs::create_dir_all(efi_dir.join("EFI/ubuntu"))?;
            fs::write(efi_dir.join("EFI/ubuntu/grub.cfg"), GRUB_EFI_RECOVERY)?;
        } else {
            fs::write(efi_dir.join("EFI/BOOT/grub.cfg"), GRUB_EFI_RECOVERY)?;
        }
        let low = |s: &str| s.to_lowercase();
        if low(&flavor).contains("alpine") && low(&model).contains("rpi") {
            log::warn("Running on Alpine+RPI, not copying shim or grub.");
        } else if !copy_efi_binaries(self.source, &arch, &efi_dir)? {
            bail!(
                "failed to copy shim: could not find any shim file to copy (looked for {:?} and {:?} in the rootfs)",
                crate::iso::efi_candidates(&arch, "shim"),
                crate::iso::efi_candidates(&arch, "grub")
            );
        }
        if model == "rpi4" || model == "rpi5" {
            bail!(
                "model {model}: the Raspberry Pi firmware AuroraBoot copies from its image is not in the stand-in"
            );
        }
        let efi = t.join("efi.img");
        new_image(&efi, 64 * MB, self.loop_control)?;
        make_vfat(&efi, 64 * MB, "COS_GRUB", &efi_dir).context("failed to create efi image")?;
        log::info("Created BOOT image");

        log::info("Creating OEM image");
        let oem_dir = t.join("oem");
        fs::create_dir_all(&oem_dir)?;
        match self.cloud_config {
            Some(cc) => fs::write(oem_dir.join("90_custom.yaml"), cc)?,
            None if self.no_default_cloud_config => {
                log::info("no_default_cloud_config is set: no default user in the OEM partition")
            }
            None => {
                log::warn(
                    "no cloud-config given: writing AuroraBoot's default user kairos/kairos (group admin)",
                );
                fs::write(oem_dir.join("90_custom.yaml"), DEFAULT_CLOUD_CONFIG)?
            }
        }
        if oem_dir.join("90_custom.yaml").exists() {
            fs::set_permissions(
                oem_dir.join("90_custom.yaml"),
                fs::Permissions::from_mode(0o644),
            )?;
        }
        fs::write(
            oem_dir.join("grubenv"),
            grubenv(&[("next_entry", "recovery")]),
        )?;
        let state_mb = (rec_size * 3 + 100 * MB) / MB;
        fs::write(oem_dir.join("01_reset.yaml"), reset_cloud_config(state_mb))?;
        let oem = t.join("oem.img");
        new_image(&oem, 64 * MB, self.loop_control)?;
        mkfs_ext("ext4", "COS_OEM", &oem_dir, &oem).context("failed to create oem partition")?;
        log::info("Created OEM image");

        let target = self.output.join(&name);
        log::info(format!(
            "Assembling final disk image target={}",
            target.display()
        ));
        assemble(&target, &efi, &oem, &recovery).context("failed to create disk image")?;
        let size = fs::metadata(&target)?.len();
        if self.final_size_mb > 0 && size < self.final_size_mb * MB {
            log::info(format!("Truncating final image size={size}"));
            OpenOptions::new()
                .write(true)
                .open(&target)?
                .set_len(self.final_size_mb * MB)?;
        }
        fs::set_permissions(&target, fs::Permissions::from_mode(0o777))?;
        log::info(format!(
            "Assembled final disk image target={}",
            target.display()
        ));
        drop(tmp);
        Ok(target)
    }
}

/// Concatenates 1 MiB, the partition images and 1 MiB into `target` (sparse), then writes the
/// GPT with sgdisk: partitions `efi` (EF00, attribute bit 0), `oem` and `recovery` (8300), with
/// GUIDs derived from their labels as AuroraBoot does.
fn assemble(target: &Path, efi: &Path, oem: &Path, recovery: &Path) -> Result<()> {
    let parts = [
        (efi, "efi", "EF00", "COS_GRUB"),
        (oem, "oem", "8300", "COS_OEM"),
        (recovery, "recovery", "8300", "COS_RECOVERY"),
    ];
    let mut sizes = Vec::new();
    for (p, ..) in &parts {
        sizes.push(fs::metadata(p)?.len().div_ceil(512) * 512);
    }
    let total = MB + sizes.iter().sum::<u64>() + MB;
    let out = File::create(target).with_context(|| format!("creating {}", target.display()))?;
    out.set_len(total)?;
    let mut offset = MB;
    for ((p, ..), size) in parts.iter().zip(&sizes) {
        copy_sparse(p, &out, offset)?;
        offset += size;
    }
    out.sync_all()?;
    drop(out);
    let mut args: Vec<String> = vec!["-o".into(), "-a".into(), "1".into()];
    let mut start = 2048u64;
    for (i, ((_, pname, ptype, label), size)) in parts.iter().zip(&sizes).enumerate() {
        let n = i + 1;
        let end = start + size / 512 - 1;
        args.extend([
            format!("--new={n}:{start}:{end}"),
            format!("--typecode={n}:{ptype}"),
            format!("--change-name={n}:{pname}"),
            format!("--partition-guid={n}:{}", digest::uuid_v5_url(label)),
        ]);
        if n == 1 {
            args.push(format!("--attributes={n}:set:0"));
        }
        start = end + 1;
    }
    args.push(target.display().to_string());
    tools::run("sgdisk", &args)?;
    Ok(())
}

/// Writes `src` into `out` at `offset`, skipping all-zero blocks (the target is sparse).
fn copy_sparse(src: &Path, out: &File, offset: u64) -> Result<()> {
    let mut f = File::open(src).with_context(|| format!("open {}", src.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            out.write_all_at(&buf[..n], offset + pos)?;
        }
        pos += n as u64;
    }
    Ok(())
}

/// The 512-byte fixed-VHD footer AuroraBoot appends (`newVHDFixed`), for a disk of `size` bytes.
/// `unique_id` is written the way AuroraBoot does it: the first 16 characters of the UUID's
/// text form. `timestamp` is seconds since 2000-01-01.
pub fn vhd_footer(size: u64, timestamp: u32, unique_id: &str) -> [u8; 512] {
    let mut h = [0u8; 512];
    h[0..8].copy_from_slice(b"conectix");
    h[8..12].copy_from_slice(&2u32.to_be_bytes());
    h[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
    h[24..28].copy_from_slice(&timestamp.to_be_bytes());
    h[28..32].copy_from_slice(b"elem");
    h[36..40].copy_from_slice(b"suse");
    h[40..48].copy_from_slice(&size.to_be_bytes());
    h[48..56].copy_from_slice(&size.to_be_bytes());
    let (c, hd, s) = chs(size / 512);
    h[56..58].copy_from_slice(&(c as u16).to_be_bytes());
    h[58] = hd as u8;
    h[59] = s as u8;
    h[60..64].copy_from_slice(&2u32.to_be_bytes());
    let id = unique_id.as_bytes();
    let n = id.len().min(16);
    h[68..68 + n].copy_from_slice(&id[..n]);
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    h[64..68].copy_from_slice(&(!sum).to_be_bytes());
    h
}

/// Cylinders, heads, sectors per track for a sector count (the VHD specification's algorithm).
pub fn chs(sectors: u64) -> (u64, u64, u64) {
    let total = sectors.min(65535 * 16 * 255) as f64;
    let (spt, heads, cth);
    if total >= (65535 * 16 * 63) as f64 {
        spt = 255.0;
        heads = 16.0;
        cth = (total / spt).floor();
    } else {
        let mut s = 17.0;
        let mut c = (total / s).floor();
        let mut h = ((c + 1023.0) / 1024.0).floor();
        if h < 4.0 {
            h = 4.0;
        }
        if c >= h * 1024.0 || h > 16.0 {
            s = 31.0;
            h = 16.0;
            c = (total / s).floor();
        }
        if c >= h * 1024.0 {
            s = 63.0;
            h = 16.0;
            c = (total / s).floor();
        }
        spt = s;
        heads = h;
        cth = c;
    }
    ((cth / heads) as u64, heads as u64, spt as u64)
}

fn random_uuid() -> Result<String> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(digest::uuid(b, 4))
}

/// `Raw2Azure`: rename to `<raw>.vhd`, make the whole file a multiple of 1 MiB (the disk is cut
/// or grown to a multiple of 1 MiB minus 512 bytes), append the footer.
pub fn raw_to_vhd(raw: &Path) -> Result<PathBuf> {
    log::info(format!(
        "Converting raw disk to Azure VHD source={}",
        raw.display()
    ));
    let name = PathBuf::from(format!("{}.vhd", raw.display()));
    fs::rename(raw, &name).context("Error renaming raw image to vhd")?;
    let mut f = OpenOptions::new().append(true).open(&name)?;
    let actual = f.metadata()?.len();
    let final_size = actual.div_ceil(MB) * MB - 512;
    if actual != final_size {
        log::info(format!(
            "Resizing image actualSize={actual} finalSize={}",
            final_size + 512
        ));
        f.set_len(final_size)?;
    }
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .saturating_sub(946_684_800) as u32;
    f.write_all(&vhd_footer(final_size, ts, &random_uuid()?))?;
    f.sync_all()?;
    let size = fs::metadata(&name)?.len();
    if size % MB != 0 {
        bail!(
            "The file {} size {size} bytes is not divisible by 1 MB.",
            name.display()
        );
    }
    Ok(name)
}

/// `Raw2Gce`: grow the raw to the next whole `unit` (GiB) plus one, put it as `disk.raw` into
/// `<raw>.gce.tar.gz` (GNU tar, gzip best speed), remove the raw.
pub fn raw_to_gce(raw: &Path, unit: u64) -> Result<PathBuf> {
    log::info("Transforming raw image into gce format");
    let name = PathBuf::from(format!("{}.gce.tar.gz", raw.display()));
    let f = OpenOptions::new().write(true).open(raw)?;
    let actual = f.metadata()?.len();
    let final_size = (actual / unit + 1) * unit;
    log::info(format!(
        "Resizing image current={actual} final={final_size} file={}",
        raw.display()
    ));
    f.set_len(final_size)?;
    drop(f);
    let mode = fs::metadata(raw)?.permissions().mode() & 0o7777;
    log::info(format!(
        "Compressing raw image into a tar.gz destination={}",
        name.display()
    ));
    let out = File::create(&name)?;
    let gz = GzEncoder::new(out, Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path("disk.raw")?;
    h.set_size(final_size);
    h.set_mode(mode);
    h.set_cksum();
    tar.append(&h, File::open(raw)?)?;
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()?.sync_all()?;
    fs::remove_file(raw).context("Error removing full raw image")?;
    Ok(name)
}

/// `ConvertRawDiskTo{VHD,GCE}` insist on exactly one `kairos-*.raw` in the state dir.
fn the_one_raw(state: &Path) -> Result<PathBuf> {
    let raws: Vec<PathBuf> = fs::read_dir(state)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("kairos-") && n.ends_with(".raw"))
        })
        .collect();
    match raws.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!(
            "expected exactly one kairos-*.raw in {}, found {}",
            state.display(),
            raws.len()
        ),
    }
}

/// The `--set` keys the stand-in understands.
const KNOWN_KEYS: &[&str] = &[
    "disk.raw",
    "disk.efi",
    "disk.vhd",
    "disk.gce",
    "disk.size",
    "disable_netboot",
    "disable_http_server",
    "state_dir",
    "container_image",
    "arch",
    "no_default_cloud_config",
];

/// Disk formats AuroraBoot has that the stand-in does not build.
const OTHER_FORMATS: &[&str] = &["disk.bios", "disk.mbr", "disk.arm", "disk.rpi", "disk.uki"];

/// The `--set` values, split at the first `=` (later keys win, as in the jq program AuroraBoot
/// builds).
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            bail!(UsageError(format!(
                "osartifact-standin: --set value '{s}' is not key=value (urfave splits --set values on commas)"
            )));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

pub fn run(flags: &Flags) -> Result<()> {
    run_with(flags, &std::env::temp_dir(), Path::new("/dev/loop-control"))
}

/// The disk action with Go's `os.TempDir()` and the loop control device passed in.
pub fn run_with(flags: &Flags, tmp_base: &Path, loop_control: &Path) -> Result<()> {
    log::set_debug(flags.bool("debug"));
    let sets = parse_sets(flags.slice("set"))?;
    for k in sets.keys() {
        if !KNOWN_KEYS.contains(&k.as_str()) && !OTHER_FORMATS.contains(&k.as_str()) {
            log::warn(format!(
                "--set {k}: not a key the stand-in knows; AuroraBoot ignores unknown keys"
            ));
        }
    }
    // jq turns the literal `true` into a boolean; anything else is a string that fails to
    // unmarshal into a bool, and AuroraBoot ignores that error (so it stays false).
    let is_true = |k: &str| sets.get(k).is_some_and(|v| v == "true");
    for k in ["disable_netboot", "disable_http_server"] {
        if !is_true(k) {
            bail!(
                "--set {k}=true is required: without it AuroraBoot's top-level action starts its \
                 netboot (pixiecore) and HTTP servers and never exits"
            );
        }
    }
    for k in OTHER_FORMATS {
        if is_true(k) {
            bail!("--set {k}=true: that disk format is not built by the stand-in");
        }
    }
    let raw = is_true("disk.raw") || is_true("disk.efi");
    let formats: Vec<&str> = [
        ("raw", raw),
        ("vhd", is_true("disk.vhd")),
        ("gce", is_true("disk.gce")),
    ]
    .into_iter()
    .filter(|(_, on)| *on)
    .map(|(f, _)| f)
    .collect();
    let format = match formats.as_slice() {
        [one] => *one,
        [] => bail!(
            "no disk format set (disk.raw/disk.efi, disk.vhd, disk.gce): AuroraBoot's top-level \
             action would build an ISO instead, which the stand-in only does via build-iso"
        ),
        many => bail!(
            "several disk formats set ({}): the operator builds one per call, and the conversions \
             consume the single raw image, so the stand-in refuses",
            many.join(", ")
        ),
    };
    let image = sets
        .get("container_image")
        .map(String::as_str)
        .unwrap_or("");
    let Some(src) = image.strip_prefix("dir:") else {
        bail!("--set container_image={image}: only dir:PATH is supported by the stand-in");
    };
    let src = Path::new(src);
    if !src.is_dir() {
        bail!("container_image directory {} does not exist", src.display());
    }
    let final_size_mb = match sets.get("disk.size") {
        None => 0,
        Some(v) => v.parse::<u64>().map_err(|_| {
            anyhow::anyhow!(
                "--set disk.size={v}: not a number of MB (AuroraBoot would silently use 0)"
            )
        })?,
    };
    if let Some(a) = sets.get("arch") {
        log::debug(format!(
            "arch={a} has no effect for dir: sources (the rootfs decides)"
        ));
    }
    let cloud_config = match flags.string("cloud-config").filter(|c| !c.is_empty()) {
        Some(p) => Some(read_cloud_config(p)?),
        None => None,
    };
    let state = PathBuf::from(
        sets.get("state_dir")
            .map(String::as_str)
            .unwrap_or("/tmp/auroraboot"),
    );
    fs::create_dir_all(&state).with_context(|| format!("creating {}", state.display()))?;

    // AuroraBoot writes the cloud-config and a copy of the rootfs into the state dir and
    // removes both at exit.
    let config_yaml = state.join("config.yaml");
    fs::write(&config_yaml, cloud_config.as_deref().unwrap_or(""))?;
    let temp_rootfs = state.join("temp-rootfs");
    let result = (|| -> Result<PathBuf> {
        crate::layers::remove_all(&temp_rootfs)?;
        fs::create_dir_all(&temp_rootfs)?;
        log::info(format!(
            "Copying {} to {}",
            src.display(),
            temp_rootfs.display()
        ));
        archive_copy(src, &temp_rootfs).context("dumping the source")?;
        log::info(format!(
            "Generating raw disk '{}' from '{}'",
            state.display(),
            temp_rootfs.display()
        ));
        RawImage {
            source: &temp_rootfs,
            output: &state,
            cloud_config: cloud_config.as_deref(),
            no_default_cloud_config: is_true("no_default_cloud_config"),
            final_size_mb,
            tmp_base,
            loop_control,
        }
        .build()
    })();
    let cleanup =
        crate::layers::remove_all(&temp_rootfs).and(crate::layers::remove_all(&config_yaml));
    let raw_path = result?;
    cleanup?;
    match format {
        "vhd" => {
            let vhd = raw_to_vhd(&the_one_raw(&state)?)?;
            log::info(format!("Wrote {}", vhd.display()));
        }
        "gce" => {
            let gce = raw_to_gce(&the_one_raw(&state)?, GB)?;
            log::info(format!("Wrote {}", gce.display()));
        }
        _ => log::info(format!("Wrote {}", raw_path.display())),
    }
    Ok(())
}
