//! TEMPORARY placeholder with the engine's public API; the Go-faithful engine replaces this file.
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forbidden {
    pub keyword: &'static str,
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_output_bytes: usize,
    pub max_range_iterations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output_bytes: 16 << 20,
            max_range_iterations: 1_000_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template: {line}:{col}: {message}")]
    Parse {
        line: usize,
        col: usize,
        message: String,
    },
    #[error("template: {line}:{col}: {message}")]
    Exec {
        line: usize,
        col: usize,
        message: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("template: {}:{}: {{{{{}}}}} is not allowed", .0.line, .0.col, .0.keyword)]
    Forbidden(Forbidden),
    #[error(transparent)]
    Template(#[from] TemplateError),
}

pub struct Template {
    src: String,
}

impl Template {
    pub fn parse(_name: &str, src: &str) -> Result<Template, TemplateError> {
        Ok(Template {
            src: src.to_string(),
        })
    }
    pub fn forbidden_action(&self) -> Option<Forbidden> {
        None
    }
    pub fn execute(
        &self,
        _data: &BTreeMap<String, String>,
        _limits: &Limits,
    ) -> Result<Vec<u8>, TemplateError> {
        Ok(self.src.clone().into_bytes())
    }
}

pub fn render(
    name: &str,
    src: &str,
    data: &BTreeMap<String, String>,
    limits: &Limits,
) -> Result<Vec<u8>, RenderError> {
    let t = Template::parse(name, src)?;
    if let Some(f) = t.forbidden_action() {
        return Err(RenderError::Forbidden(f));
    }
    Ok(t.execute(data, limits)?)
}
