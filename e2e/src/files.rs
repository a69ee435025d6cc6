//! What the examples' importers fetch from the internet, served inside the one-node cluster:
//! the tests and the demo point `https://example.com/` and `https://github.com/` at the file
//! server (see [`in_cluster`]).

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::env::Ns;
use crate::wait::poll;

/// The URL prefixes the examples' importers use, and what replaces each inside the cluster:
/// tarballs over HTTP; the repository over git's own protocol, because the example clones with
/// `--depth 1`, which git's plain HTTP protocol cannot serve.
pub const URL_MAP: &[(&str, &str)] = &[
    ("https://example.com/", "http://files/"),
    ("https://github.com/", "git://files/"),
];
/// The repository the build-context example clones, served by the file server.
pub const GIT_REPOSITORY: &str = "myorg/myrepo.git";
/// The file in that repository, and its content.
pub const GIT_FILE: (&str, &str) = ("README.md", "myrepo, served by the e2e file server\n");

/// `yaml` with the internet URLs of the examples pointed at the file server.
pub fn in_cluster(yaml: &str) -> String {
    URL_MAP
        .iter()
        .fold(yaml.to_string(), |y, (from, to)| y.replace(from, to))
}

/// Starts an HTTP server in `ns` (Pod and Service `files`, busybox httpd in the git image)
/// serving `<name>.tar.gz` for each of `names`, a gzipped tarball of one file `<name>.txt`
/// holding `<name>`, and the git repository [`GIT_REPOSITORY`] (`git daemon`); returns once
/// it is Ready.
pub fn serve_tarballs(ns: &Ns, names: &[&str]) -> Result<()> {
    let mut script = String::from("set -e; mkdir -p /www\n");
    for n in names {
        if !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            bail!("{n:?}: tarball names are letters, digits and dashes");
        }
        script.push_str(&format!(
            "mkdir -p /src/{n} && echo {n} > /src/{n}/{n}.txt && tar -czf /www/{n}.tar.gz -C /src/{n} .\n"
        ));
    }
    let (file, content) = GIT_FILE;
    script.push_str(&format!(
        "mkdir -p /src/repo && cd /src/repo && git init -q && printf '{}' > {file} && \
         git add {file} && git -c user.name=e2e -c user.email=e2e@files.invalid commit -qm e2e && \
         git clone -q --bare /src/repo /www/{GIT_REPOSITORY}\n",
        content.replace('\n', "\\n")
    ));
    script.push_str("httpd -p 80 -h /www\n");
    script.push_str("exec git daemon --reuseaddr --export-all --base-path=/www /www\n");
    let yaml = format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: files, labels: {{app: files}}}}
spec:
  containers:
    - name: httpd
      image: {git}
      command: [sh, -c, {script:?}]
      readinessProbe: {{tcpSocket: {{port: 9418}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: files}}
spec:
  selector: {{app: files}}
  ports: [{{name: http, port: 80}}, {{name: git, port: 9418}}]
"#,
        git = crate::builder_images::GIT_IMAGE,
    );
    ns.k_stdin(&["apply", "-f", "-"], Some(&yaml))
        .ok()
        .context("creating the file server")?;
    poll("the file server Ready", Duration::from_secs(120), |last| {
        let v = ns.get(&["pod", "files"]);
        *last = format!("{:?}", v.as_ref().map(|v| v["status"].clone()));
        Ok(v.filter(|v| {
            v["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        })
        .map(|_| ()))
    })
}
