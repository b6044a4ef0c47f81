//! `ibiki-server import`: brings every client's numbers over from the system
//! ibiki replaces (its PostgreSQL table, or a CSV file) into the store that
//! `--database-url` names.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use ibiki_core::Secret;
use ibiki_core::{
    CsvRows, DynReplyStore, ImportPlan, ImportPlanner, ImportReport, Normalizer, Region,
};
use ibiki_memory::MemoryStore;
use indicatif::{ProgressBar, ProgressStyle};

use crate::postgres::{Unsynced, open_read_only, open_unsynced, read_table};
use crate::server::StartError;
use crate::store::DatabaseFlags;

/// Exit status when some entries were left out (each one is listed).
pub const EXIT_LEFT_OUT: u8 = 3;

/// What the binary runs instead of the server.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Imports every client's numbers from the system ibiki replaces, from
    /// its PostgreSQL table or a CSV file, into the store --database-url
    /// names. Numbers are added, never removed; a number claimed by several
    /// clients, or owned by another client in ibiki, is left out and listed.
    /// Running it again changes nothing. Exit status: 0 when every entry was
    /// imported or already there, 3 when some were left out, 1 on an error.
    Import(ImportArgs),
    /// Deletes replies delivered to an inbox before --before, in batches,
    /// keeping each inbox's last one (its clients' cursors stay valid);
    /// held replies are never deleted. Refuses a --before within the last
    /// two days (providers retry for up to a day; a retry of a pruned reply
    /// is recorded again) unless --allow-recent.
    Prune(crate::prune::PruneArgs),
}

/// The flags of `ibiki-server import`.
#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["from_database", "from_csv"])))]
pub struct ImportArgs {
    /// PostgreSQL URL of the old system's database, to read its table.
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub from_database: Option<Secret>,

    /// The old table (`name` or `schema.name`, exact case) [default:
    /// client_profiles].
    #[arg(long, conflicts_with = "from_csv")]
    pub table: Option<String>,

    /// The old table's client id column [default: user_id].
    #[arg(long, conflicts_with = "from_csv")]
    pub client_column: Option<String>,

    /// The old table's numbers column (default: `assigned_phone_numbers`, a
    /// text[], or else `assigned_phone_number`, a text).
    #[arg(long, conflicts_with = "from_csv")]
    pub numbers_column: Option<String>,

    /// A CSV file with the header `userId,phoneNumbers`.
    #[arg(long, value_name = "FILE")]
    pub from_csv: Option<PathBuf>,

    /// PostgreSQL URL of ibiki's store, the one the server uses.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<Secret>,

    /// The schema and the deadline of every database call.
    #[command(flatten)]
    pub database: DatabaseFlags,

    /// Region for numbers written without a country code (ISO 3166 code,
    /// e.g. US), as for admin input.
    #[arg(long, env = "IBIKI_DEFAULT_REGION")]
    pub default_region: Option<Region>,

    /// Read, normalize and report what would happen; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The report on stdout: a readable summary, or one JSON document.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Clients imported at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
}

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A summary and each left-out entry.
    Text,
    /// `{"dryRun": …, "clients": …, …}`, on one line.
    Json,
}

/// Runs the import: prints the report on stdout, errors on stderr, and
/// returns the exit status.
pub async fn run_import(args: ImportArgs) -> ExitCode {
    match import(&args).await {
        Ok(report) => {
            let printed = match args.format {
                Format::Json => serde_json::to_string(&report).map_err(StartError::from),
                Format::Text => Ok(text_report(&report)),
            };
            let printed = printed.and_then(|text| {
                let mut out = std::io::stdout().lock();
                writeln!(out, "{text}")?;
                out.flush()?;
                Ok(())
            });
            match printed {
                Err(e) => {
                    eprintln!("ibiki-server import: error: {e}");
                    ExitCode::FAILURE
                }
                Ok(()) if report.is_complete() => ExitCode::SUCCESS,
                Ok(()) => ExitCode::from(EXIT_LEFT_OUT),
            }
        }
        Err(e) => {
            eprintln!("ibiki-server import: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads the source, then checks or applies the plan.
pub async fn import(args: &ImportArgs) -> Result<ImportReport, StartError> {
    let mut normalizer = Normalizer::new();
    if let Some(region) = args.default_region.clone() {
        normalizer = normalizer.with_default_region(region);
    }
    // Open the target first: a wrong URL fails before a long read.
    let target = open_target(args).await?;
    let plan = read_plan(args, normalizer).await?;
    let bar = progress(plan.clients().len() as u64, "clients");
    let report = plan
        .run(
            &*target.store,
            args.dry_run,
            usize::from(args.concurrency),
            &|| bar.inc(1),
        )
        .await;
    bar.finish_and_clear();
    // Even after a failure: what was done is on disk before we exit.
    let synced = target.sync().await;
    let report = report?;
    synced?;
    Ok(report)
}

/// The store imported into.
struct Target {
    store: Arc<DynReplyStore>,
    /// The same store when it commits without waiting for the disk.
    unsynced: Option<Unsynced>,
}

impl Target {
    fn new(store: Arc<DynReplyStore>) -> Self {
        Self {
            store,
            unsynced: None,
        }
    }

    /// Waits until every change made is on disk.
    async fn sync(&self) -> Result<(), StartError> {
        if let Some(store) = &self.unsynced {
            store.sync().await?;
        }
        Ok(())
    }
}

/// The store to import into. A dry run changes nothing, not even the
/// schema: without ibiki's tables it checks against an empty store.
async fn open_target(args: &ImportArgs) -> Result<Target, StartError> {
    let Some(url) = &args.database_url else {
        if args.dry_run {
            tracing::warn!("no --database-url: checking against an empty store");
            return Ok(Target::new(Arc::new(MemoryStore::new())));
        }
        return Err("no store to import into: give --database-url (or DATABASE_URL)".into());
    };
    if args.dry_run {
        return Ok(Target::new(open_read_only(url, &args.database).await?));
    }
    let (store, unsynced) = open_unsynced(url, &args.database).await?;
    Ok(Target { store, unsynced })
}

/// Reads every row of the source into a plan.
async fn read_plan(args: &ImportArgs, normalizer: Normalizer) -> Result<ImportPlan, StartError> {
    let mut planner = ImportPlanner::new(normalizer);
    let bar = progress(0, "rows read");
    if let Some(path) = &args.from_csv {
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let rows = CsvRows::new(std::io::BufReader::new(file))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for row in rows {
            planner.push(row.map_err(|e| format!("{}: {e}", path.display()))?);
            bar.inc(1);
        }
    } else if let Some(url) = &args.from_database {
        read_table(args, url, &mut planner, &bar).await?;
    }
    bar.finish_and_clear();
    Ok(planner.finish())
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
fn progress(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = if len == 0 {
        ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {pos} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        )
    } else {
        ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({per_sec}, {eta} left)")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        )
    };
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// The readable report: totals, then every entry left out and why.
pub fn text_report(report: &ImportReport) -> String {
    let mut out = String::new();
    let (title, assigned) = if report.dry_run {
        ("Dry run: nothing was changed.", "would be assigned")
    } else {
        ("Import done.", "assigned")
    };
    let contested: usize = report.contested.iter().map(|c| c.user_ids.len()).sum();
    let _ = writeln!(out, "{title}");
    for (label, value) in [
        ("clients read", report.clients),
        ("entries read", report.entries),
        ("empty rows skipped", report.empty_rows),
        ("duplicate entries", report.duplicates),
        (assigned, report.assigned),
        ("already assigned", report.already_assigned),
        ("held replies released", report.released),
        ("invalid", report.invalid.len() as u64),
        ("contested", report.contested.len() as u64),
        ("conflicts", report.conflicts.len() as u64),
    ] {
        let _ = writeln!(out, "  {label:<22} {value}");
    }
    if !report.invalid.is_empty() {
        let _ = writeln!(out, "\nInvalid entries (not imported):");
        for i in &report.invalid {
            let _ = writeln!(
                out,
                "  userId {:?}, entry {} {:?}: {}",
                i.user_id, i.index, i.input, i.reason
            );
        }
    }
    if !report.contested.is_empty() {
        let _ = writeln!(
            out,
            "\nContested numbers ({contested} entries; claimed by several clients, assigned to none):"
        );
        for c in &report.contested {
            let ids: Vec<&str> = c.user_ids.iter().map(|id| id.as_str()).collect();
            let _ = writeln!(out, "  {}: {}", c.phone_number, ids.join(", "));
        }
    }
    if !report.conflicts.is_empty() {
        let _ = writeln!(
            out,
            "\nConflicts (owned by another client in ibiki, not moved):"
        );
        for c in &report.conflicts {
            let _ = writeln!(
                out,
                "  {}: for {}, owned by {}",
                c.phone_number, c.user_id, c.owner_user_id
            );
        }
    }
    if report.is_complete() {
        let _ = write!(out, "\nEvery entry was imported or already there.");
    } else {
        let _ = write!(
            out,
            "\nSome entries were left out (listed above): nothing else was changed for them."
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use ibiki_core::{ClientId, Contested, ImportConflict, InvalidImport, InvalidReason};

    use super::*;
    use crate::Config;

    fn id(text: &str) -> ClientId {
        ClientId::new(text).expect("client id")
    }

    #[test]
    fn import_flags_parse() {
        let config = Config::try_parse_from([
            "ibiki-server",
            "import",
            "--from-database",
            "postgres://old/app",
            "--table",
            "crm.Client Profiles",
            "--numbers-column",
            "phones",
            "--dry-run",
            "--format",
            "json",
            "--default-region",
            "us",
        ])
        .expect("valid flags");
        let Some(Command::Import(args)) = config.command else {
            panic!("no import: {config:?}");
        };
        assert_eq!(args.table.as_deref(), Some("crm.Client Profiles"));
        assert_eq!(args.client_column, None);
        assert_eq!(args.numbers_column.as_deref(), Some("phones"));
        assert!(args.dry_run);
        assert_eq!(args.format, Format::Json);
        assert_eq!(args.concurrency, 8);
        assert!(!format!("{args:?}").contains("postgres://old"));
        assert!(Config::try_parse_from(["ibiki-server", "import", "--concurrency", "0"]).is_err());
    }

    #[test]
    fn the_text_report_lists_every_left_out_entry() {
        let report = ImportReport {
            dry_run: true,
            clients: 3,
            entries: 6,
            empty_rows: 1,
            duplicates: 0,
            assigned: 1,
            already_assigned: 0,
            released: 0,
            invalid: vec![InvalidImport {
                user_id: "acme".into(),
                index: 2,
                input: "+1111".into(),
                reason: InvalidReason::Number(ibiki_core::NumberError::NotValid),
            }],
            contested: vec![Contested {
                phone_number: "+14155550100".parse().expect("number"),
                user_ids: vec![id("acme"), id("globex")],
            }],
            conflicts: vec![ImportConflict {
                phone_number: "+14155550101".parse().expect("number"),
                user_id: id("acme"),
                owner_user_id: id("umbrella"),
            }],
        };
        let text = text_report(&report);
        for line in [
            "Dry run: nothing was changed.",
            "  would be assigned      1",
            "  userId \"acme\", entry 2 \"+1111\": not a valid number for its country",
            "  +14155550100: acme, globex",
            "  +14155550101: for acme, owned by umbrella",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
