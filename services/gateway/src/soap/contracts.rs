//! The contracts in `wsdl/` (the source of truth), compiled into the binary, and
//! the endpoints they describe. A WSDL or XSD is served with its address and
//! schema locations made absolute from the request.

/// One SOAP endpoint: `/soap/<name>`, one WSDL, one service namespace.
#[derive(Debug)]
pub struct Endpoint {
    pub name: &'static str,
    pub namespace: &'static str,
    pub wsdl: &'static str,
    pub xsd: &'static str,
    /// The operations (the Body's element names); the right to call one is
    /// `<name>.<Operation>`.
    pub operations: &'static [&'static str],
    /// Operations whose request carries a document (AppDocument): with their
    /// SOAPAction a request may be up to `gateway.max_document_mib`.
    pub documents: &'static [&'static str],
    /// Operations asked with Status STATE (the others with REQUEST): they only
    /// read, so a repeat is answered anew rather than with the first answer.
    pub states: &'static [&'static str],
    /// A contract the participant implements and the gateway calls: served,
    /// never posted to.
    pub outbound: bool,
}

impl Endpoint {
    /// The Status a request to `operation` carries (PING aside).
    pub fn asks_with(&self, operation: &str) -> crate::domain::envelope::Status {
        use crate::domain::envelope::Status;
        if self.states.contains(&operation) {
            Status::State
        } else {
            Status::Request
        }
    }

    /// The operation a SOAPAction header names (`"urn:…:banks:1:Pay"`).
    pub fn action(&self, soap_action: &str) -> Option<&'static str> {
        let op = soap_action
            .trim()
            .trim_matches('"')
            .strip_prefix(self.namespace)?
            .strip_prefix(':')?;
        self.operations.iter().copied().find(|o| *o == op)
    }
}

pub const BANKS: Endpoint = Endpoint {
    name: "banks",
    namespace: "urn:tyumen:portal:gateway:banks:1",
    wsdl: "banks.wsdl",
    xsd: "banks.xsd",
    operations: &["Check", "Pay", "Cancel", "UploadRegistry", "RegistryState"],
    documents: &["UploadRegistry"],
    states: &["RegistryState"],
    outbound: false,
};

pub const UNIP: Endpoint = Endpoint {
    name: "unip",
    namespace: "urn:tyumen:portal:gateway:unip:1",
    wsdl: "unip.wsdl",
    xsd: "unip.xsd",
    operations: &["ImportCharge", "CancelCharge", "ExportPayments"],
    documents: &[],
    states: &[],
    outbound: false,
};

pub const CATERERS: Endpoint = Endpoint {
    name: "caterers",
    namespace: "urn:tyumen:portal:gateway:caterers:1",
    wsdl: "caterers.wsdl",
    xsd: "caterers.xsd",
    operations: &[
        "UploadCatalog",
        "SetDayMenu",
        "Procurement",
        "ClassRequests",
    ],
    documents: &[],
    states: &[],
    outbound: false,
};

/// What a caterer's own service implements: the gateway pushes class
/// requests to it (see `crate::outbound`).
pub const CATERER_PUSH: Endpoint = Endpoint {
    name: "caterer-push",
    namespace: "urn:tyumen:portal:gateway:caterers:1",
    wsdl: "caterer-push.wsdl",
    xsd: "caterers.xsd",
    operations: &["PushClassRequests"],
    documents: &[],
    states: &[],
    outbound: true,
};

pub const ENDPOINTS: &[&Endpoint] = &[&BANKS, &UNIP, &CATERERS, &CATERER_PUSH];

/// The namespace of the gateway's own error element.
pub const GATEWAY_NS: &str = "urn:tyumen:portal:gateway:1";

/// Every XSD, by the file name the documents import it by.
pub const SCHEMAS: &[(&str, &str)] = &[
    ("smev.xsd", include_str!("../../../../wsdl/smev.xsd")),
    ("gateway.xsd", include_str!("../../../../wsdl/gateway.xsd")),
    ("banks.xsd", include_str!("../../../../wsdl/banks.xsd")),
    ("unip.xsd", include_str!("../../../../wsdl/unip.xsd")),
    (
        "caterers.xsd",
        include_str!("../../../../wsdl/caterers.xsd"),
    ),
];

pub const WSDLS: &[(&str, &str)] = &[
    ("banks.wsdl", include_str!("../../../../wsdl/banks.wsdl")),
    ("unip.wsdl", include_str!("../../../../wsdl/unip.wsdl")),
    (
        "caterers.wsdl",
        include_str!("../../../../wsdl/caterers.wsdl"),
    ),
    (
        "caterer-push.wsdl",
        include_str!("../../../../wsdl/caterer-push.wsdl"),
    ),
];

pub fn endpoint(name: &str) -> Option<&'static Endpoint> {
    ENDPOINTS.iter().copied().find(|e| e.name == name)
}

/// The right a participant needs to call `operation` of `endpoint`.
pub fn right(endpoint: &Endpoint, operation: &str) -> String {
    format!("{}.{operation}", endpoint.name)
}

/// Every right the gateway knows, for the operator.
pub fn all_rights() -> Vec<String> {
    ENDPOINTS
        .iter()
        .filter(|e| !e.outbound)
        .flat_map(|e| e.operations.iter().map(move |op| right(e, op)))
        .collect()
}

/// The WSDL (no `xsd`) or the named XSD of `endpoint`, with the endpoint's
/// address and every schemaLocation absolute under `base` (`https://host`).
pub fn document(endpoint: &Endpoint, xsd: Option<&str>, base: &str) -> Option<String> {
    let url = format!("{base}/soap/{}", endpoint.name);
    let mut text = match xsd {
        None => WSDLS
            .iter()
            .find(|(n, _)| *n == endpoint.wsdl)
            .map(|(_, t)| t.to_string())?,
        Some(name) => SCHEMAS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t.to_string())?,
    };
    for (name, _) in SCHEMAS {
        text = text.replace(
            &format!("schemaLocation=\"{name}\""),
            &format!("schemaLocation=\"{url}?xsd={name}\""),
        );
    }
    text = text.replace(
        &format!("location=\"http://localhost:8080/soap/{}\"", endpoint.name),
        &format!("location=\"{url}\""),
    );
    Some(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn documents_point_at_the_host_they_were_asked_from() {
        let wsdl = document(&BANKS, None, "https://gw.example:8443").unwrap();
        assert!(wsdl.contains("location=\"https://gw.example:8443/soap/banks\""));
        assert!(
            wsdl.contains("schemaLocation=\"https://gw.example:8443/soap/banks?xsd=banks.xsd\"")
        );
        assert!(!wsdl.contains("localhost"));
        let xsd = document(&BANKS, Some("banks.xsd"), "http://h").unwrap();
        assert!(xsd.contains("schemaLocation=\"http://h/soap/banks?xsd=smev.xsd\""));
        assert!(document(&BANKS, Some("../etc/passwd"), "http://h").is_none());
    }

    #[test]
    fn every_operation_of_a_wsdl_is_an_operation_of_its_endpoint() {
        for e in ENDPOINTS {
            let (_, wsdl) = WSDLS.iter().find(|(n, _)| *n == e.wsdl).unwrap();
            for op in e.operations {
                assert!(
                    wsdl.contains(&format!("<wsdl:operation name=\"{op}\">")),
                    "{op}"
                );
            }
            assert_eq!(
                wsdl.matches("<wsdl:operation name=").count(),
                2 * e.operations.len(),
                "portType and binding name each operation once"
            );
        }
    }
}
