//! Request bodies: JSON or form, as DRF's default parsers accept them, with DRF's field errors.
//! Any other content type is 415; a body over `server.max_body_size` is 413. Unknown fields are
//! ignored.

use crate::error::{ApiError, FieldErrors, FieldProblem};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

/// The parsed body: always a JSON object (form fields become strings).
pub struct Input(pub Map<String, Value>);

impl<S> FromRequest<S> for Input
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let limit = AppState::from_ref(state).http.max_body_size;
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared_len.is_some_and(|n| n > limit as u64) {
            return Err(ApiError::PayloadTooLarge);
        }
        let bytes: Bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        parse(content_type.as_deref(), &bytes).map(Input)
    }
}

/// Parses a body by content type. An empty body is an empty object, as in DRF.
pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let media = content_type
        .map(|ct| {
            ct.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    if bytes.is_empty() {
        return Ok(Map::new());
    }
    let value = match media.as_str() {
        "application/json" => {
            serde_json::from_slice::<Value>(bytes).map_err(|e| ApiError::Parse(e.to_string()))?
        }
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(bytes).map_err(|e| ApiError::Parse(e.to_string()))?;
            Value::Object(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            )
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                content_type.unwrap_or("").to_string(),
            ));
        }
    };
    match value {
        Value::Object(m) => Ok(m),
        other => Err(ApiError::field(
            "non_field_errors",
            FieldProblem::NotAnObject(crate::error::python_type(&other)),
        )),
    }
}

/// Whether a string field is trimmed, as DRF's `CharField(trim_whitespace=…)`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    Yes,
    /// Passwords are taken exactly as typed (a documented difference from simplejwt).
    No,
}

impl Input {
    /// Reads required string fields in order, collecting every field's error like DRF does.
    pub fn strings<const N: usize>(
        &self,
        fields: [(&str, Trim); N],
    ) -> Result<[String; N], ApiError> {
        let mut errors = FieldErrors::default();
        let mut out: [String; N] = std::array::from_fn(|_| String::new());
        for (i, (name, trim)) in fields.iter().enumerate() {
            match char_field(self.0.get(*name), *trim) {
                Ok(v) => out[i] = v,
                Err(problem) => errors.add(name, problem),
            }
        }
        errors.check()?;
        Ok(out)
    }

    /// An optional string field: `None` when absent; DRF's errors when present but unusable.
    pub fn optional_string(&self, name: &str, trim: Trim) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) => char_field(Some(v), trim)
                .map(Some)
                .map_err(|m| ApiError::field(name, m)),
        }
    }
}

/// DRF's `CharField.to_internal_value` rules.
fn char_field(v: Option<&Value>, trim: Trim) -> Result<String, FieldProblem> {
    let s = match v {
        None => return Err(FieldProblem::Required),
        Some(Value::Null) => return Err(FieldProblem::Null),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => return Err(FieldProblem::NotAString),
    };
    let s = if trim == Trim::Yes {
        s.trim().to_string()
    } else {
        s
    };
    if s.is_empty() {
        return Err(FieldProblem::Blank);
    }
    if s.contains('\0') {
        return Err(FieldProblem::NullCharacters);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_of(e: ApiError) -> Value {
        match e {
            ApiError::Fields(m) => Value::Object(m),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn json_and_form_bodies() {
        assert_eq!(
            parse(Some("application/json; charset=utf-8"), br#"{"a":"b"}"#).unwrap()["a"],
            "b"
        );
        assert_eq!(
            parse(Some("application/x-www-form-urlencoded"), b"a=b+c&d=%26").unwrap()["a"],
            "b c"
        );
        assert!(parse(Some("application/json"), b"").unwrap().is_empty());
        assert!(parse(None, b"").unwrap().is_empty());
        assert!(matches!(
            parse(Some("text/plain"), b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse(None, b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
        assert!(matches!(
            parse(Some("application/json"), b"{"),
            Err(ApiError::Parse(_))
        ));
        assert_eq!(
            fields_of(parse(Some("application/json"), b"[1]").unwrap_err()),
            json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]})
        );
    }

    #[test]
    fn char_fields_follow_drf() {
        let input = Input(
            json!({"n": null, "b": "  ", "a": [1], "num": 12, "pw": " x ", "u": " bob "})
                .as_object()
                .unwrap()
                .clone(),
        );
        assert_eq!(
            fields_of(
                input
                    .strings([
                        ("missing", Trim::Yes),
                        ("n", Trim::Yes),
                        ("b", Trim::Yes),
                        ("a", Trim::Yes)
                    ])
                    .unwrap_err()
            ),
            json!({
                "missing": ["This field is required."],
                "n": ["This field may not be null."],
                "b": ["This field may not be blank."],
                "a": ["Not a valid string."]
            })
        );
        let [num, pw, u] = input
            .strings([("num", Trim::Yes), ("pw", Trim::No), ("u", Trim::Yes)])
            .unwrap();
        assert_eq!(
            (num.as_str(), pw.as_str(), u.as_str()),
            ("12", " x ", "bob")
        );
    }
}
