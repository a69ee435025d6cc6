//! A Go `text/template` engine that matches Go byte for byte.
//!
//! Data (`.`) is always a `map[string]string` with Go's `missingkey=zero` behaviour (a
//! missing key renders as ""). Templates that contain `define`, `template` or `block`
//! parse normally but are reported by [`Template::forbidden_action`], refused by
//! [`Template::check_forbidden`] and rejected by [`render`]: forbidden when the source
//! defines any template (also one named like the main template, which Go would quietly use
//! as its body), or when the tree that runs calls `{{template}}`. Execution is bounded by
//! [`Limits`]; deep nesting never exhausts the caller's stack because deep templates are
//! parsed and executed on a helper thread with a stack sized for them.
//!
//! The API is three steps, [`Template::parse`], [`Template::check_forbidden`] and
//! [`Template::execute`], and [`render`], which does all three.
//!
//! Line numbers are 1-based; columns are Go's: the 0-based byte offset within the line.

mod ast;
mod exec;
mod fmt;
mod funcs;
mod lexer;
mod parser;
mod strconv;
mod unicode;
mod unicode_tables;
mod value;

use std::collections::BTreeMap;

use lexer::ItemType;

/// Budgets that keep execution of hostile templates bounded in time and memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size of the rendered output (and of any intermediate string).
    pub max_output_bytes: usize,
    /// Maximum number of `range` iterations, summed over all ranges.
    pub max_range_iterations: u64,
    /// Maximum number of evaluation steps (nodes walked, commands run, one per 8 bytes built).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_output_bytes: 16 * 1024 * 1024,
            max_range_iterations: 1_000_000,
            // A fraction of a second of CPU in a release build at worst (see
            // docs/reliability.md): the webhook renders templates at admission, well inside the
            // apiserver's 10 s timeout.
            max_steps: 2_000_000,
        }
    }
}

/// The first `define`, `template` or `block` action in a template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forbidden {
    pub keyword: &'static str,
    pub line: usize,
    pub col: usize,
}

/// A parse or execution error, displayed like Go: `template: NAME:LINE:COL: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {name}:{line}:{col}: {message}")]
    Parse {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("template: {name}:{line}:{col}: {message}")]
    Exec {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// A [`Limits`] budget ran out; counts as an exec error.
    #[error("template: {name}:{line}:{col}: {message}")]
    Limit {
        name: String,
        line: usize,
        col: usize,
        message: String,
    },
}

impl TemplateError {
    /// "parse" or "exec" (limits count as exec), as in the conformance format.
    pub fn class(&self) -> &'static str {
        match self {
            TemplateError::Parse { .. } => "parse",
            TemplateError::Exec { .. } | TemplateError::Limit { .. } => "exec",
        }
    }

    pub fn line(&self) -> usize {
        match self {
            TemplateError::Parse { line, .. }
            | TemplateError::Exec { line, .. }
            | TemplateError::Limit { line, .. } => *line,
        }
    }

    pub fn col(&self) -> usize {
        match self {
            TemplateError::Parse { col, .. }
            | TemplateError::Exec { col, .. }
            | TemplateError::Limit { col, .. } => *col,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            TemplateError::Parse { message, .. }
            | TemplateError::Exec { message, .. }
            | TemplateError::Limit { message, .. } => message,
        }
    }
}

/// Why [`render`] refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(
        "template: {name}:{line}:{col}: {{{{{keyword}}}}} is not allowed: define, template and block actions are forbidden in Dockerfile templates"
    )]
    Forbidden {
        name: String,
        keyword: &'static str,
        line: usize,
        col: usize,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
}

impl RenderError {
    /// "forbidden", "parse" or "exec".
    pub fn class(&self) -> &'static str {
        match self {
            RenderError::Forbidden { .. } => "forbidden",
            RenderError::Template(e) => e.class(),
        }
    }
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    tree: ast::Tree,
    root: ast::ListId,
    forbidden: Option<Forbidden>,
    line_starts: Vec<usize>,
    depth_hint: usize,
}

/// Recursion levels that are safe to run on the caller's stack (even a 2 MiB worker).
const INLINE_DEPTH: usize = 48;
/// Stack bytes per nesting level: measured at about 8 KiB in debug builds and 2 KiB in
/// release builds, doubled for margin.
const STACK_PER_LEVEL: usize = 16 * 1024;
const STACK_BASE: usize = 4 * 1024 * 1024;

/// Runs `f` on the current thread when shallow, else on a scoped thread whose stack is
/// sized for `depth` levels of recursion.
fn with_stack<T: Send>(depth: usize, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    if depth <= INLINE_DEPTH {
        return Ok(f());
    }
    let size = STACK_BASE.saturating_add(depth.saturating_mul(STACK_PER_LEVEL));
    std::thread::scope(|s| {
        let handle = std::thread::Builder::new()
            .name("gotemplate".into())
            .stack_size(size)
            .spawn_scoped(s, f)
            .map_err(|e| format!("cannot start template thread: {e}"))?;
        handle
            .join()
            .map_err(|_| "template thread failed".to_string())
    })
}

/// Upper bound on block nesting (and so on parser/executor recursion) from the tokens.
/// `{{else if}}`/`{{else with}}` links are handled in loops and share their chain's `{{end}}`.
fn max_nesting(items: &[lexer::Item]) -> usize {
    let mut depth = 0usize;
    let mut max = 0usize;
    let mut prev = ItemType::Eof;
    for it in items {
        match it.typ {
            ItemType::If
            | ItemType::Range
            | ItemType::With
            | ItemType::Block
            | ItemType::Define
                if prev != ItemType::Else =>
            {
                depth += 1;
                max = max.max(depth);
            }
            ItemType::End => depth = depth.saturating_sub(1),
            _ => {}
        }
        if it.typ != ItemType::Space {
            prev = it.typ;
        }
    }
    max
}

const FORBIDDEN_HINT: &str =
    " (note: define, template and block actions are not allowed in Dockerfile templates)";

/// Whether a parse error came after (or at) a `define`/`template`/`block` keyword, as in
/// `{{define"x"}}`, which Go rejects while lexing; the error then gets a hint.
fn mentions_forbidden_action(src: &str, items: &[lexer::Item], err_pos: usize) -> bool {
    let keyword_before = items.iter().any(|i| {
        i.pos <= err_pos
            && matches!(
                i.typ,
                ItemType::Define | ItemType::Template | ItemType::Block
            )
    });
    let rest = src.get(err_pos..).unwrap_or_default();
    let keyword_at = ["define", "template", "block"]
        .iter()
        .any(|k| rest.starts_with(k))
        && items
            .last()
            .is_some_and(|i| i.typ == ItemType::Error && i.pos == err_pos);
    keyword_before || keyword_at
}

fn line_starts(src: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            src.bytes()
                .enumerate()
                .filter(|(_, b)| *b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

fn line_col(starts: &[usize], pos: usize) -> (usize, usize) {
    let idx = match starts.binary_search(&pos) {
        Ok(i) => i,
        Err(i) => i.saturating_sub(1),
    };
    (idx + 1, pos - starts.get(idx).copied().unwrap_or(0))
}

impl Template {
    /// Parses `src` as Go would with `template.New(name).Parse(src)`.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let (items, max_paren) = lexer::lex(src);
        let depth_hint = max_paren.min(parser::MAX_PAREN_DEPTH + 1)
            + max_nesting(&items).min(parser::MAX_NESTING + 1);
        let starts = line_starts(src);
        let parsed = with_stack(depth_hint, || parser::parse(name, &items)).map_err(|message| {
            TemplateError::Parse {
                name: name.to_string(),
                line: 1,
                col: 0,
                message,
            }
        })?;
        match parsed {
            Ok(p) => {
                let forbidden = p.forbidden.map(|f| {
                    let (line, col) = line_col(&starts, f.pos);
                    Forbidden {
                        keyword: f.keyword,
                        line,
                        col,
                    }
                });
                Ok(Template {
                    name: name.to_string(),
                    tree: p.tree,
                    root: p.root,
                    forbidden,
                    line_starts: starts,
                    depth_hint,
                })
            }
            Err(e) => {
                let (line, col) = line_col(&starts, e.pos);
                let mut message = e.message;
                if mentions_forbidden_action(src, &items, e.pos) {
                    message.push_str(FORBIDDEN_HINT);
                }
                Err(TemplateError::Parse {
                    name: name.to_string(),
                    line,
                    col,
                    message,
                })
            }
        }
    }

    /// The first `define`, `template` or `block` in the parse tree, if any.
    pub fn forbidden_action(&self) -> Option<Forbidden> {
        self.forbidden
    }

    /// [`RenderError::Forbidden`] for the first forbidden action, so that a caller can
    /// refuse a template before it has the data to execute it with.
    pub fn check_forbidden(&self) -> Result<(), RenderError> {
        match self.forbidden {
            Some(f) => Err(RenderError::Forbidden {
                name: self.name.clone(),
                keyword: f.keyword,
                line: f.line,
                col: f.col,
            }),
            None => Ok(()),
        }
    }

    /// Executes with `.` = `data` (Go's `missingkey=zero` on `map[string]string`).
    pub fn execute(
        &self,
        data: &BTreeMap<String, String>,
        limits: &Limits,
    ) -> Result<Vec<u8>, TemplateError> {
        let r = with_stack(self.depth_hint, || {
            exec::execute(&self.name, &self.tree, self.root, data, limits)
                .map_err(|f| self.exec_error(f))
        });
        match r {
            Ok(r) => r,
            Err(message) => Err(TemplateError::Exec {
                name: self.name.clone(),
                line: 1,
                col: 0,
                message,
            }),
        }
    }

    fn exec_error(&self, f: exec::Failure) -> TemplateError {
        let name = self.name.clone();
        match f {
            exec::Failure::Exec { pos, message } => {
                let (line, col) = line_col(&self.line_starts, pos.unwrap_or(0));
                TemplateError::Exec {
                    name,
                    line,
                    col,
                    message,
                }
            }
            exec::Failure::Limit { pos, message } => {
                let (line, col) = line_col(&self.line_starts, pos.unwrap_or(0));
                TemplateError::Limit {
                    name,
                    line,
                    col,
                    message,
                }
            }
        }
    }
}

/// Parses, rejects forbidden actions, then executes.
pub fn render(
    name: &str,
    src: &str,
    data: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let t = Template::parse(name, src)?;
    t.check_forbidden()?;
    Ok(t.execute(data, limits)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("A".to_string(), "alpha".to_string()),
            ("B".to_string(), String::new()),
        ])
    }

    fn run(src: &str) -> Result<String, RenderError> {
        render("Dockerfile", src, &data(), &Limits::default())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn renders_basic_template() {
        assert_eq!(
            run("FROM {{.A}}:{{.Missing}}!").ok().as_deref(),
            Some("FROM alpha:!")
        );
        assert_eq!(
            run("{{range $k, $v := .}}{{$k}}={{$v}};{{end}}")
                .ok()
                .as_deref(),
            Some("A=alpha;B=;")
        );
    }

    #[test]
    fn error_classes_and_display() {
        let e = run("a\n{{.A").err();
        assert_eq!(e.as_ref().map(|e| e.class()), Some("parse"));
        let e = run("x\n  {{.A.B}}").err();
        assert_eq!(e.as_ref().map(|e| e.class()), Some("exec"));
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some(
                "template: Dockerfile:2:6: executing \"Dockerfile\" at <.A.B>: can't evaluate field B in type string"
            )
        );
        let e = Template::parse("Dockerfile", "{{nope}}").err();
        assert_eq!(
            e.as_ref().map(|e| (e.line(), e.class())),
            Some((1, "parse"))
        );
    }

    #[test]
    fn forbidden_actions_are_found_in_the_tree() {
        for (src, kw) in [
            ("{{define \"x\"}}a{{end}}", "define"),
            ("{{- define \"x\" -}}a{{end}}", "define"),
            ("x\n{{if .A}}{{template \"x\"}}{{end}}", "template"),
            ("{{- block \"x\" .}}d{{end}}", "block"),
            (
                "{{with .B}}{{else with .A}}{{template \"x\" .}}{{end}}",
                "template",
            ),
        ] {
            let t = Template::parse("Dockerfile", src);
            assert_eq!(
                t.ok().and_then(|t| t.forbidden_action()).map(|f| f.keyword),
                Some(kw),
                "{src}"
            );
        }
        let t = Template::parse("Dockerfile", "x\n  {{template \"y\"}}").ok();
        assert_eq!(
            t.and_then(|t| t.forbidden_action()),
            Some(Forbidden {
                keyword: "template",
                line: 2,
                col: 4
            })
        );
        for src in [
            "{{\"{{define \\\"x\\\"}}\"}}",
            "a{{/* {{define \"x\"}}{{end}} */}}b",
            "[{{.template}}]",
            "define template block",
            "{{print \"block\"}}",
        ] {
            let t = Template::parse("Dockerfile", src);
            assert!(
                t.as_ref().is_ok_and(|t| t.forbidden_action().is_none()),
                "{src}"
            );
        }
        let e = run("{{block \"x\" .}}d{{end}}").err();
        assert!(matches!(
            e,
            Some(RenderError::Forbidden {
                keyword: "block",
                ..
            })
        ));
        assert!(
            e.map(|e| e.to_string())
                .unwrap_or_default()
                .contains("not allowed")
        );
        // A define of the template's own name would only replace its body in Go; the user
        // docs forbid every define, so it is forbidden too.
        let t = Template::parse(
            "Dockerfile",
            "{{define \"Dockerfile\"}}FROM {{.A}}{{end}}\n",
        );
        assert!(
            t.as_ref()
                .is_ok_and(|t| t.forbidden_action().is_some_and(|f| f.keyword == "define"))
        );
        assert!(run("{{define \"Dockerfile\"}}{{template \"x\"}}{{end}}").is_err());
        // A keyword Go rejects while lexing is a parse error, as in Go.
        assert_eq!(
            run("{{define\"x\"}}{{end}}").err().map(|e| e.class()),
            Some("parse")
        );
    }

    #[test]
    fn check_forbidden_refuses_like_render() {
        let src = "FROM x\n {{if .A}}{{block \"y\" .}}{{end}}{{end}}";
        let checked = Template::parse("Dockerfile", src).map(|t| t.check_forbidden());
        assert_eq!(
            checked,
            Ok(Err(RenderError::Forbidden {
                name: "Dockerfile".into(),
                keyword: "block",
                line: 2,
                col: 12,
            }))
        );
        assert_eq!(checked.ok().and_then(Result::err), run(src).err());
        let t = Template::parse("Dockerfile", "{{.template}} define");
        assert_eq!(t.map(|t| t.check_forbidden()), Ok(Ok(())));
    }

    #[test]
    fn range_budget_fails_fast() {
        let start = std::time::Instant::now();
        let e = run("{{range 1000000000}}x{{end}}").err();
        assert!(
            matches!(e, Some(RenderError::Template(TemplateError::Limit { .. }))),
            "{e:?}"
        );
        assert_eq!(e.map(|e| e.class()), Some("exec"));
        let e = run("{{range 100000}}{{range 100000}}{{end}}{{end}}").err();
        assert!(matches!(
            e,
            Some(RenderError::Template(TemplateError::Limit { .. }))
        ));
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
        let limits = Limits {
            max_range_iterations: 10,
            ..Limits::default()
        };
        assert!(render("D", "{{range 10}}x{{end}}", &data(), &limits).is_ok());
        assert!(render("D", "{{range 11}}x{{end}}", &data(), &limits).is_err());
        // A range that breaks early is not charged for iterations it never ran.
        assert_eq!(
            run("{{range 1000000000}}{{break}}{{end}}ok")
                .ok()
                .as_deref(),
            Some("ok")
        );
    }

    #[test]
    fn output_and_value_size_are_bounded() {
        let limits = Limits {
            max_output_bytes: 100,
            ..Limits::default()
        };
        assert!(render("D", "{{range 10}}0123456789{{end}}", &data(), &limits).is_ok());
        let e = render("D", "{{range 11}}0123456789{{end}}", &data(), &limits).err();
        assert!(matches!(
            e,
            Some(RenderError::Template(TemplateError::Limit { .. }))
        ));
        // Doubling a string never allocates without bound.
        let e = run("{{$x := \"ab\"}}{{range 100}}{{$x = print $x $x}}{{end}}{{len $x}}").err();
        assert!(matches!(
            e,
            Some(RenderError::Template(TemplateError::Limit { .. }))
        ));
        let limits = Limits {
            max_steps: 200_000,
            ..Limits::default()
        };
        let e = render(
            "D",
            "{{range 1000000}}{{$y := printf \"%100000d\" 1}}{{end}}",
            &data(),
            &limits,
        )
        .err();
        assert!(matches!(
            e,
            Some(RenderError::Template(TemplateError::Limit { .. }))
        ));
    }

    /// Padded printf in a loop built 640 MB of strings (10 s of CPU in a release build) before
    /// the default step budget stopped it, longer than the apiserver waits for the webhook,
    /// which renders templates at admission. Building strings now costs one step per 8 bytes.
    #[test]
    fn default_budget_stops_string_building_loops_early() {
        let e =
            run("{{range 1000}}{{range 999}}{{len (printf \"%099999d\" 1)}}{{end}}{{end}}").err();
        let Some(RenderError::Template(TemplateError::Limit { message, .. })) = e else {
            panic!("expected a budget error, got {e:?}");
        };
        assert_eq!(message, "execution step budget of 2000000 exceeded");
        // What the budget allows: 2,000,000 steps are at most 16 MB of strings built.
        let ok = run("{{range 100}}{{len (printf \"%099999d\" 1)}}{{end}}");
        assert!(ok.is_ok(), "{ok:?}");
    }

    /// Found by fuzzing: a precision above 65,535 made Rust's formatter panic. Expected
    /// outputs are Go's (tests/oracle).
    #[test]
    fn float_precision_beyond_rusts_formatter() {
        const EXACT: &str = "1000000000000000055511151231257827021181583404541015625";
        assert_eq!(
            run("{{printf \"%.10000000d\" .1}}").unwrap(),
            format!("%!d(float64=0.{EXACT})")
        );
        let zeros = |n: usize| "0".repeat(n);
        assert_eq!(
            run("{{printf \"%.70000f\" .1}}").unwrap(),
            format!("0.{EXACT}{}", zeros(70_000 - EXACT.len()))
        );
        assert_eq!(
            run("{{printf \"%.70000e\" .1}}").unwrap(),
            format!("1.{}{}e-01", &EXACT[1..], zeros(70_000 - (EXACT.len() - 1)))
        );
        assert_eq!(
            run("{{printf \"%.70000g\" .1}}").unwrap(),
            format!("0.{EXACT}")
        );
        assert_eq!(
            run("{{printf \"%.66000f\" -2.5}}").unwrap(),
            format!("-2.5{}", zeros(65_999))
        );
    }

    fn deep_cases() -> Vec<(String, Result<&'static str, &'static str>)> {
        let paren = |n: usize| format!("{{{{{}1{}}}}}", "(".repeat(n), ")".repeat(n));
        vec![
            (paren(1000), Ok("1")),
            (paren(10_000), Ok("1")),
            (paren(10_001), Err("parse")),
            (
                format!("{}x{}", "{{if 1}}".repeat(5000), "{{end}}".repeat(5000)),
                Ok("x"),
            ),
            (
                format!("{}x{}", "{{range 1}}".repeat(3000), "{{end}}".repeat(3000)),
                Ok("x"),
            ),
            (
                format!("{}x{}", "{{with 1}}".repeat(3000), "{{end}}".repeat(2999)),
                Err("parse"),
            ),
            (
                format!("{{{{if 0}}}}{}y{{{{end}}}}", "{{else if 0}}".repeat(3000)),
                Ok(""),
            ),
            (format!("{}x", "{{if 1}}".repeat(20_000)), Err("parse")),
            (format!("{{{{{}", "(".repeat(50_000)), Err("parse")),
        ]
    }

    fn check_deep() {
        for (src, want) in deep_cases() {
            let got = render("D", &src, &BTreeMap::new(), &Limits::default());
            match (got, want) {
                (Ok(out), Ok(w)) => assert_eq!(out, w.as_bytes()),
                (Err(e), Err(class)) => assert_eq!(e.class(), class),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", &src[..20]),
            }
        }
    }

    #[test]
    fn deep_nesting_on_an_8_mib_main_thread_stack() {
        let h = std::thread::Builder::new()
            .stack_size(8 << 20)
            .spawn(check_deep);
        assert!(h.is_ok_and(|h| h.join().is_ok()));
    }

    #[test]
    fn deep_nesting_on_a_2_mib_worker_stack() {
        let h = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(check_deep);
        assert!(h.is_ok_and(|h| h.join().is_ok()));
    }

    #[test]
    fn non_utf8_output_is_preserved() {
        let out = render(
            "D",
            "{{slice .E 0 1}}",
            &BTreeMap::from([("E".into(), "é".into())]),
            &Limits::default(),
        );
        assert_eq!(out.ok(), Some(vec![0xC3]));
    }
}
