//! The SMEV 2 envelope (smev:Header, smev:Message) and the gateway's judgement
//! of an inbound message before any service sees it.

use settings::Contour;

/// smev:Status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Request,
    Result,
    Reject,
    Invalid,
    Accept,
    Ping,
    Process,
    Notify,
    Failure,
    Cancel,
    State,
    Packet,
}

impl Status {
    pub const ALL: [Status; 12] = [
        Status::Request,
        Status::Result,
        Status::Reject,
        Status::Invalid,
        Status::Accept,
        Status::Ping,
        Status::Process,
        Status::Notify,
        Status::Failure,
        Status::Cancel,
        Status::State,
        Status::Packet,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Request => "REQUEST",
            Status::Result => "RESULT",
            Status::Reject => "REJECT",
            Status::Invalid => "INVALID",
            Status::Accept => "ACCEPT",
            Status::Ping => "PING",
            Status::Process => "PROCESS",
            Status::Notify => "NOTIFY",
            Status::Failure => "FAILURE",
            Status::Cancel => "CANCEL",
            Status::State => "STATE",
            Status::Packet => "PACKET",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// smev:Sender, Recipient, Originator: a participant's code and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Org {
    pub code: String,
    pub name: String,
}

/// smev:Message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    pub sender: Org,
    pub recipient: Org,
    pub originator: Option<Org>,
    pub service_name: String,
    /// GSRV, GFNC or OTHR.
    pub type_code: String,
    pub status: String,
    pub date: String,
    pub exchange_type: String,
    pub request_id_ref: Option<String>,
    pub origin_request_id_ref: Option<String>,
    pub service_code: Option<String>,
    pub case_number: Option<String>,
    pub test_msg: Option<String>,
}

/// smev:Header (optional in a request).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub node_id: String,
    pub message_id: String,
    pub time_stamp: String,
    pub message_class: String,
}

/// Why the gateway refuses a message before routing it (Status REJECT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: &'static str,
    pub text: String,
}

/// What the gateway knows of the sender when it judges a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderView {
    pub active: bool,
    pub contour: Contour,
}

/// What to do with a well-formed, schema-valid message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer PING at once; no service is asked.
    Ping,
    /// Route the request to its service (the right is checked too).
    Route,
}

/// Judges the envelope: the sender is a known, active participant of this
/// contour; the message is addressed to this platform; its TestMsg matches the
/// contour; its status is one the gateway takes; the operation is granted
/// (`granted` is asked only for messages that would be routed).
pub fn judge(
    message: &Message,
    sender: Option<&SenderView>,
    own_code: &str,
    contour: Contour,
    granted: impl FnOnce() -> bool,
) -> Result<Verdict, Rejection> {
    judge_as(message, sender, own_code, contour, Status::Request, granted)
}

/// [`judge`] for an operation asked with Status `asks_with` (REQUEST, or
/// STATE for the operations that report how an earlier request fared).
pub fn judge_as(
    message: &Message,
    sender: Option<&SenderView>,
    own_code: &str,
    contour: Contour,
    asks_with: Status,
    granted: impl FnOnce() -> bool,
) -> Result<Verdict, Rejection> {
    let reject = |code: &'static str, text: String| Err(Rejection { code, text });
    let Some(sender) = sender.filter(|s| s.active) else {
        return reject(
            "UNKNOWN_SENDER",
            format!(
                "sender {} is not a registered active participant",
                message.sender.code
            ),
        );
    };
    if message.recipient.code != own_code {
        return reject(
            "WRONG_RECIPIENT",
            format!(
                "the message is addressed to {}, this platform is {own_code}",
                message.recipient.code
            ),
        );
    }
    let test = message.test_msg.is_some();
    match (contour, test) {
        (Contour::Production, true) => {
            return reject(
                "WRONG_CONTOUR",
                "a test message (TestMsg) reached the production gateway".into(),
            )
        }
        (Contour::Test, false) => {
            return reject(
                "WRONG_CONTOUR",
                "the test gateway takes test messages only (TestMsg missing)".into(),
            )
        }
        _ => {}
    }
    if sender.contour != contour {
        return reject(
            "WRONG_CONTOUR",
            format!(
                "sender {} is registered for the {} contour, this gateway serves {}",
                message.sender.code,
                sender.contour.as_str(),
                contour.as_str()
            ),
        );
    }
    match Status::parse(&message.status) {
        Some(Status::Ping) => Ok(Verdict::Ping),
        Some(s) if s == asks_with => {
            if granted() {
                Ok(Verdict::Route)
            } else {
                reject(
                    "NOT_GRANTED",
                    format!(
                        "participant {} has no right to {}",
                        message.sender.code, message.service_name
                    ),
                )
            }
        }
        _ => reject(
            "STATUS_NOT_ACCEPTED",
            format!(
                "status {} is not accepted here; send {} or PING",
                message.status,
                asks_with.as_str()
            ),
        ),
    }
}

/// What the gateway knows of the client certificate a request came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCertificate {
    /// No certificate (plain HTTP, or TLS without one).
    None,
    /// One registered for the Sender.
    Sender,
    /// One that is not registered for the Sender (another participant's, or
    /// nobody's).
    Other,
}

/// Mutual TLS: a certificate shown must be the Sender's own; none at all is
/// refused when this deployment requires one.
pub fn judge_certificate(
    sender: &str,
    shown: ClientCertificate,
    required: bool,
) -> Result<(), Rejection> {
    match (shown, required) {
        (ClientCertificate::Sender, _) | (ClientCertificate::None, false) => Ok(()),
        (ClientCertificate::None, true) => Err(Rejection {
            code: "CERTIFICATE_REQUIRED",
            text: "this gateway takes SOAP requests over mutual TLS only: connect to its TLS listener with your participant's client certificate".into(),
        }),
        (ClientCertificate::Other, _) => Err(Rejection {
            code: "CERTIFICATE_MISMATCH",
            text: format!("the client certificate is not one registered for {sender}"),
        }),
    }
}

/// The envelope of the answer to `request`: sender and recipient swapped, the
/// same service and exchange, RequestIdRef the request's id, OriginRequestIdRef
/// the chain's first request.
pub fn answer_to(
    request: &Message,
    request_id: &str,
    own: &Org,
    status: Status,
    date: &str,
) -> Message {
    Message {
        sender: own.clone(),
        recipient: request.sender.clone(),
        originator: request.originator.clone(),
        service_name: request.service_name.clone(),
        type_code: request.type_code.clone(),
        status: status.as_str().into(),
        date: date.into(),
        exchange_type: request.exchange_type.clone(),
        request_id_ref: Some(request_id.into()),
        // A STATE names the request it asks about in RequestIdRef: that
        // request starts the chain when the message names no origin itself.
        origin_request_id_ref: Some(
            request
                .origin_request_id_ref
                .clone()
                .or_else(|| request.request_id_ref.clone())
                .unwrap_or_else(|| request_id.into()),
        ),
        service_code: request.service_code.clone(),
        case_number: request.case_number.clone(),
        test_msg: request.test_msg.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn msg(status: &str, test: bool) -> Message {
        Message {
            sender: Org {
                code: "BANK01".into(),
                name: "Банк".into(),
            },
            recipient: Org {
                code: "TMNPORTAL".into(),
                name: "Портал".into(),
            },
            service_name: "banks.Check".into(),
            type_code: "OTHR".into(),
            status: status.into(),
            exchange_type: "1".into(),
            test_msg: test.then(|| "test".to_string()),
            ..Default::default()
        }
    }

    const PROD: SenderView = SenderView {
        active: true,
        contour: Contour::Production,
    };

    fn code(r: Result<Verdict, Rejection>) -> &'static str {
        r.unwrap_err().code
    }

    #[test]
    fn a_granted_request_of_a_known_sender_is_routed() {
        let r = judge(
            &msg("REQUEST", false),
            Some(&PROD),
            "TMNPORTAL",
            Contour::Production,
            || true,
        );
        assert_eq!(r, Ok(Verdict::Route));
    }

    #[test]
    fn unknown_or_inactive_senders_are_rejected() {
        let m = msg("REQUEST", false);
        assert_eq!(
            code(judge(&m, None, "TMNPORTAL", Contour::Production, || true)),
            "UNKNOWN_SENDER"
        );
        let inactive = SenderView {
            active: false,
            ..PROD
        };
        assert_eq!(
            code(judge(
                &m,
                Some(&inactive),
                "TMNPORTAL",
                Contour::Production,
                || true
            )),
            "UNKNOWN_SENDER"
        );
    }

    #[test]
    fn a_message_for_another_recipient_is_rejected() {
        let m = msg("REQUEST", false);
        assert_eq!(
            code(judge(&m, Some(&PROD), "OTHER", Contour::Production, || {
                true
            })),
            "WRONG_RECIPIENT"
        );
    }

    #[test]
    fn contours_never_mix() {
        let test_sender = SenderView {
            active: true,
            contour: Contour::Test,
        };
        assert_eq!(
            code(judge(
                &msg("REQUEST", true),
                Some(&PROD),
                "TMNPORTAL",
                Contour::Production,
                || true
            )),
            "WRONG_CONTOUR"
        );
        assert_eq!(
            code(judge(
                &msg("REQUEST", false),
                Some(&test_sender),
                "TMNPORTAL",
                Contour::Test,
                || true
            )),
            "WRONG_CONTOUR"
        );
        assert_eq!(
            code(judge(
                &msg("REQUEST", false),
                Some(&test_sender),
                "TMNPORTAL",
                Contour::Production,
                || true
            )),
            "WRONG_CONTOUR"
        );
        assert_eq!(
            judge(
                &msg("REQUEST", true),
                Some(&test_sender),
                "TMNPORTAL",
                Contour::Test,
                || true
            ),
            Ok(Verdict::Route)
        );
    }

    #[test]
    fn rights_are_denied_by_default_and_ping_needs_none() {
        assert_eq!(
            code(judge(
                &msg("REQUEST", false),
                Some(&PROD),
                "TMNPORTAL",
                Contour::Production,
                || false
            )),
            "NOT_GRANTED"
        );
        assert_eq!(
            judge(
                &msg("PING", false),
                Some(&PROD),
                "TMNPORTAL",
                Contour::Production,
                || panic!("a ping asks for no right")
            ),
            Ok(Verdict::Ping)
        );
    }

    #[test]
    fn only_request_and_ping_are_taken() {
        assert_eq!(
            code(judge(
                &msg("RESULT", false),
                Some(&PROD),
                "TMNPORTAL",
                Contour::Production,
                || true
            )),
            "STATUS_NOT_ACCEPTED"
        );
    }

    #[test]
    fn an_answer_refers_to_the_request_and_its_origin() {
        let own = Org {
            code: "TMNPORTAL".into(),
            name: "Портал".into(),
        };
        let mut m = msg("REQUEST", false);
        let a = answer_to(&m, "m-1", &own, Status::Result, "2026-12-03T10:00:00+05:00");
        assert_eq!(a.recipient.code, "BANK01");
        assert_eq!(a.sender.code, "TMNPORTAL");
        assert_eq!(a.request_id_ref.as_deref(), Some("m-1"));
        assert_eq!(a.origin_request_id_ref.as_deref(), Some("m-1"));
        m.origin_request_id_ref = Some("m-0".into());
        let a = answer_to(&m, "m-2", &own, Status::Result, "2026-12-03T10:00:00+05:00");
        assert_eq!(a.origin_request_id_ref.as_deref(), Some("m-0"));
    }

    #[test]
    fn a_state_operation_takes_state_and_a_request_operation_request() {
        let sender = SenderView {
            active: true,
            contour: Contour::Production,
        };
        let state = msg("STATE", false);
        let judged = |m: &Message, asks: Status| {
            judge_as(
                m,
                Some(&sender),
                "TMNPORTAL",
                Contour::Production,
                asks,
                || true,
            )
        };
        assert_eq!(judged(&state, Status::State), Ok(Verdict::Route));
        let refused = judged(&state, Status::Request).unwrap_err();
        assert_eq!(refused.code, "STATUS_NOT_ACCEPTED");
        assert!(refused.text.contains("send REQUEST"), "{}", refused.text);
        assert_eq!(
            judged(&msg("REQUEST", false), Status::State)
                .unwrap_err()
                .code,
            "STATUS_NOT_ACCEPTED"
        );
        assert_eq!(
            judged(&msg("PING", false), Status::State),
            Ok(Verdict::Ping)
        );
    }

    #[test]
    fn the_answer_to_a_state_names_the_request_it_asked_about_as_the_origin() {
        let own = Org::default();
        let mut state = msg("STATE", false);
        state.request_id_ref = Some("upload-1".into());
        let answer = answer_to(&state, "state-1", &own, Status::Process, "d");
        assert_eq!(answer.request_id_ref.as_deref(), Some("state-1"));
        assert_eq!(answer.origin_request_id_ref.as_deref(), Some("upload-1"));
    }

    #[test]
    fn a_client_certificate_must_be_the_senders_and_none_is_refused_where_required() {
        use ClientCertificate as C;
        assert!(judge_certificate("B", C::Sender, true).is_ok());
        assert!(judge_certificate("B", C::None, false).is_ok());
        assert_eq!(
            judge_certificate("B", C::None, true).unwrap_err().code,
            "CERTIFICATE_REQUIRED"
        );
        let other = judge_certificate("B", C::Other, false).unwrap_err();
        assert_eq!(other.code, "CERTIFICATE_MISMATCH");
        assert!(other.text.contains("registered for B"));
    }
}
