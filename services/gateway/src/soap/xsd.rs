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

/// The directory the contracts' XSDs are written to, once per process, so that
/// libxml2 resolves their imports by file name.
fn schema_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("portal-gateway-xsd-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        for (name, text) in SCHEMAS {
            let _ = std::fs::write(dir.join(name), text);
        }
        dir
    })
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
