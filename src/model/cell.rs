//! Where a metric key result reads its value: a cell reference (`Metrics!B7`) or a row and
//! column label lookup, parsed once when the OKR files are read (a malformed reference is a
//! `check` error there) and carried typed from then on.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a metric's value is in a workbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// `Sheet!B7` (`sheet` None: the first sheet, as in a CSV file).
    Cell {
        sheet: Option<String>,
        row: usize,
        col: usize,
        text: String,
    },
    /// The cell in the row whose first column says `row` and the column whose header says `column`.
    Labels {
        sheet: Option<String>,
        row: String,
        column: String,
    },
}

impl Reference {
    /// `B7`, `Metrics!B7`, `'My sheet'!B7`, or the label form [`CellRef::labels`] writes:
    /// `Metrics[row=MRR EMEA][column=Value]`.
    pub fn parse(s: &str) -> Result<Reference, String> {
        if let Some(open) = s.find("[row=") {
            let sheet = (open > 0).then(|| s[..open].to_string());
            let rest = &s[open + 5..];
            let (row, rest) = rest
                .split_once("][column=")
                .ok_or_else(|| format!("\"{s}\" is not a label reference"))?;
            let column = rest
                .strip_suffix(']')
                .ok_or_else(|| format!("\"{s}\" is not a label reference"))?;
            return Ok(Reference::Labels {
                sheet,
                row: row.to_string(),
                column: column.to_string(),
            });
        }
        let (sheet, cell) = match s.rsplit_once('!') {
            Some((sh, c)) => (Some(sh.trim_matches('\'').to_string()), c),
            None => (None, s),
        };
        let cell = cell.trim().replace('$', "");
        let letters: String = cell
            .chars()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect();
        let digits = &cell[letters.len()..];
        let bad = || format!("\"{s}\" is not a cell like B7 or Metrics!B7");
        if letters.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // No spreadsheet has more than three letters of columns (XFD in Excel, ZZZ in
        // Google Sheets); more would overflow the column number.
        if letters.len() > 3 {
            return Err(format!("\"{s}\" names a column beyond ZZZ"));
        }
        let col = letters
            .to_ascii_uppercase()
            .bytes()
            .fold(0usize, |acc, b| acc * 26 + (b - b'A' + 1) as usize)
            - 1;
        let row: usize = digits.parse().map_err(|_| bad())?;
        if row == 0 {
            return Err(bad());
        }
        Ok(Reference::Cell {
            sheet,
            row: row - 1,
            col,
            text: format!("{letters}{digits}").to_ascii_uppercase(),
        })
    }
}

/// A metric key result's reference as written (the text observations are stored under)
/// together with its parsed [`Reference`]. Serialised as the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellRef {
    text: String,
    at: Reference,
}

impl CellRef {
    /// `cell = "Metrics!B7"`: an error in words when it is not a reference.
    pub fn parse(text: &str) -> Result<CellRef, String> {
        Ok(CellRef {
            at: Reference::parse(text)?,
            text: text.to_string(),
        })
    }

    /// `{ sheet, row, column }`: the cell at the row and column labels, written
    /// `Sheet[row=…][column=…]`.
    pub fn labels(sheet: Option<String>, row: String, column: String) -> CellRef {
        let text = match &sheet {
            Some(sh) => format!("{sh}[row={row}][column={column}]"),
            None => format!("[row={row}][column={column}]"),
        };
        CellRef {
            text,
            at: Reference::Labels { sheet, row, column },
        }
    }

    /// The reference as written (`Metrics!B7`, `Metrics[row=MRR][column=Value]`).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Where the value is.
    pub fn at(&self) -> &Reference {
        &self.at
    }
}

impl fmt::Display for CellRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for CellRef {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for CellRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CellRef::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_references_are_refused_when_read() {
        for bad in ["Metrics!!B", "B0", "7B", "Metrics!", "ABCD1", ""] {
            assert!(CellRef::parse(bad).is_err(), "{bad}");
        }
        let c = CellRef::parse("'My sheet'!$AA$10").expect("valid");
        assert_eq!(c.as_str(), "'My sheet'!$AA$10");
        assert_eq!(
            c.at(),
            &Reference::Cell {
                sheet: Some("My sheet".into()),
                row: 9,
                col: 26,
                text: "AA10".into()
            }
        );
        let l = CellRef::labels(Some("Metrics".into()), "MRR".into(), "Value".into());
        assert_eq!(l.as_str(), "Metrics[row=MRR][column=Value]");
        assert_eq!(Reference::parse(l.as_str()).as_ref(), Ok(l.at()));
        assert_eq!(
            serde_json::to_string(&l).expect("json"),
            "\"Metrics[row=MRR][column=Value]\""
        );
    }
}
