//! Reads a SOAP 1.1 request in one pass (quick-xml): refuses what is hostile
//! before anything else parses it (a DTD, and with it every entity; nesting
//! deeper than [`MAX_DEPTH`]), and takes the envelope's fields and the
//! operation's AppData as text by element path. libxml2 validates the schema
//! afterwards (`soap::xsd`); this reader only trusts what passed both.

use std::collections::HashMap;

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::write::GatewayError;
use crate::domain::envelope::{Header, Message, Org};

pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const SMEV_NS: &str = "http://smev.gosuslugi.ru/rev120315";

/// Deeper than any message of the contracts (AppData sits at depth 6).
pub const MAX_DEPTH: usize = 32;

/// A request as read: the operation (the Body's element) and the text of every
/// leaf element by its path of local names from the operation element
/// (`Message/Sender/Code`, `MessageData/AppData/Pay/Amount`), and the SOAP
/// header's `smev:Header`.
#[derive(Debug, Clone, Default)]
pub struct Inbound {
    pub operation: String,
    pub namespace: String,
    pub header: Option<Header>,
    pub fields: HashMap<String, String>,
    /// Where the AppDocument's BinaryData text lies in the body (its bytes,
    /// as base64): a registry runs to ~100 MiB, so it is neither copied into
    /// `fields` nor handed to the schema validator (see [`document_base64`] and
    /// [`elide_document`]).
    pub document: Option<std::ops::Range<usize>>,
}

impl Inbound {
    pub fn field(&self, path: &str) -> Option<&str> {
        self.fields.get(path).map(String::as_str)
    }

    fn text(&self, path: &str) -> String {
        self.field(path).unwrap_or_default().to_string()
    }

    fn org(&self, at: &str) -> Option<Org> {
        let code = self.field(&format!("{at}/Code"))?;
        Some(Org {
            code: code.to_string(),
            name: self.text(&format!("{at}/Name")),
        })
    }

    /// smev:Message (complete once the schema passed).
    pub fn message(&self) -> Message {
        let opt = |p: &str| self.field(&format!("Message/{p}")).map(str::to_string);
        Message {
            sender: self.org("Message/Sender").unwrap_or_default(),
            recipient: self.org("Message/Recipient").unwrap_or_default(),
            originator: self.org("Message/Originator"),
            service_name: self.text("Message/ServiceName"),
            type_code: self.text("Message/TypeCode"),
            status: self.text("Message/Status"),
            date: self.text("Message/Date"),
            exchange_type: self.text("Message/ExchangeType"),
            request_id_ref: opt("RequestIdRef"),
            origin_request_id_ref: opt("OriginRequestIdRef"),
            service_code: opt("ServiceCode"),
            case_number: opt("CaseNumber"),
            // An empty <TestMsg/> marks a test message as well.
            test_msg: self
                .fields
                .contains_key("Message/TestMsg")
                .then(|| self.text("Message/TestMsg")),
        }
    }

    /// A field of the operation's AppData: `app("Pay/Amount")`.
    pub fn app(&self, path: &str) -> Option<&str> {
        self.field(&format!("MessageData/AppData/{path}"))
    }

    pub fn has_app_data(&self) -> bool {
        self.fields
            .keys()
            .any(|k| k.starts_with("MessageData/AppData/"))
    }
}

/// The path under the operation element of the document's bytes.
const DOCUMENT_PATH: [&str; 3] = ["MessageData", "AppDocument", "BinaryData"];

fn is_document(stack: &[String]) -> bool {
    stack.len() == 3 + DOCUMENT_PATH.len()
        && stack[1] == "Body"
        && stack[3..].iter().zip(DOCUMENT_PATH).all(|(a, b)| a == b)
}

/// The document's base64 (`body[range]`) with its whitespace dropped.
pub fn document_base64(body: &str, range: std::ops::Range<usize>) -> String {
    body[range]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// `body` with the document's base64 replaced by `note` (an XML comment).
pub fn elide_document(body: &str, range: std::ops::Range<usize>, note: &str) -> String {
    let mut elided = String::with_capacity(body.len() - range.len() + note.len() + 9);
    elided.push_str(&body[..range.start]);
    elided.push_str(&format!("<!-- {} -->", note.replace("--", "- -")));
    elided.push_str(&body[range.end..]);
    elided
}

/// 1-based line and column of byte `pos` in `body`.
pub fn line_col(body: &str, pos: usize) -> (u32, u32) {
    let before = &body.as_bytes()[..pos.min(body.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before.len()
        - before
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    (line as u32, col as u32)
}

fn err(
    code: &'static str,
    text: impl Into<String>,
    body: &str,
    pos: usize,
    stack: &[String],
) -> GatewayError {
    let (line, column) = line_col(body, pos);
    GatewayError {
        code: code.into(),
        text: text.into(),
        line: Some(line),
        column: Some(column),
        path: (!stack.is_empty()).then(|| format!("/{}", stack.join("/"))),
    }
}

/// Reads `body`. Text is kept only for leaf elements under the SOAP Header and
/// the operation element.
pub fn read(body: &str) -> Result<Inbound, GatewayError> {
    let mut reader = quick_xml::NsReader::from_str(body);
    let mut stack: Vec<String> = Vec::new();
    let mut inbound = Inbound::default();
    let mut header = HashMap::new();
    let mut text = String::new();
    let mut saw_element = false;
    let mut in_document = false;
    loop {
        let pos = reader.buffer_position() as usize;
        let event = match reader.read_resolved_event() {
            Ok(e) => e,
            Err(e) => {
                let at = reader.error_position() as usize;
                return Err(err("MALFORMED_XML", e.to_string(), body, at, &stack));
            }
        };
        let empty = matches!(&event.1, Event::Empty(_));
        match event {
            (ns, Event::Start(e)) | (ns, Event::Empty(e)) => {
                let local = e.local_name().into_inner().to_string();
                let ns = match ns {
                    ResolveResult::Bound(n) => n.into_inner().to_string(),
                    ResolveResult::Unbound => String::new(),
                    ResolveResult::Unknown(p) => {
                        return Err(err(
                            "MALFORMED_XML",
                            format!("undeclared namespace prefix {p}"),
                            body,
                            pos,
                            &stack,
                        ))
                    }
                };
                saw_element = true;
                match stack.len() {
                    0 if local != "Envelope" || ns != SOAP_NS => {
                        return Err(err(
                            "NOT_SOAP",
                            "the document is not a SOAP 1.1 Envelope",
                            body,
                            pos,
                            &[],
                        ))
                    }
                    2 if stack[1] == "Body" => {
                        if !inbound.operation.is_empty() {
                            return Err(err(
                                "NOT_SOAP",
                                "the Body holds more than one element",
                                body,
                                pos,
                                &stack,
                            ));
                        }
                        inbound.operation = local.clone();
                        inbound.namespace = ns.clone();
                    }
                    _ => {}
                }
                stack.push(local);
                if stack.len() > MAX_DEPTH {
                    return Err(err(
                        "FORBIDDEN_XML",
                        format!("elements nested deeper than {MAX_DEPTH} levels"),
                        body,
                        pos,
                        &stack[..MAX_DEPTH.min(stack.len())],
                    ));
                }
                text.clear();
                if is_document(&stack) {
                    let at = reader.buffer_position() as usize;
                    inbound.document = Some(at..at);
                    in_document = !empty;
                }
                if empty {
                    keep(&stack, "", &mut inbound, &mut header);
                    stack.pop();
                }
            }
            (_, Event::Text(_)) if in_document => {}
            (_, Event::GeneralRef(_)) if in_document => {
                return Err(err(
                    "SCHEMA_VIOLATION",
                    "BinaryData must be plain base64, without character references",
                    body,
                    pos,
                    &stack,
                ));
            }
            (_, Event::End(_)) if in_document => {
                if let Some(d) = inbound.document.as_mut() {
                    d.end = pos;
                }
                in_document = false;
                stack.pop();
            }
            (_, Event::Text(t)) => text.push_str(&t.xml10_content()),
            (_, Event::CData(t)) => text.push_str(&t.xml10_content()),
            (_, Event::GeneralRef(r)) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.xml10_content();
                        match quick_xml::escape::resolve_predefined_entity(&name) {
                            Some(s) => s.to_string(),
                            None => {
                                return Err(err(
                                    "FORBIDDEN_XML",
                                    format!(
                                        "entity &{name}; is not allowed (only the predefined ones)"
                                    ),
                                    body,
                                    pos,
                                    &stack,
                                ))
                            }
                        }
                    }
                };
                text.push_str(&resolved);
            }
            (_, Event::End(_)) => {
                keep(&stack, &text, &mut inbound, &mut header);
                text.clear();
                stack.pop();
            }
            (_, Event::DocType(_)) => {
                return Err(err(
                    "FORBIDDEN_XML",
                    "a DTD is not allowed in a SOAP message",
                    body,
                    pos,
                    &stack,
                ))
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    if !saw_element {
        return Err(GatewayError::new(
            "NOT_SOAP",
            "the request is not an XML document with a SOAP 1.1 Envelope",
        ));
    }
    if inbound.operation.is_empty() {
        return Err(GatewayError {
            code: "NOT_SOAP".into(),
            text: "the SOAP Body holds no operation element".into(),
            line: None,
            column: None,
            path: Some("/Envelope/Body".into()),
        });
    }
    if let Some(id) = header.get("MessageId") {
        inbound.header = Some(Header {
            node_id: header.get("NodeId").cloned().unwrap_or_default(),
            message_id: id.clone(),
            time_stamp: header.get("TimeStamp").cloned().unwrap_or_default(),
            message_class: header.get("MessageClass").cloned().unwrap_or_default(),
        });
    }
    Ok(inbound)
}

/// Keeps the text of the element on top of `stack`, if it is one we read.
fn keep(stack: &[String], text: &str, inbound: &mut Inbound, header: &mut HashMap<String, String>) {
    match stack {
        [_, h, smev_header, leaf] if h == "Header" && smev_header == "Header" => {
            header.insert(leaf.clone(), text.trim().to_string());
        }
        [_, b, _op, rest @ ..] if b == "Body" && !rest.is_empty() => {
            let path = rest.join("/");
            inbound
                .fields
                .entry(path)
                .or_insert_with(|| text.trim().to_string());
        }
        _ => {}
    }
}

/// The element a libxml2 message names: `Element '{ns}Amount': …` → `Amount`.
pub fn element_named(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("Element '")?;
    let name = &rest[..rest.find('\'')?];
    Some(name.rsplit('}').next().unwrap_or(name))
}

/// The path of the last element opening on `line` (named `name`, when given):
/// libxml2 reports a schema violation by line. `/Envelope/Body/Pay/...`.
pub fn path_at_line(body: &str, line: u32, name: Option<&str>) -> Option<String> {
    let mut reader = quick_xml::Reader::from_str(body);
    let mut stack: Vec<String> = Vec::new();
    let mut found = None;
    loop {
        let pos = reader.buffer_position() as usize;
        match reader.read_event() {
            Ok(event @ (Event::Start(_) | Event::Empty(_))) => {
                let (Event::Start(e) | Event::Empty(e)) = &event else {
                    continue;
                };
                let empty = matches!(event, Event::Empty(_));
                stack.push(e.local_name().into_inner().to_string());
                // The tag's '<' is the first non-space byte after `pos`.
                let start = pos + body[pos..].find('<').unwrap_or(0);
                let named = name.is_none_or(|n| stack.last().is_some_and(|l| l == n));
                if named && line_col(body, start).0 == line {
                    found = Some(format!("/{}", stack.join("/")));
                }
                if empty {
                    stack.pop();
                }
            }
            Ok(Event::End(_)) => {
                stack.pop();
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
        if stack.len() > MAX_DEPTH {
            break;
        }
    }
    found
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const OK: &str = r#"<?xml version="1.0"?>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:smev="http://smev.gosuslugi.ru/rev120315" xmlns:b="urn:tyumen:portal:gateway:banks:1">
  <s:Header><smev:Header><smev:NodeId>n</smev:NodeId><smev:MessageId>m-1</smev:MessageId><smev:TimeStamp>2026-12-03T10:00:00+05:00</smev:TimeStamp><smev:MessageClass>REQUEST</smev:MessageClass></smev:Header></s:Header>
  <s:Body><b:Pay>
    <smev:Message><smev:Sender><smev:Code>BANK01</smev:Code><smev:Name>Банк &amp; Ко</smev:Name></smev:Sender>
      <smev:Recipient><smev:Code>TMNPORTAL</smev:Code><smev:Name>П</smev:Name></smev:Recipient>
      <smev:ServiceName>banks</smev:ServiceName><smev:TypeCode>OTHR</smev:TypeCode><smev:Status>REQUEST</smev:Status>
      <smev:Date>2026-12-03T10:00:00+05:00</smev:Date><smev:ExchangeType>1</smev:ExchangeType><smev:TestMsg/></smev:Message>
    <b:MessageData><b:AppData><b:Pay><b:Account>1</b:Account><b:Amount>500.00</b:Amount></b:Pay></b:AppData></b:MessageData>
  </b:Pay></s:Body></s:Envelope>"#;

    #[test]
    fn the_envelope_and_app_data_are_read() {
        let r = read(OK).unwrap();
        assert_eq!(r.operation, "Pay");
        assert_eq!(r.namespace, "urn:tyumen:portal:gateway:banks:1");
        assert_eq!(r.header.as_ref().unwrap().message_id, "m-1");
        let m = r.message();
        assert_eq!(m.sender.code, "BANK01");
        assert_eq!(m.sender.name, "Банк & Ко");
        assert_eq!(m.status, "REQUEST");
        assert_eq!(m.test_msg.as_deref(), Some(""));
        assert_eq!(r.app("Pay/Amount"), Some("500.00"));
        assert!(r.has_app_data());
    }

    #[test]
    fn the_document_is_found_not_copied_and_can_be_elided() {
        let body = OK.replace(
            "</b:MessageData>",
            "<smev:AppDocument><smev:RequestCode>r.csv</smev:RequestCode><smev:BinaryData>\n  aGVs\n  bG8=\n</smev:BinaryData></smev:AppDocument></b:MessageData>",
        );
        let r = read(&body).unwrap();
        let range = r.document.clone().unwrap();
        assert_eq!(&body[range.clone()], "\n  aGVs\n  bG8=\n");
        assert!(r.field("MessageData/AppDocument/BinaryData").is_none());
        assert_eq!(
            r.field("MessageData/AppDocument/RequestCode"),
            Some("r.csv")
        );
        assert_eq!(document_base64(&body, range.clone()), "aGVsbG8=");
        let elided = elide_document(&body, range, "5 bytes -- kept");
        assert!(elided.contains("<smev:BinaryData><!-- 5 bytes - - kept --></smev:BinaryData>"));
        assert!(read(&elided).unwrap().document.is_some());
    }

    #[test]
    fn a_dtd_and_entities_are_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&e;</s:Body></s:Envelope>"#;
        let e = read(xxe).unwrap_err();
        assert_eq!(e.code, "FORBIDDEN_XML");
        let undeclared = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><x>&e;</x></s:Body></s:Envelope>"#;
        assert_eq!(read(undeclared).unwrap_err().code, "FORBIDDEN_XML");
    }

    #[test]
    fn deep_nesting_is_refused_without_recursion() {
        let depth = 100_000;
        let body = format!(
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>{}{}</s:Body></s:Envelope>"#,
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        let e = read(&body).unwrap_err();
        assert_eq!(e.code, "FORBIDDEN_XML");
        assert!(e.text.contains("nested deeper"));
    }

    #[test]
    fn malformed_xml_is_placed_by_line_and_column() {
        let body = "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\">\n<s:Body>\n  <a></b>\n</s:Body></s:Envelope>";
        let e = read(body).unwrap_err();
        assert_eq!(e.code, "MALFORMED_XML");
        assert_eq!(e.line, Some(3));
        assert_eq!(e.path.as_deref(), Some("/Envelope/Body/a"));
    }

    #[test]
    fn not_soap_is_named() {
        assert_eq!(read("<a/>").unwrap_err().code, "NOT_SOAP");
        let text = read("hello").unwrap_err();
        assert_eq!(text.code, "NOT_SOAP");
        assert!(text.text.contains("SOAP 1.1 Envelope"), "{}", text.text);
    }

    #[test]
    fn a_line_names_the_element_opening_on_it() {
        assert_eq!(
            path_at_line(OK, 9, None).as_deref(),
            Some("/Envelope/Body/Pay/MessageData/AppData/Pay/Amount")
        );
        assert_eq!(
            path_at_line(OK, 9, element_named("Element '{urn:x}Account': bad")).as_deref(),
            Some("/Envelope/Body/Pay/MessageData/AppData/Pay/Account")
        );
    }
}
