//! [`CsvRows`]: import rows from a CSV file (feature `csv`).

use std::io;

use csv::{ReaderBuilder, StringRecord, Trim};

use crate::{ImportRow, PhoneNumbersInput};

/// The header of the client id column.
pub const CSV_CLIENT_HEADER: &str = "userId";
/// The header of the numbers column.
pub const CSV_NUMBERS_HEADER: &str = "phoneNumbers";

/// Reads import rows from CSV: a header row naming `userId` and
/// `phoneNumbers` (other columns are ignored), then one row per client, the
/// numbers one number or a comma-separated list in quotes.
///
/// When `phoneNumbers` is the last column, an unquoted list
/// (`42,+1 415 555 0100,+1 415 555 0101`) is read whole: the fields past it
/// are more entries, never dropped. A row shorter than the header has no
/// numbers. Fields are trimmed; a UTF-8 byte order mark is skipped.
///
/// ```
/// use ibiki_core::{CsvRows, ImportRow};
///
/// let csv = "userId,phoneNumbers\n42,\"+1 415 555 0100, (415) 555-0101\"\n43,14155550102\n";
/// let rows: Vec<ImportRow> = CsvRows::new(csv.as_bytes())?.collect::<Result<_, _>>()?;
/// assert_eq!(rows[0], ImportRow::new("42", "+1 415 555 0100, (415) 555-0101"));
/// assert_eq!(rows[1], ImportRow::new("43", "14155550102"));
/// # Ok::<(), ibiki_core::CsvError>(())
/// ```
#[derive(Debug)]
pub struct CsvRows<R> {
    reader: csv::Reader<R>,
    record: StringRecord,
    client: usize,
    numbers: usize,
    numbers_last: bool,
    header: usize,
}

/// Why a CSV file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvError {
    /// The header row lacks a column; the columns it has are listed.
    #[error("the CSV header has no {column:?} column (it has: {})", found.join(", "))]
    MissingColumn {
        /// The column looked for.
        column: &'static str,
        /// The header's columns.
        found: Vec<String>,
    },
    /// A row has more fields than the header, and `phoneNumbers` is not the
    /// last column: which field holds what is unclear.
    #[error("CSV line {line}: {fields} fields, the header has {header}")]
    FieldCount {
        /// 1-based line number.
        line: u64,
        /// The row's fields.
        fields: usize,
        /// The header's fields.
        header: usize,
    },
    /// The file is not readable CSV (I/O, invalid UTF-8, ...).
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
}

impl<R: io::Read> CsvRows<R> {
    /// Reads the header from `reader`.
    pub fn new(reader: R) -> Result<Self, CsvError> {
        let mut reader = ReaderBuilder::new()
            .flexible(true)
            .trim(Trim::All)
            .from_reader(reader);
        let headers: Vec<String> = reader
            .headers()?
            .iter()
            .map(|h| h.trim_start_matches('\u{feff}').to_owned())
            .collect();
        let find = |column: &'static str| {
            headers
                .iter()
                .position(|h| h == column)
                .ok_or_else(|| CsvError::MissingColumn {
                    column,
                    found: headers.clone(),
                })
        };
        let client = find(CSV_CLIENT_HEADER)?;
        let numbers = find(CSV_NUMBERS_HEADER)?;
        Ok(Self {
            reader,
            record: StringRecord::new(),
            client,
            numbers,
            numbers_last: numbers + 1 == headers.len(),
            header: headers.len(),
        })
    }

    fn row(&self) -> Result<ImportRow, CsvError> {
        let fields = self.record.len();
        if fields > self.header && !self.numbers_last {
            return Err(CsvError::FieldCount {
                line: self.record.position().map_or(0, csv::Position::line),
                fields,
                header: self.header,
            });
        }
        let numbers = if self.numbers_last {
            let rest: Vec<&str> = self.record.iter().skip(self.numbers).collect();
            rest.join(",")
        } else {
            self.record.get(self.numbers).unwrap_or_default().to_owned()
        };
        let client = self.record.get(self.client).unwrap_or_default();
        Ok(ImportRow::new(client, PhoneNumbersInput::Text(numbers)))
    }
}

impl<R: io::Read> Iterator for CsvRows<R> {
    type Item = Result<ImportRow, CsvError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.reader.read_record(&mut self.record) {
            Ok(true) => Some(self.row()),
            Ok(false) => None,
            Err(e) => Some(Err(e.into())),
        }
    }
}
