//! Streaming readers of the two registry forms.

use std::io::Read;

use crate::domain::registry::{self, FormatError, Line, Totals};
use primitives::Money;

use super::{Format, ImportError};

/// What the file says about itself.
#[derive(Debug, Clone, Default)]
pub struct Header {
    pub bank: Option<String>,
    pub date: Option<chrono::NaiveDate>,
    pub totals: Option<Totals>,
}

/// Calls `on_line` for every payment line, in order; returns the header and totals.
pub fn read(
    input: impl Read,
    format: Format,
    on_line: &mut dyn FnMut(Line) -> Result<(), FormatError>,
) -> Result<Header, ImportError> {
    match format {
        Format::Csv => read_csv(input, on_line),
        Format::Xml => read_xml(input, on_line),
    }
}

/// What the file says about itself before its first line: the XML root's bank
/// and date (a CSV says nothing before its totals line).
pub fn peek(input: impl Read, format: Format) -> Result<Header, ImportError> {
    use quick_xml::events::Event;
    let mut header = Header::default();
    if format == Format::Csv {
        return Ok(header);
    }
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(input));
    let mut buf = Vec::new();
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|e| FormatError::Line {
                line: 0,
                reason: format!("XML: {e}"),
            })? {
            Event::Eof => return Ok(header),
            Event::Start(e) | Event::Empty(e) => {
                if e.local_name().as_ref() == "PaymentRegistry" {
                    root(&e, &mut header)?;
                }
                return Ok(header);
            }
            _ => {}
        }
        buf.clear();
    }
}

/// The bank and date of the `<PaymentRegistry>` element.
fn root(e: &quick_xml::events::BytesStart<'_>, header: &mut Header) -> Result<(), FormatError> {
    header.bank = attr(e, "bank", 0)?;
    header.date = attr(e, "date", 0)?
        .map(|d| {
            chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").map_err(|_| FormatError::Line {
                line: 0,
                reason: format!("date `{d}` is not YYYY-MM-DD"),
            })
        })
        .transpose()?;
    Ok(())
}

fn read_csv(
    input: impl Read,
    on_line: &mut dyn FnMut(Line) -> Result<(), FormatError>,
) -> Result<Header, ImportError> {
    let decoded = encoding_rs_io::DecodeReaderBytesBuilder::new()
        .encoding(Some(encoding_rs::WINDOWS_1251))
        .build(input);
    let mut csv = csv::ReaderBuilder::new()
        .delimiter(b';')
        .has_headers(false)
        .flexible(true)
        .quoting(true)
        .from_reader(decoded);
    let mut header = Header::default();
    let mut record = csv::StringRecord::new();
    let mut number = 0_u64;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(FormatError::Line {
                    line: number + 1,
                    reason: e.to_string(),
                }
                .into())
            }
        }
        number += 1;
        let fields: Vec<&str> = record.iter().collect();
        if fields.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if header.totals.is_some() {
            return Err(FormatError::AfterTotals { line: number }.into());
        }
        if registry::is_totals(&fields) {
            header.totals = Some(registry::csv_totals(number, &fields)?);
            continue;
        }
        on_line(registry::csv_line(number, &fields)?)?;
    }
    Ok(header)
}

fn attr(
    e: &quick_xml::events::BytesStart<'_>,
    name: &str,
    element: u64,
) -> Result<Option<String>, FormatError> {
    for a in e.attributes() {
        let a = a.map_err(|err| FormatError::Line {
            line: element,
            reason: err.to_string(),
        })?;
        if a.key.as_ref() == name {
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| FormatError::Line {
                    line: element,
                    reason: err.to_string(),
                })?;
            return Ok(Some(v.into_owned()));
        }
    }
    Ok(None)
}

fn required(
    e: &quick_xml::events::BytesStart<'_>,
    name: &str,
    element: u64,
) -> Result<String, FormatError> {
    attr(e, name, element)?.ok_or_else(|| FormatError::Line {
        line: element,
        reason: format!("attribute `{name}` is missing"),
    })
}

fn read_xml(
    input: impl Read,
    on_line: &mut dyn FnMut(Line) -> Result<(), FormatError>,
) -> Result<Header, ImportError> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(input));
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut header = Header::default();
    let mut number = 0_u64;
    let mut seen_root = false;
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| FormatError::Line {
                line: number + 1,
                reason: format!("XML: {e}"),
            })?;
        match event {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.local_name().as_ref() {
                "PaymentRegistry" => {
                    seen_root = true;
                    root(&e, &mut header)?;
                }
                "Payment" => {
                    number += 1;
                    if header.totals.is_some() {
                        return Err(FormatError::AfterTotals { line: number }.into());
                    }
                    let paid_at = required(&e, "paidAt", number)?;
                    let paid_at = chrono::DateTime::parse_from_rfc3339(&paid_at)
                        .map_err(|_| FormatError::Line {
                            line: number,
                            reason: format!(
                                "paidAt `{paid_at}` is not an ISO 8601 time with offset"
                            ),
                        })?
                        .naive_utc();
                    let amount_text = required(&e, "amount", number)?;
                    let amount = Money::parse(&amount_text).map_err(|err| FormatError::Line {
                        line: number,
                        reason: format!("amount `{amount_text}`: {err}"),
                    })?;
                    if !amount.is_positive() {
                        return Err(FormatError::Line {
                            line: number,
                            reason: format!("amount `{amount_text}` must be positive"),
                        }
                        .into());
                    }
                    on_line(Line {
                        number,
                        txn_id: required(&e, "txnId", number)?,
                        account: required(&e, "account", number)?,
                        amount,
                        paid_at,
                        payer: attr(&e, "payer", number)?.unwrap_or_default(),
                    })?;
                }
                "Totals" => {
                    let count = required(&e, "count", number)?;
                    let amount = required(&e, "amount", number)?;
                    header.totals = Some(Totals {
                        count: count.parse().map_err(|_| FormatError::Line {
                            line: number,
                            reason: format!("Totals count `{count}` is not a number"),
                        })?,
                        amount: Money::parse(&amount).map_err(|err| FormatError::Line {
                            line: number,
                            reason: format!("Totals amount: {err}"),
                        })?,
                    });
                }
                other => {
                    return Err(FormatError::Line {
                        line: number,
                        reason: format!("unexpected element <{other}>"),
                    }
                    .into())
                }
            },
            _ => {}
        }
        buf.clear();
    }
    if !seen_root {
        return Err(FormatError::Unreadable("no <PaymentRegistry> element".into()).into());
    }
    Ok(header)
}
