//! Validates a request's operation element against its service's XSD with
//! libxml2 (the `libxml` crate). The schemas are compiled once per thread: a
//! libxml2 validation context must not be shared between threads.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use libxml::parser::{Parser, ParserOptions};
use libxml::schemas::{SchemaParserContext, SchemaValidationContext};

use super::contracts::{Endpoint, SCHEMAS};

/// One schema violation, placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub text: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
}

/// The directory the contracts' XSDs are written to so that libxml2 resolves
/// their imports by file name. It is named by the schemas' digest, so every
/// process (and every restart) of one version shares one directory instead of
/// leaving one per process id behind; each file is written beside and renamed
/// into place, so processes starting at once never read a half-written schema.
fn schema_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("portal-gateway-xsd-{}", schemas_digest()));
        let _ = std::fs::create_dir_all(&dir);
        for (name, text) in SCHEMAS {
            let path = dir.join(name);
            if std::fs::read_to_string(&path).is_ok_and(|t| t == *text) {
                continue;
            }
            let part = dir.join(format!("{name}.{}.part", std::process::id()));
            if std::fs::write(&part, text).is_ok() {
                let _ = std::fs::rename(&part, &path);
            }
        }
        dir
    })
}

/// The first 16 hex digits of SHA-256 over the schemas' names and texts.
fn schemas_digest() -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for (name, text) in SCHEMAS {
        h.update(name.as_bytes());
        h.update([0]);
        h.update(text.as_bytes());
        h.update([0]);
    }
    h.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

thread_local! {
    static VALIDATORS: RefCell<HashMap<&'static str, SchemaValidationContext>> = RefCell::new(HashMap::new());
}

fn options() -> ParserOptions<'static> {
    ParserOptions {
        recover: false,
        no_net: true,
        no_error: true,
        no_warning: true,
        ..Default::default()
    }
}

/// Validates the Body's element of `body` (already read and found safe by
/// `soap::read`) against `endpoint`'s schema.
pub fn validate(endpoint: &Endpoint, body: &str) -> Result<(), Vec<Violation>> {
    let doc = Parser::default()
        .parse_string_with_options(body, options())
        .map_err(|_| {
            vec![Violation {
                text: "libxml2 could not parse the request".into(),
                line: None,
                column: None,
            }]
        })?;
    let operation = doc
        .get_root_element()
        .and_then(|envelope| {
            envelope
                .get_child_elements()
                .into_iter()
                .find(|n| n.get_name() == "Body")
        })
        .and_then(|b| b.get_first_element_child())
        .ok_or_else(|| {
            vec![Violation {
                text: "the SOAP Body holds no operation element".into(),
                line: None,
                column: None,
            }]
        })?;
    VALIDATORS.with(|cell| {
        let mut map = cell.borrow_mut();
        if !map.contains_key(endpoint.name) {
            let path = schema_dir().join(endpoint.xsd);
            let mut parser = SchemaParserContext::from_file(&path.to_string_lossy());
            let ctx = SchemaValidationContext::from_parser(&mut parser).map_err(|errors| {
                errors
                    .into_iter()
                    .map(|e| Violation {
                        text: format!(
                            "the gateway's own schema does not load: {}",
                            e.message.unwrap_or_default()
                        ),
                        line: None,
                        column: None,
                    })
                    .collect::<Vec<_>>()
            })?;
            map.insert(endpoint.name, ctx);
        }
        let Some(ctx) = map.get_mut(endpoint.name) else {
            return Ok(());
        };
        ctx.validate_node(&operation).map_err(|errors| {
            errors
                .into_iter()
                .map(|e| Violation {
                    text: e.message.unwrap_or_default().trim().to_string(),
                    line: e.line.map(|l| l as u32),
                    column: e.col.map(|c| c as u32),
                })
                .collect()
        })
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Every endpoint's schema loads: a request is judged by it, not by the
    /// gateway's own schema failing to compile.
    #[test]
    fn every_endpoint_schema_compiles() {
        for e in super::super::contracts::ENDPOINTS {
            let body = format!(
                "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body><x:Nothing xmlns:x=\"{}\"/></s:Body></s:Envelope>",
                e.namespace
            );
            let violations = validate(e, &body).unwrap_err();
            assert!(
                violations.iter().all(|v| !v.text.contains("does not load")),
                "{}: {violations:?}",
                e.name
            );
        }
    }

    #[test]
    fn the_schemas_are_written_once_per_version_not_per_process() {
        let dir = schema_dir();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, format!("portal-gateway-xsd-{}", schemas_digest()));
        assert!(!name.ends_with(&std::process::id().to_string()));
        for (file, text) in SCHEMAS {
            assert_eq!(std::fs::read_to_string(dir.join(file)).unwrap(), *text);
        }
    }
}
