//! Exclusive XML Canonicalization 1.0 (`http://www.w3.org/2001/10/xml-exc-c14n#`,
//! without comments) of one element of a message, streamed into a writer (a
//! digest, usually) as the message is read.
//!
//! Written here rather than taken from a crate: the XMLDSig crates found parse
//! into a tree under fixed ceilings (16 MiB, 100,000 nodes) that refuse a bank's
//! registry sent by value (up to `gateway.max_document_mib`, 160 MiB), and the
//! Body must be digested without a second copy of it. The rules are the W3C
//! ones: namespace declarations only where visibly utilized (and the
//! `InclusiveNamespaces PrefixList` ones as in inclusive c14n), sorted by
//! prefix; attributes sorted by namespace URI then local name; empty elements
//! as start-end pairs; text and attribute values escaped the canonical way;
//! comments dropped; CDATA as text; line ends and attribute whitespace
//! normalised as a parser does.

use std::io::Write;

use quick_xml::events::{BytesStart, Event};

pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Which element is canonicalized: the one whose `Id` attribute (`wsu:Id`,
/// or an unqualified `Id`/`ID`) has this value, or the one at a position.
#[derive(Debug, Clone, Copy)]
pub enum Apex<'a> {
    Id(&'a str),
    /// The element whose start tag begins at this byte of the message.
    At(usize),
}

/// The element that was canonicalized: its namespace, local name and depth
/// (the document element is at depth 1), so a caller can check that an `Id`
/// named the element it must (a signature over the SOAP Body covers the Body,
/// not an element that borrowed its Id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub ns: String,
    pub local: String,
    pub depth: usize,
}

/// Namespace declarations of one element: (prefix, URI), `""` the default.
type Scope = Vec<(String, String)>;

fn lookup<'s>(scopes: &'s [Scope], prefix: &str) -> Option<&'s str> {
    if prefix == "xml" {
        return Some(XML_NS);
    }
    scopes
        .iter()
        .rev()
        .flat_map(|s| s.iter().rev())
        .find(|(p, _)| p == prefix)
        .map(|(_, u)| u.as_str())
}

fn split(qname: &str) -> (&str, &str) {
    match qname.split_once(':') {
        Some((p, l)) => (p, l),
        None => ("", qname),
    }
}

struct Attr {
    qname: String,
    prefix: String,
    local: String,
    value: String,
}

/// An element's declarations and (non-namespace) attributes, values unescaped
/// and whitespace-normalised.
fn attributes(e: &BytesStart) -> Result<(Scope, Vec<Attr>), String> {
    let mut declared = Scope::new();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| e.to_string())?;
        let qname = a.key.as_ref().to_string();
        // A parser turns a line end (CR LF, or CR, first made one LF) and
        // literal tab and newline in an attribute value into one space each;
        // character references keep theirs.
        let raw = a
            .value
            .replace("\r\n", "\n")
            .replace(['\t', '\n', '\r'], " ");
        let value = quick_xml::escape::unescape(&raw)
            .map_err(|e| format!("attribute {qname}: {e}"))?
            .into_owned();
        if qname == "xmlns" {
            declared.push((String::new(), value));
        } else if let Some(p) = qname.strip_prefix("xmlns:") {
            declared.push((p.to_string(), value));
        } else {
            let (prefix, local) = split(&qname);
            let (prefix, local) = (prefix.to_string(), local.to_string());
            attrs.push(Attr {
                qname,
                prefix,
                local,
                value,
            });
        }
    }
    Ok((declared, attrs))
}

/// Text (`attr` false) or an attribute's value (true) as exclusive c14n
/// writes them.
fn escape(s: &str, out: &mut Vec<u8>, attr: bool) {
    for c in s.chars() {
        match c {
            '&' => out.extend_from_slice(b"&amp;"),
            '<' => out.extend_from_slice(b"&lt;"),
            '>' if !attr => out.extend_from_slice(b"&gt;"),
            '"' if attr => out.extend_from_slice(b"&quot;"),
            '\t' if attr => out.extend_from_slice(b"&#x9;"),
            '\n' if attr => out.extend_from_slice(b"&#xA;"),
            '\r' => out.extend_from_slice(b"&#xD;"),
            c => {
                let mut b = [0; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Canonicalizes the `apex` element of `xml` into `out`. `inclusive` is the
/// `InclusiveNamespaces PrefixList` (`#default` for the default namespace).
/// None when no element is the apex; an error when the XML is not well formed
/// or two elements carry the Id asked for.
pub fn exclusive(
    xml: &str,
    apex: Apex,
    inclusive: &[&str],
    out: &mut dyn Write,
) -> Result<Option<Found>, String> {
    let inclusive: Vec<&str> = inclusive
        .iter()
        .map(|p| if *p == "#default" { "" } else { *p })
        .collect();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut scopes: Vec<Scope> = Vec::new();
    // Declarations rendered by each output element inside the apex.
    let mut rendered: Vec<Scope> = Vec::new();
    let mut inside = false;
    let mut found: Option<Found> = None;
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let flush = |buf: &mut Vec<u8>, out: &mut dyn Write| -> Result<(), String> {
        out.write_all(buf).map_err(|e| e.to_string())?;
        buf.clear();
        Ok(())
    };
    loop {
        // An element named by its position is the only one there: done once
        // it is written (an Id is looked for to the end, to refuse a second).
        if matches!(apex, Apex::At(_)) && found.is_some() && !inside {
            break;
        }
        let pos = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.error_position()))?;
        let (e, empty) = match event {
            Event::Start(e) => (e, false),
            Event::Empty(e) => (e, true),
            Event::End(e) => {
                let qname = e.name().as_ref().to_string();
                end_element(
                    &qname,
                    &mut scopes,
                    &mut rendered,
                    &mut inside,
                    &found,
                    &mut buf,
                );
                continue;
            }
            Event::Text(t) if inside => {
                let text = t.xml10_content();
                escape(&text, &mut buf, false);
                if buf.len() >= 64 * 1024 {
                    flush(&mut buf, out)?;
                }
                continue;
            }
            Event::CData(t) if inside => {
                let text = t.xml10_content();
                escape(&text, &mut buf, false);
                continue;
            }
            Event::GeneralRef(r) if inside => {
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.xml10_content();
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("entity &{name}; is not predefined"))?
                            .to_string()
                    }
                };
                escape(&c, &mut buf, false);
                continue;
            }
            Event::PI(pi) if inside => {
                // `<?target data?>`: one space between, none without data,
                // line ends made LF.
                let text = String::from_utf8_lossy(pi.as_bytes())
                    .replace("\r\n", "\n")
                    .replace('\r', "\n");
                let (target, data) = text
                    .split_once(|c: char| c.is_ascii_whitespace())
                    .map(|(t, d)| (t, d.trim_start()))
                    .unwrap_or((text.as_str(), ""));
                buf.extend_from_slice(b"<?");
                buf.extend_from_slice(target.as_bytes());
                if !data.is_empty() {
                    buf.push(b' ');
                    buf.extend_from_slice(data.as_bytes());
                }
                buf.extend_from_slice(b"?>");
                continue;
            }
            Event::DocType(_) => return Err("a DTD is not allowed".into()),
            Event::Eof => break,
            _ => continue,
        };
        let (declared, attrs) = attributes(&e)?;
        scopes.push(declared);
        let qname = e.name().as_ref().to_string();
        let (prefix, local) = split(&qname);
        let is_id = |a: &Attr| {
            a.qname == "Id"
                || a.qname == "ID"
                || (a.local == "Id" && lookup(&scopes, &a.prefix) == Some(WSU_NS))
        };
        let matches = match apex {
            Apex::Id(id) => attrs.iter().any(|a| a.value == id && is_id(a)),
            Apex::At(at) => at == pos,
        };
        if matches && found.is_some() {
            return Err(match apex {
                Apex::Id(id) => format!("two elements carry the Id {id}"),
                Apex::At(at) => format!("two elements at byte {at}"),
            });
        }
        if matches {
            inside = true;
            found = Some(Found {
                ns: lookup(&scopes, prefix).unwrap_or("").to_string(),
                local: local.to_string(),
                depth: scopes.len(),
            });
        }
        if inside {
            start_tag(
                &qname,
                prefix,
                &attrs,
                &scopes,
                &mut rendered,
                &inclusive,
                &mut buf,
            )?;
        }
        if empty {
            end_element(
                &qname,
                &mut scopes,
                &mut rendered,
                &mut inside,
                &found,
                &mut buf,
            );
        }
        if buf.len() >= 64 * 1024 {
            flush(&mut buf, out)?;
        }
    }
    flush(&mut buf, out)?;
    Ok(found)
}

/// Writes an element's start tag, rendering the namespace declarations it
/// needs that its output ancestors did not render.
fn start_tag(
    qname: &str,
    prefix: &str,
    attrs: &[Attr],
    scopes: &[Scope],
    rendered: &mut Vec<Scope>,
    inclusive: &[&str],
    buf: &mut Vec<u8>,
) -> Result<(), String> {
    let mut utilized: Vec<&str> = vec![prefix];
    for a in attrs {
        if !a.prefix.is_empty() && a.prefix != "xml" {
            utilized.push(&a.prefix);
        }
    }
    for p in inclusive {
        // The xml prefix is never declared in canonical form.
        if *p != "xml" && *p != "xmlns" && lookup(scopes, p).is_some() {
            utilized.push(p);
        }
    }
    utilized.sort_unstable();
    utilized.dedup();
    let shown = |p: &str| {
        rendered
            .iter()
            .rev()
            .flat_map(|s| s.iter())
            .find(|(q, _)| q == p)
            .map(|(_, u)| u.clone())
    };
    let mut mine = Scope::new();
    for p in utilized {
        let uri = match lookup(scopes, p) {
            Some(u) => u.to_string(),
            None if p.is_empty() => String::new(),
            None => return Err(format!("the prefix {p} is not declared")),
        };
        let before = shown(p);
        let needed = if p.is_empty() && uri.is_empty() {
            before.is_some_and(|b| !b.is_empty())
        } else {
            before.as_deref() != Some(uri.as_str())
        };
        if needed {
            mine.push((p.to_string(), uri));
        }
    }
    buf.push(b'<');
    buf.extend_from_slice(qname.as_bytes());
    for (p, u) in &mine {
        if p.is_empty() {
            buf.extend_from_slice(b" xmlns=\"");
        } else {
            buf.extend_from_slice(b" xmlns:");
            buf.extend_from_slice(p.as_bytes());
            buf.extend_from_slice(b"=\"");
        }
        escape(u, buf, true);
        buf.push(b'"');
    }
    let mut sorted: Vec<(&str, &Attr)> = Vec::with_capacity(attrs.len());
    for a in attrs {
        let ns = if a.prefix.is_empty() {
            ""
        } else {
            lookup(scopes, &a.prefix)
                .ok_or_else(|| format!("the prefix {} is not declared", a.prefix))?
        };
        sorted.push((ns, a));
    }
    sorted.sort_by(|(n1, a1), (n2, a2)| (n1, &a1.local).cmp(&(n2, &a2.local)));
    for (_, a) in sorted {
        buf.push(b' ');
        buf.extend_from_slice(a.qname.as_bytes());
        buf.extend_from_slice(b"=\"");
        escape(&a.value, buf, true);
        buf.push(b'"');
    }
    buf.push(b'>');
    rendered.push(mine);
    Ok(())
}

fn end_element(
    qname: &str,
    scopes: &mut Vec<Scope>,
    rendered: &mut Vec<Scope>,
    inside: &mut bool,
    found: &Option<Found>,
    buf: &mut Vec<u8>,
) {
    if *inside {
        buf.extend_from_slice(b"</");
        buf.extend_from_slice(qname.as_bytes());
        buf.push(b'>');
        rendered.pop();
        if found.as_ref().is_some_and(|f| f.depth == scopes.len()) {
            *inside = false;
        }
    }
    scopes.pop();
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn c14n(xml: &str, apex: Apex, inclusive: &[&str]) -> String {
        let mut out = Vec::new();
        exclusive(xml, apex, inclusive, &mut out).unwrap().unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The W3C exc-c14n rules: a namespace declared on an ancestor is rendered
    /// where first used, an unused one dropped; attributes sorted by namespace
    /// URI then local name (unqualified first); empty elements as pairs; the
    /// canonical escapes; comments dropped; CDATA as text.
    #[test]
    fn exclusive_canonical_form_of_a_subtree() {
        let xml = &"<?xml version=\"1.0\"?>\n<s:Envelope xmlns:s=\"urn:s\" xmlns:u=\"{WSU}\" xmlns:x=\"urn:x\" xmlns:unused=\"urn:n\">\r\n<s:Body u:Id=\"body\" b='2' a=\"1&#9;&lt;&quot;\"><x:Op z=\"a\tb\" x:y=\"1\"><!-- gone --><Leaf xmlns=\"urn:d\"><In/></Leaf><![CDATA[a<b>]]>&amp;&#x41;\r\n</x:Op></s:Body></s:Envelope>".replace("{WSU}", WSU_NS);
        assert_eq!(
            c14n(xml, Apex::Id("body"), &[]),
            "<s:Body xmlns:s=\"urn:s\" xmlns:u=\"{WSU}\" a=\"1&#x9;&lt;&quot;\" b=\"2\" u:Id=\"body\"><x:Op xmlns:x=\"urn:x\" z=\"a b\" x:y=\"1\"><Leaf xmlns=\"urn:d\"><In></In></Leaf>a&lt;b&gt;&amp;A\n</x:Op></s:Body>".replace("{WSU}", WSU_NS)
        );
        // An element found by its position; an inclusive prefix rendered at the apex.
        let op = xml.find("<x:Op").unwrap();
        assert_eq!(
            c14n(xml, Apex::At(op), &["unused"]),
            "<x:Op xmlns:unused=\"urn:n\" xmlns:x=\"urn:x\" z=\"a b\" x:y=\"1\"><Leaf xmlns=\"urn:d\"><In></In></Leaf>a&lt;b&gt;&amp;A\n</x:Op>"
        );
    }

    #[test]
    fn line_ends_in_attributes_processing_instructions_and_the_xml_prefix() {
        let xml = "<r xmlns:xml=\"http://www.w3.org/XML/1998/namespace\"><p Id=\"p\" a=\"x\r\ny\"><?pi   data\r\nmore?><?empty?></p></r>";
        assert_eq!(
            c14n(xml, Apex::Id("p"), &["xml"]),
            "<p Id=\"p\" a=\"x y\"><?pi data\nmore?><?empty?></p>"
        );
    }

    #[test]
    fn the_default_namespace_is_undeclared_only_where_an_output_ancestor_set_it() {
        let xml = "<r xmlns=\"urn:a\"><p Id=\"p\"><q xmlns=\"\"><t/></q></p></r>";
        assert_eq!(
            c14n(xml, Apex::Id("p"), &[]),
            "<p xmlns=\"urn:a\" Id=\"p\"><q xmlns=\"\"><t></t></q></p>"
        );
        let plain = "<r><p Id=\"p\"><q><t/></q></p></r>";
        assert_eq!(
            c14n(plain, Apex::Id("p"), &[]),
            "<p Id=\"p\"><q><t></t></q></p>"
        );
    }

    #[test]
    fn an_id_carried_twice_is_refused_and_a_missing_one_found_nowhere() {
        let twice = "<r><a Id=\"x\"/><b Id=\"x\"/></r>";
        let err = exclusive(twice, Apex::Id("x"), &[], &mut Vec::new()).unwrap_err();
        assert!(err.contains("two elements carry the Id x"), "{err}");
        let none = exclusive("<r/>", Apex::Id("x"), &[], &mut Vec::new()).unwrap();
        assert!(none.is_none());
    }
}
