//! The event catalog: which event types exist, their metadata, example
//! payloads and JSON Schemas.
//!
//! The catalog is data, not code. The embedded default is the seed catalog
//! (`catalog/catalog.json` and `catalog/events/*.json`); an operator can load
//! another directory of the same shape to add event types without a release.
//! Every type's uuid is the UUIDv5 of its name in [`EVENT_TYPE_NAMESPACE`], so
//! it is the same in every deployment.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::{Uuid, uuid};

/// Namespace of event type uuids (SPEC §1).
pub const EVENT_TYPE_NAMESPACE: Uuid = uuid!("141ad7f9-c009-508c-b8b4-e5992590448f");

/// The accepted values of `severity`.
pub const SEVERITIES: [&str; 3] = ["LOW", "MODERATE", "HIGH"];
/// The accepted values of `notification_type` (the catalog's `type`).
pub const NOTIFICATION_TYPES: [&str; 2] = ["STATUS", "ISSUE"];

const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

macro_rules! embed {
    ($name:literal) => {
        (
            concat!("events/", $name, ".json"),
            include_str!(concat!("../catalog/events/", $name, ".json")),
        )
    };
}

macro_rules! embed_operational {
    ($name:literal) => {
        (
            concat!("operational/", $name, ".json"),
            include_str!(concat!("../catalog/operational/", $name, ".json")),
        )
    };
}

macro_rules! embed_beta {
    ($name:literal) => {
        (
            concat!("beta/", $name, ".json"),
            include_str!(concat!("../catalog/beta/", $name, ".json")),
        )
    };
}

/// The embedded catalog, file by file (path relative to `catalog/`): the
/// seed (`catalog.json`, `events/`, kept identical to the original seed) and
/// the documented Ocrolus events the seed lacks (`beta.json`, `beta/`), all
/// marked `beta`; their examples carry only the common fields, because
/// Ocrolus publishes no example payload for them.
const EMBEDDED: &[(&str, &str)] = &[
    ("catalog.json", include_str!("../catalog/catalog.json")),
    ("beta.json", include_str!("../catalog/beta.json")),
    (
        "operational.json",
        include_str!("../catalog/operational.json"),
    ),
    embed_operational!("webhook.disabled"),
    embed_operational!("webhook.circuit_opened"),
    embed_operational!("webhook.circuit_closed"),
    embed_operational!("delivery.exhausted"),
    embed_beta!("book.completed"),
    embed_beta!("book.income.generated"),
    embed_beta!("book.income.updated"),
    embed_beta!("mixed_document.rejected"),
    embed!("book.analytics_completed"),
    embed!("book.analytics_v2.generated"),
    embed!("book.classified"),
    embed!("book.detect.signal_found"),
    embed!("book.detect.signal_not_found"),
    embed!("book.verified"),
    embed!("document.classification_failed"),
    embed!("document.classification_succeeded"),
    embed!("document.detect.signal_found"),
    embed!("document.detect.signal_not_found"),
    embed!("document.detect.unable_to_process"),
    embed!("document.upload_failed"),
    embed!("document.upload_succeeded"),
    embed!("document.verification_failed"),
    embed!("document.verification_succeeded"),
    embed!("image_group.upload_failed"),
    embed!("image_group.upload_succeeded"),
    embed!("image_group.verification_failed"),
    embed!("image_group.verification_succeeded"),
    embed!("network.book.created"),
    embed!("network.book.funded"),
    embed!("plaid.upload_failed"),
    embed!("plaid.upload_succeeded"),
];

/// Why a catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog.json is not a valid catalog: {0}")]
    Parse(#[source] serde_json::Error),
    #[error("event type {name}: cannot read example {path}: {reason}")]
    Example {
        name: String,
        path: String,
        reason: String,
    },
    #[error("event type {name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// One row of `catalog.json`, as the operator writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogRow {
    #[serde(default)]
    order: u32,
    uuid: Option<Uuid>,
    name: String,
    description: String,
    severity: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default = "default_reason")]
    reason: String,
    #[serde(default = "yes")]
    is_active: bool,
    #[serde(default)]
    beta: bool,
    #[serde(default)]
    operational: bool,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    twins: Vec<[String; 2]>,
    example: String,
}

fn default_reason() -> String {
    "notification_reason".to_owned()
}

fn yes() -> bool {
    true
}

/// One event type, with its example payload and JSON Schema.
#[derive(Debug, Clone, Serialize)]
pub struct EventType {
    pub uuid: Uuid,
    pub name: String,
    pub description: String,
    pub severity: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub reason: String,
    pub is_active: bool,
    pub beta: bool,
    /// orghooks' own notices about webhooks (`webhook.disabled`, …): sent by
    /// orghooks itself, never published by the platform.
    pub operational: bool,
    /// Required payload fields; `a|b` means one of the twins `a` and `b`.
    pub required: Vec<String>,
    /// Pairs of fields kept equal for backward compatibility.
    pub twins: Vec<[String; 2]>,
    pub example: Value,
    pub schema: Value,
    #[serde(skip)]
    pub order: u32,
}

/// All event types, in catalog order, with their compiled validators.
#[derive(Debug)]
pub struct Catalog {
    types: Vec<EventType>,
    by_name: HashMap<String, usize>,
    validators: Vec<jsonschema::Validator>,
}

impl Catalog {
    /// The catalog compiled into the binary: the seed, then the beta types.
    pub fn embedded() -> Result<Self, CatalogError> {
        let files: HashMap<&str, &str> = EMBEDDED.iter().copied().collect();
        Self::from_files(&[files["catalog.json"], files["beta.json"]], |path| {
            files
                .get(path)
                .map(|s| (*s).to_owned())
                .ok_or_else(|| "not embedded".to_owned())
        })
    }

    /// Builds a catalog from the text of one or more row lists (`catalog.json`,
    /// `beta.json`) and a way to read the example files they name (relative
    /// paths), then orghooks' own operational types (always the built-in
    /// ones). Rows are ordered by their `order`.
    pub fn from_files(
        lists: &[&str],
        read: impl Fn(&str) -> Result<String, String>,
    ) -> Result<Self, CatalogError> {
        let embedded: HashMap<&str, &str> = EMBEDDED.iter().copied().collect();
        let read = |path: &str| match path.strip_prefix("operational/") {
            Some(_) => embedded
                .get(path)
                .map(|s| (*s).to_owned())
                .ok_or_else(|| "not embedded".to_owned()),
            None => read(path),
        };
        let mut rows: Vec<CatalogRow> = Vec::new();
        for list in lists.iter().chain([&embedded["operational.json"]]) {
            rows.extend(
                serde_json::from_str::<Vec<CatalogRow>>(list).map_err(CatalogError::Parse)?,
            );
        }
        rows.sort_by_key(|r| r.order);
        let mut types = Vec::with_capacity(rows.len());
        let mut by_name = HashMap::new();
        let mut validators = Vec::with_capacity(rows.len());
        for row in rows {
            let invalid = |reason: String| CatalogError::Invalid {
                name: row.name.clone(),
                reason,
            };
            let uuid = Uuid::new_v5(&EVENT_TYPE_NAMESPACE, row.name.as_bytes());
            if row.uuid.is_some_and(|u| u != uuid) {
                return Err(invalid(format!(
                    "uuid must be the UUIDv5 of the name: {uuid}"
                )));
            }
            if !SEVERITIES.contains(&row.severity.as_str()) {
                return Err(invalid(format!("unknown severity {}", row.severity)));
            }
            if !NOTIFICATION_TYPES.contains(&row.kind.as_str()) {
                return Err(invalid(format!("unknown type {}", row.kind)));
            }
            let text = read(&row.example).map_err(|reason| CatalogError::Example {
                name: row.name.clone(),
                path: row.example.clone(),
                reason,
            })?;
            let example: Value =
                serde_json::from_str(&text).map_err(|e| CatalogError::Example {
                    name: row.name.clone(),
                    path: row.example.clone(),
                    reason: e.to_string(),
                })?;
            let schema = schema_for(&row.name, &row.required, &example);
            let validator = jsonschema::validator_for(&schema)
                .map_err(|e| invalid(format!("schema does not compile: {e}")))?;
            if let Some(e) = validator.iter_errors(&example).next() {
                return Err(invalid(format!("example fails its schema: {e}")));
            }
            if by_name.insert(row.name.clone(), types.len()).is_some() {
                return Err(invalid("listed twice".to_owned()));
            }
            validators.push(validator);
            types.push(EventType {
                uuid,
                name: row.name,
                description: row.description,
                severity: row.severity,
                kind: row.kind,
                reason: row.reason,
                is_active: row.is_active,
                beta: row.beta,
                operational: row.operational,
                required: row.required,
                twins: row.twins,
                example,
                schema,
                order: row.order,
            });
        }
        Ok(Self {
            types,
            by_name,
            validators,
        })
    }

    pub fn get(&self, name: &str) -> Option<&EventType> {
        self.by_name.get(name).map(|&i| &self.types[i])
    }

    pub fn by_uuid(&self, uuid: Uuid) -> Option<&EventType> {
        self.types.iter().find(|t| t.uuid == uuid)
    }

    /// Every event type, in catalog order.
    pub fn iter(&self) -> impl Iterator<Item = &EventType> {
        self.types.iter()
    }

    pub(crate) fn validator(&self, name: &str) -> Option<&jsonschema::Validator> {
        self.by_name.get(name).map(|&i| &self.validators[i])
    }
}

/// Whether a field holds a uuid, judged by its name as the seed does.
fn is_uuid_field(name: &str) -> bool {
    name == "uuid" || name.ends_with("_uuid")
}

fn uuid_schema() -> Value {
    json!({"type": ["string", "null"], "pattern": UUID_PATTERN})
}

/// The JSON Schema of one event type (SPEC §3): `required` from the catalog
/// (`a|b` as "one of the twins"), uuid fields as uuid strings or null, the
/// severity and notification_type enums, integers kept integers, `status`
/// free, extra fields allowed.
fn schema_for(name: &str, required: &[String], example: &Value) -> Value {
    let mut properties = Map::new();
    if let Some(fields) = example.as_object() {
        for (field, value) in fields {
            let schema = if is_uuid_field(field) {
                uuid_schema()
            } else {
                match value {
                    Value::Bool(_) => json!({"type": "boolean"}),
                    Value::Number(n) if n.is_i64() || n.is_u64() => json!({"type": "integer"}),
                    Value::Number(_) => json!({"type": "number"}),
                    Value::String(_) => json!({"type": "string"}),
                    Value::Array(_) => json!({"type": "array"}),
                    Value::Object(_) => json!({"type": "object"}),
                    Value::Null => continue,
                }
            };
            properties.insert(field.clone(), schema);
        }
    }
    let mut plain = Vec::new();
    let mut one_of_twins = Vec::new();
    for field in required {
        let alternatives: Vec<&str> = field.split('|').collect();
        for alt in &alternatives {
            if is_uuid_field(alt) {
                properties.insert((*alt).to_owned(), uuid_schema());
            } else {
                properties.entry(*alt).or_insert_with(|| json!({}));
            }
        }
        if alternatives.len() == 1 {
            plain.push(Value::from(field.as_str()));
        } else {
            let any: Vec<Value> = alternatives
                .iter()
                .map(|a| json!({"required": [a]}))
                .collect();
            one_of_twins.push(json!({"anyOf": any}));
        }
    }
    properties.insert("event_name".into(), json!({"const": name}));
    properties.insert("severity".into(), json!({"enum": SEVERITIES}));
    properties.insert(
        "notification_type".into(),
        json!({"enum": NOTIFICATION_TYPES}),
    );
    properties.insert("notification_reason".into(), json!({"type": "string"}));
    properties.insert("status".into(), json!({"type": "string"}));
    let mut schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": name,
        "type": "object",
        "required": plain,
        "properties": properties,
        "additionalProperties": true,
    });
    if !one_of_twins.is_empty() {
        schema["allOf"] = Value::Array(one_of_twins);
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_has_the_23_seed_types_the_4_beta_then_the_4_operational_ones() {
        let c = Catalog::embedded().unwrap();
        let names: Vec<&str> = c.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), 31);
        assert_eq!(names[0], "book.analytics_v2.generated");
        assert_eq!(names[22], "network.book.funded");
        assert_eq!(
            names[23..27],
            [
                "book.completed",
                "book.income.generated",
                "book.income.updated",
                "mixed_document.rejected"
            ]
        );
        assert_eq!(
            names[27..],
            [
                "webhook.disabled",
                "webhook.circuit_opened",
                "webhook.circuit_closed",
                "delivery.exhausted"
            ]
        );
        for t in c.iter().skip(27) {
            assert!(t.operational && t.is_active && !t.beta, "{}", t.name);
            assert!(t.required.contains(&"webhook_uuid".to_owned()));
        }
        for t in c.iter().skip(23).take(4) {
            assert!(t.beta && t.is_active, "{}", t.name);
            assert_eq!(
                t.required,
                [
                    "event_name",
                    "book_uuid",
                    "notification_type",
                    "notification_reason",
                    "severity"
                ]
            );
        }
        let t = c.get("book.verified").unwrap();
        assert_eq!(t.uuid, uuid!("2e94ede0-1c04-5f05-a639-f800e25850ca"));
        assert_eq!(c.by_uuid(t.uuid).unwrap().name, "book.verified");
        assert_eq!(t.example["book_pk"], 5985);
    }

    /// Every example file in the repo's catalog folder is embedded
    /// (`scripts/check-seed.sh` compares the folder with the original seed).
    #[test]
    fn every_catalog_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
        for (path, text) in EMBEDDED {
            let on_disk = std::fs::read_to_string(dir.join(path)).unwrap();
            assert_eq!(&on_disk, text, "{path}");
        }
        let events = std::fs::read_dir(dir.join("events")).unwrap().count();
        let beta = std::fs::read_dir(dir.join("beta")).unwrap().count();
        let operational = std::fs::read_dir(dir.join("operational")).unwrap().count();
        assert_eq!(
            events + beta + operational + 3,
            EMBEDDED.len(),
            "every event file is embedded"
        );
    }

    #[test]
    fn uuids_are_v5_of_the_name() {
        for t in Catalog::embedded().unwrap().iter() {
            assert_eq!(
                t.uuid,
                Uuid::new_v5(&EVENT_TYPE_NAMESPACE, t.name.as_bytes())
            );
        }
    }

    #[test]
    fn schema_marks_uuids_enums_integers_and_twins() {
        let c = Catalog::embedded().unwrap();
        let s = &c.get("document.verification_failed").unwrap().schema;
        assert_eq!(s["properties"]["book_pk"]["type"], "integer");
        assert_eq!(
            s["properties"]["mixed_uploaded_doc_uuid"]["type"],
            json!(["string", "null"])
        );
        assert_eq!(s["properties"]["status"]["type"], "string");
        assert_eq!(s["properties"]["severity"]["enum"], json!(SEVERITIES));
        assert_eq!(s["required"], json!(["event_name", "book_uuid"]));
        assert_eq!(
            s["allOf"][0]["anyOf"],
            json!([{"required": ["doc_uuid"]}, {"required": ["uploaded_doc_uuid"]}])
        );
    }

    #[test]
    fn a_wrong_uuid_or_unknown_severity_is_refused() {
        let row = |extra: &str| {
            format!(
                r#"[{{"name":"x.y","description":"d","severity":"LOW","type":"STATUS","example":"e.json"{extra}}}]"#
            )
        };
        let read = |_: &str| Ok(r#"{"event_name":"x.y"}"#.to_owned());
        assert!(Catalog::from_files(&[&row("")], read).is_ok());
        let bad_uuid = row(r#","uuid":"2e94ede0-1c04-5f05-a639-f800e25850ca""#);
        assert!(matches!(
            Catalog::from_files(&[&bad_uuid], read),
            Err(CatalogError::Invalid { .. })
        ));
        let bad = row("").replace("LOW", "URGENT");
        assert!(Catalog::from_files(&[&bad], read).is_err());
    }
}
