//! Validation and completion of published payloads (SPEC §3).
//!
//! A payload is judged against its event type's JSON Schema, then completed
//! with exactly what the contract allows: the catalog's `severity`, `type`
//! and `reason` when `severity`, `notification_type` or
//! `notification_reason` are missing, and the twin of a backward-compatible
//! field pair. Nothing else is added; extra fields are kept as sent.

use serde_json::{Map, Value};

use crate::catalog::{Catalog, EventType};

/// Why a payload was refused. Each names the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload: must be a JSON object")]
    NotAnObject,
    #[error("payload.event_name: is required and must be a string")]
    MissingEventName,
    #[error("payload.event_name: no event type named {0}")]
    UnknownEventName(String),
    #[error("payload.event_name: event type {0} is not active")]
    InactiveEventName(String),
    #[error("payload.{a}: must equal payload.{b} when both are given")]
    TwinsDiffer { a: String, b: String },
    #[error("payload.{field}: {reason}")]
    Invalid { field: String, reason: String },
}

impl PayloadError {
    /// The dotted path of the offending field, for API error details.
    pub fn field(&self) -> String {
        match self {
            Self::NotAnObject => "payload".into(),
            Self::MissingEventName | Self::UnknownEventName(_) | Self::InactiveEventName(_) => {
                "payload.event_name".into()
            }
            Self::TwinsDiffer { a, .. } => format!("payload.{a}"),
            Self::Invalid { field, .. } => format!("payload.{field}"),
        }
    }
}

impl Catalog {
    /// Validates `payload` against its event type and completes it.
    /// Returns the completed payload and its event type.
    pub fn validate_and_complete(
        &self,
        payload: Value,
    ) -> Result<(Value, &EventType), PayloadError> {
        let Value::Object(mut fields) = payload else {
            return Err(PayloadError::NotAnObject);
        };
        let name = match fields.get("event_name") {
            Some(Value::String(name)) => name.clone(),
            _ => return Err(PayloadError::MissingEventName),
        };
        let event_type = self
            .get(&name)
            .ok_or_else(|| PayloadError::UnknownEventName(name.clone()))?;
        if !event_type.is_active {
            return Err(PayloadError::InactiveEventName(name));
        }
        require_one_of_twins(event_type, &fields)?;
        fill_twins(event_type, &mut fields)?;
        fill_defaults(event_type, &mut fields);
        let payload = Value::Object(fields);
        let validator = self
            .validator(&name)
            .expect("every catalog type has a validator");
        if let Some(error) = validator.iter_errors(&payload).next() {
            return Err(schema_error(&error));
        }
        Ok((payload, event_type))
    }
}

/// The completed payload as receivers get it: `published` (the payload's
/// JSON text as the platform sent it) unchanged, so numbers, escapes and
/// spacing arrive exactly as written, with the fields completion added
/// appended before its closing brace. `completed` is what
/// [`Catalog::validate_and_complete`] returned for a payload of
/// `published_len` fields; completion only ever appends fields.
pub fn completed_text(published: &str, completed: &Value, published_len: usize) -> String {
    let added: Vec<(&String, &Value)> = completed
        .as_object()
        .map(|m| m.iter().skip(published_len).collect())
        .unwrap_or_default();
    let published = published.trim();
    if added.is_empty() {
        return published.to_owned();
    }
    let open = published
        .strip_suffix('}')
        .expect("a published payload is a JSON object");
    let mut out = String::with_capacity(published.len() + 64 * added.len());
    out.push_str(open.trim_end());
    for (i, (key, value)) in added.into_iter().enumerate() {
        if i > 0 || published_len > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        out.push_str(&value.to_string());
    }
    out.push('}');
    out
}

/// A required entry `a|b` needs at least one of the two; the schema says so
/// too, but this names the fields in the error.
fn require_one_of_twins(
    event_type: &EventType,
    fields: &Map<String, Value>,
) -> Result<(), PayloadError> {
    for entry in event_type.required.iter().filter(|r| r.contains('|')) {
        let alternatives: Vec<&str> = entry.split('|').collect();
        if !alternatives.iter().any(|a| fields.contains_key(*a)) {
            return Err(PayloadError::Invalid {
                field: alternatives[0].to_owned(),
                reason: format!("is required (or {})", alternatives[1..].join(" or ")),
            });
        }
    }
    Ok(())
}

fn fill_twins(event_type: &EventType, fields: &mut Map<String, Value>) -> Result<(), PayloadError> {
    for [a, b] in &event_type.twins {
        match (fields.get(a), fields.get(b)) {
            (Some(x), Some(y)) if x != y => {
                return Err(PayloadError::TwinsDiffer {
                    a: a.clone(),
                    b: b.clone(),
                });
            }
            (Some(x), None) => {
                let x = x.clone();
                fields.insert(b.clone(), x);
            }
            (None, Some(y)) => {
                let y = y.clone();
                fields.insert(a.clone(), y);
            }
            _ => {}
        }
    }
    Ok(())
}

fn fill_defaults(event_type: &EventType, fields: &mut Map<String, Value>) {
    let defaults = [
        ("severity", &event_type.severity),
        ("notification_type", &event_type.kind),
        ("notification_reason", &event_type.reason),
    ];
    for (field, value) in defaults {
        if !fields.contains_key(field) {
            fields.insert(field.to_owned(), Value::String(value.clone()));
        }
    }
}

fn schema_error(error: &jsonschema::ValidationError<'_>) -> PayloadError {
    if let jsonschema::error::ValidationErrorKind::Required { property } = &error.kind {
        let parent = pointer_to_path(&error.instance_path.to_string());
        let property = property.as_str().unwrap_or_default();
        let field = if parent.is_empty() {
            property.to_owned()
        } else {
            format!("{parent}.{property}")
        };
        return PayloadError::Invalid {
            field,
            reason: "is required".to_owned(),
        };
    }
    PayloadError::Invalid {
        field: pointer_to_path(&error.instance_path.to_string()),
        reason: error.to_string(),
    }
}

/// `/uploaded_docs/0/uuid` → `uploaded_docs.0.uuid`.
fn pointer_to_path(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog() -> Catalog {
        Catalog::embedded().unwrap()
    }

    #[test]
    fn completed_text_keeps_the_published_text_and_appends_what_was_added() {
        let c = Catalog::embedded().unwrap();
        let published = r#" {"event_name": "document.verification_failed", "book_uuid":"1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "doc_uuid": "5f6c5d3a-6a5b-4c4e-8e9f-0a1b2c3d4e5f", "book_pk": 18446744073709551616, "z": -0, "e": 1E+2, "s": "\u00e9" } "#;
        let value: Value = serde_json::from_str(published).unwrap();
        let len = value.as_object().unwrap().len();
        let (completed, _) = c.validate_and_complete(value).unwrap();
        let text = completed_text(published, &completed, len);
        assert_eq!(
            text,
            r#"{"event_name": "document.verification_failed", "book_uuid":"1e03d9cd-7d84-4672-bc3d-c19cd19c500b", "doc_uuid": "5f6c5d3a-6a5b-4c4e-8e9f-0a1b2c3d4e5f", "book_pk": 18446744073709551616, "z": -0, "e": 1E+2, "s": "\u00e9","uploaded_doc_uuid":"5f6c5d3a-6a5b-4c4e-8e9f-0a1b2c3d4e5f","severity":"MODERATE","notification_type":"ISSUE","notification_reason":"Document verification failed"}"#
        );
        let reparsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(reparsed["severity"], completed["severity"]);
        // Nothing added: the text is kept as it is.
        let full = text.clone();
        let value: Value = serde_json::from_str(&full).unwrap();
        let len = value.as_object().unwrap().len();
        let (completed, _) = c.validate_and_complete(value).unwrap();
        assert_eq!(completed_text(&full, &completed, len), full);
    }

    #[test]
    fn every_seed_example_is_valid_and_already_complete() {
        let c = catalog();
        for t in c.iter() {
            let (done, _) = c.validate_and_complete(t.example.clone()).unwrap();
            // Twins may be added where the example gives one of a pair.
            for (k, v) in t.example.as_object().unwrap() {
                assert_eq!(&done[k], v, "{}: {k}", t.name);
            }
        }
    }

    #[test]
    fn defaults_come_from_the_catalog_and_nothing_else_is_added() {
        let c = catalog();
        let p =
            json!({"event_name": "book.verified", "book_uuid": null, "uploaded_docs": [], "x": 1});
        let (done, _) = c.validate_and_complete(p).unwrap();
        assert_eq!(
            done,
            json!({"event_name": "book.verified", "book_uuid": null, "uploaded_docs": [], "x": 1,
                   "severity": "MODERATE", "notification_type": "STATUS",
                   "notification_reason": "Book is verified"})
        );
    }

    #[test]
    fn twins_are_filled_only_where_the_catalog_names_them() {
        let c = catalog();
        let id = "61d93bbd-8412-4b0b-9e98-693d0b1236d3";
        let p = json!({"event_name": "document.verification_failed", "book_uuid": id, "uploaded_doc_uuid": id});
        let (done, _) = c.validate_and_complete(p).unwrap();
        assert_eq!(done["doc_uuid"], id);
        // document.upload_succeeded has no twins: no uploaded_doc_uuid appears.
        let p = json!({"event_name": "document.upload_succeeded", "book_uuid": id, "doc_uuid": id});
        let (done, _) = c.validate_and_complete(p).unwrap();
        assert!(done.get("uploaded_doc_uuid").is_none());
    }

    #[test]
    fn refusals_name_the_field() {
        let c = catalog();
        let id = "61d93bbd-8412-4b0b-9e98-693d0b1236d3";
        let other = "28d93a46-fe87-4fab-bfdb-ac4594046956";
        let cases = [
            (json!([1]), "payload"),
            (json!({"book_uuid": id}), "payload.event_name"),
            (json!({"event_name": "nope"}), "payload.event_name"),
            (
                json!({"event_name": "book.verified", "uploaded_docs": []}),
                "payload.book_uuid",
            ),
            (
                json!({"event_name": "book.verified", "book_uuid": "x", "uploaded_docs": []}),
                "payload.book_uuid",
            ),
            (
                json!({"event_name": "book.verified", "book_uuid": id, "uploaded_docs": [], "severity": "URGENT"}),
                "payload.severity",
            ),
            (
                json!({"event_name": "book.verified", "book_uuid": id, "uploaded_docs": [], "book_pk": 1.5}),
                "payload.book_pk",
            ),
            (
                json!({"event_name": "book.verified", "book_uuid": id, "uploaded_docs": [], "book_pk": "5"}),
                "payload.book_pk",
            ),
            (
                json!({"event_name": "document.verification_failed", "book_uuid": id, "doc_uuid": id, "uploaded_doc_uuid": other}),
                "payload.doc_uuid",
            ),
            (
                json!({"event_name": "document.verification_failed", "book_uuid": id}),
                "payload.doc_uuid",
            ),
        ];
        for (payload, field) in cases {
            let err = c.validate_and_complete(payload.clone()).unwrap_err();
            assert_eq!(err.field(), field, "{payload}: {err}");
            assert!(err.to_string().starts_with(field), "{err}");
        }
    }

    #[test]
    fn status_is_free_text() {
        let c = catalog();
        let p = json!({"event_name": "book.verified", "book_uuid": null, "uploaded_docs": [], "status": "ANYTHING"});
        assert!(c.validate_and_complete(p).is_ok());
    }
}
