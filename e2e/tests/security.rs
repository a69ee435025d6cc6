//! Security checks on the loopback control plane: the builder's privilege and tokens in every
//! example's plan, the admin listeners bound to loopback, Secrets read only where a spec names
//! them (the apiserver's audit log of the operator), and no Secret content in any log, Event,
//! status, child object or metrics page.

use std::collections::BTreeSet;
use std::process::Command;

use osartifact_e2e::artifacts::*;
use osartifact_e2e::{audit, env, http, paths};
use serde_json::Value;

/// Steps that attach loop devices (builder-cli.md §4.4: the disk images); nothing else may be
/// privileged.
const LOOP_DEVICE_STEPS: &[&str] = &["cloud-image", "azure-image", "gce-image"];

fn plan(file: &std::path::Path) -> Vec<Value> {
    let bin = paths::product_binary("osartifact-operator").unwrap();
    let out = Command::new(bin)
        .args(["plan", "-f"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plan -f {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8(out.stdout).unwrap()).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Every container of a pod spec: (name, is init container, container JSON).
fn containers(spec: &Value) -> Vec<(String, Value)> {
    ["initContainers", "containers"]
        .iter()
        .flat_map(|k| spec[*k].as_array().cloned().unwrap_or_default())
        .map(|c| (c["name"].as_str().unwrap_or_default().to_string(), c))
        .collect()
}

/// What a pod spec may never have, builder or exporter: host namespaces, host paths, added
/// capabilities, a ServiceAccount token.
fn assert_pod_hygiene(what: &str, spec: &Value) {
    assert_eq!(
        spec["automountServiceAccountToken"],
        Value::Bool(false),
        "{what}: a ServiceAccount token is mounted"
    );
    for k in ["hostNetwork", "hostPID", "hostIPC"] {
        assert_ne!(spec[k], Value::Bool(true), "{what}: {k}");
    }
    for v in spec["volumes"].as_array().cloned().unwrap_or_default() {
        assert!(v.get("hostPath").is_none(), "{what}: hostPath volume {v}");
    }
    for (name, c) in containers(spec) {
        let sc = &c["securityContext"];
        // buildah switches users in RUN steps (docs/operator.md): SETUID and SETGID, which
        // Pod Security's baseline level allows, and setuid programs must work. Nothing else
        // adds a capability or allows escalation.
        let (caps, escalation) = if name == "buildah" {
            (serde_json::json!(["SETUID", "SETGID"]), Value::Bool(true))
        } else {
            (Value::Null, Value::Null)
        };
        assert_eq!(sc["capabilities"]["add"], caps, "{what}/{name}: {sc}");
        if sc["privileged"] != Value::Bool(true) {
            assert_eq!(
                sc["allowPrivilegeEscalation"], escalation,
                "{what}/{name}: {sc}"
            );
        }
    }
}

#[test]
fn every_example_is_privileged_only_where_loop_devices_are_attached_and_has_no_token() {
    let dir = paths::workspace().join("examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let (mut pods, mut jobs, mut privileged_seen) = (0, 0, BTreeSet::new());
    for f in &files {
        for obj in plan(f) {
            let kind = obj["kind"].as_str().unwrap_or_default();
            let what = format!(
                "{} {kind}/{}",
                f.file_name().unwrap().to_string_lossy(),
                obj["metadata"]["name"].as_str().unwrap_or_default()
            );
            let spec = match kind {
                "Pod" => {
                    pods += 1;
                    obj["spec"].clone()
                }
                "Job" => {
                    jobs += 1;
                    obj["spec"]["template"]["spec"].clone()
                }
                _ => continue,
            };
            assert_pod_hygiene(&what, &spec);
            for (name, c) in containers(&spec) {
                let sc = &c["securityContext"];
                let privileged = sc["privileged"] == Value::Bool(true);
                let needs = kind == "Pod" && LOOP_DEVICE_STEPS.contains(&name.as_str());
                assert_eq!(
                    privileged, needs,
                    "{what}: container {name} privileged={privileged}, needs loop devices={needs}"
                );
                if privileged {
                    privileged_seen.insert(name.clone());
                }
            }
        }
    }
    assert!(pods >= files.len(), "one builder pod per example: {pods}");
    assert!(jobs >= 2, "the examples' exporters: {jobs}");
    // The examples build every disk format, so the rule was seen both ways.
    assert_eq!(
        privileged_seen,
        LOOP_DEVICE_STEPS.iter().map(|s| s.to_string()).collect(),
    );
}

/// Whether something listens on 127.0.0.1:`port` and nothing on another address of it
/// (/proc/net/tcp: local address as little-endian hex, state 0A = LISTEN).
fn listens_on_loopback_only(port: u16) -> Result<(), String> {
    let mut addrs = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(f).unwrap_or_default();
        for l in text.lines().skip(1) {
            let cols: Vec<&str> = l.split_whitespace().collect();
            if cols.len() < 4 || cols[3] != "0A" {
                continue;
            }
            let Some((addr, p)) = cols[1].split_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16) == Ok(port) {
                addrs.push(addr.to_string());
            }
        }
    }
    match addrs.as_slice() {
        [a] if a == "0100007F" => Ok(()),
        _ => Err(format!("port {port} listens on {addrs:?}")),
    }
}

#[test]
fn admin_listeners_can_be_bound_to_loopback() {
    let e = env();
    let op_port = e.operator().as_ref().unwrap().admin_port;
    let wh_port = e.webhook().as_ref().unwrap().admin_port;
    for port in [op_port, wh_port] {
        listens_on_loopback_only(port).unwrap();
        let (code, _) = http::get_local(port, "/metrics").unwrap();
        assert_eq!(code, 200);
        for path in ["/debug/pprof/", "/debug/vars", "/env", "/config", "/"] {
            let (code, body) = http::get_local(port, path).unwrap();
            assert_eq!(code, 404, "{port}{path}: {body}");
        }
    }
}

const MARKERS: &[&str] = &[
    "mk-dockerfile-4c1d9e",
    "mk-values-77ab02",
    "mk-pull-password-e95f",
    "mk-cloudconfig-31c8",
    "mk-bystander-b0a6",
];

fn scenario_yaml() -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let auth = b64("robot:mk-pull-password-e95f");
    let dockercfg = format!(
        r#"{{"auths":{{"registry.invalid":{{"username":"robot","password":"mk-pull-password-e95f","auth":"{auth}"}}}}}}"#
    );
    format!(
        r#"apiVersion: v1
kind: Secret
metadata: {{name: sec-dockerfile}}
stringData:
  Dockerfile: |
    FROM {{{{ .BaseImage }}}}
    # mk-dockerfile-4c1d9e
    RUN echo "{{{{ .Token }}}}" > /etc/build-token
---
apiVersion: v1
kind: Secret
metadata: {{name: sec-values}}
stringData:
  BaseImage: "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0"
  Token: "mk-values-77ab02"
---
apiVersion: v1
kind: Secret
metadata: {{name: sec-pull}}
type: kubernetes.io/dockerconfigjson
data:
  .dockerconfigjson: {}
---
apiVersion: v1
kind: Secret
metadata: {{name: sec-cloud-config}}
stringData:
  userdata: |
    #cloud-config
    users: [{{name: kairos, passwd: mk-cloudconfig-31c8}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: sec-bystander}}
stringData:
  token: mk-bystander-b0a6
---
apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {{name: sec}}
spec:
  baseImageDockerfile: {{name: sec-dockerfile, key: Dockerfile}}
  dockerfileTemplateValuesFrom: {{name: sec-values}}
  imagePullSecrets: [{{name: sec-pull}}]
  cloudConfigRef: {{name: sec-cloud-config, key: userdata}}
  iso: true
  exporters:
  - template:
      spec:
        restartPolicy: Never
        containers:
        - name: upload
          image: quay.io/curl/curl
          command: ["sh", "-ec", "ls /artifacts"]
"#,
        b64(&dockercfg)
    )
}

/// Files under `dir` (recursively) whose content holds one of the markers.
fn grep_dir(dir: &std::path::Path, found: &mut Vec<String>) -> usize {
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            n += grep_dir(&p, found);
        } else if let Ok(bytes) = std::fs::read(&p) {
            n += 1;
            let text = String::from_utf8_lossy(&bytes);
            for m in MARKERS {
                if text.contains(m) {
                    found.push(format!("{} holds {m}", p.display()));
                }
            }
        }
    }
    n
}

#[test]
fn secrets_are_read_where_referenced_and_their_content_shows_nowhere() {
    let e = env();
    drop(e.webhook());
    drop(e.operator());
    let ns = e.namespace("secrets");
    // The same names in another namespace: never to be read for this artifact.
    let other = e.namespace("secrets-other");
    let yaml = scenario_yaml();
    let secrets_only = yaml.split("---\napiVersion: build.kairos.io").next();
    let out = other.k_stdin(&["apply", "-f", "-"], secrets_only);
    assert!(out.success, "{out}");
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(&scenario_yaml()));
    assert!(out.success, "{out}");

    let a = wait_phase(&ns, "sec", "Building");
    // Check the rendered Dockerfile got the value: the Secrets really were read.
    let rendered = ns.get(&["secret", "sec-rendered-dockerfile"]).unwrap();
    use base64::Engine;
    let dockerfile = base64::engine::general_purpose::STANDARD
        .decode(rendered["data"]["Dockerfile"].as_str().unwrap())
        .unwrap();
    assert!(
        String::from_utf8_lossy(&dockerfile).contains("mk-values-77ab02"),
        "{}",
        String::from_utf8_lossy(&dockerfile)
    );
    finish_build(&ns, "sec");
    wait_phase(&ns, "sec", "Exporting");
    fail_export(&ns, "sec-export-0", "upload failed");
    wait_phase(&ns, "sec", "Error");
    wait_event(&ns, "sec", "the export failure Event", |e| {
        e.contains("export")
    });

    // Audit: every Secret GET of the operator in these namespaces is one the spec names, in
    // the artifact's own namespace; writes only to the operator's own Secrets there.
    let referenced = [
        "sec-dockerfile",
        "sec-values",
        "sec-pull",
        "sec-cloud-config",
    ];
    let requests = audit::read(&e.cp.audit_log).unwrap();
    let secret_reqs: Vec<_> = requests
        .iter()
        .filter(|r| r.resource == "secrets")
        .collect();
    let mut got = BTreeSet::new();
    for r in &secret_reqs {
        let name = r.name.as_deref().unwrap_or_default();
        let in_ns = r.namespace.as_deref() == Some(ns.name.as_str());
        assert_ne!(
            r.namespace.as_deref(),
            Some(other.name.as_str()),
            "a Secret read in a namespace without artifacts: {r:?}"
        );
        assert!(name != "sec-bystander", "an unreferenced Secret: {r:?}");
        if !in_ns {
            continue;
        }
        match r.verb.as_str() {
            "get" => {
                assert!(
                    referenced.contains(&name),
                    "GET of an unreferenced Secret: {r:?}"
                );
                got.insert(name.to_string());
            }
            "create" | "patch" => assert!(
                name.starts_with("sec-") && !referenced.contains(&name),
                "a write to a user's Secret: {r:?}"
            ),
            // The metadata watch (no data) is cluster-wide; a GET by name is the only read.
            "list" | "watch" => {}
            v => panic!("unexpected {v} of Secrets: {r:?}"),
        }
    }
    // The operator reads the template and values (rendering) and the pull secret.
    for name in ["sec-dockerfile", "sec-values"] {
        assert!(got.contains(name), "no GET of {name}: {got:?}");
    }

    // No marker anywhere a user without Secret access, or a log reader, could see it.
    let mut found = Vec::new();
    let status = ns.get(&["osartifact", "sec"]).unwrap();
    let events = ns.k(&["get", "events", "-o", "json"]);
    assert!(events.success, "{events}");
    let events_text = events.stdout.clone();
    assert!(events_text.contains("sec"), "no Events: {events_text}");
    let mut texts = vec![
        ("status", status["status"].to_string()),
        ("events", events_text),
        (
            "operator /metrics",
            e.operator().as_ref().unwrap().metrics().unwrap(),
        ),
        (
            "webhook /metrics",
            e.webhook().as_ref().unwrap().metrics().unwrap(),
        ),
    ];
    // Children that are not Secrets: the build record, the builder pod, the exporter Job.
    for what in ["configmap/sec", "pod/sec-build", "job/sec-export-0"] {
        let v = ns.get(&[what]).unwrap_or_else(|| panic!("{what} missing"));
        texts.push((what, v.to_string()));
    }
    for (what, text) in &texts {
        for m in MARKERS {
            if text.contains(m) {
                found.push(format!("{what} holds {m}"));
            }
        }
    }
    // Every log the run wrote so far (control plane, operator, webhook) and the audit log.
    let files = grep_dir(&e.log_dir, &mut found);
    assert!(files >= 4, "logs in {}", e.log_dir.display());
    let audit_text = std::fs::read_to_string(&e.cp.audit_log).unwrap_or_default();
    for m in MARKERS {
        if audit_text.contains(m) {
            found.push(format!("the audit log holds {m}"));
        }
    }
    assert!(
        found.is_empty(),
        "Secret content leaked:\n{}",
        found.join("\n")
    );
    drop(a);
}
