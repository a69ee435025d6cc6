//! Argo CD's diff (`e2e/gitops/argo-diff`: `github.com/argoproj/gitops-engine/pkg/diff` v0.7.3,
//! the last standalone release; current Argo CD needs a newer Go than this project builds with,
//! and that release has no server-side diff) against the loopback control plane:
//! - `manifests/default` and each file of `examples/` are synced as Argo CD's default sync does
//!   (`kubectl apply`, client-side, which records last-applied-configuration);
//! - the webhook in its self-managed mode writes caBundle, the operator writes status;
//! - the three-way diff then finds every object in sync, the webhook configurations too, with
//!   no `ignoreDifferences`: caBundle is in neither Git nor last-applied-configuration, so the
//!   three-way merge leaves it out of the comparison;
//! - an edit of a field that is in Git (failurePolicy) does show as out of sync;
//! - in sync again after the webhook's CA was rotated.
//!
//! As on the whole loopback control plane, the configurations call the webhook by URL.

use std::path::PathBuf;
use std::time::Duration;

use osartifact_e2e::gitops::{self, parse_yaml};
use osartifact_e2e::procs::free_port;
use osartifact_e2e::{env, paths};
use serde_json::{Value, json};

/// Argo CD's diff of every object in `files` against the live objects: `(key, paths)` of each
/// object Argo CD would show OutOfSync.
fn out_of_sync(files: &[PathBuf]) -> Vec<(String, Vec<String>)> {
    let e = env();
    let mut found = Vec::new();
    let mut compared = 0;
    for f in files {
        let live = e
            .k()
            .run(&["get", "-f", &f.display().to_string(), "-o", "json"])
            .and_then(|o| o.ok())
            .expect("the live objects");
        // kubectl prints a List, or the object itself when the file holds one.
        let mut live: Value = serde_json::from_str(&live.stdout).expect("kubectl's JSON");
        if live["kind"] != "List" {
            live = json!({"apiVersion": "v1", "kind": "List", "items": [live]});
        }
        let live_file = f.with_extension("live.json");
        std::fs::write(&live_file, live.to_string()).expect("write");
        let run = gitops::run(
            "argo-diff",
            &[
                "-config",
                &f.display().to_string(),
                "-live",
                &live_file.display().to_string(),
            ],
            None,
            &e.data_dir.join("argo-home"),
        )
        .expect("running argo-diff");
        let run = run.ok().unwrap_or_else(|e| panic!("{e:#}"));
        let out: Value =
            serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout));
        for o in out["objects"].as_array().expect("objects") {
            compared += 1;
            let paths: Vec<String> = o["paths"]
                .as_array()
                .expect("paths")
                .iter()
                .map(|p| p.as_str().expect("path").to_string())
                .collect();
            let modified = o["modified"].as_bool().expect("modified");
            // Argo's verdict and the reported fields agree.
            assert_eq!(modified, !paths.is_empty(), "{o}");
            if modified {
                found.push((o["key"].as_str().expect("key").to_string(), paths));
            }
        }
    }
    assert!(compared > 40, "only {compared} objects compared");
    found.sort();
    found
}

#[test]
fn argo_cd_three_way_diff_finds_everything_in_sync_without_ignore_differences() {
    let e = env();
    let dir = e.data_dir.join("argo");
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port().expect("port");
    let install = gitops::install_calling_webhook_at(port).expect("manifests/default");
    let install_file = dir.join("osartifact.yaml");
    gitops::write_docs(&install_file, &install).expect("write");
    // Argo CD's default sync: kubectl apply, client-side.
    e.k()
        .run(&["apply", "-f", &install_file.display().to_string()])
        .and_then(|o| o.ok())
        .expect("sync of the install");

    let (webhook, bundles) =
        gitops::start_self_managed_webhook(e, "webhook-argo", port).expect("webhook");
    drop(e.operator());

    // Each example as an Application of its own, in its own namespace.
    let mut files: Vec<_> = std::fs::read_dir(paths::workspace().join("examples"))
        .expect("examples/")
        .map(|d| d.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut namespaces = Vec::new();
    let mut all_files = vec![install_file.clone()];
    for f in &files {
        let ns = e.namespace("argo");
        let text = std::fs::read_to_string(f).expect("example");
        let mut docs = parse_yaml(&text).expect("example parses");
        for o in &mut docs {
            o["metadata"]["namespace"] = json!(ns.name);
        }
        let out = dir.join(f.file_name().expect("file name"));
        gitops::write_docs(&out, &docs).expect("write");
        ns.k(&["apply", "-f", &out.display().to_string()])
            .ok()
            .expect("sync of an example");
        for o in docs.iter().filter(|o| o["kind"] == "OSArtifact") {
            let name = o["metadata"]["name"].as_str().expect("name");
            ns.wait_for(
                &["osartifact", name],
                "the operator's status",
                Duration::from_secs(60),
                |a| a["status"]["phase"].as_str().is_some_and(|p| !p.is_empty()),
            );
        }
        all_files.push(out);
        namespaces.push(ns);
    }

    assert_eq!(
        out_of_sync(&all_files),
        vec![],
        "after the webhook and the operator wrote"
    );

    // The diff does see a change someone makes to a field in Git: a control that the empty
    // result above is not blindness.
    let patch = r#"{"webhooks":[{"name":"validate.osartifacts.build.kairos.io","failurePolicy":"Ignore"}]}"#;
    e.k()
        .run(&[
            "patch",
            "validatingwebhookconfiguration",
            "osartifact-validating",
            "-p",
            patch,
        ])
        .and_then(|o| o.ok())
        .expect("an edit");
    assert_eq!(
        out_of_sync(&all_files),
        vec![(
            "ValidatingWebhookConfiguration//osartifact-validating".to_string(),
            vec!["webhooks[0].failurePolicy".to_string()]
        )]
    );
    e.k()
        .run(&["apply", "-f", &install_file.display().to_string()])
        .and_then(|o| o.ok())
        .expect("sync again");

    gitops::rotate_ca(e, &bundles).expect("CA rotated");

    assert_eq!(out_of_sync(&all_files), vec![], "after the CA rotation");
    drop(webhook);
}
