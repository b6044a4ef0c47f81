//! `ibiki-server prune`: deletes old delivered replies from the store that
//! `--database-url` names, so the database stays bounded. Held replies are
//! never deleted (see `ReplyStore::prune_delivered`).

use std::process::ExitCode;
use std::str::FromStr;

use clap::Args;
use ibiki_core::Secret;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use crate::open_store;
use crate::server::StartError;
use crate::store::DatabaseFlags;

/// The shortest retention accepted without `--allow-recent`: providers retry
/// a webhook for up to a day, and a retry of a pruned reply is recorded
/// again as new.
pub const MIN_RETENTION: Duration = Duration::days(2);

/// The flags of `ibiki-server prune`.
#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Delete replies delivered before this: an RFC 3339 time
    /// (2026-01-31T00:00:00Z) or an age (90d, 36h, 45m).
    #[arg(long, value_name = "TIME|AGE")]
    pub before: Before,

    /// Allow `--before` within the last two days, shorter than the
    /// providers' retry windows: a retried message pruned before its retry
    /// is then recorded twice.
    #[arg(long)]
    pub allow_recent: bool,

    /// Replies deleted per transaction.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch: u32,

    /// PostgreSQL URL of ibiki's store, the one the server uses.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Secret,

    /// The schema and the deadline of every database call.
    #[command(flatten)]
    pub database: DatabaseFlags,
}

/// `--before`: a point in time, or an age counted back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    /// This time.
    At(OffsetDateTime),
    /// This long before the command runs.
    Age(Duration),
}

impl Before {
    /// The time meant, `now` being when the command runs.
    pub fn resolve(self, now: OffsetDateTime) -> OffsetDateTime {
        match self {
            Self::At(at) => at,
            Self::Age(age) => now - age,
        }
    }
}

impl FromStr for Before {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
            return Ok(Self::At(at));
        }
        let unit = text.chars().last().unwrap_or(' ');
        let amount: i64 = text[..text.len() - unit.len_utf8().min(text.len())]
            .parse()
            .map_err(|_| format!("{text:?} is neither an RFC 3339 time nor an age like 90d"))?;
        let age = match unit {
            'd' => Duration::days(amount),
            'h' => Duration::hours(amount),
            'm' => Duration::minutes(amount),
            's' => Duration::seconds(amount),
            _ => return Err(format!("{text:?}: an age ends in d, h, m or s")),
        };
        if age.is_negative() {
            return Err(format!("{text:?}: an age cannot be negative"));
        }
        Ok(Self::Age(age))
    }
}

/// Runs `ibiki-server prune`: prints how many replies it deleted.
pub async fn run_prune(args: PruneArgs) -> ExitCode {
    match prune(&args).await {
        Ok((deleted, before)) => {
            println!("pruned {deleted} delivered replies delivered before {before}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ibiki-server prune: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Deletes batch after batch until none is left; returns how many and the
/// time they were delivered before.
pub async fn prune(args: &PruneArgs) -> Result<(u64, String), StartError> {
    let now = OffsetDateTime::now_utc();
    let before = args.before.resolve(now);
    if before > now - MIN_RETENTION && !args.allow_recent {
        return Err(format!(
            "--before is within the last {} days, shorter than the providers' retry \
             windows; pass --allow-recent to prune anyway",
            MIN_RETENTION.whole_days()
        )
        .into());
    }
    let store = open_store(Some(&args.database_url), &args.database)
        .await?
        .replies;
    let mut deleted = 0;
    loop {
        let batch = store.prune_delivered(before, args.batch).await?;
        deleted += batch;
        if batch == 0 {
            break;
        }
        tracing::debug!(batch, deleted, "pruned a batch");
    }
    Ok((deleted, before.format(&Rfc3339)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_is_a_time_or_an_age() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time");
        let at: Before = "2026-01-31T00:00:00Z".parse().expect("rfc 3339");
        assert_eq!(at.resolve(now).unix_timestamp(), 1_769_817_600);
        for (text, seconds) in [
            ("90d", 90 * 86_400),
            ("36h", 36 * 3_600),
            ("45m", 2_700),
            ("7s", 7),
        ] {
            let age: Before = text.parse().expect(text);
            assert_eq!(age.resolve(now), now - Duration::seconds(seconds), "{text}");
        }
        for bad in ["", "d", "90", "90w", "-3d", "yesterday", "2026-01-31"] {
            assert!(bad.parse::<Before>().is_err(), "{bad:?}");
        }
    }
}
