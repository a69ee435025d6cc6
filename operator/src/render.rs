//! `osartifact-operator render`: renders Dockerfile templates exactly as the operator does.
//!
//! Two modes:
//!
//! * `render --dockerfile FILE [--values FILE.yaml] [--set KEY=VALUE]...` previews one
//!   Dockerfile. Values come from the YAML file (a flat map of string to string, like the
//!   values Secret), then each `--set` overrides a key (like the inline
//!   `dockerfileTemplateValues` win over the Secret). The rendered bytes go to stdout;
//!   errors go to stderr with line and column. Exit code 0 on success, 1 when the
//!   template is rejected (parse error, forbidden action, exec error or limit), 2 when
//!   the input cannot be used (unreadable file, invalid YAML, non-string value, bad
//!   `--set`).
//! * `render --jsonl` reads one case a line on stdin, `{"name", "template", "values"}`,
//!   and writes one result a line on stdout: `{"name", "output"}` (or `"output_base64"`
//!   when the output is not UTF-8), `{"name", "error": "parse"|"exec", "message"}` or
//!   `{"name", "forbidden": true, "message"}`. A line that is not a valid case gets
//!   `{"name" (null when unknown), "error": "input", "message"}`; the run goes on.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use osartifact_gotemplate::{Limits, RenderError, render};
use osartifact_shared::dockerfile::TEMPLATE_NAME;

/// Arguments of `osartifact-operator render`: `--jsonl`, or a Dockerfile preview.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RenderArgs {
    /// Batch mode: read JSONL cases ({"name","template","values"}) on stdin and write one JSON
    /// result per line to stdout.
    #[arg(long, conflicts_with_all = ["dockerfile", "values", "set"])]
    pub jsonl: bool,

    #[command(flatten)]
    pub dockerfile: DockerfileArgs,
}

/// Flags of the Dockerfile preview (`render --dockerfile FILE ...`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DockerfileArgs {
    /// The Dockerfile template to render.
    #[arg(
        long = "dockerfile",
        value_name = "FILE",
        required_unless_present = "jsonl"
    )]
    pub dockerfile: Option<PathBuf>,

    /// YAML file with the template values: a flat map of string keys to string values.
    #[arg(long = "values", value_name = "FILE.yaml")]
    pub values: Option<PathBuf>,

    /// Set one value, overriding the values file; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

/// Runs `render`; returns the process exit code.
pub fn run(args: &RenderArgs) -> i32 {
    if args.jsonl {
        let stdin = std::io::stdin();
        let stdout = std::io::stdout();
        return match run_jsonl(stdin.lock(), std::io::BufWriter::new(stdout.lock())) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("render: {e}");
                2
            }
        };
    }
    run_dockerfile(&args.dockerfile)
}

/// Why a Dockerfile preview failed, and so which exit code it gets.
#[derive(Debug)]
enum PreviewError {
    /// The input could not be used: exit code 2.
    Input(String),
    /// The template was rejected: exit code 1.
    Template(String),
}

/// Renders the Dockerfile preview; prints the result to stdout or the error to stderr.
/// Returns 0, 1 (template rejected) or 2 (unusable input).
pub fn run_dockerfile(args: &DockerfileArgs) -> i32 {
    match preview(args) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&out).and_then(|()| stdout.flush()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("render: writing the output: {e}");
                    2
                }
            }
        }
        Err(PreviewError::Input(msg)) => {
            eprintln!("render: {msg}");
            2
        }
        Err(PreviewError::Template(msg)) => {
            eprintln!("render: {msg}");
            1
        }
    }
}

fn preview(args: &DockerfileArgs) -> Result<Vec<u8>, PreviewError> {
    let Some(path) = &args.dockerfile else {
        return Err(PreviewError::Input(
            "--dockerfile FILE is required (or use --jsonl)".into(),
        ));
    };
    let bytes = std::fs::read(path)
        .map_err(|e| PreviewError::Input(format!("reading {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| PreviewError::Input(format!("{} is not valid UTF-8 text", path.display())))?;
    let mut values = match &args.values {
        Some(p) => read_values(p)?,
        None => BTreeMap::new(),
    };
    for set in &args.set {
        let (k, v) = parse_set(set).map_err(PreviewError::Input)?;
        values.insert(k, v);
    }
    render(TEMPLATE_NAME, &text, &values, &Limits::default())
        .map_err(|e| PreviewError::Template(format!("{}: {e}", path.display())))
}

/// Parses `KEY=VALUE` (the value may itself contain `=`).
fn parse_set(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("--set {s:?}: expected KEY=VALUE")),
    }
}

/// Reads a values file: a YAML mapping whose values are all strings.
fn read_values(path: &Path) -> Result<BTreeMap<String, String>, PreviewError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PreviewError::Input(format!("reading {}: {e}", path.display())))?;
    parse_values(&text).map_err(|e| PreviewError::Input(format!("{}: {e}", path.display())))
}

fn parse_values(text: &str) -> Result<BTreeMap<String, String>, String> {
    let raw: Option<BTreeMap<String, serde_json::Value>> =
        serde_saphyr::from_str(text).map_err(|e| format!("not a YAML map of strings: {e}"))?;
    let mut values = BTreeMap::new();
    for (k, v) in raw.unwrap_or_default() {
        match v {
            serde_json::Value::String(s) => {
                values.insert(k, s);
            }
            other => {
                let kind = match other {
                    serde_json::Value::Null => "null",
                    serde_json::Value::Bool(_) => "a boolean",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Array(_) => "a list",
                    serde_json::Value::Object(_) => "a map",
                    serde_json::Value::String(_) => "a string",
                };
                return Err(format!(
                    "value of {k:?} is {kind}, not a string; quote it (\"...\")"
                ));
            }
        }
    }
    Ok(values)
}

/// One JSONL result line.
#[derive(serde::Serialize, Default)]
struct CaseResult {
    /// Always present (null when the line had no usable name) so consumers can key on it.
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    forbidden: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Batch mode: one JSON case per input line, one JSON result per output line.
/// Only I/O errors on `input`/`output` end the run early.
pub fn run_jsonl(mut input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if input.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        let text = trim_line(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = run_case(text);
        serde_json::to_writer(&mut output, &result).map_err(std::io::Error::other)?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    output.flush()
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn input_error(name: Option<String>, message: String) -> CaseResult {
    CaseResult {
        name,
        error: Some("input"),
        message: Some(message),
        ..CaseResult::default()
    }
}

fn run_case(line: &[u8]) -> CaseResult {
    let case: serde_json::Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return input_error(None, format!("not a JSON case: {e}")),
    };
    let name = case
        .get("name")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string);
    let Some(template) = case.get("template").and_then(serde_json::Value::as_str) else {
        return input_error(name, "\"template\" must be a string".into());
    };
    let mut values = BTreeMap::new();
    match case.get("values") {
        None | Some(serde_json::Value::Null) => {}
        Some(serde_json::Value::Object(m)) => {
            for (k, v) in m {
                let Some(s) = v.as_str() else {
                    return input_error(name, format!("value of {k:?} must be a string"));
                };
                values.insert(k.clone(), s.to_string());
            }
        }
        Some(_) => return input_error(name, "\"values\" must be an object of strings".into()),
    }
    // Defence in depth: a bug in the engine must cost one case, not the whole batch.
    let rendered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        render(TEMPLATE_NAME, template, &values, &Limits::default())
    }));
    let mut res = CaseResult {
        name,
        ..CaseResult::default()
    };
    match rendered {
        Ok(Ok(out)) => match String::from_utf8(out) {
            Ok(s) => res.output = Some(s),
            Err(e) => res.output_base64 = Some(base64_encode(e.as_bytes())),
        },
        Ok(Err(e @ RenderError::Forbidden { .. })) => {
            res.forbidden = Some(true);
            res.message = Some(e.to_string());
        }
        Ok(Err(RenderError::Template(e))) => {
            res.error = Some(e.class());
            res.message = Some(e.to_string());
        }
        Err(_) => {
            res.error = Some("exec");
            res.message = Some("internal error while rendering".into());
        }
    }
    res
}

/// Standard base64 with padding (RFC 4648).
fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(input: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        run_jsonl(input.as_bytes(), &mut out).expect("in-memory I/O");
        String::from_utf8(out)
            .expect("JSON output is UTF-8")
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect()
    }

    #[test]
    fn jsonl_reports_each_outcome() {
        let input = concat!(
            r#"{"name":"ok","template":"FROM {{.A}}{{.Missing}}","values":{"A":"alpine"}}"#,
            "\n\n",
            r#"{"name":"parse","template":"{{.A","values":{}}"#,
            "\r\n",
            r#"{"name":"exec","template":"{{.A.B}}","values":{"A":"x"}}"#,
            "\n",
            r#"{"name":"forbidden","template":"{{define \"x\"}}{{end}}","values":{}}"#,
            "\n",
            r#"{"name":"bytes","template":"{{slice .A 0 1}}","values":{"A":"é"}}"#,
            "\n",
            r#"{"name":"novalues","template":"x"}"#,
        );
        let out = jsonl(input);
        assert_eq!(out.len(), 6);
        assert_eq!(
            out[0],
            serde_json::json!({"name": "ok", "output": "FROM alpine"})
        );
        assert_eq!(out[1]["error"], "parse");
        assert!(
            out[1]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("template: Dockerfile:1:"))
        );
        assert_eq!(out[2]["error"], "exec");
        assert_eq!(out[3]["forbidden"], true);
        assert!(
            out[3]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not allowed"))
        );
        assert_eq!(
            out[4],
            serde_json::json!({"name": "bytes", "output_base64": "ww=="})
        );
        assert_eq!(out[5]["output"], "x");
    }

    #[test]
    fn jsonl_survives_malformed_lines() {
        let input = concat!(
            "not json\n",
            r#"{"name":"n1","template":3}"#,
            "\n",
            r#"{"name":"n2","template":"x","values":{"A":1}}"#,
            "\n",
            r#"{"name":"n3","template":"x","values":[1]}"#,
            "\n",
            r#"["x"]"#,
            "\n",
            r#"{"name":"ok","template":"{{1}}"}"#,
            "\n",
        );
        let out = jsonl(input);
        assert_eq!(out.len(), 6);
        for r in &out[..5] {
            assert_eq!(r["error"], "input", "{r}");
        }
        assert_eq!(out[1]["name"], "n1");
        assert_eq!(out[2]["name"], "n2");
        assert_eq!(out[0]["name"], serde_json::Value::Null);
        assert_eq!(out[5]["output"], "1");
        // Invalid UTF-8 in a line is an input error, not an I/O failure.
        let mut out = Vec::new();
        assert!(run_jsonl(&b"{\"name\":\"\xff\"}\n"[..], &mut out).is_ok());
        assert!(String::from_utf8_lossy(&out).contains("\"input\""));
    }

    #[test]
    fn base64_matches_rfc4648() {
        for (raw, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(raw.as_bytes()), enc);
        }
    }

    /// Writes `content` to `name` in `dir`, which the test holds and which goes with it.
    fn temp_file(dir: &tempfile::TempDir, name: &str, content: &str) -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, content).expect("temp file");
        p
    }

    #[test]
    fn dockerfile_preview_merges_values_then_sets() {
        let dir = tempfile::tempdir().expect("temp dir");
        let df = temp_file(
            &dir,
            "merge.Dockerfile",
            "FROM {{.Base}}:{{.Tag}}\nUSER {{.User}}\n",
        );
        let values = temp_file(
            &dir,
            "merge.yaml",
            "Base: alpine\nTag: \"3.20\"\nUser: app\n",
        );
        let args = DockerfileArgs {
            dockerfile: Some(df),
            values: Some(values),
            set: vec!["Tag=edge".into(), "User=a=b".into()],
        };
        let out = preview(&args)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned());
        assert_eq!(out.as_deref(), Some("FROM alpine:edge\nUSER a=b\n"));
    }

    #[test]
    fn dockerfile_preview_error_codes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let good = temp_file(&dir, "codes.Dockerfile", "FROM {{.A}}\n");
        let bad = temp_file(&dir, "codes-bad.Dockerfile", "FROM x\nRUN {{.A.B}}\n");
        let forbidden = temp_file(&dir, "codes-forbidden.Dockerfile", "{{template \"x\"}}");
        let numeric = temp_file(&dir, "codes-num.yaml", "A: x\nPort: 8080\n");
        let args = |df: &PathBuf, set: &[&str]| DockerfileArgs {
            dockerfile: Some(df.clone()),
            values: None,
            set: set.iter().map(|s| s.to_string()).collect(),
        };
        assert!(preview(&args(&good, &["A=x"])).is_ok());
        match preview(&args(&bad, &["A=x"])) {
            Err(PreviewError::Template(m)) => assert!(m.contains("Dockerfile:2:"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            preview(&args(&forbidden, &[])),
            Err(PreviewError::Template(_))
        ));
        assert!(matches!(
            preview(&args(&good, &["novalue"])),
            Err(PreviewError::Input(_))
        ));
        let missing = PathBuf::from("/nonexistent/Dockerfile");
        assert!(matches!(
            preview(&args(&missing, &[])),
            Err(PreviewError::Input(_))
        ));
        let with_numeric = DockerfileArgs {
            values: Some(numeric),
            ..args(&good, &[])
        };
        match preview(&with_numeric) {
            Err(PreviewError::Input(m)) => assert!(m.contains("\"Port\""), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(run_dockerfile(&args(&bad, &["A=x"])), 1);
        assert_eq!(run_dockerfile(&args(&missing, &[])), 2);
    }

    #[test]
    fn values_file_shapes() {
        assert_eq!(parse_values("").ok(), Some(BTreeMap::new()));
        assert_eq!(
            parse_values("# only a comment\n").ok(),
            Some(BTreeMap::new())
        );
        assert!(parse_values("- a\n").is_err());
        assert!(parse_values("a: [1]\n").is_err());
        assert!(parse_values("a: true\n").is_err());
        assert!(parse_values("a:\n").is_err());
        assert_eq!(
            parse_values("a: x\n\"b c\": 'y'\n").ok(),
            Some(BTreeMap::from([
                ("a".into(), "x".into()),
                ("b c".into(), "y".into())
            ]))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn deep_templates_are_safe_on_a_tokio_worker() {
        let deep = format!("{{{{{}1{}}}}}", "(".repeat(10_000), ")".repeat(10_000));
        let nested = format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000));
        let task = tokio::spawn(async move {
            let a = render(TEMPLATE_NAME, &deep, &BTreeMap::new(), &Limits::default());
            let b = render(TEMPLATE_NAME, &nested, &BTreeMap::new(), &Limits::default());
            (a.ok(), b.ok())
        });
        let (a, b) = task.await.expect("task completes");
        assert_eq!(a.as_deref(), Some(&b"1"[..]));
        assert_eq!(b.as_deref(), Some(&b"x"[..]));
    }
}
