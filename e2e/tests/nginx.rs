//! The artifact server of `manifests/nginx`, for real: Debian's nginx (with the WebDAV module)
//! runs the nginx.conf taken from the rendered ConfigMap, and the exporter's upload loop from
//! the user docs (bash/sh + `curl -T`) uploads a set of files to it; each file must come back
//! byte-identical and be named in the directory listing.
//!
//! What differs from the Pod, and nothing else:
//! - the `listen 8080;` line becomes `listen 127.0.0.1:<free port>;` (one exact-line rewrite);
//! - the prefix (`nginx -p`) is a temporary directory, with `html/` in it standing for the
//!   artifacts volume, made world-writable as the volume is group-writable through fsGroup;
//! - the loop's `/artifacts/*` glob points at a temporary directory (the Pod mounts the
//!   volume at /artifacts, which a test cannot create), and NGINX_URL at the test server.
//!
//! Needs nginx, curl, bash and sh on PATH; the test fails (never skips) when one is missing.

use serde_json::Value;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The exporter's script, verbatim from the user docs ("Serving Artifacts with Nginx").
/// manifests/samples carries the same script; the test runs the sample's copy and checks that
/// the two are identical, so neither can drift from the docs.
const USER_DOCS_UPLOAD_LOOP: &str = r#"NGINX_URL="${NGINX_URL:-http://kairos-operator-nginx}"
for f in /artifacts/*; do
  [ -f "$f" ] || continue
  base=$(basename "$f")
  echo "Uploading $base to $NGINX_URL/$base"
  curl -fsSL -T "$f" "$NGINX_URL/$base" || exit 1
done
echo "Upload done"
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn require(tool: &str, how: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{tool}` is not on PATH; this test needs it. Install it: {how}"
    );
}

fn render(dir: &str) -> Vec<Value> {
    let kubectl = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(&kubectl)
        .arg("kustomize")
        .arg(repo().join("manifests").join(dir))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{kubectl} kustomize` ({e}); install kubectl or set KUBECTL")
        });
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn find<'a>(objs: &'a [Value], kind: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} rendered"))
}

/// nginx as a child process; stopped gracefully (SIGQUIT to the master, which stops its
/// workers) when dropped, so a failing assertion leaves no server behind.
struct Nginx {
    child: Child,
    stderr_path: PathBuf,
}

impl Nginx {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-QUIT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_nginx(conf_text: &str, prefix: &Path) -> (Nginx, String) {
    let port = free_port();
    // The one rewrite: the listen line (exactly one, and exactly this line).
    let listen = "        listen 8080;";
    assert_eq!(
        conf_text.lines().filter(|l| *l == listen).count(),
        1,
        "nginx.conf must contain the line `{listen}` exactly once"
    );
    let conf: String = conf_text
        .lines()
        .map(|l| {
            if l == listen {
                format!("        listen 127.0.0.1:{port};\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let conf_path = prefix.join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let html = prefix.join("html");
    std::fs::create_dir(&html).unwrap();
    // Writable by nginx's worker user whoever runs the test (as the fsGroup-owned volume is).
    std::fs::set_permissions(&html, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();

    let stderr_path = prefix.join("nginx.stderr");
    let mut prefix_arg = prefix.as_os_str().to_owned();
    prefix_arg.push("/");
    let child = Command::new("nginx")
        .args(["-e", "stderr", "-p"])
        .arg(&prefix_arg)
        .arg("-c")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .expect("start nginx");
    let mut nginx = Nginx { child, stderr_path };
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if let Ok(Some(status)) = nginx.child.try_wait() {
            panic!(
                "nginx exited ({status}) with the ConfigMap's configuration:\n{}",
                nginx.log()
            );
        }
        assert!(
            Instant::now() < deadline,
            "nginx did not listen within 15s:\n{}",
            nginx.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (nginx, format!("http://127.0.0.1:{port}"))
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl").args(args).output().expect("run curl")
}

/// Deterministic pseudo-random bytes (xorshift), every byte value occurring.
fn binary_blob(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v: Vec<u8> = (0..=255u8).collect();
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

#[test]
fn nginx_accepts_the_user_docs_upload_loop_and_serves_files_back() {
    require(
        "nginx",
        "`apt-get install -y nginx` (Debian's package has the WebDAV module)",
    );
    require("curl", "`apt-get install -y curl`");
    require("bash", "`apt-get install -y bash`");
    require("sh", "a POSIX shell (`dash` on Debian)");
    let v = Command::new("nginx").arg("-V").output().expect("nginx -V");
    let build =
        String::from_utf8_lossy(&v.stderr).to_string() + &String::from_utf8_lossy(&v.stdout);
    assert!(
        build.contains("http_dav_module"),
        "this nginx has no WebDAV module:\n{build}"
    );

    // The configuration under test is the ConfigMap's, as rendered.
    let nginx_objs = render("nginx");
    let conf_text = find(&nginx_objs, "ConfigMap")["data"]["nginx.conf"]
        .as_str()
        .unwrap()
        .to_string();

    // The upload loop is the sample's exporter, which must equal the user docs' one.
    let samples = render("samples");
    let exporter =
        &find(&samples, "OSArtifact")["spec"]["exporters"][0]["template"]["spec"]["containers"][0];
    let command: Vec<&str> = exporter["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        command,
        ["sh", "-ec"],
        "the docs run the loop with `sh -ec`"
    );
    let script = exporter["args"][0].as_str().unwrap();
    assert_eq!(
        script, USER_DOCS_UPLOAD_LOOP,
        "the sample's upload loop differs from the user docs"
    );
    assert_eq!(script.matches("/artifacts/*").count(), 1);

    let prefix = tempfile::tempdir().unwrap();
    let (nginx, url) = start_nginx(&conf_text, prefix.path());

    // What an OSArtifact leaves in its volume: a large binary, checksum text, netboot files,
    // an empty file, and a directory (the loop skips it).
    let artifacts = tempfile::tempdir().unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("hello-kairos.iso", binary_blob(3 * 1024 * 1024 + 17)),
        (
            "hello-kairos.iso.sha256",
            b"0123abcd  hello-kairos.iso\n".to_vec(),
        ),
        ("hello-kairos-kernel", binary_blob(70_001)),
        ("hello-kairos.gce.raw.tar.gz", binary_blob(4096)),
        ("empty.txt", Vec::new()),
    ];
    for (n, data) in &files {
        std::fs::write(artifacts.path().join(n), data).unwrap();
    }
    std::fs::create_dir(artifacts.path().join("subdir")).unwrap();
    std::fs::write(artifacts.path().join("subdir/nested.bin"), b"not uploaded").unwrap();

    let glob = format!("{}/*", artifacts.path().display());
    let local_script = script.replacen("/artifacts/*", &glob, 1);
    // The docs' `sh -ec`, then bash: the second run re-uploads over existing files, as
    // re-running an export does.
    for shell in ["sh", "bash"] {
        let out = Command::new(shell)
            .arg("-ec")
            .arg(&local_script)
            .env("NGINX_URL", &url)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the upload loop failed under {shell}:\n{stdout}\n{}\nnginx:\n{}",
            String::from_utf8_lossy(&out.stderr),
            nginx.log()
        );
        for (n, _) in &files {
            assert!(
                stdout.contains(&format!("Uploading {n} to {url}/{n}\n")),
                "{shell}: {stdout}"
            );
        }
        assert!(stdout.ends_with("Upload done\n"), "{shell}: {stdout}");
        assert!(
            !stdout.contains("subdir"),
            "{shell}: directories are skipped: {stdout}"
        );
    }

    // Each file comes back byte-identical.
    let downloads = tempfile::tempdir().unwrap();
    for (n, data) in &files {
        let dest = downloads.path().join(n);
        let out = curl(&["-fsS", "-o", dest.to_str().unwrap(), &format!("{url}/{n}")]);
        assert!(
            out.status.success(),
            "GET {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(&dest).unwrap();
        assert!(
            got == *data,
            "{n}: downloaded {} bytes differ from the {} uploaded",
            got.len(),
            data.len()
        );
    }

    // The listing names every file, and nothing else (no upload spool, no directory).
    let out = curl(&["-fsS", &format!("{url}/")]);
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    for (n, _) in &files {
        assert!(
            listing.contains(&format!("<a href=\"{n}\">")),
            "listing lacks {n}:\n{listing}"
        );
    }
    let hrefs = listing.matches("<a href=").count();
    assert_eq!(
        hrefs,
        files.len() + 1,
        "only the files and ../ are listed:\n{listing}"
    );

    // Uploads only: the spool is not served, and WebDAV verbs other than PUT are refused.
    let code = |args: &[&str]| {
        let mut a = vec!["-s", "-o", "/dev/null", "-w", "%{http_code}"];
        a.extend_from_slice(args);
        String::from_utf8(curl(&a).stdout).unwrap()
    };
    assert_eq!(code(&[&format!("{url}/.upload-tmp/")]), "404");
    assert_eq!(
        code(&["-X", "DELETE", &format!("{url}/hello-kairos.iso")]),
        "405"
    );
    assert_eq!(code(&["-X", "MKCOL", &format!("{url}/newdir/")]), "405");
    assert_eq!(
        code(&[&format!("{url}/hello-kairos.iso")]),
        "200",
        "DELETE did not remove it"
    );

    // A failed upload stops the loop with a non-zero status (curl -f), e.g. no server.
    drop(nginx);
    let out = Command::new("bash")
        .arg("-ec")
        .arg(&local_script)
        .env("NGINX_URL", &url)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the loop must fail when the server is gone"
    );
    let mut s = String::new();
    let _ = (&out.stderr[..]).read_to_string(&mut s);
    assert!(s.contains("curl"), "curl reports the failure: {s}");
}
