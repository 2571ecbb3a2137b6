//! Tables for people who open them in a spreadsheet: CSV (UTF-8 with BOM, `;`)
//! and XLSX, with money as numbers in XLSX and as "1250.50" in CSV.

use primitives::Money;

/// One cell of an exported table.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    Money(Money),
    Int(i64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Money(m) => m.to_string(),
            Cell::Int(n) => n.to_string(),
        }
    }
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([';', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub fn csv(headings: &[&str], rows: &[Vec<Cell>]) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(
        &headings
            .iter()
            .map(|h| csv_field(h))
            .collect::<Vec<_>>()
            .join(";"),
    );
    out.push('\n');
    for row in rows {
        out.push_str(
            &row.iter()
                .map(|c| csv_field(&c.text()))
                .collect::<Vec<_>>()
                .join(";"),
        );
        out.push('\n');
    }
    out
}

pub fn xlsx(
    sheet: &str,
    headings: &[&str],
    rows: &[Vec<Cell>],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    xlsx_titled(sheet, &[], headings, rows, &[])
}

/// A printable sheet: title lines above the table, footer lines (totals,
/// signatures) below it.
pub fn xlsx_titled(
    sheet: &str,
    title: &[String],
    headings: &[&str],
    rows: &[Vec<Cell>],
    footer: &[String],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("# ##0.00");
    let ws = book.add_worksheet();
    ws.set_name(sheet)?;
    let top = u32::try_from(title.len() + usize::from(!title.is_empty())).unwrap_or(0);
    for (r, line) in title.iter().enumerate() {
        let r = u32::try_from(r).unwrap_or(u32::MAX);
        ws.write_string_with_format(r, 0, line, &bold)?;
    }
    for (col, h) in headings.iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        ws.write_string_with_format(top, col, *h, &bold)?;
        ws.set_column_width(col, 22)?;
    }
    let end = top + 1 + u32::try_from(rows.len()).unwrap_or(u32::MAX - top - 3);
    for (r, line) in footer.iter().enumerate() {
        let r = end + 1 + u32::try_from(r).unwrap_or(0);
        ws.write_string(r, 0, line)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = top + u32::try_from(r + 1).unwrap_or(u32::MAX - top);
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            match cell {
                Cell::Text(t) => ws.write_string(r, c, t)?,
                Cell::Money(m) => ws.write_with_format(r, c, m.as_decimal(), &money)?,
                Cell::Int(n) => ws.write(r, c, *n)?,
            };
        }
    }
    book.save_to_buffer()
}

pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A file the browser saves under `file_name`.
pub fn download(content_type: &str, file_name: &str, body: Vec<u8>) -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{file_name}\""),
        ))
        .body(body)
}

/// A table as a download: XLSX when `format` is `xlsx`, else CSV.
pub fn file_response(
    format: &str,
    name: &str,
    headings: &[&str],
    rows: &[Vec<Cell>],
) -> Result<actix_web::HttpResponse, crate::Problem> {
    if format == "xlsx" {
        let bytes = xlsx("Отчёт", headings, rows).map_err(crate::Problem::internal)?;
        return Ok(download(XLSX, &format!("{name}.xlsx"), bytes));
    }
    Ok(download(
        "text/csv; charset=utf-8",
        &format!("{name}.csv"),
        csv(headings, rows).into_bytes(),
    ))
}
