//! A Go `text/template` engine for Dockerfiles that matches Go byte for byte.
//!
//! Data (`.`) is always a `map[string]string` with Go's `missingkey=zero` behaviour (a
//! missing key renders as ""). Templates that contain `define`, `template` or `block`
//! parse normally but are reported by [`Template::forbidden_action`] and rejected by
//! [`render`]. Execution is bounded by [`Limits`]; deep nesting never exhausts the
//! caller's stack because deep templates are parsed and executed on a helper thread
//! with a stack sized for them.
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
    /// Maximum number of evaluation steps (nodes walked, commands run, bytes built / 256).
    pub max_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_output_bytes: 16 * 1024 * 1024, max_range_iterations: 1_000_000, max_steps: 50_000_000 }
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
    Parse { name: String, line: usize, col: usize, message: String },
    #[error("template: {name}:{line}:{col}: {message}")]
    Exec { name: String, line: usize, col: usize, message: String },
    /// A [`Limits`] budget ran out; counts as an exec error.
    #[error("template: {name}:{line}:{col}: {message}")]
    Limit { name: String, line: usize, col: usize, message: String },
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
            TemplateError::Parse { line, .. } | TemplateError::Exec { line, .. } | TemplateError::Limit { line, .. } => {
                *line
            }
        }
    }

    pub fn col(&self) -> usize {
        match self {
            TemplateError::Parse { col, .. } | TemplateError::Exec { col, .. } | TemplateError::Limit { col, .. } => *col,
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
    #[error("template: {name}:{line}:{col}: {{{{{keyword}}}}} is not allowed: define, template and block actions are forbidden in Dockerfile templates")]
    Forbidden { name: String, keyword: &'static str, line: usize, col: usize },
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
/// Generous stack bytes per nesting level (debug builds use far more than release).
const STACK_PER_LEVEL: usize = 24 * 1024;
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
        handle.join().map_err(|_| "template thread failed".to_string())
    })
}

fn line_starts(src: &str) -> Vec<usize> {
    std::iter::once(0).chain(src.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1)).collect()
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
        let nesting = items
            .iter()
            .filter(|i| {
                matches!(i.typ, ItemType::If | ItemType::Range | ItemType::With | ItemType::Block | ItemType::Define)
            })
            .count();
        let depth_hint = max_paren.min(parser::MAX_PAREN_DEPTH + 1) + nesting.min(parser::MAX_NESTING + 1);
        let starts = line_starts(src);
        let parsed = with_stack(depth_hint, || parser::parse(name, &items)).map_err(|message| {
            TemplateError::Parse { name: name.to_string(), line: 1, col: 0, message }
        })?;
        match parsed {
            Ok(p) => {
                let forbidden = p.forbidden.map(|f| {
                    let (line, col) = line_col(&starts, f.pos);
                    Forbidden { keyword: f.keyword, line, col }
                });
                Ok(Template { name: name.to_string(), tree: p.tree, root: p.root, forbidden, line_starts: starts, depth_hint })
            }
            Err(e) => {
                let (line, col) = line_col(&starts, e.pos);
                Err(TemplateError::Parse { name: name.to_string(), line, col, message: e.message })
            }
        }
    }

    /// The first `define`, `template` or `block` in the parse tree, if any.
    pub fn forbidden_action(&self) -> Option<Forbidden> {
        self.forbidden
    }

    /// Executes with `.` = `data` (Go's `missingkey=zero` on `map[string]string`).
    pub fn execute(&self, data: &BTreeMap<String, String>, limits: &Limits) -> Result<Vec<u8>, TemplateError> {
        let r = with_stack(self.depth_hint, || {
            exec::execute(&self.name, &self.tree, self.root, data, limits).map_err(|f| self.exec_error(f))
        });
        match r {
            Ok(r) => r,
            Err(message) => Err(TemplateError::Exec { name: self.name.clone(), line: 1, col: 0, message }),
        }
    }

    fn exec_error(&self, f: exec::Failure) -> TemplateError {
        let name = self.name.clone();
        match f {
            exec::Failure::Exec { pos, message } => {
                let (line, col) = line_col(&self.line_starts, pos.unwrap_or(0));
                TemplateError::Exec { name, line, col, message }
            }
            exec::Failure::Limit { pos, message } => {
                let (line, col) = line_col(&self.line_starts, pos.unwrap_or(0));
                TemplateError::Limit { name, line, col, message }
            }
        }
    }
}

/// Parses, rejects forbidden actions, then executes: what the operator does with a
/// user Dockerfile template.
pub fn render(
    name: &str,
    src: &str,
    data: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let t = Template::parse(name, src)?;
    if let Some(f) = t.forbidden_action() {
        return Err(RenderError::Forbidden { name: name.to_string(), keyword: f.keyword, line: f.line, col: f.col });
    }
    Ok(t.execute(data, limits)?)
}
