//! Workbooks as grids of cells, cell references and number reading.

use std::path::Path;

/// One cell's content.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Empty,
    Number(f64),
    Text(String),
}

/// A sheet: rows of cells, addressed from A1 (row 0, column 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub name: String,
    pub rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Workbook {
    pub sheets: Vec<Sheet>,
}

pub use crate::model::cell::Reference;

fn column_name(col: usize) -> String {
    let mut n = col + 1;
    let mut s = String::new();
    while n > 0 {
        let r = (n - 1) % 26;
        s.insert(0, (b'A' + r as u8) as char);
        n = (n - 1) / 26;
    }
    s
}

impl Workbook {
    /// One sheet named `name` from CSV bytes (rows may be ragged).
    pub fn from_csv(name: &str, bytes: impl std::io::Read) -> Result<Workbook, String> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record
                .map_err(|e| format!("not a readable CSV (is it still being written?): {e}"))?;
            rows.push(
                record
                    .iter()
                    .map(|v| {
                        if v.trim().is_empty() {
                            Cell::Empty
                        } else {
                            Cell::Text(v.to_string())
                        }
                    })
                    .collect(),
            );
        }
        Ok(Workbook {
            sheets: vec![Sheet {
                name: name.to_string(),
                rows,
            }],
        })
    }

    /// Reads a `.csv` (one sheet, named after the file), `.xlsx`, `.xlsm`, `.xls` or `.ods`.
    pub fn open(path: &Path) -> Result<Workbook, String> {
        let shown = path.display();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !path.exists() {
            return Err(format!("the file {shown} does not exist"));
        }
        match ext.as_str() {
            "csv" => {
                let file = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
                let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("Sheet1");
                Workbook::from_csv(name, file).map_err(|e| format!("{shown}: {e}"))
            }
            "xlsx" | "xlsm" | "xls" | "ods" => {
                let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
                Workbook::from_spreadsheet(&shown.to_string(), bytes)
            }
            other => Err(format!("{shown}: \".{other}\" files are not spreadsheets okrsync reads (csv, xlsx, xls, ods)")),
        }
    }

    /// Every sheet of an `.xlsx`, `.xlsm`, `.xls` or `.ods` file's bytes (the format is
    /// told from the bytes); `shown` names the file in messages.
    ///
    /// The spreadsheet reader (calamine) panics on some malformed files — an overflow
    /// reading a cell reference with too many column letters, found by the fuzzer: such a
    /// file is unreadable, so the panic becomes that error instead of ending the step.
    pub fn from_spreadsheet(shown: &str, bytes: Vec<u8>) -> Result<Workbook, String> {
        let read = std::panic::AssertUnwindSafe(|| Workbook::read_spreadsheet(shown, bytes));
        std::panic::catch_unwind(read).unwrap_or_else(|_| {
            Err(format!(
                "cannot read {shown}: the file is malformed (the spreadsheet reader gave up on it)"
            ))
        })
    }

    fn read_spreadsheet(shown: &str, bytes: Vec<u8>) -> Result<Workbook, String> {
        use calamine::{open_workbook_auto_from_rs, Data, Reader};
        let mut book = open_workbook_auto_from_rs(std::io::Cursor::new(bytes))
            .map_err(|e| format!("cannot open {shown} (is it locked or half-written?): {e}"))?;
        let mut sheets = Vec::new();
        for name in book.sheet_names() {
            let range = book
                .worksheet_range(&name)
                .map_err(|e| format!("cannot read sheet \"{name}\" of {shown}: {e}"))?;
            let (r0, c0) = range.start().unwrap_or((0, 0));
            let mut rows: Vec<Vec<Cell>> = vec![Vec::new(); r0 as usize];
            for row in range.rows() {
                let mut cells = vec![Cell::Empty; c0 as usize];
                cells.extend(row.iter().map(|d| match d {
                    Data::Empty => Cell::Empty,
                    Data::Float(f) => Cell::Number(*f),
                    Data::Int(i) => Cell::Number(*i as f64),
                    Data::Bool(b) => Cell::Text(b.to_string()),
                    Data::String(s) if s.trim().is_empty() => Cell::Empty,
                    Data::String(s) => Cell::Text(s.clone()),
                    Data::DateTime(d) => Cell::Number(d.as_f64()),
                    Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
                    Data::Error(e) => Cell::Text(format!("#{e:?}")),
                }));
                rows.push(cells);
            }
            sheets.push(Sheet { name, rows });
        }
        Ok(Workbook { sheets })
    }

    fn sheet(&self, name: Option<&str>) -> Result<&Sheet, String> {
        match name {
            None => self
                .sheets
                .first()
                .ok_or_else(|| "the workbook has no sheet".to_string()),
            Some(n) => self
                .sheets
                .iter()
                .find(|s| s.name == n)
                .or_else(|| self.sheets.iter().find(|s| s.name.eq_ignore_ascii_case(n)))
                .ok_or_else(|| {
                    let names: Vec<&str> = self.sheets.iter().map(|s| s.name.as_str()).collect();
                    format!("sheet \"{n}\" not found; sheets: {}", names.join(", "))
                }),
        }
    }

    /// The number a reference points at; the error says what is wrong in words.
    pub fn number(&self, r: &Reference) -> Result<f64, String> {
        match r {
            Reference::Cell {
                sheet,
                row,
                col,
                text,
            } => {
                let s = self.sheet(sheet.as_deref())?;
                let width = s.rows.iter().map(Vec::len).max().unwrap_or(0);
                if *row >= s.rows.len() || *col >= width {
                    return Err(format!(
                        "{text} is outside sheet \"{}\" (it spans A1:{}{})",
                        s.name,
                        column_name(width.saturating_sub(1)),
                        s.rows.len().max(1)
                    ));
                }
                cell_number(s.rows[*row].get(*col).unwrap_or(&Cell::Empty), text)
            }
            Reference::Labels { sheet, row, column } => {
                let s = self.sheet(sheet.as_deref())?;
                let norm = |c: &Cell| match c {
                    Cell::Text(t) => t.trim().to_lowercase(),
                    Cell::Number(n) => n.to_string(),
                    Cell::Empty => String::new(),
                };
                let header_at = s
                    .rows
                    .iter()
                    .position(|r| r.iter().any(|c| *c != Cell::Empty))
                    .ok_or_else(|| format!("sheet \"{}\" is empty", s.name))?;
                let header = &s.rows[header_at];
                let col = header
                    .iter()
                    .position(|c| norm(c) == column.trim().to_lowercase())
                    .ok_or_else(|| {
                        let names: Vec<String> = header
                            .iter()
                            .filter(|c| **c != Cell::Empty)
                            .map(|c| match c {
                                Cell::Text(t) => t.trim().to_string(),
                                Cell::Number(n) => n.to_string(),
                                Cell::Empty => String::new(),
                            })
                            .collect();
                        format!(
                            "header \"{column}\" not found in sheet \"{}\"; headers: {}",
                            s.name,
                            names.join(", ")
                        )
                    })?;
                let at = s.rows[header_at + 1..]
                    .iter()
                    .position(|r| {
                        r.first()
                            .is_some_and(|c| norm(c) == row.trim().to_lowercase())
                    })
                    .map(|p| p + header_at + 1)
                    .ok_or_else(|| {
                        format!(
                            "no row labelled \"{row}\" in the first column of sheet \"{}\"",
                            s.name
                        )
                    })?;
                let text = format!("{}{} ({row} / {column})", column_name(col), at + 1);
                cell_number(s.rows[at].get(col).unwrap_or(&Cell::Empty), &text)
            }
        }
    }
}

fn cell_number(cell: &Cell, text: &str) -> Result<f64, String> {
    match cell {
        Cell::Number(n) if n.is_finite() => Ok(*n),
        Cell::Number(_) => Err(format!("{text} is not a finite number")),
        Cell::Empty => Err(format!("{text} is empty")),
        Cell::Text(t) => {
            parse_number(t).ok_or_else(|| format!("{text} holds \"{t}\", which is not a number"))
        }
    }
}

/// Reads a number written as text: `1,234.5`, `1.234,5`, `1 234`, `12%` (→ 12), `$1,200`,
/// `€ 3.5`, `(42)` (→ −42), `-7`. `None` for anything else.
pub fn parse_number(text: &str) -> Option<f64> {
    let mut t: String = text
        .trim()
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '\u{a0}' | '\u{202f}' | '\''))
        .collect();
    let mut negative = false;
    if t.starts_with('(') && t.ends_with(')') {
        negative = true;
        t = t[1..t.len() - 1].to_string();
    }
    let t = t.trim_end_matches('%');
    let t: String = t
        .chars()
        .filter(|c| !matches!(c, '$' | '€' | '£' | '¥' | '₹' | '₩' | '₽' | '¢'))
        .collect();
    let t = t
        .trim_start_matches(|c: char| c.is_ascii_alphabetic())
        .trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if t.is_empty()
        || !t
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, ',' | '.' | '-' | '+'))
    {
        return None;
    }
    let (commas, dots) = (t.matches(',').count(), t.matches('.').count());
    let normalised = match (commas, dots) {
        (0, _) if dots <= 1 => t.to_string(),
        (0, _) => t.replace('.', ""), // 1.234.567
        (_, 0) if commas == 1 => {
            // 1,234 (thousands) or 3,5 (decimal comma)
            let after = t.rsplit(',').next().unwrap_or("");
            if after.len() == 3 && !t.starts_with("0,") {
                t.replace(',', "")
            } else {
                t.replace(',', ".")
            }
        }
        (_, 0) => t.replace(',', ""), // 1,234,567
        _ => {
            // Both: the last one is the decimal separator.
            if t.rfind(',') > t.rfind('.') {
                t.replace('.', "").replace(',', ".")
            } else {
                t.replace(',', "")
            }
        }
    };
    let v: f64 = normalised.parse().ok()?;
    v.is_finite().then_some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_people_write_them() {
        for (text, expected) in [
            ("1,234.5", 1234.5),
            ("1.234,5", 1234.5),
            ("1 234", 1234.0),
            ("1,200,000", 1_200_000.0),
            ("3,5", 3.5),
            ("12%", 12.0),
            ("4.2 %", 4.2),
            ("$1,200", 1200.0),
            ("€ 3.50", 3.5),
            ("(42)", -42.0),
            ("-7", -7.0),
            ("2000000", 2_000_000.0),
            ("0,25", 0.25),
        ] {
            assert_eq!(parse_number(text), Some(expected), "{text}");
        }
        for text in ["", "n/a", "TBD", "1-2-3x", "—"] {
            assert_eq!(parse_number(text), None, "{text}");
        }
    }

    #[test]
    fn references() {
        assert_eq!(
            Reference::parse("Metrics!B7"),
            Ok(Reference::Cell {
                sheet: Some("Metrics".into()),
                row: 6,
                col: 1,
                text: "B7".into()
            })
        );
        assert_eq!(
            Reference::parse("'My sheet'!$AA$10"),
            Ok(Reference::Cell {
                sheet: Some("My sheet".into()),
                row: 9,
                col: 26,
                text: "AA10".into()
            })
        );
        assert!(matches!(
            Reference::parse("C3"),
            Ok(Reference::Cell {
                sheet: None,
                row: 2,
                col: 2,
                ..
            })
        ));
        assert_eq!(
            Reference::parse("Metrics[row=MRR EMEA][column=Value]"),
            Ok(Reference::Labels {
                sheet: Some("Metrics".into()),
                row: "MRR EMEA".into(),
                column: "Value".into()
            })
        );
        assert!(Reference::parse("B0").is_err());
        assert!(Reference::parse("7B").is_err());
        assert_eq!(column_name(0), "A");
        assert_eq!(column_name(27), "AB");
    }

    fn book() -> Workbook {
        let t = |s: &str| Cell::Text(s.into());
        Workbook {
            sheets: vec![Sheet {
                name: "Metrics".into(),
                rows: vec![
                    vec![t("Metric"), t("Value"), t("Note")],
                    vec![t("MRR EMEA"), t("1,450,000"), Cell::Empty],
                    vec![t("Churn"), Cell::Number(4.2), t("monthly")],
                    vec![t("NPS"), Cell::Empty],
                    vec![t("Pipeline"), t("n/a")],
                ],
            }],
        }
    }

    #[test]
    fn cells_and_labels_with_errors_in_words() {
        let b = book();
        let n = |r: &str| b.number(&Reference::parse(r).expect("reference"));
        assert_eq!(n("Metrics!B2"), Ok(1_450_000.0));
        assert_eq!(n("B3"), Ok(4.2));
        assert_eq!(n("Metrics[row=churn][column=value]"), Ok(4.2));
        assert_eq!(n("B4"), Err("B4 is empty".into()));
        assert!(n("B5")
            .expect_err("an error")
            .contains("\"n/a\", which is not a number"));
        assert!(n("Metrcs!B2")
            .expect_err("an error")
            .contains("sheet \"Metrcs\" not found; sheets: Metrics"));
        assert!(n("Metrics!B70")
            .expect_err("an error")
            .contains("outside sheet \"Metrics\" (it spans A1:C5)"));
        assert!(n("Metrics[row=MRR EMEA][column=Amount]")
            .expect_err("an error")
            .contains("headers: Metric, Value, Note"));
        assert!(n("Metrics[row=ARR][column=Value]")
            .expect_err("an error")
            .contains("no row labelled \"ARR\""));
    }
}
