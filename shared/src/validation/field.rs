//! Field errors in the style of Kubernetes' `field.Error`, so users read the same messages they
//! know from built-in resources: `spec.volumes[1].name: Duplicate value: "a"`.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
}

impl ErrorType {
    /// The text Kubernetes prints for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
        }
    }

    /// The `StatusCause.reason` of a 422 response.
    pub fn cause_reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
        }
    }
}

/// One violation: where, what kind, the offending value (already rendered) and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub error_type: ErrorType,
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    fn new(
        field: impl Into<String>,
        error_type: ErrorType,
        value: Option<String>,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            error_type,
            value,
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Required, None, detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Forbidden, None, detail)
    }

    pub fn invalid(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::Invalid, Some(quote(value)), detail)
    }

    pub fn not_found(field: impl Into<String>, value: &str, detail: impl Into<String>) -> Self {
        Self::new(field, ErrorType::NotFound, Some(quote(value)), detail)
    }

    pub fn duplicate(field: impl Into<String>, value: &str) -> Self {
        Self::new(field, ErrorType::Duplicate, Some(quote(value)), "")
    }

    pub fn not_supported(field: impl Into<String>, value: &str, supported: &[&str]) -> Self {
        let list: Vec<String> = supported.iter().map(|s| quote(s)).collect();
        Self::new(
            field,
            ErrorType::NotSupported,
            Some(quote(value)),
            format!("supported values: {}", list.join(", ")),
        )
    }

    pub fn too_long(field: impl Into<String>, max: usize, detail: impl Into<String>) -> Self {
        let detail = detail.into();
        let body = if detail.is_empty() {
            format!("may not be more than {max} bytes")
        } else {
            format!("may not be more than {max} bytes: {detail}")
        };
        Self::new(field, ErrorType::TooLong, None, body)
    }

    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(
            field,
            ErrorType::TooMany,
            Some(actual.to_string()),
            format!("must have at most {max} items"),
        )
    }

    /// The message without the field path, as in a `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = self.error_type.as_str().to_string();
        if let Some(v) = &self.value {
            s.push_str(": ");
            s.push_str(v);
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// Go's `%q` for the strings we print: JSON quoting is the same for everything but exotic runes.
pub fn quote(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_kubernetes() {
        assert_eq!(
            FieldError::duplicate("spec.volumes[1].name", "a").to_string(),
            r#"spec.volumes[1].name: Duplicate value: "a""#
        );
        assert_eq!(
            FieldError::not_found(
                "spec.volumeBindings.overlayISO",
                "iso-extra",
                "no volume of that name in spec.volumes"
            )
            .to_string(),
            r#"spec.volumeBindings.overlayISO: Not found: "iso-extra": no volume of that name in spec.volumes"#
        );
        assert_eq!(
            FieldError::required("spec.x", "").to_string(),
            "spec.x: Required value"
        );
        assert_eq!(
            FieldError::not_supported("spec.arch", "x86", &["amd64", "arm64"]).to_string(),
            r#"spec.arch: Unsupported value: "x86": supported values: "amd64", "arm64""#
        );
        assert_eq!(
            FieldError::too_long("metadata.name", 54, "").to_string(),
            "metadata.name: Too long: may not be more than 54 bytes"
        );
    }
}
