//! Messages the XML gateway publishes and answers.

use serde::{Deserialize, Serialize};

use crate::{Contract, QueueDef};

/// Where payments answers the SOAP operations of agency information systems
/// (УНиП) the gateway received (request/reply).
pub const PAYMENTS_CALLS: QueueDef = QueueDef {
    queue: "payments.gateway-calls",
    bindings: &[PAYMENTS_CALL_TOPIC],
    consumer: "payments",
};

/// Where meals answers the SOAP operations of caterers' accounting systems.
pub const MEALS_CALLS: QueueDef = QueueDef {
    queue: "meals.gateway-calls",
    bindings: &[MEALS_CALL_TOPIC],
    consumer: "meals",
};

pub const PAYMENTS_CALL_TOPIC: &str = "gateway.call.payments.v1";
pub const MEALS_CALL_TOPIC: &str = "gateway.call.meals.v1";
/// The kind of a [`ServiceCall`].
pub const CALL_KIND: &str = "gateway.ServiceCall.v1";

/// Who called, as the gateway's participant registry knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The participant's SMEV code (an agency ИС is the charges' supplier).
    pub code: String,
    /// agency | bank | caterer | terminal
    pub kind: String,
    /// The bank code payments knows (kind bank).
    pub bank: Option<String>,
    /// The organizer meals knows (kind caterer).
    pub organizer: Option<String>,
}

/// A SOAP operation the gateway received, judged and granted, for the service
/// behind it: `operation` is `<endpoint>.<Operation>` (the right it needed),
/// `body` the operation's AppData as the service's REST body (JSON), so the
/// service answers both doors with one implementation. `key` (the sender and
/// its MessageId) makes a repeat take effect once. Answered with a
/// [`CallAnswer`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceCall {
    pub caller: Caller,
    pub operation: String,
    pub key: String,
    pub body: serde_json::Value,
}

/// The service's answer: its REST answer's body, or its refusal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallAnswer {
    Done(serde_json::Value),
    Refused(CallError),
}

/// Why a service refused a call: its problem's code (`INVALID_REQUEST`,
/// `NOT_FOUND`, `CHARGE_HAS_PAYMENTS`, ...), the text, and the field at fault
/// in the REST body's terms (`complexes[1].dishes`) when one is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    pub code: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Queues the gateway consumes.
pub const QUEUES: &[QueueDef] = &[DOCUMENTS];

/// Where the gateway answers for the documents it keeps (request/reply).
pub const DOCUMENTS: QueueDef = QueueDef {
    queue: "gateway.documents",
    bindings: &[<DocumentChunkRequest as Contract>::TOPIC],
    consumer: "gateway",
};

/// Where payments takes the registries banks delivered through the gateway.
pub const REGISTRY_DELIVERIES: QueueDef = QueueDef {
    queue: "payments.registry-deliveries",
    bindings: &[<RegistryDelivered as Contract>::TOPIC],
    consumer: "payments",
};

/// How many bytes of a document one chunk carries: with base64 and JSON a
/// chunk's message stays well under the bus's 4 MiB.
pub const CHUNK_BYTES: usize = 1024 * 1024;

/// A bank's registry received as a SOAP AppDocument (a command, from the
/// gateway's outbox). The file itself stays in the gateway: the message names
/// it (by reference), and the receiver fetches it chunk by chunk with
/// [`DocumentChunkRequest`], checking the size and the digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryDelivered {
    /// The gateway's document id; the upload is known by it from now on.
    pub upload: String,
    /// The bank code payments knows (the bank participant's mapping).
    pub bank: String,
    /// The participant that sent it (its SMEV code), for the audit.
    pub sender: String,
    /// `csv` or `xml`.
    pub format: String,
    /// The registry's day (required for CSV).
    pub date: Option<chrono::NaiveDate>,
    pub file_name: String,
    pub size: u64,
    /// SHA-256 of the file, lower-case hex.
    pub sha256: String,
    /// Number of chunks of [`CHUNK_BYTES`] (the last may be shorter).
    pub chunks: u32,
}

impl Contract for RegistryDelivered {
    const TOPIC: &'static str = "gateway.registry.delivered.v1";
    const KIND: &'static str = "gateway.RegistryDelivered.v1";
}

/// Asks the gateway for chunk `index` (from 0) of `document`. Answered with a
/// [`DocumentChunk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentChunkRequest {
    pub document: String,
    pub index: u32,
}

impl Contract for DocumentChunkRequest {
    const TOPIC: &'static str = "gateway.document.chunk.v1";
    const KIND: &'static str = "gateway.DocumentChunkRequest.v1";
}

/// One chunk of a document, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentChunk {
    pub data: String,
}
