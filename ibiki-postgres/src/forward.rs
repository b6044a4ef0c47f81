//! Forwarding: clients' endpoints and the forwards of their replies, the
//! `endpoints` and `forwards` tables of migration 0008.
//!
//! Forwards are created by the statements that put replies into inboxes
//! (the migration's restated `receive`, `receive_batch`, `release_held_at`
//! and `deliver_held`), in the same statement as the reply: nothing here
//! creates one but [`replay`](ForwardStore::replay). Workers lease due
//! forwards with one statement and read them with a second
//! ([`claim`](ForwardStore::claim), see `sql::claim` and `sql::claimed`)
//! and record each attempt's outcome under their lease with
//! another ([`finish`](ForwardStore::finish)).

use async_trait::async_trait;
use ibiki_core::{
    AddressPolicy, AttemptOutcome, ClaimRequest, ClientId, Cursor, Endpoint, EndpointPut,
    EndpointSecret, EndpointSecrets, EndpointState, EndpointUrl, Forward, ForwardClaim,
    ForwardSignals, ForwardStatus, ForwardStore, Lease, MessageId, PREVIOUS_SECRET_GRACE, Page,
    PageRequest, StoreError,
};
use time::OffsetDateTime;

use crate::PostgresStore;
use crate::error::backend;
use crate::read::{self, ReplyRow};
use crate::trace;

/// A forward as `sql::FORWARD_COLUMNS` lists it.
#[derive(sqlx::FromRow)]
struct ForwardRow {
    id: i64,
    client_id: ClientId,
    message_id: Option<String>,
    reply_id: i64,
    status: String,
    attempts: i32,
    last_attempt_at: Option<OffsetDateTime>,
    next_attempt_at: Option<OffsetDateTime>,
    last_status: Option<i32>,
    last_error: Option<String>,
}

impl ForwardRow {
    fn into_forward(self) -> Result<Forward, StoreError> {
        Ok(Forward {
            id: u64::try_from(self.id).map_err(backend)?,
            client: self.client_id,
            message_id: self
                .message_id
                .map(MessageId::new)
                .transpose()
                .map_err(backend)?,
            reply_id: u64::try_from(self.reply_id).map_err(backend)?,
            status: status(&self.status)?,
            attempts: u32::try_from(self.attempts).map_err(backend)?,
            last_attempt_at: self.last_attempt_at,
            next_attempt_at: self.next_attempt_at,
            last_status: self
                .last_status
                .map(u16::try_from)
                .transpose()
                .map_err(backend)?,
            last_error: self.last_error,
        })
    }
}

fn status(name: &str) -> Result<ForwardStatus, StoreError> {
    ForwardStatus::from_name(name)
        .ok_or_else(|| backend(format!("unknown forward status {name:?}")))
}

/// An endpoint's state as `sql::ENDPOINT_COLUMNS` and its counts list it.
#[derive(sqlx::FromRow)]
struct EndpointRow {
    client_id: ClientId,
    url: String,
    enabled: bool,
    created_at: OffsetDateTime,
    last_delivered_at: Option<OffsetDateTime>,
    failing_since: Option<OffsetDateTime>,
    pending: i64,
    failed: i64,
}

impl EndpointRow {
    fn into_state(self) -> Result<EndpointState, StoreError> {
        Ok(EndpointState {
            endpoint: Endpoint {
                client: self.client_id,
                url: stored_url(&self.url)?,
                enabled: self.enabled,
                created_at: self.created_at,
            },
            pending: u64::try_from(self.pending).map_err(backend)?,
            failed: u64::try_from(self.failed).map_err(backend)?,
            last_delivered_at: self.last_delivered_at,
            failing_since: self.failing_since,
        })
    }
}

/// A URL as stored: it was checked against the caller's address policy when
/// it was set, and is not checked again.
fn stored_url(text: &str) -> Result<EndpointUrl, StoreError> {
    EndpointUrl::parse(text, AddressPolicy::AllowPrivate).map_err(backend)
}

/// The secrets that sign now, as `sql::SECRET_COLUMNS` lists them.
#[derive(sqlx::FromRow)]
struct SecretsRow {
    secret: String,
    previous_secret: Option<String>,
}

impl SecretsRow {
    fn into_secrets(self) -> Result<EndpointSecrets, StoreError> {
        Ok(EndpointSecrets {
            current: EndpointSecret::parse(&self.secret).map_err(backend)?,
            previous: self
                .previous_secret
                .as_deref()
                .map(EndpointSecret::parse)
                .transpose()
                .map_err(backend)?,
        })
    }
}

/// A forward as `sql::claim` leases it.
#[derive(sqlx::FromRow)]
struct LeasedRow {
    forward_id: i64,
    attempt: i32,
    client_id: ClientId,
    reply_id: i64,
}

/// A claimed forward as `sql::claimed` reads it.
#[derive(sqlx::FromRow)]
struct ClaimRow {
    forward_id: i64,
    attempt: i32,
    forward_client: ClientId,
    url: String,
    #[sqlx(flatten)]
    secrets: SecretsRow,
    #[sqlx(flatten)]
    reply: ReplyRow,
}

impl ClaimRow {
    fn into_claim(self) -> Result<ForwardClaim, StoreError> {
        Ok(ForwardClaim {
            lease: Lease {
                forward: u64::try_from(self.forward_id).map_err(backend)?,
                attempt: u32::try_from(self.attempt).map_err(backend)?,
            },
            client: self.forward_client,
            url: stored_url(&self.url)?,
            secrets: self.secrets.into_secrets()?,
            reply: self.reply.into_stored()?,
        })
    }
}

/// An id as the bigint identity it is; `None` for one too large to be
/// any.
fn row_id(id: u64) -> Option<i64> {
    i64::try_from(id).ok()
}

fn seconds(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64()
}

/// Outcomes as `sql::finish` takes them, one array per column, and where
/// each came from in the batch.
#[derive(Default)]
struct OutcomeColumns<'a> {
    ids: Vec<i64>,
    attempts: Vec<i32>,
    delivered: Vec<bool>,
    statuses: Vec<Option<i32>>,
    errors: Vec<Option<&'a str>>,
    retry_in: Vec<Option<f64>>,
    /// The position in the batch of each row.
    positions: Vec<usize>,
}

impl<'a> OutcomeColumns<'a> {
    /// The columns of `outcomes`, leaving out a lease no forward can hold
    /// (an id or attempt out of the columns' range): it is refused.
    fn of(outcomes: &'a [(Lease, AttemptOutcome)]) -> Self {
        let mut columns = Self::default();
        for (position, (lease, outcome)) in outcomes.iter().enumerate() {
            let (Some(id), Ok(attempt)) = (row_id(lease.forward), i32::try_from(lease.attempt))
            else {
                continue;
            };
            let (delivered, status, error, retry_in) = match outcome {
                AttemptOutcome::Delivered { status } => (true, Some(*status), None, None),
                AttemptOutcome::Failed {
                    status,
                    error,
                    retry_in,
                } => (false, *status, Some(error.as_str()), retry_in.map(seconds)),
            };
            columns.ids.push(id);
            columns.attempts.push(attempt);
            columns.delivered.push(delivered);
            columns.statuses.push(status.map(i32::from));
            columns.errors.push(error);
            columns.retry_in.push(retry_in);
            columns.positions.push(position);
        }
        columns
    }
}

impl PostgresStore {
    /// Records `outcomes` in one statement: whether each was.
    async fn record(&self, outcomes: &[(Lease, AttemptOutcome)]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = vec![false; outcomes.len()];
        let columns = OutcomeColumns::of(outcomes);
        if columns.ids.is_empty() {
            return Ok(recorded);
        }
        let rows: Vec<i32> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_scalar(&self.sql().finish)
                    .bind(&columns.ids)
                    .bind(&columns.attempts)
                    .bind(&columns.delivered)
                    .bind(&columns.statuses)
                    .bind(&columns.errors)
                    .bind(&columns.retry_in)
                    .fetch_all(conn)
            })
            .await?;
        for n in rows {
            let row = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
            match row.and_then(|row| columns.positions.get(row)) {
                Some(&position) => recorded[position] = true,
                None => return Err(backend(format!("finish_forwards answered row {n}"))),
            }
        }
        Ok(recorded)
    }
}

#[async_trait]
impl ForwardStore for PostgresStore {
    /// One call of the schema's `put_endpoint`, which takes the client's
    /// delivery lock: a delivery commits before the endpoint exists (no
    /// forward) or sees it.
    async fn put_endpoint(
        &self,
        client: &ClientId,
        url: &EndpointUrl,
        enabled: bool,
        secret: EndpointSecret,
    ) -> Result<EndpointPut, StoreError> {
        let (created, created_at): (bool, OffsetDateTime) = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().put_endpoint)
                    .bind(client)
                    .bind(url.as_str())
                    .bind(enabled)
                    .bind(secret.expose())
                    .fetch_one(conn)
            })
            .await?;
        Ok(EndpointPut {
            endpoint: Endpoint {
                client: client.clone(),
                url: url.clone(),
                enabled,
                created_at,
            },
            created_secret: created.then_some(secret),
        })
    }

    async fn endpoint(&self, client: &ClientId) -> Result<Option<EndpointState>, StoreError> {
        let row: Option<EndpointRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().endpoint)
                    .bind(client)
                    .fetch_optional(conn)
            })
            .await?;
        row.map(EndpointRow::into_state).transpose()
    }

    async fn endpoint_secrets(
        &self,
        client: &ClientId,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        let row: Option<SecretsRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().endpoint_secrets)
                    .bind(client)
                    .fetch_optional(conn)
            })
            .await?;
        row.map(SecretsRow::into_secrets).transpose()
    }

    async fn rotate_secret(
        &self,
        client: &ClientId,
        secret: EndpointSecret,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        let grace = PREVIOUS_SECRET_GRACE.as_seconds_f64();
        let row: Option<SecretsRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().rotate_secret)
                    .bind(client)
                    .bind(secret.expose())
                    .bind(grace)
                    .fetch_optional(conn)
            })
            .await?;
        row.map(SecretsRow::into_secrets).transpose()
    }

    /// One call of the schema's `delete_endpoint`, which takes the client's
    /// delivery lock, then deletes the forwards and the endpoint.
    async fn delete_endpoint(&self, client: &ClientId) -> Result<bool, StoreError> {
        self.db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_scalar(&self.sql().delete_endpoint)
                    .bind(client)
                    .fetch_one(conn)
            })
            .await
    }

    /// Keyset pages by forward id: the cursor is the last forward's id.
    async fn forwards(
        &self,
        client: &ClientId,
        status: Option<ForwardStatus>,
        page: &PageRequest,
    ) -> Result<Page<Forward>, StoreError> {
        let after = read::after_position(page)?;
        let limit = read::limit(page);
        let rows: Vec<ForwardRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| match status {
                None => sqlx::query_as(&self.sql().forwards)
                    .bind(client)
                    .bind(after)
                    .bind(limit)
                    .fetch_all(conn),
                Some(status) => sqlx::query_as(&self.sql().forwards_by_status)
                    .bind(client)
                    .bind(after)
                    .bind(limit)
                    .bind(status.as_str())
                    .fetch_all(conn),
            })
            .await?;
        let next = match rows.last() {
            Some(last) => Some(Cursor::from_position(
                u64::try_from(last.id).map_err(backend)?,
            )),
            None => None,
        };
        let items = rows
            .into_iter()
            .map(ForwardRow::into_forward)
            .collect::<Result<_, _>>()?;
        Ok(Page { items, next })
    }

    async fn forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        let Some(id) = row_id(id) else {
            return Ok(None);
        };
        let row: Option<ForwardRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().forward)
                    .bind(id)
                    .fetch_optional(conn)
            })
            .await?;
        row.map(ForwardRow::into_forward).transpose()
    }

    async fn retry_forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        let Some(id) = row_id(id) else {
            return Ok(None);
        };
        let row: Option<ForwardRow> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_as(&self.sql().retry_forward)
                    .bind(id)
                    .fetch_optional(conn)
            })
            .await?;
        row.map(ForwardRow::into_forward).transpose()
    }

    /// One call of the schema's `replay`, under the client's delivery lock.
    async fn replay(
        &self,
        client: &ClientId,
        since: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        let count: Option<i64> = self
            .db()
            .lease()
            .await?
            .run(|conn| {
                sqlx::query_scalar(&self.sql().replay)
                    .bind(client)
                    .bind(since)
                    .fetch_one(conn)
            })
            .await?;
        count
            .map(|count| u64::try_from(count).map_err(backend))
            .transpose()
    }

    /// Two statements, each its own transaction: the claim (`sql::claim`)
    /// commits the leases, then `sql::claimed` reads what the attempts
    /// need. If the second fails, the leases expire and the forwards are
    /// claimed again, as after any claim whose answer was lost.
    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ForwardClaim>, StoreError> {
        let (busy_clients, busy): (Vec<ClientId>, Vec<i64>) = request
            .in_flight
            .iter()
            .map(|(client, n)| (client.clone(), i64::from(*n)))
            .unzip();
        let work = async {
            let mut lease = self.db().lease().await?;
            let leased: Vec<LeasedRow> = lease
                .run(|conn| {
                    sqlx::query_as(&self.sql().claim)
                        .bind(i64::from(request.limit))
                        .bind(seconds(request.lease))
                        .bind(i64::from(request.per_endpoint))
                        .bind(&busy_clients)
                        .bind(&busy)
                        .fetch_all(conn)
                })
                .await?;
            if leased.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = leased.iter().map(|l| l.forward_id).collect();
            let attempts: Vec<i32> = leased.iter().map(|l| l.attempt).collect();
            let clients: Vec<&ClientId> = leased.iter().map(|l| &l.client_id).collect();
            let replies: Vec<i64> = leased.iter().map(|l| l.reply_id).collect();
            let rows: Vec<ClaimRow> = lease
                .run(|conn| {
                    // Planned each time, for the tables as they are now: a
                    // plan kept from when they were nearly empty would scan
                    // them whole (see migration 0009).
                    sqlx::query_as(&self.sql().claimed)
                        .persistent(false)
                        .bind(&ids)
                        .bind(&attempts)
                        .bind(&clients)
                        .bind(&replies)
                        .fetch_all(conn)
                })
                .await?;
            rows.into_iter().map(ClaimRow::into_claim).collect()
        };
        trace::claim(request.limit, work).await
    }

    /// A batch of one: see [`finish_all`](Self::finish_all).
    async fn finish(&self, lease: Lease, outcome: &AttemptOutcome) -> Result<bool, StoreError> {
        let outcomes = [(lease, outcome.clone())];
        let work = async {
            let recorded = self.record(&outcomes).await?;
            Ok(recorded.first().copied().unwrap_or(false))
        };
        trace::finish(lease, outcome, work).await
    }

    /// One statement, its own transaction, all or nothing: see
    /// `sql::finish`.
    async fn finish_all(
        &self,
        outcomes: &[(Lease, AttemptOutcome)],
    ) -> Result<Vec<bool>, StoreError> {
        trace::finish_all(outcomes.len(), self.record(outcomes)).await
    }

    async fn pending_forwards(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .db()
            .lease()
            .await?
            .run(|conn| sqlx::query_scalar(&self.sql().pending_forwards).fetch_one(conn))
            .await?;
        u64::try_from(count).map_err(backend)
    }

    /// Fed by the store's listener: forwards made due by any process on the
    /// schema (migration 0008's triggers), and every (re)connection.
    fn forward_signals(&self) -> Option<ForwardSignals> {
        self.forward_signals_of()
    }
}
