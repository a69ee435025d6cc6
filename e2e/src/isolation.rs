//! Keeps the one-node cluster off the host: the test process moves itself into a new network
//! namespace (loopback and the node bridge only, no route out) and a private mount namespace
//! before any thread starts, so every process it starts (control plane, kubelet, containerd,
//! pods) inherits both. What the kernel does not scope to those namespaces is handled here
//! too: the kubelet's global sysctl writes land in stand-in files, pods' cgroups live under
//! one cgroup of this run, and leftovers (cgroups, loop devices) are removed at the end.
//!
//! A test binary opts in with [`crate::cluster_namespaces!`], which runs [`enter`] from the
//! ELF constructor list: `unshare(CLONE_NEWNS)` refuses a process with several threads, and
//! the test harness starts its threads before any test code runs.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The outcome of [`enter`]: `Ok` once this process is in its own namespaces.
static ENTERED: OnceLock<std::result::Result<(), String>> = OnceLock::new();
/// The host's and the cluster's network namespaces (open files), for [`forward_from_host`].
static NET_NS: OnceLock<(std::fs::File, std::fs::File)> = OnceLock::new();

/// Declares that this test binary runs the one-node cluster: before `main`, the process moves
/// into a new network and mount namespace (see the module docs).
#[macro_export]
macro_rules! cluster_namespaces {
    () => {
        #[used]
        #[unsafe(link_section = ".init_array")]
        static OSARTIFACT_ENTER_NAMESPACES: extern "C" fn() = {
            extern "C" fn enter() {
                $crate::isolation::enter();
            }
            enter
        };
    };
}

/// Moves this (still single-threaded) process into a new network and mount namespace and
/// brings up loopback. Never panics (it runs before `main`); [`entered`] reports the outcome.
pub fn enter() {
    let _ = ENTERED.set(enter_namespaces().map_err(|e| format!("{e:#}")));
}

/// Whether [`enter`] ran and succeeded; the error says why not.
pub fn entered() -> Result<()> {
    match ENTERED.get() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => bail!("could not enter private namespaces: {e}"),
        None => bail!(
            "this test binary does not isolate itself: add `osartifact_e2e::cluster_namespaces!();`"
        ),
    }
}

fn enter_namespaces() -> Result<()> {
    let host_net = std::fs::File::open("/proc/self/ns/net").context("opening the host's netns")?;
    // SAFETY: plain syscalls on this process; no Rust state depends on the namespaces.
    unsafe {
        if libc::geteuid() != 0 {
            bail!("the one-node cluster needs root (namespaces, mounts, cgroups)");
        }
        if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) != 0 {
            return Err(std::io::Error::last_os_error()).context("unshare(NEWNET|NEWNS)");
        }
        // Nothing mounted here may propagate back to the host, nor the host's into here.
        let root = CString::new("/")?;
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error()).context("making / private");
        }
        // Then shared among this namespace and the ones made from it: containerd runs in a
        // slave copy (for its own /proc) that must still see the kubelet's volume mounts.
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_SHARED,
            std::ptr::null(),
        ) != 0
        {
            return Err(std::io::Error::last_os_error()).context("making / shared");
        }
    }
    run("ip", &["link", "set", "lo", "up"])?;
    let cluster_net = std::fs::File::open("/proc/self/ns/net").context("opening the new netns")?;
    let _ = NET_NS.set((host_net, cluster_net));
    Ok(())
}

fn set_net_ns(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: moves only the calling thread into a network namespace this process opened.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Listens on the host's 127.0.0.1 (a free port, returned) and forwards every connection to
/// `target` inside the cluster's namespace: how `just demo` lets a shell on the host reach
/// the apiserver and a NodePort. The listener thread lives in the host's namespace and steps
/// into the cluster's only to open each outgoing connection (a socket keeps its namespace).
pub fn forward_from_host(target: std::net::SocketAddr) -> Result<u16> {
    entered()?;
    let (host, cluster) = NET_NS.get().context("namespaces not recorded")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name(format!("forward-{target}"))
        .spawn(move || {
            let listener =
                set_net_ns(host).and_then(|()| std::net::TcpListener::bind("127.0.0.1:0"));
            let listener = match listener {
                Ok(l) => {
                    let _ = tx.send(l.local_addr().map(|a| a.port()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            for conn in listener.incoming().flatten() {
                let upstream =
                    set_net_ns(cluster).and_then(|()| std::net::TcpStream::connect(target));
                if set_net_ns(host).is_err() {
                    return;
                }
                let Ok(upstream) = upstream else { continue };
                for (mut from, mut to) in [
                    (conn.try_clone(), upstream.try_clone()),
                    (upstream.try_clone(), conn.try_clone()),
                ]
                .into_iter()
                .filter_map(|(a, b)| Some((a.ok()?, b.ok()?)))
                {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        })?;
    Ok(rx.recv().context("forwarder thread")??)
}

/// Runs a command to completion; fails with its output.
pub fn run(cmd: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .with_context(|| format!("running {cmd}"))?;
    if !out.status.success() {
        bail!(
            "{cmd} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Binds one regular file over `path` in this mount namespace (it vanishes with it).
fn bind(file: &Path, path: &str) -> Result<()> {
    let src = CString::new(file.as_os_str().as_encoded_bytes())?;
    let dst = CString::new(path)?;
    // SAFETY: a bind mount in this process's private mount namespace.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("bind {path}"));
    }
    Ok(())
}

/// The global sysctls the kubelet sets at start (container_manager_linux's kernel tunables).
/// They are not namespaced, so each is shadowed by a file under `dir` holding its current
/// value: the kubelet reads and writes the file, the host keeps its setting.
pub const KUBELET_SYSCTLS: &[&str] = &[
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/vm/panic_on_oom",
    "/proc/sys/kernel/panic",
    "/proc/sys/kernel/panic_on_oops",
    "/proc/sys/kernel/keys/root_maxkeys",
    "/proc/sys/kernel/keys/root_maxbytes",
];

/// Shadows [`KUBELET_SYSCTLS`] with files in `dir`.
pub fn shadow_sysctls(dir: &Path) -> Result<()> {
    entered()?;
    std::fs::create_dir_all(dir)?;
    for s in KUBELET_SYSCTLS {
        let value = std::fs::read_to_string(s).with_context(|| format!("reading {s}"))?;
        let file = dir.join(s.trim_start_matches("/proc/sys/").replace('/', "."));
        std::fs::write(&file, value)?;
        bind(&file, s)?;
    }
    Ok(())
}

/// A directory bound over `path` in this mount namespace (the mount point is created on the
/// host when missing, and removed again by [`HostDir::drop`]): for components with a fixed
/// host path, such as the host-path provisioner.
pub struct HostDir {
    path: PathBuf,
    created: bool,
}

impl HostDir {
    pub fn bind(src: &Path, path: &str) -> Result<Self> {
        entered()?;
        let p = PathBuf::from(path);
        let created = !p.exists();
        std::fs::create_dir_all(&p)?;
        std::fs::create_dir_all(src)?;
        bind(src, path)?;
        Ok(Self { path: p, created })
    }
}

impl Drop for HostDir {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.path.as_os_str().as_encoded_bytes()) {
            // SAFETY: unmounting our own bind mount in the private namespace.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
        if self.created {
            // Only removes it when empty: the host never had it, so nothing else is in it.
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// The cgroup v1 hierarchies (cgroup v2 is not used by this kubelet configuration).
fn hierarchies() -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("cgroup.procs").exists())
        .collect();
    v.sort();
    v
}

/// The cgroup (in every hierarchy) that holds all pods of this run: `/<name>`.
pub struct CgroupRoot {
    pub name: String,
    /// Held while this run's cluster exists; the kernel releases it when the process dies.
    _lock: std::fs::File,
}

/// One lock for every one-node cluster on this host: `OSARTIFACT_E2E_NODE_WAIT=1` waits for it
/// (several developers or benchmarks queueing for the node), otherwise a held lock is an error.
fn node_lock() -> Result<std::fs::File> {
    let path = Path::new("/run/osartifact-e2e-node.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    if std::env::var_os("OSARTIFACT_E2E_NODE_WAIT").is_some() {
        f.lock()
            .with_context(|| format!("locking {}", path.display()))?;
    } else if f.try_lock().is_err() {
        bail!(
            "another one-node cluster is running: run one at a time (the test binaries run one \
             after another; stop the demo or benchmark first, or set OSARTIFACT_E2E_NODE_WAIT=1 \
             to wait for it)"
        );
    }
    Ok(f)
}

/// Prefix of every run's cgroup root; leftovers of killed runs are found by it.
const CGROUP_PREFIX: &str = "osartifact-e2e-";

impl CgroupRoot {
    /// Creates `/<prefix><pid>` in every hierarchy (cpuset seeded from its parent, which a v1
    /// cpuset needs before a task can join), after removing leftovers of dead runs.
    pub fn create() -> Result<Self> {
        let lock = node_lock()?;
        sweep_cgroups(false);
        // Two runs must not overlap: a run removes the mount points it created for the fixed
        // host paths, and removing a directory detaches the mounts other mount namespaces
        // have on it, so the other run's kubelet would write into the host's directories.
        if let Some(pid) = live_runs().into_iter().find(|p| *p != std::process::id()) {
            bail!(
                "another one-node cluster is running (process {pid}): run one at a time (the \
                 test binaries run one after another; stop the demo or benchmark first)"
            );
        }
        let name = format!("{CGROUP_PREFIX}{}", std::process::id());
        for h in hierarchies() {
            let d = h.join(&name);
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            if h.ends_with("cpuset") {
                for f in ["cpuset.cpus", "cpuset.mems"] {
                    let v = std::fs::read_to_string(h.join(f))?;
                    std::fs::write(d.join(f), v.trim())?;
                }
            }
        }
        Ok(Self { name, _lock: lock })
    }
}

impl Drop for CgroupRoot {
    fn drop(&mut self) {
        // A cgroup can be removed once the kernel has reaped its last task: retry briefly.
        for _ in 0..50 {
            let mut left = false;
            for h in hierarchies() {
                let d = h.join(&self.name);
                remove_cgroup_tree(&d);
                left |= d.exists();
            }
            if !left {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// The processes of the runs whose cgroup roots exist and which are still alive.
fn live_runs() -> Vec<u32> {
    let mut pids: Vec<u32> = hierarchies()
        .into_iter()
        .filter_map(|h| std::fs::read_dir(h).ok())
        .flat_map(|rd| rd.flatten())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(CGROUP_PREFIX)?.parse::<u32>().ok()
        })
        .filter(|pid| Path::new("/proc").join(pid.to_string()).exists())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Removes this prefix's cgroups whose run is gone (`all`: also this run's own).
fn sweep_cgroups(all: bool) {
    for h in hierarchies() {
        let Ok(rd) = std::fs::read_dir(&h) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(CGROUP_PREFIX) else {
                continue;
            };
            if all || !Path::new("/proc").join(pid).exists() {
                remove_cgroup_tree(&e.path());
            }
        }
    }
}

/// rmdir depth first (cgroup directories cannot be removed with their pseudo-files).
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

/// Detaches every loop device whose backing file lies under `dir` (privileged pods that
/// attached one and were killed before detaching it).
pub fn detach_loop_devices(dir: &Path) {
    let Ok(rd) = std::fs::read_dir("/sys/block") else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = std::fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        if Path::new(backing.trim()).starts_with(dir) {
            let _ = run("losetup", &["-d", &format!("/dev/{name}")]);
        }
    }
}

/// What the run leaves on the host until it ends: removed by [`cleanup`], which runs at exit
/// (the shared cluster lives in a static that is never dropped) or when the node is dropped.
struct Leftovers {
    cgroup: Option<CgroupRoot>,
    host_dirs: Vec<HostDir>,
    dir: PathBuf,
}

static LEFTOVERS: std::sync::Mutex<Option<Leftovers>> = std::sync::Mutex::new(None);

/// Hands the run's cgroup root and bound host directories to [`cleanup`], and registers it
/// to run at exit after every child process is gone.
pub fn clean_up_later(cgroup: CgroupRoot, host_dirs: Vec<HostDir>, dir: &Path) {
    if let Ok(mut l) = LEFTOVERS.lock() {
        *l = Some(Leftovers {
            cgroup: Some(cgroup),
            host_dirs,
            dir: dir.to_path_buf(),
        });
    }
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with atexit.
        unsafe {
            libc::atexit(cleanup_at_exit);
        }
    });
}

extern "C" fn cleanup_at_exit() {
    // atexit runs hooks in reverse order of registration: the processes' hook registered
    // earlier would run after this one, so end the children here first.
    crate::procs::kill_all();
    cleanup();
}

/// Detaches the run's loop devices, removes its cgroups and unbinds the host directory.
pub fn cleanup() {
    let Some(mut l) = LEFTOVERS.lock().ok().and_then(|mut l| l.take()) else {
        return;
    };
    detach_loop_devices(&l.dir);
    unmount_below(&l.dir);
    l.cgroup.take();
    // Innermost first, so that a parent created for a child is empty when its turn comes.
    while let Some(d) = l.host_dirs.pop() {
        drop(d);
    }
}

/// Fixed host paths that the kubelet, containerd, runc, the CNI plugins, the host-path
/// provisioner and skopeo write to whatever their configuration says. Each is shadowed by a
/// directory of the run (see [`HostDir`]).
pub const SHADOWED_HOST_DIRS: &[&str] = &[
    "/tmp/hostpath_pv",
    "/var/lib/kubelet",
    "/var/lib/cni",
    "/var/lib/containers",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
];

/// Binds a directory under `dir` over each of [`SHADOWED_HOST_DIRS`].
pub fn shadow_host_dirs(dir: &Path) -> Result<Vec<HostDir>> {
    SHADOWED_HOST_DIRS
        .iter()
        .map(|p| HostDir::bind(&dir.join(p.trim_start_matches('/').replace('/', "_")), p))
        .collect()
}

/// Detaches every mount below `dir` in this namespace, deepest first (kubelet volumes,
/// container roots), so that the run's temp dir can be removed at exit.
fn unmount_below(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    // Field 5 is the mount point; octal escapes (\040 for a space) do not occur in our paths.
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) {
            // SAFETY: unmounting a mount of this run in the private mount namespace.
            unsafe {
                libc::umount2(c.as_ptr(), libc::MNT_DETACH);
            }
        }
    }
}
