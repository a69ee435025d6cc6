//! Argo CD's diff (`e2e/gitops/argo-diff`: `github.com/argoproj/gitops-engine`, the revision
//! Argo CD 3.2.0 builds with; Argo CD's own module needs a newer Go than this project builds
//! with) against the loopback control plane, in both of Argo CD's modes:
//! - `manifests/default` and each file of `examples/` are synced as Argo CD's default sync does
//!   (client-side apply, which records last-applied-configuration);
//! - the webhook in its self-managed mode writes caBundle, the operator writes status;
//! - the default three-way diff then finds every object in sync, the webhook configurations
//!   too, with no `ignoreDifferences`: caBundle is in neither Git nor last-applied-configuration,
//!   so the three-way merge leaves it out of the comparison;
//! - so does the server-side diff (`ServerSideDiff=true`: a server-side apply dry run with
//!   Argo's field manager, through the admission webhooks, against the apiserver), after Argo's
//!   own sync, client-side or with `ServerSideApply=true`, also with no `ignoreDifferences`:
//!   caBundle is owned by the webhook's field manager, not Argo's;
//! - an edit of a field that is in Git (failurePolicy) does show as out of sync, that field
//!   only;
//! - in sync again after the webhook's CA was rotated.
//!
//! As on the whole loopback control plane, the configurations call the webhook by URL. The
//! tests share the cluster-scoped objects, so they run one after the other.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use osartifact_e2e::gitops::{self, parse_yaml};
use osartifact_e2e::procs::free_port;
use osartifact_e2e::{env, paths};
use serde_json::{Value, json};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which of Argo CD's diffs to run, after which sync.
#[derive(Clone, Copy, PartialEq)]
enum Diff {
    /// The default: three-way against last-applied-configuration, after kubectl's client-side
    /// apply.
    ThreeWay,
    /// `ServerSideDiff=true`, after Argo's own sync, client-side (its default).
    ServerSide,
    /// `ServerSideDiff=true`, after Argo's own sync with `ServerSideApply=true`.
    ServerSideAfterServerSideApply,
}

/// Argo CD's diff of every object in `files` against the live objects: `(key, paths)` of each
/// object Argo CD would show OutOfSync.
fn out_of_sync(files: &[PathBuf], mode: Diff) -> Vec<(String, Vec<String>)> {
    let e = env();
    let mut found = Vec::new();
    let mut compared = 0;
    for f in files {
        let run = match mode {
            Diff::ThreeWay => three_way(f),
            Diff::ServerSide | Diff::ServerSideAfterServerSideApply => gitops::run(
                "argo-diff",
                &["-server-side", "-config", &f.display().to_string()],
                Some(&e.cp.admin.kubeconfig),
                &e.data_dir.join("argo-home"),
            )
            .expect("running argo-diff"),
        };
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

/// The three-way diff of the objects in `f`, offline against what kubectl reads.
fn three_way(f: &Path) -> gitops::Run {
    let e = env();
    {
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
        gitops::run(
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
        .expect("running argo-diff")
    }
}

/// Syncs the objects in `f` as Argo CD does: for the three-way case with kubectl (the
/// client-side apply its default sync is), for the server-side diff through Argo's own sync code
/// (`argo-diff -sync`, under its field manager), client-side or server-side.
fn sync(f: &Path, mode: Diff) {
    let e = env();
    let f = f.display().to_string();
    match mode {
        Diff::ThreeWay => {
            e.k()
                .run(&["apply", "-f", &f])
                .and_then(|o| o.ok())
                .expect("sync");
        }
        Diff::ServerSide | Diff::ServerSideAfterServerSideApply => {
            let ssa = format!(
                "-server-side-apply={}",
                mode == Diff::ServerSideAfterServerSideApply
            );
            gitops::run(
                "argo-diff",
                &["-sync", &ssa, "-config", &f],
                Some(&e.cp.admin.kubeconfig),
                &e.data_dir.join("argo-home"),
            )
            .and_then(|r| r.ok())
            .unwrap_or_else(|e| panic!("sync: {e:#}"));
        }
    }
}

#[test]
fn argo_cd_three_way_diff_finds_everything_in_sync_without_ignore_differences() {
    in_sync_but_for_an_edit(Diff::ThreeWay, "argo");
}

#[test]
fn argo_cd_server_side_diff_finds_everything_in_sync_without_ignore_differences() {
    in_sync_but_for_an_edit(Diff::ServerSide, "argo-ssd");
}

#[test]
fn argo_cd_server_side_diff_after_a_server_side_apply_sync_finds_everything_in_sync() {
    in_sync_but_for_an_edit(Diff::ServerSideAfterServerSideApply, "argo-ssa");
}

/// The install and the examples synced, the webhook and the operator at work: `mode` finds
/// nothing out of sync; it does find an edit of failurePolicy, that field only; nothing again
/// after a re-sync and a CA rotation.
fn in_sync_but_for_an_edit(mode: Diff, name: &str) {
    let _serial = serial();
    let e = env();
    let dir = e.data_dir.join(name);
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port().expect("port");
    let install = gitops::install_calling_webhook_at(port).expect("manifests/default");
    let install_file = dir.join("osartifact.yaml");
    gitops::write_docs(&install_file, &install).expect("write");
    sync(&install_file, mode);

    let (webhook, bundles) =
        gitops::start_self_managed_webhook(e, &format!("webhook-{name}"), port).expect("webhook");
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
        let ns = e.namespace(name);
        let text = std::fs::read_to_string(f).expect("example");
        let mut docs = parse_yaml(&text).expect("example parses");
        for o in &mut docs {
            o["metadata"]["namespace"] = json!(ns.name);
        }
        let out = dir.join(f.file_name().expect("file name"));
        gitops::write_docs(&out, &docs).expect("write");
        sync(&out, mode);
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
        out_of_sync(&all_files, mode),
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
        out_of_sync(&all_files, mode),
        vec![(
            "ValidatingWebhookConfiguration//osartifact-validating".to_string(),
            vec!["webhooks[0].failurePolicy".to_string()]
        )]
    );
    sync(&install_file, mode);

    gitops::rotate_ca(e, &bundles).expect("CA rotated");

    assert_eq!(
        out_of_sync(&all_files, mode),
        vec![],
        "after the CA rotation"
    );
    drop(webhook);
}
