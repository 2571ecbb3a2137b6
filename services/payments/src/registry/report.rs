//! The reconciliation report of a registry, for the organizer's accountant and
//! the operator: a summary, then every line that did not simply match and every
//! online payment the registry left out. CSV (UTF-8 with BOM, `;`, so Excel opens
//! it in Russian locales) and XLSX.

use primitives::Money;

use crate::domain::registry::Outcome;
use crate::export::csv_field;
use crate::store::registry::{ItemRow, RegistryRow};

const HEADINGS: [&str; 8] = [
    "Строка / Line",
    "Транзакция / Transaction",
    "Лицевой счёт / Account",
    "Итог сверки / Outcome",
    "Сумма в реестре / Registry amount",
    "Проведено онлайн / Posted online",
    "Время платежа (Тюмень) / Paid at (Tyumen)",
    "Примечание / Note",
];

fn outcome_label(outcome: &str) -> &'static str {
    match Outcome::parse(outcome) {
        Some(Outcome::Matched) => "сверено / matched",
        Some(Outcome::Credited) => "зачислено по реестру / credited from the registry",
        Some(Outcome::AmountDiffers) => "сумма расходится / amount differs",
        Some(Outcome::UnknownAccount) => "неизвестный счёт / unknown account",
        Some(Outcome::DuplicateLine) => "повтор строки / duplicate line",
        Some(Outcome::MissingFromRegistry) => "нет в реестре / missing from the registry",
        None => "?",
    }
}

fn tyumen(ts: Option<chrono::NaiveDateTime>) -> String {
    ts.map(|t| {
        calendar::in_tyumen(t)
            .format("%d.%m.%Y %H:%M:%S")
            .to_string()
    })
    .unwrap_or_default()
}

fn summary_lines(registry: &RegistryRow) -> Vec<(String, String)> {
    let counts = registry.outcome_counts();
    let mut lines = vec![
        ("Банк / Bank".to_string(), registry.bank.clone()),
        (
            "Дата реестра / Registry date".to_string(),
            registry.registry_date.format("%d.%m.%Y").to_string(),
        ),
        ("Файл / File".to_string(), registry.file_name.clone()),
        (
            "Строк / Lines".to_string(),
            registry.lines_total.to_string(),
        ),
        (
            "Сумма / Total".to_string(),
            Money::from_kopecks(registry.amount_total_kopecks).to_string(),
        ),
    ];
    for outcome in Outcome::ALL {
        lines.push((
            outcome_label(outcome.as_str()).to_string(),
            counts
                .get(outcome.as_str())
                .copied()
                .unwrap_or(0)
                .to_string(),
        ));
    }
    lines
}

/// The registry as one organizer sees it: its figures counted over `items`
/// (the lines of the organizer's accounts) instead of the whole file.
pub fn restricted(registry: &RegistryRow, items: &[ItemRow]) -> RegistryRow {
    let lines: Vec<&ItemRow> = items.iter().filter(|i| i.line_no > 0).collect();
    let mut counts = std::collections::BTreeMap::<String, i64>::new();
    for item in items {
        *counts.entry(item.outcome.clone()).or_default() += 1;
    }
    RegistryRow {
        lines_total: lines.len() as i64,
        amount_total_kopecks: lines.iter().map(|i| i.amount_kopecks).sum(),
        counts: serde_json::to_string(&counts).unwrap_or_default(),
        ..registry.clone()
    }
}

pub fn csv(registry: &RegistryRow, items: &[ItemRow]) -> String {
    let mut out = csv_head(registry);
    out.push_str(&csv_rows(items));
    out
}

/// The report's beginning: the byte-order mark, the summary and the headings.
pub fn csv_head(registry: &RegistryRow) -> String {
    let mut out = String::from("\u{feff}");
    for (k, v) in summary_lines(registry) {
        out.push_str(&format!("{};{}\n", csv_field(&k), csv_field(&v)));
    }
    out.push('\n');
    out.push_str(&HEADINGS.join(";"));
    out.push('\n');
    out
}

/// The report's rows for `items`, one line each.
pub fn csv_rows(items: &[ItemRow]) -> String {
    let mut out = String::new();
    for item in items {
        let row = [
            if item.line_no > 0 {
                item.line_no.to_string()
            } else {
                String::new()
            },
            item.txn_id.clone(),
            item.account.clone(),
            outcome_label(&item.outcome).to_string(),
            if item.line_no > 0 {
                Money::from_kopecks(item.amount_kopecks).to_string()
            } else {
                String::new()
            },
            item.posted_kopecks
                .map(|k| Money::from_kopecks(k).to_string())
                .unwrap_or_default(),
            tyumen(item.paid_at),
            item.note.clone(),
        ];
        let row: Vec<String> = row.iter().map(|f| csv_field(f)).collect();
        out.push_str(&row.join(";"));
        out.push('\n');
    }
    out
}

pub fn xlsx(
    registry: &RegistryRow,
    items: &[ItemRow],
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold();
    let money = Format::new().set_num_format("# ##0.00");
    {
        let sheet = book.add_worksheet();
        sheet.set_name("Сводка")?;
        sheet.set_column_width(0, 45)?;
        sheet.set_column_width(1, 30)?;
        for (row, (k, v)) in summary_lines(registry).iter().enumerate() {
            let row = u32::try_from(row).unwrap_or(u32::MAX);
            sheet.write_string_with_format(row, 0, k, &bold)?;
            sheet.write_string(row, 1, v)?;
        }
    }
    let sheet = book.add_worksheet();
    sheet.set_name("Расхождения")?;
    for (col, heading) in HEADINGS.iter().enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        sheet.write_string_with_format(0, col, *heading, &bold)?;
        sheet.set_column_width(col, if col == 7 { 60 } else { 22 })?;
    }
    for (i, item) in items.iter().enumerate() {
        let row = u32::try_from(i + 1).unwrap_or(u32::MAX);
        if item.line_no > 0 {
            sheet.write(row, 0, item.line_no)?;
            sheet.write_with_format(
                row,
                4,
                Money::from_kopecks(item.amount_kopecks).as_decimal(),
                &money,
            )?;
        }
        sheet.write_string(row, 1, &item.txn_id)?;
        sheet.write_string(row, 2, &item.account)?;
        sheet.write_string(row, 3, outcome_label(&item.outcome))?;
        if let Some(k) = item.posted_kopecks {
            sheet.write_with_format(row, 5, Money::from_kopecks(k).as_decimal(), &money)?;
        }
        sheet.write_string(row, 6, tyumen(item.paid_at))?;
        sheet.write_string(row, 7, &item.note)?;
    }
    book.save_to_buffer()
}
