//! XMLDSig in the SMEV envelope (WS-Security): a request's signature checked,
//! an answer or an outbound call signed.
//!
//! A message is signed in `soap:Header/wsse:Security` with `soap:actor`
//! [`ACTOR_SMEV`] (the sender ИС's signature; the gateway's own carries
//! [`ACTOR_RECIPIENT`]): a `wsse:BinarySecurityToken` (the X.509 certificate)
//! and a `ds:Signature` whose one Reference names the Body's `wsu:Id`, with
//! exclusive c14n as the canonicalization and the only transform. The
//! algorithms are behind [`Algorithm`]: RSA-SHA256, and ГОСТ Р 34.10-2012 with
//! ГОСТ Р 34.11-2012 (256 bit). Both run in the system's OpenSSL; ГОСТ needs the
//! `gost` engine loaded by the OpenSSL configuration (`gateway.openssl_conf`,
//! `deploy/openssl-gost.cnf`); where it is not, a ГОСТ-signed message is
//! refused (SIGNATURE_ALGORITHM_UNSUPPORTED) and the gateway's log says why.

use base64::Engine as _;
use openssl::hash::{Hasher, MessageDigest};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use quick_xml::events::Event;

use super::c14n::{self, Apex, EXC_C14N, WSU_NS};
use super::read::SOAP_NS;

pub const ACTOR_SMEV: &str = "http://smev.gosuslugi.ru/actors/smev";
pub const ACTOR_RECIPIENT: &str = "http://smev.gosuslugi.ru/actors/recipient";
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const X509_TOKEN: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
const BASE64_BINARY: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";

/// A signature algorithm with its digest: what the SignedInfo names and how
/// bytes are digested, signed and checked.
pub trait Algorithm: Sync {
    /// How the log and the refusals name it.
    fn name(&self) -> &'static str;
    fn signature_uri(&self) -> &'static str;
    fn digest_uri(&self) -> &'static str;
    /// The digest, as OpenSSL runs it.
    fn message_digest(&self) -> Result<MessageDigest, String>;
    /// A digest being computed (written into as the c14n streams).
    fn hasher(&self) -> Result<Hasher, String> {
        Hasher::new(self.message_digest()?).map_err(|e| e.to_string())
    }
    fn verify(&self, certificate: &X509, data: &[u8], signature: &[u8]) -> Result<bool, String>;
    fn sign(&self, key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, String>;
    /// Whether a key is one of this algorithm's.
    fn takes(&self, key: &PKey<Private>) -> bool;
}

/// An algorithm OpenSSL runs by its digest's name.
struct OpenSsl {
    name: &'static str,
    signature_uri: &'static str,
    digest_uri: &'static str,
    digest: &'static str,
    key_id: fn(openssl::pkey::Id) -> bool,
    missing: &'static str,
}

impl Algorithm for OpenSsl {
    fn name(&self) -> &'static str {
        self.name
    }
    fn signature_uri(&self) -> &'static str {
        self.signature_uri
    }
    fn digest_uri(&self) -> &'static str {
        self.digest_uri
    }
    fn message_digest(&self) -> Result<MessageDigest, String> {
        MessageDigest::from_name(self.digest).ok_or_else(|| self.missing.to_string())
    }
    fn verify(&self, certificate: &X509, data: &[u8], signature: &[u8]) -> Result<bool, String> {
        let key = certificate
            .public_key()
            .map_err(|e| format!("the certificate's key cannot be read: {e}"))?;
        if !(self.key_id)(key.id()) {
            return Ok(false);
        }
        let mut v = openssl::sign::Verifier::new(self.message_digest()?, &key)
            .map_err(|e| e.to_string())?;
        v.update(data).map_err(|e| e.to_string())?;
        // A malformed value is a signature that does not verify.
        Ok(v.verify(signature).unwrap_or(false))
    }
    fn sign(&self, key: &PKey<Private>, data: &[u8]) -> Result<Vec<u8>, String> {
        let mut s =
            openssl::sign::Signer::new(self.message_digest()?, key).map_err(|e| e.to_string())?;
        s.update(data).map_err(|e| e.to_string())?;
        s.sign_to_vec().map_err(|e| e.to_string())
    }
    fn takes(&self, key: &PKey<Private>) -> bool {
        (self.key_id)(key.id())
    }
}

const GOST_MISSING: &str = "ГОСТ Р 34.11-2012 is not available: the OpenSSL gost engine is not loaded (gateway.openssl_conf, deploy/openssl-gost.cnf, Debian's libengine-gost-openssl)";

/// NID_id_GostR3410_2012_256 (OpenSSL's obj_mac.h).
const GOST2012_256_NID: i32 = 979;

static RSA_SHA256: OpenSsl = OpenSsl {
    name: "RSA-SHA256",
    signature_uri: "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    digest_uri: "http://www.w3.org/2001/04/xmlenc#sha256",
    digest: "SHA256",
    key_id: |id| id == openssl::pkey::Id::RSA,
    missing: "SHA-256 is not available in this OpenSSL",
};

static GOST_2012_256: OpenSsl = OpenSsl {
    name: "ГОСТ Р 34.10-2012 (256)",
    signature_uri: "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256",
    digest_uri: "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-256",
    digest: "md_gost12_256",
    key_id: |id| id.as_raw() == GOST2012_256_NID,
    missing: GOST_MISSING,
};

/// Every algorithm the gateway signs and checks with.
pub fn algorithms() -> [&'static dyn Algorithm; 2] {
    [&RSA_SHA256, &GOST_2012_256]
}

/// The algorithm a private key signs with; `what` names the key if none.
fn algorithm_of_key(key: &PKey<Private>, what: &str) -> Result<&'static dyn Algorithm, String> {
    algorithms()
        .into_iter()
        .find(|a| a.takes(key))
        .ok_or_else(|| format!("{what} is neither RSA nor ГОСТ Р 34.10-2012 (256)"))
}

/// Algorithms a sender may name that the gateway knows and does not take.
const NAMED_UNSUPPORTED: [(&str, &str); 8] = [
    (
        "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411",
        "ГОСТ Р 34.10-2001 (superseded by ГОСТ Р 34.10-2012)",
    ),
    (
        "http://www.w3.org/2001/04/xmldsig-more#gostr3411",
        "ГОСТ Р 34.11-94 (superseded by ГОСТ Р 34.11-2012)",
    ),
    (
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102001-gostr3411",
        "ГОСТ Р 34.10-2001 (superseded by ГОСТ Р 34.10-2012)",
    ),
    (
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr3411",
        "ГОСТ Р 34.11-94 (superseded by ГОСТ Р 34.11-2012)",
    ),
    (
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512",
        "ГОСТ Р 34.10-2012 with a 512-bit key",
    ),
    (
        "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34112012-512",
        "ГОСТ Р 34.11-2012 (512 bit)",
    ),
    ("http://www.w3.org/2000/09/xmldsig#rsa-sha1", "RSA-SHA1"),
    ("http://www.w3.org/2000/09/xmldsig#sha1", "SHA-1"),
];

/// A signature check that failed: the REJECT's code and text, and what was
/// computed so far (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub text: String,
}

fn refuse(code: &'static str, text: impl Into<String>) -> Refusal {
    Refusal {
        code,
        text: text.into(),
    }
}

/// What a request's signature came to.
#[derive(Debug, Clone)]
pub enum Checked {
    /// No `wsse:Security` of the sender's actor.
    Unsigned,
    /// Digest and signature verify with the certificate carried; whether the
    /// certificate is the Sender's is judged with the participant
    /// ([`judge`]).
    Verified(Signed),
    /// The signature does not hold (digest, value, algorithm, structure).
    Failed(Refusal, Option<Digests>),
}

/// The digest of the Body's canonical bytes as computed here beside the one
/// the signature claims (base64 both), kept in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    pub computed: String,
    pub claimed: String,
}

#[derive(Debug, Clone)]
pub struct Signed {
    pub algorithm: &'static str,
    /// The signing certificate, DER.
    pub certificate: Vec<u8>,
    /// Its validity, seconds since 1970 (UTC).
    pub not_before: i64,
    pub not_after: i64,
    pub digests: Digests,
}

/// Where the signing certificate stands with the Sender's registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    /// One of the certificates registered for the Sender now.
    Registered,
    /// Registered once and taken off the Sender's list (replaced or revoked)
    /// at `at` (who did is in the participant's audit).
    Retired { at: String },
    /// Never the Sender's.
    Unknown,
}

/// Whether a request may be answered, its signature judged: required or
/// not, a signature that does not hold is refused; one that holds must be
/// made with a certificate registered for the Sender now (`registration`)
/// and valid at `now` (seconds since 1970: the real time, not a training
/// clock: certificates live in the real world).
pub fn judge(
    checked: &Checked,
    sender: &str,
    required: bool,
    registration: Registration,
    now: i64,
) -> Result<(), Refusal> {
    let s = match checked {
        Checked::Unsigned if required => {
            return Err(refuse(
                "SIGNATURE_REQUIRED",
                format!("the message is not signed: sign the Body with {sender}'s key in soap:Header/wsse:Security (soap:actor {ACTOR_SMEV})"),
            ))
        }
        Checked::Unsigned => return Ok(()),
        Checked::Failed(r, _) => return Err(r.clone()),
        Checked::Verified(s) => s,
    };
    let print = fingerprint(&s.certificate);
    match registration {
        Registration::Registered => {}
        Registration::Retired { at } => {
            return Err(refuse(
                "CERTIFICATE_REVOKED",
                format!("the signing certificate (SHA-256 {print}) was taken off {sender}'s registered certificates at {at}: sign with a certificate registered now"),
            ))
        }
        Registration::Unknown => {
            return Err(refuse(
                "CERTIFICATE_NOT_REGISTERED",
                format!("the signing certificate (SHA-256 {print}) is not one registered for {sender}"),
            ))
        }
    }
    let date = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| t.to_string())
    };
    if now < s.not_before || now > s.not_after {
        return Err(refuse(
            "CERTIFICATE_EXPIRED",
            format!(
                "the signing certificate (SHA-256 {print}) is valid from {} to {}, not now",
                date(s.not_before),
                date(s.not_after)
            ),
        ));
    }
    Ok(())
}

/// A certificate from its DER, parsed once: OpenSSL 3 takes ~100 µs to
/// parse one (its key decoders), more than the signature check itself, and
/// the same few participants' certificates come with every request.
fn parsed(der: &[u8]) -> Option<X509> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PARSED: OnceLock<Mutex<HashMap<Vec<u8>, X509>>> = OnceLock::new();
    let cache = PARSED.get_or_init(Mutex::default);
    if let Some(c) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(der) {
        return Some(c.clone());
    }
    let c = X509::from_der(der).ok()?;
    // At most 1,024 of at most 16 KiB: anyone may send a certificate.
    if der.len() <= 16 * 1024 {
        let mut map = cache.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= 1_024 {
            map.clear();
        }
        map.insert(der.to_vec(), c.clone());
    }
    Some(c)
}

/// An ASN.1 time as seconds since 1970.
fn unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, String> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let d = epoch.diff(t).map_err(|e| e.to_string())?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

impl Checked {
    /// The line the message log keeps of it.
    pub fn note(&self) -> String {
        let digests = |d: &Digests| format!("{COMPUTED}{} claimed {}", d.computed, d.claimed);
        match self {
            Checked::Unsigned => "unsigned".into(),
            Checked::Verified(s) => format!(
                "signed {} by certificate SHA-256 {}; {}",
                s.algorithm,
                fingerprint(&s.certificate),
                digests(&s.digests)
            ),
            Checked::Failed(r, d) => format!(
                "signature refused {}{}",
                r.code,
                d.as_ref()
                    .map(|d| format!("; {}", digests(d)))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The Body digest a log record's outcome says was computed (see
/// [`Checked::note`]), if it was signed.
pub fn body_digest_in(outcome: &str) -> Option<&str> {
    let rest = &outcome[outcome.find(COMPUTED)? + COMPUTED.len()..];
    rest.split_whitespace().next()
}

const COMPUTED: &str = "Body digest computed ";

/// The SHA-256 of a certificate's DER, hex.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    crate::domain::chain::hex(&Sha256::digest(der))
}

/// The InclusiveNamespaces element's namespace (exclusive c14n's).
const EC_NS: &str = EXC_C14N;

/// The next event, with its element's namespace ("" where none).
fn next<'a>(reader: &mut quick_xml::NsReader<&'a [u8]>) -> Result<(String, Event<'a>), String> {
    let (ns, event) = reader.read_resolved_event().map_err(|e| e.to_string())?;
    let ns = match ns {
        quick_xml::name::ResolveResult::Bound(n) => n.into_inner().to_string(),
        _ => String::new(),
    };
    Ok((ns, event))
}

/// A name with its namespace, as a path step.
type Step = (String, String);

fn is(step: &Step, ns: &str, local: &str) -> bool {
    step.0 == ns && step.1 == local
}

/// Whether `rel` is exactly the path of `steps`.
fn at(rel: &[Step], steps: &[(&str, &str)]) -> bool {
    rel.len() == steps.len() && rel.iter().zip(steps).all(|(r, (ns, l))| is(r, ns, l))
}

/// An attribute's value by its local name (the attributes read here are
/// unqualified, or `wsu:Id`, `soap:actor`).
fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        let key = a.key.as_ref();
        let local = key.rsplit(':').next().unwrap_or(key);
        (local == name).then(|| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_default()
        })
    })
}

/// Sets a field read once; a second one is refused.
fn once(field: &mut Option<String>, value: String, what: &str) -> Result<(), Refusal> {
    if field.is_some() {
        return Err(refuse(
            "SIGNATURE_INVALID",
            format!("two {what} in the signature"),
        ));
    }
    *field = Some(value);
    Ok(())
}

/// The text of elements (base64 values): text, CDATA and character
/// references, whitespace dropped.
#[derive(Default)]
struct Text(String);

impl Text {
    fn take(&mut self, event: &Event<'_>) -> Result<(), Refusal> {
        match event {
            Event::Text(t) => self.0.push_str(&t.xml10_content()),
            Event::CData(t) => self.0.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let c = r
                    .resolve_char_ref()
                    .ok()
                    .flatten()
                    .map(String::from)
                    .or_else(|| {
                        quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                            .map(str::to_string)
                    })
                    .ok_or_else(|| refuse("SIGNATURE_INVALID", "an entity in the signature"))?;
                self.0.push_str(&c);
            }
            _ => {}
        }
        Ok(())
    }

    fn value(&mut self) -> String {
        std::mem::take(&mut self.0).split_whitespace().collect()
    }
}

/// What the actor's `wsse:Security` holds outside the SignedInfo, each read
/// at its one place: `Security/BinarySecurityToken`,
/// `Security/ds:Signature/ds:SignedInfo` (where it begins, and its
/// CanonicalizationMethod's PrefixList), `…/ds:Signature/ds:SignatureValue`,
/// and the KeyInfo's token reference or X509Certificate.
#[derive(Debug, Default)]
struct Security {
    token_id: Option<String>,
    token: Option<String>,
    x509_certificate: Option<String>,
    key_reference: Option<String>,
    signatures: usize,
    signed_info_at: Option<usize>,
    signed_info_prefixes: Option<String>,
    signature_value: Option<String>,
}

/// Reads the `wsse:Security` blocks of the SOAP header: the one of `actor`.
/// None when there is none. Reading stops at the Body.
fn security(xml: &str, actor: &str) -> Result<Option<Security>, Refusal> {
    let malformed = |e: String| {
        refuse(
            "SIGNATURE_INVALID",
            format!("the SOAP header cannot be read: {e}"),
        )
    };
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut path: Vec<Step> = Vec::new();
    let mut found: Option<Security> = None;
    let mut current: Option<Security> = None;
    let mut text = Text::default();
    const SIGNATURE: (&str, &str) = (DS_NS, "Signature");
    loop {
        let pos = reader.buffer_position() as usize;
        let (ns, event) = next(&mut reader).map_err(malformed)?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let step = (ns, e.local_name().into_inner().to_string());
                if path.len() == 1 && is(&step, SOAP_NS, "Body") {
                    break;
                }
                let in_header = path.len() == 2 && is(&path[1], SOAP_NS, "Header");
                if in_header && is(&step, WSSE_NS, "Security") {
                    if attr(e, "actor").as_deref() == Some(actor) {
                        if found.is_some() || current.is_some() {
                            return Err(refuse(
                                "SIGNATURE_INVALID",
                                format!("two wsse:Security blocks of the actor {actor}"),
                            ));
                        }
                        current = Some(Security::default());
                    }
                } else if let (Some(s), true) = (current.as_mut(), path.len() >= 3) {
                    let mut rel = path[3..].to_vec();
                    rel.push(step.clone());
                    if at(&rel, &[(WSSE_NS, "BinarySecurityToken")]) {
                        once(&mut s.token_id, attr(e, "Id").unwrap_or_default(), "tokens")?;
                    } else if at(&rel, &[SIGNATURE]) {
                        s.signatures += 1;
                        if s.signatures > 1 {
                            return Err(refuse(
                                "SIGNATURE_INVALID",
                                "two ds:Signature in one wsse:Security",
                            ));
                        }
                    } else if at(&rel, &[SIGNATURE, (DS_NS, "SignedInfo")]) {
                        if s.signed_info_at.is_some() {
                            return Err(refuse("SIGNATURE_INVALID", "two ds:SignedInfo"));
                        }
                        s.signed_info_at = Some(pos);
                    } else if at(
                        &rel,
                        &[
                            SIGNATURE,
                            (DS_NS, "SignedInfo"),
                            (DS_NS, "CanonicalizationMethod"),
                            (EC_NS, "InclusiveNamespaces"),
                        ],
                    ) {
                        let list = attr(e, "PrefixList").unwrap_or_default();
                        once(&mut s.signed_info_prefixes, list, "PrefixLists")?;
                    } else if at(
                        &rel,
                        &[
                            SIGNATURE,
                            (DS_NS, "KeyInfo"),
                            (WSSE_NS, "SecurityTokenReference"),
                            (WSSE_NS, "Reference"),
                        ],
                    ) {
                        let uri = attr(e, "URI").unwrap_or_default();
                        once(&mut s.key_reference, uri, "token references")?;
                    }
                }
                text = Text::default();
                if matches!(event, Event::Start(_)) {
                    path.push(step);
                }
            }
            Event::End(_) => {
                if let (Some(s), true) = (current.as_mut(), path.len() >= 3) {
                    let rel = &path[3..];
                    if at(rel, &[(WSSE_NS, "BinarySecurityToken")]) {
                        once(&mut s.token, text.value(), "tokens")?;
                    } else if at(rel, &[SIGNATURE, (DS_NS, "SignatureValue")]) {
                        once(&mut s.signature_value, text.value(), "SignatureValues")?;
                    } else if at(
                        rel,
                        &[
                            SIGNATURE,
                            (DS_NS, "KeyInfo"),
                            (DS_NS, "X509Data"),
                            (DS_NS, "X509Certificate"),
                        ],
                    ) {
                        once(&mut s.x509_certificate, text.value(), "certificates")?;
                    } else if rel.is_empty() {
                        found = current.take();
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            other => text.take(other)?,
        }
    }
    Ok(found)
}

/// The SignedInfo as signed: read from its canonical bytes, each field at
/// its one place.
#[derive(Debug, Default)]
struct SignedInfo {
    canonicalization: Option<String>,
    signature_method: Option<String>,
    references: Vec<Reference>,
}

#[derive(Debug, Default)]
struct Reference {
    uri: String,
    transforms: Vec<String>,
    prefix_list: Option<String>,
    digest_method: Option<String>,
    digest_value: Option<String>,
}

fn signed_info(canonical: &[u8]) -> Result<SignedInfo, Refusal> {
    let bad = |e: String| {
        refuse(
            "SIGNATURE_INVALID",
            format!("the SignedInfo cannot be read: {e}"),
        )
    };
    let xml = std::str::from_utf8(canonical).map_err(|e| bad(e.to_string()))?;
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut path: Vec<Step> = Vec::new();
    let mut info = SignedInfo::default();
    let mut text = Text::default();
    const REFERENCE: (&str, &str) = (DS_NS, "Reference");
    loop {
        let (ns, event) = next(&mut reader).map_err(bad)?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                let step = (ns, e.local_name().into_inner().to_string());
                let rel: Vec<Step> = path.iter().skip(1).cloned().chain([step.clone()]).collect();
                let algorithm = || attr(e, "Algorithm").unwrap_or_default();
                if path.is_empty() && !is(&step, DS_NS, "SignedInfo") {
                    return Err(bad("not a ds:SignedInfo".into()));
                } else if at(&rel, &[(DS_NS, "CanonicalizationMethod")]) {
                    once(
                        &mut info.canonicalization,
                        algorithm(),
                        "CanonicalizationMethods",
                    )?;
                } else if at(&rel, &[(DS_NS, "SignatureMethod")]) {
                    once(&mut info.signature_method, algorithm(), "SignatureMethods")?;
                } else if at(&rel, &[REFERENCE]) {
                    info.references.push(Reference {
                        uri: attr(e, "URI").unwrap_or_default(),
                        ..Reference::default()
                    });
                } else if let Some(r) = info.references.last_mut() {
                    if at(
                        &rel,
                        &[REFERENCE, (DS_NS, "Transforms"), (DS_NS, "Transform")],
                    ) {
                        r.transforms.push(algorithm());
                    } else if at(
                        &rel,
                        &[
                            REFERENCE,
                            (DS_NS, "Transforms"),
                            (DS_NS, "Transform"),
                            (EC_NS, "InclusiveNamespaces"),
                        ],
                    ) {
                        let list = attr(e, "PrefixList").unwrap_or_default();
                        once(&mut r.prefix_list, list, "PrefixLists")?;
                    } else if at(&rel, &[REFERENCE, (DS_NS, "DigestMethod")]) {
                        once(&mut r.digest_method, algorithm(), "DigestMethods")?;
                    }
                }
                text = Text::default();
                if matches!(event, Event::Start(_)) {
                    path.push(step);
                }
            }
            Event::End(_) => {
                if at(
                    &path[1.min(path.len())..],
                    &[REFERENCE, (DS_NS, "DigestValue")],
                ) {
                    if let Some(r) = info.references.last_mut() {
                        once(&mut r.digest_value, text.value(), "DigestValues")?;
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            other => text.take(other)?,
        }
    }
    Ok(info)
}

/// The largest certificate taken (a real one is 1–2 KiB).
const MAX_CERTIFICATE: usize = 64 * 1024;

/// OpenSSL could not run an algorithm it should (the ГОСТ engine not loaded,
/// say): the detail goes to the gateway's log, the sender is told only that.
fn unavailable(e: String) -> Refusal {
    tracing::error!(error = %e, "a signature could not be checked");
    refuse(
        "SIGNATURE_ALGORITHM_UNSUPPORTED",
        "the gateway cannot check this algorithm now; its operator is told",
    )
}

fn b64(s: &str, what: &str) -> Result<Vec<u8>, Refusal> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| refuse("SIGNATURE_INVALID", format!("{what} is not base64")))
}

fn algorithm_of(signature_uri: &str, digest_uri: &str) -> Result<&'static dyn Algorithm, Refusal> {
    for uri in [signature_uri, digest_uri] {
        if let Some((_, name)) = NAMED_UNSUPPORTED.iter().find(|(u, _)| *u == uri) {
            return Err(refuse(
                "SIGNATURE_ALGORITHM_UNSUPPORTED",
                format!("{uri} ({name}) is not accepted: sign with ГОСТ Р 34.10-2012 (urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256) or RSA-SHA256"),
            ));
        }
    }
    let a = algorithms()
        .into_iter()
        .find(|a| a.signature_uri() == signature_uri)
        .ok_or_else(|| {
            refuse(
                "SIGNATURE_ALGORITHM_UNSUPPORTED",
                format!("the SignatureMethod {signature_uri} is not one the gateway knows"),
            )
        })?;
    if a.digest_uri() != digest_uri {
        return Err(refuse(
            "SIGNATURE_ALGORITHM_UNSUPPORTED",
            format!(
                "{} is signed with the digest {}, not {digest_uri}",
                a.name(),
                a.digest_uri()
            ),
        ));
    }
    Ok(a)
}

/// Checks the sender's signature of a request (`xml`, the whole envelope as
/// received).
pub fn check(xml: &str) -> Checked {
    check_as(xml, ACTOR_SMEV)
}

/// Checks the signature of `actor`'s `wsse:Security` block (the gateway's
/// own answers carry [`ACTOR_RECIPIENT`]).
pub fn check_as(xml: &str, actor: &str) -> Checked {
    let s = match security(xml, actor) {
        Ok(Some(s)) => s,
        Ok(None) => return Checked::Unsigned,
        Err(r) => return Checked::Failed(r, None),
    };
    let mut digests = None;
    match verify(xml, &s, &mut digests) {
        Ok(signed) => Checked::Verified(signed),
        Err(r) => Checked::Failed(r, digests),
    }
}

fn verify(xml: &str, s: &Security, digests: &mut Option<Digests>) -> Result<Signed, Refusal> {
    let missing = |what: &str| refuse("SIGNATURE_INVALID", format!("the signature has no {what}"));
    let signed_info_at = s.signed_info_at.ok_or_else(|| missing("ds:SignedInfo"))?;
    // Every field the check relies on is read from the SignedInfo's
    // canonical bytes: the bytes the SignatureValue is checked over.
    let prefixes: Vec<&str> = s
        .signed_info_prefixes
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut canonical = Vec::new();
    c14n::exclusive(xml, Apex::At(signed_info_at), &prefixes, &mut canonical).map_err(|e| {
        refuse(
            "SIGNATURE_INVALID",
            format!("the SignedInfo cannot be canonicalized: {e}"),
        )
    })?;
    let info = signed_info(&canonical)?;
    let canonicalization = info.canonicalization.as_deref().unwrap_or_default();
    if canonicalization != EXC_C14N {
        return Err(refuse(
            "SIGNATURE_ALGORITHM_UNSUPPORTED",
            format!("the CanonicalizationMethod must be exclusive c14n ({EXC_C14N}), not {canonicalization:?}"),
        ));
    }
    let [reference] = info.references.as_slice() else {
        return Err(refuse(
            "SIGNATURE_INVALID",
            format!(
                "the SignedInfo has {} References: one, to the Body's wsu:Id, is expected",
                info.references.len()
            ),
        ));
    };
    if let Some(t) = reference.transforms.iter().find(|t| *t != EXC_C14N) {
        return Err(refuse(
            "SIGNATURE_ALGORITHM_UNSUPPORTED",
            format!("the Reference's transform {t} is not taken: exclusive c14n ({EXC_C14N}) only"),
        ));
    }
    let algorithm = algorithm_of(
        info.signature_method.as_deref().unwrap_or_default(),
        reference.digest_method.as_deref().unwrap_or_default(),
    )?;
    let id = reference.uri.strip_prefix('#').ok_or_else(|| {
        refuse(
            "SIGNATURE_INVALID",
            format!(
                "the Reference URI {:?} does not name the Body's wsu:Id (#…)",
                reference.uri
            ),
        )
    })?;
    let certificate = match (&s.token, &s.x509_certificate) {
        (Some(token), _) => {
            let named = s
                .key_reference
                .as_deref()
                .map(|r| r.trim_start_matches('#'));
            if named.is_some() && named != s.token_id.as_deref() {
                return Err(refuse(
                    "SIGNATURE_INVALID",
                    "the KeyInfo names no BinarySecurityToken of this Security",
                ));
            }
            token
        }
        (None, Some(c)) => c,
        (None, None) => {
            return Err(missing(
                "certificate (wsse:BinarySecurityToken or ds:X509Certificate)",
            ))
        }
    };
    let der = b64(certificate, "the certificate")?;
    if der.len() > MAX_CERTIFICATE {
        return Err(refuse(
            "SIGNATURE_INVALID",
            format!(
                "the certificate carried is over {} KiB",
                MAX_CERTIFICATE / 1024
            ),
        ));
    }
    let certificate = parsed(&der).ok_or_else(|| {
        refuse(
            "SIGNATURE_INVALID",
            "the certificate carried is not an X.509 certificate",
        )
    })?;
    let claimed = reference
        .digest_value
        .clone()
        .ok_or_else(|| missing("DigestValue"))?;
    let inclusive: Vec<&str> = reference
        .prefix_list
        .as_deref()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let mut hasher = algorithm.hasher().map_err(unavailable)?;
    let body = c14n::exclusive(xml, Apex::Id(id), &inclusive, &mut hasher).map_err(|e| {
        refuse(
            "SIGNATURE_INVALID",
            format!("the signed element cannot be canonicalized: {e}"),
        )
    })?;
    match body {
        Some(f) if f.ns == SOAP_NS && f.local == "Body" && f.depth == 2 => {}
        Some(f) => {
            return Err(refuse(
                "SIGNATURE_INVALID",
                format!("the Reference names {{{}}}{}, not the SOAP Body: the signature must cover the Body", f.ns, f.local),
            ))
        }
        None => return Err(refuse("SIGNATURE_INVALID", format!("no element carries the wsu:Id {id} the Reference names"))),
    }
    let computed = hasher.finish().map_err(|e| unavailable(e.to_string()))?;
    let computed = base64::engine::general_purpose::STANDARD.encode(computed);
    let d = Digests {
        computed: computed.clone(),
        claimed: claimed.clone(),
    };
    *digests = Some(d.clone());
    if b64(&claimed, "the DigestValue")? != b64(&computed, "the digest")? {
        return Err(refuse(
            "SIGNATURE_INVALID",
            format!("the Body's digest does not match: the gateway computed {computed} over the Body's exclusive c14n, the signature claims {claimed}; the Body was changed after signing, or canonicalized otherwise"),
        ));
    }
    let signed_info = canonical;
    let value = b64(
        s.signature_value
            .as_deref()
            .ok_or_else(|| missing("SignatureValue"))?,
        "the SignatureValue",
    )?;
    if !algorithm
        .verify(&certificate, &signed_info, &value)
        .map_err(unavailable)?
    {
        return Err(refuse(
            "SIGNATURE_INVALID",
            format!(
                "the SignatureValue does not verify with the certificate carried ({})",
                algorithm.name()
            ),
        ));
    }
    let dates = |e: String| {
        refuse(
            "SIGNATURE_INVALID",
            format!("the certificate's validity cannot be read: {e}"),
        )
    };
    Ok(Signed {
        algorithm: algorithm.name(),
        not_before: unix(certificate.not_before()).map_err(dates)?,
        not_after: unix(certificate.not_after()).map_err(dates)?,
        certificate: der,
        digests: d,
    })
}

/// The gateway's key and certificate, loaded once.
pub struct Signer {
    key: PKey<Private>,
    certificate_b64: String,
    algorithm: &'static dyn Algorithm,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm.name())
            .finish()
    }
}

impl Signer {
    /// Reads a PEM key and certificate; the algorithm follows the key.
    pub fn from_pem(key: &[u8], certificate: &[u8]) -> Result<Signer, String> {
        let key = PKey::private_key_from_pem(key)
            .map_err(|e| format!("the signing key cannot be read: {e}"))?;
        let cert = X509::from_pem(certificate)
            .map_err(|e| format!("the signing certificate cannot be read: {e}"))?;
        let algorithm = algorithm_of_key(&key, "the signing key")?;
        algorithm.hasher()?;
        let public = cert.public_key().map_err(|e| e.to_string())?;
        if !key.public_eq(&public) {
            return Err("the signing certificate is not the signing key's".into());
        }
        let der = cert.to_der().map_err(|e| e.to_string())?;
        Ok(Signer {
            key,
            certificate_b64: base64::engine::general_purpose::STANDARD.encode(der),
            algorithm,
        })
    }

    /// The gateway's signer the settings name (`gateway.signing_key_file`
    /// and `signing_cert_file`); None when neither is set.
    pub fn from_settings(gw: &settings::GatewaySettings) -> Result<Option<Signer>, String> {
        let set = |f: &Option<String>| f.as_deref().filter(|p| !p.is_empty()).map(str::to_string);
        match (set(&gw.signing_key_file), set(&gw.signing_cert_file)) {
            (None, None) => Ok(None),
            (Some(k), Some(c)) => Signer::from_files(&k, &c)
                .map(Some)
                .map_err(|e| format!("gateway.signing_key_file / signing_cert_file: {e}")),
            _ => Err("gateway.signing_key_file and gateway.signing_cert_file go together: set both or neither".into()),
        }
    }

    /// Reads the key and certificate files.
    pub fn from_files(key: &str, certificate: &str) -> Result<Signer, String> {
        let read = |p: &str| std::fs::read(p).map_err(|e| format!("{p}: {e}"));
        Signer::from_pem(&read(key)?, &read(certificate)?)
    }

    pub fn algorithm(&self) -> &'static str {
        self.algorithm.name()
    }

    /// Signs an envelope as `actor`: the Body gets a `wsu:Id`, the header a
    /// `wsse:Security` with the certificate and the signature. An envelope
    /// `actor` has signed already (a first answer sent again) is as it was.
    pub fn sign(&self, xml: &str, actor: &str) -> Result<String, String> {
        if security(xml, actor).map_err(|r| r.text)?.is_some() {
            return Ok(xml.to_string());
        }
        sign_with(xml, actor, &self.key, &self.certificate_b64, self.algorithm)
    }
}

/// A self-signed certificate of `key` for `cn`, valid between the two times
/// (seconds since 1970), signed with the key's own algorithm: for test
/// contours, the benches and the tests.
pub fn self_signed(
    key: &PKey<Private>,
    cn: &str,
    not_before: i64,
    not_after: i64,
) -> Result<X509, String> {
    use openssl::asn1::Asn1Time;
    let e = |e: openssl::error::ErrorStack| e.to_string();
    let algorithm = algorithm_of_key(key, "the key")?;
    let mut name = openssl::x509::X509NameBuilder::new().map_err(e)?;
    name.append_entry_by_text("CN", cn).map_err(e)?;
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().map_err(e)?;
    b.set_version(2).map_err(e)?;
    let serial = openssl::bn::BigNum::from_u32(rand_serial()).map_err(e)?;
    let serial = serial.to_asn1_integer().map_err(e)?;
    b.set_serial_number(&serial).map_err(e)?;
    b.set_subject_name(&name).map_err(e)?;
    b.set_issuer_name(&name).map_err(e)?;
    b.set_pubkey(key).map_err(e)?;
    let (from, to) = (
        Asn1Time::from_unix(not_before).map_err(e)?,
        Asn1Time::from_unix(not_after).map_err(e)?,
    );
    b.set_not_before(&from).map_err(e)?;
    b.set_not_after(&to).map_err(e)?;
    b.sign(key, algorithm.message_digest()?).map_err(e)?;
    Ok(b.build())
}

fn rand_serial() -> u32 {
    let mut b = [0u8; 4];
    let _ = openssl::rand::rand_bytes(&mut b);
    u32::from_be_bytes(b) >> 1
}

/// The Envelope's prefix, where its Body's start tag begins, and its Header's
/// start tag (begin, end; an empty `<Header/>` has end == None).
struct Parts {
    prefix: String,
    body: usize,
    /// The Body's own qualified name (its prefix may differ from the
    /// Envelope's).
    body_tag: String,
    header: Option<(usize, Option<usize>)>,
}

fn envelope_parts(xml: &str) -> Result<Parts, String> {
    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut depth = 0usize;
    let mut parts = Parts {
        prefix: String::new(),
        body: 0,
        body_tag: String::new(),
        header: None,
    };
    loop {
        let at = reader.buffer_position() as usize;
        let (ns, event) = next(&mut reader)?;
        let soap = ns == SOAP_NS;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let local = e.local_name().into_inner().to_string();
                if depth == 0 {
                    let name = e.name().as_ref().to_string();
                    parts.prefix = name
                        .split_once(':')
                        .map(|(p, _)| p.to_string())
                        .unwrap_or_default();
                }
                if depth == 1 && soap && local == "Header" {
                    let end = reader.buffer_position() as usize;
                    parts.header = Some((at, (!empty).then_some(end)));
                }
                if depth == 1 && soap && local == "Body" {
                    parts.body = at;
                    parts.body_tag = e.name().as_ref().to_string();
                    return Ok(parts);
                }
                if !empty {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => return Err("no SOAP Body".into()),
            _ => {}
        }
    }
}

const BODY_ID: &str = "smev-body";

/// The BinarySecurityToken's wsu:Id: SMEV's names for the sender's and the
/// recipient's certificate (two blocks in one message must not share an Id).
fn token_id(actor: &str) -> &'static str {
    if actor == ACTOR_SMEV {
        "SenderCertificate"
    } else {
        "RecipientCertificate"
    }
}
const DIGEST_MARK: &str = "\u{1}digest\u{1}";
const SIGNATURE_MARK: &str = "\u{1}signature\u{1}";

fn sign_with(
    xml: &str,
    actor: &str,
    key: &PKey<Private>,
    certificate_b64: &str,
    algorithm: &'static dyn Algorithm,
) -> Result<String, String> {
    let parts = envelope_parts(xml)?;
    let (soap, declare) = if parts.prefix.is_empty() {
        ("S11".to_string(), format!(" xmlns:S11=\"{SOAP_NS}\""))
    } else {
        (parts.prefix.clone(), String::new())
    };
    let token = token_id(actor);
    let security = format!(
        "<wsse:Security xmlns:wsse=\"{WSSE_NS}\" xmlns:wsu=\"{WSU_NS}\"{declare} {soap}:actor=\"{actor}\">\
<wsse:BinarySecurityToken EncodingType=\"{BASE64_BINARY}\" ValueType=\"{X509_TOKEN}\" wsu:Id=\"{token}\">{certificate_b64}</wsse:BinarySecurityToken>\
<ds:Signature xmlns:ds=\"{DS_NS}\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>\
<ds:SignatureMethod Algorithm=\"{}\"/><ds:Reference URI=\"#{BODY_ID}\"><ds:Transforms><ds:Transform Algorithm=\"{EXC_C14N}\"/></ds:Transforms>\
<ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue>{DIGEST_MARK}</ds:DigestValue></ds:Reference></ds:SignedInfo>\
<ds:SignatureValue>{SIGNATURE_MARK}</ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference>\
<wsse:Reference URI=\"#{token}\" ValueType=\"{X509_TOKEN}\"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature></wsse:Security>",
        algorithm.signature_uri(),
        algorithm.digest_uri()
    );
    let body_attrs = format!(" xmlns:wsu=\"{WSU_NS}\" wsu:Id=\"{BODY_ID}\"");
    let body_at = parts.body + 1 + parts.body_tag.len();
    // The Security block goes at the end of the Header; an empty or missing
    // Header is written anew around it.
    let header_tag = if parts.prefix.is_empty() {
        "Header".to_string()
    } else {
        format!("{}:Header", parts.prefix)
    };
    let wrapped = || format!("<{header_tag}>{security}</{header_tag}>");
    let (insert, cut, resume) = match parts.header {
        Some((_, Some(end))) => (security.clone(), end, end),
        Some((start, None)) => {
            let after = xml[start..]
                .find("/>")
                .map(|i| start + i + 2)
                .ok_or("the Header cannot be found")?;
            (wrapped(), start, after)
        }
        None => (wrapped(), parts.body, parts.body),
    };
    let mut out = String::with_capacity(xml.len() + insert.len() + body_attrs.len());
    out.push_str(&xml[..cut]);
    let signed_info_at = out.len() + insert.find("<ds:SignedInfo>").ok_or("no SignedInfo")?;
    out.push_str(&insert);
    out.push_str(&xml[resume..body_at]);
    out.push_str(&body_attrs);
    out.push_str(&xml[body_at..]);
    let mut hasher = algorithm.hasher()?;
    c14n::exclusive(&out, Apex::Id(BODY_ID), &[], &mut hasher)?.ok_or("the Body lost its Id")?;
    let digest = base64::engine::general_purpose::STANDARD
        .encode(hasher.finish().map_err(|e| e.to_string())?);
    // The marks sit in the header: filled in place, the Body (a report may be
    // hundreds of MiB) not copied again.
    fill(&mut out, signed_info_at, DIGEST_MARK, &digest)?;
    let mut signed_info = Vec::new();
    c14n::exclusive(&out, Apex::At(signed_info_at), &[], &mut signed_info)?;
    let value =
        base64::engine::general_purpose::STANDARD.encode(algorithm.sign(key, &signed_info)?);
    fill(&mut out, signed_info_at, SIGNATURE_MARK, &value)?;
    Ok(out)
}

/// Replaces the first `mark` after `from` with `value`.
fn fill(out: &mut String, from: usize, mark: &str, value: &str) -> Result<(), String> {
    let at = from
        + out[from..]
            .find(mark)
            .ok_or("a signature mark is missing")?;
    out.replace_range(at..at + mark.len(), value);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const ENVELOPE: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:b=\"urn:b\">\n<soapenv:Header><x:Other xmlns:x=\"urn:x\"/></soapenv:Header>\n<soapenv:Body>\n  <b:Check><b:Account>ls-77</b:Account></b:Check>\n</soapenv:Body>\n</soapenv:Envelope>";

    fn now() -> i64 {
        chrono::Utc::now().timestamp()
    }

    fn rsa() -> PKey<Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
    }

    /// A ГОСТ Р 34.10-2012 key made by the openssl command (the gost engine).
    pub(crate) fn gost() -> PKey<Private> {
        let out = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "gost2012_256",
                "-pkeyopt",
                "paramset:A",
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl genpkey gost2012_256 (OPENSSL_CONF={:?}): {}",
            std::env::var("OPENSSL_CONF"),
            String::from_utf8_lossy(&out.stderr)
        );
        PKey::private_key_from_pem(&out.stdout).unwrap()
    }

    fn signer(key: &PKey<Private>, from: i64, to: i64) -> (Signer, X509) {
        let cert = self_signed(key, "BANK01", from, to).unwrap();
        let s = Signer::from_pem(
            &key.private_key_to_pem_pkcs8().unwrap(),
            &cert.to_pem().unwrap(),
        )
        .unwrap();
        (s, cert)
    }

    fn verified(c: Checked) -> Signed {
        match c {
            Checked::Verified(s) => s,
            other => panic!("not verified: {other:?}"),
        }
    }

    fn failed(c: Checked) -> (Refusal, Option<Digests>) {
        match c {
            Checked::Failed(r, d) => (r, d),
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn each_algorithm_signs_and_verifies_with_the_header_there_empty_or_absent() {
        for key in [rsa(), gost()] {
            let (signer, cert) = signer(&key, now() - 60, now() + 86_400);
            let without = ENVELOPE.replace(
                "<soapenv:Header><x:Other xmlns:x=\"urn:x\"/></soapenv:Header>",
                "",
            );
            let empty = ENVELOPE.replace(
                "<soapenv:Header><x:Other xmlns:x=\"urn:x\"/></soapenv:Header>",
                "<soapenv:Header/>",
            );
            for xml in [ENVELOPE.to_string(), without, empty] {
                let signed = signer.sign(&xml, ACTOR_SMEV).unwrap();
                assert_eq!(
                    signer.sign(&signed, ACTOR_SMEV).unwrap(),
                    signed,
                    "signed once"
                );
                let s = verified(check(&signed));
                assert_eq!(s.algorithm, signer.algorithm());
                assert_eq!(s.certificate, cert.to_der().unwrap());
                assert_eq!(s.digests.computed, s.digests.claimed);
                // The gateway's own block is not the sender's.
                let own = signer.sign(&xml, ACTOR_RECIPIENT).unwrap();
                assert!(matches!(check(&own), Checked::Unsigned));
                assert!(own.contains("RecipientCertificate"), "{own}");
            }
        }
    }

    #[test]
    fn a_body_altered_after_signing_is_refused_with_both_digests() {
        for key in [rsa(), gost()] {
            let (signer, _) = signer(&key, now() - 60, now() + 86_400);
            let signed = signer.sign(ENVELOPE, ACTOR_SMEV).unwrap();
            let altered = signed.replace("ls-77", "ls-78");
            let (r, d) = failed(check(&altered));
            assert_eq!(r.code, "SIGNATURE_INVALID");
            let d = d.unwrap();
            assert_ne!(d.computed, d.claimed);
            assert!(
                r.text.contains(&d.computed) && r.text.contains(&d.claimed),
                "{}",
                r.text
            );
            let note = check(&altered).note();
            assert!(
                note.contains(&d.computed) && note.contains(&d.claimed),
                "{note}"
            );
            // Whitespace outside the Body is not signed; inside it is.
            let reformatted = signed.replace("<soapenv:Body", "\n\n<soapenv:Body");
            verified(check(&reformatted));
            let (r, _) = failed(check(&signed.replace("  <b:Check>", "<b:Check>")));
            assert_eq!(r.code, "SIGNATURE_INVALID");
            // The SignedInfo altered (the digest claimed): the value does not verify.
            let s = verified(check(&signed));
            let other = base64::engine::general_purpose::STANDARD.encode([0u8; 32]);
            let (r, _) = failed(check(&signed.replace(&s.digests.claimed, &other)));
            assert_eq!(r.code, "SIGNATURE_INVALID");
            // A key other than the certificate's.
            let (stranger, _) = self::signer(&rsa(), now() - 60, now() + 86_400);
            let theirs = stranger.sign(ENVELOPE, ACTOR_SMEV).unwrap();
            let value = |x: &str| {
                x.split("<ds:SignatureValue>")
                    .nth(1)
                    .unwrap()
                    .split('<')
                    .next()
                    .unwrap()
                    .to_string()
            };
            let forged = signed.replace(&value(&signed), &value(&theirs));
            let (r, _) = failed(check(&forged));
            assert_eq!(r.code, "SIGNATURE_INVALID", "{}", r.text);
            assert!(r.text.contains("SignatureValue"), "{}", r.text);
        }
    }

    #[test]
    fn older_and_unknown_algorithms_are_named_and_refused() {
        let (signer, _) = signer(&rsa(), now() - 60, now() + 86_400);
        let signed = signer.sign(ENVELOPE, ACTOR_SMEV).unwrap();
        let old = signed
            .replace(
                RSA_SHA256.signature_uri,
                "http://www.w3.org/2001/04/xmldsig-more#gostr34102001-gostr3411",
            )
            .replace(
                RSA_SHA256.digest_uri,
                "http://www.w3.org/2001/04/xmldsig-more#gostr3411",
            );
        let (r, _) = failed(check(&old));
        assert_eq!(r.code, "SIGNATURE_ALGORITHM_UNSUPPORTED");
        assert!(
            r.text.contains("34.10-2001") && r.text.contains("gostr34102012-gostr34112012-256"),
            "{}",
            r.text
        );
        let inclusive = signed.replace(
            &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>"),
            "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"/>",
        );
        assert_eq!(
            failed(check(&inclusive)).0.code,
            "SIGNATURE_ALGORITHM_UNSUPPORTED"
        );
        let mismatched = signed.replace(RSA_SHA256.digest_uri, GOST_2012_256.digest_uri);
        assert_eq!(
            failed(check(&mismatched)).0.code,
            "SIGNATURE_ALGORITHM_UNSUPPORTED"
        );
    }

    #[test]
    fn a_signature_must_cover_the_body() {
        let (signer, _) = signer(&rsa(), now() - 60, now() + 86_400);
        let signed = signer.sign(ENVELOPE, ACTOR_SMEV).unwrap();
        let elsewhere = signed.replace("URI=\"#smev-body\"", "URI=\"#SenderCertificate\"");
        let (r, _) = failed(check(&elsewhere));
        assert!(r.text.contains("must cover the Body"), "{}", r.text);
        let nowhere = signed.replace("URI=\"#smev-body\"", "URI=\"#nothing\"");
        assert!(failed(check(&nowhere))
            .0
            .text
            .contains("no element carries"));
        let twice = signed.replacen(
            "<soapenv:Header>",
            &format!(
                "<soapenv:Header>{}",
                &signed[signed.find("<wsse:Security").unwrap()
                    ..signed.find("</wsse:Security>").unwrap() + 16]
            ),
            1,
        );
        assert_eq!(failed(check(&twice)).0.code, "SIGNATURE_INVALID");
    }

    #[test]
    fn the_certificate_must_be_the_senders_now_and_in_its_dates() {
        let key = rsa();
        let (signer, _) = signer(&key, now() - 60, now() + 86_400);
        let checked = check(&signer.sign(ENVELOPE, ACTOR_SMEV).unwrap());
        assert_eq!(
            judge(&checked, "BANK01", true, Registration::Registered, now()),
            Ok(())
        );
        let r = judge(&checked, "BANK01", true, Registration::Unknown, now()).unwrap_err();
        assert_eq!(r.code, "CERTIFICATE_NOT_REGISTERED");
        let retired = Registration::Retired {
            at: "2026-11-01 10:00".into(),
        };
        let r = judge(&checked, "BANK01", true, retired, now()).unwrap_err();
        assert_eq!(r.code, "CERTIFICATE_REVOKED");
        assert!(r.text.contains("2026-11-01 10:00"), "{}", r.text);
        let r = judge(
            &checked,
            "BANK01",
            true,
            Registration::Registered,
            now() + 2 * 86_400,
        )
        .unwrap_err();
        assert_eq!(r.code, "CERTIFICATE_EXPIRED");
        let r = judge(
            &checked,
            "BANK01",
            true,
            Registration::Registered,
            now() - 3_600,
        )
        .unwrap_err();
        assert_eq!(r.code, "CERTIFICATE_EXPIRED", "not yet valid");
        assert_eq!(
            judge(
                &Checked::Unsigned,
                "BANK01",
                true,
                Registration::Registered,
                now()
            )
            .unwrap_err()
            .code,
            "SIGNATURE_REQUIRED"
        );
        assert_eq!(
            judge(
                &Checked::Unsigned,
                "BANK01",
                false,
                Registration::Registered,
                now()
            ),
            Ok(())
        );
        let bad = Checked::Failed(refuse("SIGNATURE_INVALID", "x"), None);
        assert_eq!(
            judge(&bad, "BANK01", false, Registration::Registered, now())
                .unwrap_err()
                .code,
            "SIGNATURE_INVALID"
        );
    }

    /// The signature's fields are the SignedInfo's: a DigestValue (or any
    /// other field) added elsewhere in the Security block changes nothing.
    #[test]
    fn fields_outside_their_place_are_not_read() {
        let (signer, _) = signer(&rsa(), now() - 60, now() + 86_400);
        let signed = signer.sign(ENVELOPE, ACTOR_SMEV).unwrap();
        let altered = signed.replace("ls-77", "ls-78");
        let mut hasher = RSA_SHA256.hasher().unwrap();
        c14n::exclusive(&altered, Apex::Id(BODY_ID), &[], &mut hasher)
            .unwrap()
            .unwrap();
        let forged = base64::engine::general_purpose::STANDARD.encode(hasher.finish().unwrap());
        for stray in [
            format!("<x:DigestValue xmlns:x=\"urn:x\">{forged}</x:DigestValue>"),
            format!("<ds:DigestValue xmlns:ds=\"{DS_NS}\">{forged}</ds:DigestValue>"),
            format!("<ds:Reference xmlns:ds=\"{DS_NS}\" URI=\"#{BODY_ID}\"><ds:DigestValue>{forged}</ds:DigestValue></ds:Reference>"),
        ] {
            let attack = altered.replace("</ds:Signature>", &format!("</ds:Signature>{stray}"));
            let (r, d) = failed(check(&attack));
            assert_eq!(r.code, "SIGNATURE_INVALID", "{stray}");
            assert_ne!(d.unwrap().claimed, forged, "{stray}");
        }
        // A second SignatureValue is refused, not chosen between.
        let value = signed
            .split("<ds:SignatureValue>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let twice = signed.replace(
            "</ds:SignatureValue>",
            &format!("</ds:SignatureValue><ds:SignatureValue>{value}</ds:SignatureValue>"),
        );
        assert!(failed(check(&twice)).0.text.contains("two SignatureValues"));
        // A certificate over 64 KiB is not parsed.
        let huge = "A".repeat(90 * 1024);
        let token = signed.split("ValueType=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3\" wsu:Id=\"SenderCertificate\">").nth(1).unwrap().split('<').next().unwrap();
        let big = signed.replace(token, &huge);
        assert!(failed(check(&big)).0.text.contains("over 64 KiB"));
    }

    /// A PrefixList on the SignedInfo's CanonicalizationMethod (WSS4J and
    /// CryptoPro JCP write one) is honoured.
    #[test]
    fn the_signed_infos_prefix_list_is_honoured() {
        let key = rsa();
        let (signer, _) = signer(&key, now() - 60, now() + 86_400);
        let signed = signer.sign(ENVELOPE, ACTOR_SMEV).unwrap();
        let with_list = signed.replace(
            &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"/>"),
            &format!("<ds:CanonicalizationMethod Algorithm=\"{EXC_C14N}\"><ec:InclusiveNamespaces xmlns:ec=\"{EXC_C14N}\" PrefixList=\"soapenv\"/></ds:CanonicalizationMethod>"),
        );
        let at = with_list.find("<ds:SignedInfo>").unwrap();
        let mut canonical = Vec::new();
        c14n::exclusive(&with_list, Apex::At(at), &["soapenv"], &mut canonical).unwrap();
        assert!(String::from_utf8_lossy(&canonical).contains("xmlns:soapenv"));
        let value = base64::engine::general_purpose::STANDARD
            .encode(RSA_SHA256.sign(&key, &canonical).unwrap());
        let old = with_list
            .split("<ds:SignatureValue>")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string();
        verified(check(&with_list.replace(&old, &value)));
    }

    #[test]
    fn a_body_prefixed_otherwise_than_the_envelope_is_signed_in_place() {
        let (signer, _) = signer(&rsa(), now() - 60, now() + 86_400);
        let xml = format!("<e:Envelope xmlns:e=\"{SOAP_NS}\"><e:Header/><s:Body xmlns:s=\"{SOAP_NS}\"><b:Op xmlns:b=\"urn:b\">тест</b:Op></s:Body></e:Envelope>");
        let signed = signer.sign(&xml, ACTOR_RECIPIENT).unwrap();
        assert!(
            signed.contains(&format!("<s:Body xmlns:s=\"{SOAP_NS}\" xmlns:wsu"))
                || signed.contains("<s:Body xmlns:wsu"),
            "{signed}"
        );
        verified(check_as(&signed, ACTOR_RECIPIENT));
    }

    #[test]
    fn the_gateways_key_is_both_files_or_none() {
        let mut gw = settings::GatewaySettings::default();
        assert!(Signer::from_settings(&gw).unwrap().is_none());
        gw.signing_key_file = Some("/nonexistent/key.pem".into());
        let err = Signer::from_settings(&gw).unwrap_err();
        assert!(err.contains("set both or neither"), "{err}");
        gw.signing_cert_file = Some("/nonexistent/cert.pem".into());
        let err = Signer::from_settings(&gw).unwrap_err();
        assert!(err.contains("/nonexistent/key.pem"), "{err}");
    }

    #[test]
    fn a_signer_refuses_a_certificate_not_its_keys() {
        let cert = self_signed(&rsa(), "X", now(), now() + 60).unwrap();
        let err = Signer::from_pem(
            &rsa().private_key_to_pem_pkcs8().unwrap(),
            &cert.to_pem().unwrap(),
        )
        .unwrap_err();
        assert!(err.contains("not the signing key's"), "{err}");
    }
}
