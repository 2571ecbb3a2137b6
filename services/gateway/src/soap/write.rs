//! Writes the gateway's answers: the operation's response in the SMEV envelope,
//! and SOAP Faults for INVALID. Every answer validates against the XSDs (tests
//! check it with the same validator the requests pass).

use quick_xml::escape::partial_escape as escape;

use super::contracts::{Endpoint, GATEWAY_NS};
use super::read::{SMEV_NS, SOAP_NS};
use crate::domain::envelope::{Header, Message, Org};

/// `<prefix:name>value</prefix:name>`, the value escaped.
pub(super) fn el(out: &mut String, prefix: &str, name: &str, value: &str) {
    out.push_str(&format!(
        "<{prefix}:{name}>{}</{prefix}:{name}>",
        escape(value)
    ));
}

fn opt(out: &mut String, prefix: &str, name: &str, value: Option<&str>) {
    if let Some(v) = value {
        el(out, prefix, name, v);
    }
}

fn org(out: &mut String, name: &str, o: &Org) {
    out.push_str(&format!("<smev:{name}>"));
    el(out, "smev", "Code", &o.code);
    el(out, "smev", "Name", &o.name);
    out.push_str(&format!("</smev:{name}>"));
}

/// `<smev:Message>` in the schema's order.
pub fn message(m: &Message) -> String {
    let mut out = String::from("<smev:Message>");
    org(&mut out, "Sender", &m.sender);
    org(&mut out, "Recipient", &m.recipient);
    if let Some(o) = &m.originator {
        org(&mut out, "Originator", o);
    }
    el(&mut out, "smev", "ServiceName", &m.service_name);
    el(&mut out, "smev", "TypeCode", &m.type_code);
    el(&mut out, "smev", "Status", &m.status);
    el(&mut out, "smev", "Date", &m.date);
    el(&mut out, "smev", "ExchangeType", &m.exchange_type);
    opt(
        &mut out,
        "smev",
        "RequestIdRef",
        m.request_id_ref.as_deref(),
    );
    opt(
        &mut out,
        "smev",
        "OriginRequestIdRef",
        m.origin_request_id_ref.as_deref(),
    );
    opt(&mut out, "smev", "ServiceCode", m.service_code.as_deref());
    opt(&mut out, "smev", "CaseNumber", m.case_number.as_deref());
    opt(&mut out, "smev", "TestMsg", m.test_msg.as_deref());
    out.push_str("</smev:Message>");
    out
}

/// `<gw:Error>`: what is wrong and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub code: String,
    pub text: String,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub path: Option<String>,
}

impl GatewayError {
    pub fn new(code: &str, text: impl Into<String>) -> GatewayError {
        GatewayError {
            code: code.into(),
            text: text.into(),
            line: None,
            column: None,
            path: None,
        }
    }

    pub fn xml(&self) -> String {
        let mut out = format!("<gw:Error xmlns:gw=\"{GATEWAY_NS}\">");
        el(&mut out, "gw", "Code", &self.code);
        el(&mut out, "gw", "Text", &self.text);
        opt(
            &mut out,
            "gw",
            "Line",
            self.line.map(|l| l.to_string()).as_deref(),
        );
        opt(
            &mut out,
            "gw",
            "Column",
            self.column.map(|c| c.to_string()).as_deref(),
        );
        opt(&mut out, "gw", "Path", self.path.as_deref());
        out.push_str("</gw:Error>");
        out
    }
}

fn header(h: &Header) -> String {
    let mut out = String::from("<soapenv:Header><smev:Header>");
    el(&mut out, "smev", "NodeId", &h.node_id);
    el(&mut out, "smev", "MessageId", &h.message_id);
    el(&mut out, "smev", "TimeStamp", &h.time_stamp);
    el(&mut out, "smev", "MessageClass", &h.message_class);
    out.push_str("</smev:Header></soapenv:Header>");
    out
}

/// The response of `operation`: `app_data` is the AppData's content (the
/// service's answer or a `gw:Error`), none for PING.
pub fn response(
    endpoint: &Endpoint,
    operation: &str,
    h: &Header,
    m: &Message,
    app_data: Option<&str>,
) -> String {
    with_document(endpoint, operation, h, m, app_data, None)
}

/// An AppDocument of an answer: its RequestCode and what BinaryData holds
/// (the base64 of the document, or in the log a comment naming it).
pub struct AppDocument<'a> {
    pub request_code: &'a str,
    pub binary_data: &'a str,
}

/// [`response`] with an AppDocument after the AppData.
pub fn with_document(
    endpoint: &Endpoint,
    operation: &str,
    h: &Header,
    m: &Message,
    app_data: Option<&str>,
    document: Option<&AppDocument<'_>>,
) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\" xmlns:smev=\"{SMEV_NS}\" xmlns:tns=\"{}\">",
        endpoint.namespace
    );
    out.push_str(&header(h));
    out.push_str(&format!("<soapenv:Body><tns:{operation}Response>"));
    out.push_str(&message(m));
    out.push_str("<tns:MessageData>");
    if let Some(inner) = app_data {
        out.push_str("<tns:AppData>");
        out.push_str(inner);
        out.push_str("</tns:AppData>");
    }
    if let Some(d) = document {
        out.push_str("<smev:AppDocument>");
        el(&mut out, "smev", "RequestCode", d.request_code);
        out.push_str("<smev:BinaryData>");
        out.push_str(d.binary_data);
        out.push_str("</smev:BinaryData></smev:AppDocument>");
    }
    out.push_str(&format!(
        "</tns:MessageData></tns:{operation}Response></soapenv:Body></soapenv:Envelope>"
    ));
    out
}

/// A request the gateway sends to a participant's own service: `<tns:{op}>`
/// with the envelope and the AppData's content.
pub fn outbound(namespace: &str, op: &str, h: &Header, m: &Message, app_data: &str) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\" xmlns:smev=\"{SMEV_NS}\" xmlns:tns=\"{namespace}\">"
    );
    out.push_str(&header(h));
    out.push_str(&format!("<soapenv:Body><tns:{op}>"));
    out.push_str(&message(m));
    out.push_str("<tns:MessageData><tns:AppData>");
    out.push_str(app_data);
    out.push_str(&format!(
        "</tns:AppData></tns:MessageData></tns:{op}></soapenv:Body></soapenv:Envelope>"
    ));
    out
}

/// A SOAP 1.1 Fault (Status INVALID): faultstring the error's text, detail the
/// answer's smev:Message (when the request's could be read) and the `gw:Error`.
pub fn fault(m: Option<&Message>, error: &GatewayError) -> String {
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"{SOAP_NS}\" xmlns:smev=\"{SMEV_NS}\"><soapenv:Body><soapenv:Fault>"
    );
    out.push_str("<faultcode>soapenv:Client</faultcode>");
    out.push_str(&format!(
        "<faultstring>{}</faultstring>",
        escape(&error.text)
    ));
    out.push_str("<detail>");
    if let Some(m) = m {
        out.push_str(&message(m));
    }
    out.push_str(&error.xml());
    out.push_str("</detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>");
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::contracts::BANKS;
    use super::super::{banks, xsd};
    use super::*;
    use crate::domain::envelope::{answer_to, Status};
    use contracts::payments::{BankAnswer, BankResult};

    fn request() -> Message {
        Message {
            sender: Org {
                code: "BANK01".into(),
                name: "Банк <&>".into(),
            },
            recipient: Org {
                code: "TMNPORTAL".into(),
                name: "Портал".into(),
            },
            service_name: "banks".into(),
            type_code: "OTHR".into(),
            status: "REQUEST".into(),
            date: "2026-12-03T10:00:00+05:00".into(),
            exchange_type: "1".into(),
            case_number: Some("c-1".into()),
            test_msg: Some(String::new()),
            ..Default::default()
        }
    }

    fn header() -> Header {
        Header {
            node_id: "TMNPORTAL".into(),
            message_id: "r-1".into(),
            time_stamp: "2026-12-03T10:00:01+05:00".into(),
            message_class: "RESPONSE".into(),
        }
    }

    /// What the gateway writes is what its own WSDL promises: every answer
    /// passes the XSD the requests pass.
    #[test]
    fn every_kind_of_answer_validates_against_the_schema() {
        let own = Org {
            code: "TMNPORTAL".into(),
            name: "Портал".into(),
        };
        let full = BankAnswer {
            account: Some("ls-1".into()),
            student: Some("Ива*** П.".into()),
            school: Some("s-1".into()),
            balance: Some(primitives::Money::parse("-12.50").unwrap()),
            payment_id: Some("p-1".into()),
            accepted_at: Some("2026-12-03T10:00:00+05:00".into()),
            ..BankAnswer::of(BankResult::Ok, "payment accepted")
        };
        let error = GatewayError {
            line: Some(3),
            column: Some(7),
            path: Some("/Envelope/Body/Pay".into()),
            ..GatewayError::new("NOT_GRANTED", "no right")
        };
        for op in ["Check", "Pay", "Cancel"] {
            for (status, app) in [
                (Status::Result, Some(banks::answer_xml(&full))),
                (
                    Status::Result,
                    Some(banks::answer_xml(&BankAnswer::of(
                        BankResult::Duplicate,
                        "again",
                    ))),
                ),
                (Status::Reject, Some(error.xml())),
                (Status::Failure, Some(error.xml())),
                (Status::Ping, None),
            ] {
                let m = answer_to(&request(), "m-1", &own, status, "2026-12-03T10:00:01+05:00");
                let body = response(&BANKS, op, &header(), &m, app.as_deref());
                xsd::validate(&BANKS, &body)
                    .unwrap_or_else(|v| panic!("{op} {status:?}: {v:?}\n{body}"));
            }
        }
    }

    /// The registry's answers (ACCEPT, PROCESS, RESULT with the report as
    /// the AppDocument, and the log's copy with a note in its place) pass the
    /// schema too.
    #[test]
    fn the_registry_answers_validate_against_the_schema() {
        let own = Org {
            code: "TMNPORTAL".into(),
            name: "Портал".into(),
        };
        let accepted = "<tns:Accepted><tns:Upload>d-1</tns:Upload><tns:Size>10</tns:Size><tns:Sha256>ab</tns:Sha256></tns:Accepted>";
        let processing = "<tns:Processing><tns:Upload>d-1</tns:Upload></tns:Processing>";
        let outcome = "<tns:RegistryOutcome><tns:Registry>r</tns:Registry><tns:Date>2026-09-14</tns:Date><tns:FileName>f.csv</tns:FileName><tns:Lines>3</tns:Lines><tns:Total>760.00</tns:Total><tns:AlreadyImported>false</tns:AlreadyImported><tns:Outcome name=\"credited\"><tns:Count>1</tns:Count></tns:Outcome></tns:RegistryOutcome>";
        let report = AppDocument {
            request_code: "reconciliation.csv",
            binary_data: "77u/0KHRg9C80LzQsA==",
        };
        let logged = AppDocument {
            request_code: "reconciliation.csv",
            binary_data: "<!-- document of 14 bytes -->",
        };
        let cases: [(&str, Status, Option<&str>, Option<&AppDocument<'_>>); 5] = [
            ("UploadRegistry", Status::Accept, Some(accepted), None),
            ("RegistryState", Status::Process, Some(processing), None),
            (
                "RegistryState",
                Status::Result,
                Some(outcome),
                Some(&report),
            ),
            (
                "RegistryState",
                Status::Result,
                Some(outcome),
                Some(&logged),
            ),
            ("RegistryState", Status::Reject, None, None),
        ];
        for (op, status, app, doc) in cases {
            let m = answer_to(&request(), "m-1", &own, status, "2026-12-03T10:00:01+05:00");
            let body = with_document(&BANKS, op, &header(), &m, app, doc);
            xsd::validate(&BANKS, &body)
                .unwrap_or_else(|v| panic!("{op} {status:?}: {v:?}\n{body}"));
        }
    }

    #[test]
    fn every_result_name_is_in_the_schema() {
        let (_, xsd) = super::super::contracts::SCHEMAS
            .iter()
            .find(|(n, _)| *n == "banks.xsd")
            .unwrap();
        for r in BankResult::ALL {
            assert!(
                xsd.contains(&format!("<xs:enumeration value=\"{}\">", r.name())),
                "{r:?}"
            );
        }
    }
}
