//! Clients' endpoints and the forwards of their replies, changed only under
//! the store's lock, so a forward is created in the same step as its reply
//! reaches the inbox.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ibiki_core::{
    AttemptOutcome, ClaimRequest, ClientId, Cursor, Endpoint, EndpointPut, EndpointSecret,
    EndpointSecrets, EndpointState, EndpointUrl, Forward, ForwardStatus, Lease,
    PREVIOUS_SECRET_GRACE, Page, PageRequest, StoreError, StoredReply,
};
use time::OffsetDateTime;

#[derive(Debug)]
struct EndpointRecord {
    endpoint: Endpoint,
    secret: EndpointSecret,
    previous: Option<(EndpointSecret, OffsetDateTime)>,
    last_delivered_at: Option<OffsetDateTime>,
    failing_since: Option<OffsetDateTime>,
}

#[derive(Debug)]
struct Record {
    forward: Forward,
    /// When it may be claimed next: its next attempt, or its lease's end.
    ready_at: OffsetDateTime,
    /// The end of the lease of its latest claim, until its outcome.
    leased_until: Option<OffsetDateTime>,
}

#[derive(Debug, Default)]
pub(crate) struct Forwards {
    endpoints: HashMap<ClientId, EndpointRecord>,
    records: BTreeMap<u64, Record>,
    by_reply: HashMap<u64, u64>,
    /// Pending forwards by when they may be claimed.
    ready: BTreeSet<(OffsetDateTime, u64)>,
    next_id: u64,
}

impl Forwards {
    /// Creates the forward of `reply`, just put in `client`'s inbox, if the
    /// client has an endpoint and the reply no forward.
    pub(crate) fn create(&mut self, client: &ClientId, reply: &StoredReply, now: OffsetDateTime) {
        if self.endpoints.contains_key(client) && !self.by_reply.contains_key(&reply.id) {
            self.insert(client, reply, now);
        }
    }

    fn insert(&mut self, client: &ClientId, reply: &StoredReply, now: OffsetDateTime) {
        self.next_id += 1;
        let id = self.next_id;
        let forward = Forward {
            id,
            client: client.clone(),
            message_id: reply.message_id.clone(),
            reply_id: reply.id,
            status: ForwardStatus::Pending,
            attempts: 0,
            last_attempt_at: None,
            next_attempt_at: Some(now),
            last_status: None,
            last_error: None,
        };
        self.by_reply.insert(reply.id, id);
        self.records.insert(
            id,
            Record {
                forward,
                ready_at: now,
                leased_until: None,
            },
        );
        self.ready.insert((now, id));
    }

    /// Drops the forward of a pruned reply.
    pub(crate) fn forget_reply(&mut self, reply: u64) {
        if let Some(id) = self.by_reply.remove(&reply) {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u64) {
        if let Some(record) = self.records.remove(&id) {
            self.ready.remove(&(record.ready_at, id));
            self.by_reply.remove(&record.forward.reply_id);
        }
    }

    pub(crate) fn put_endpoint(
        &mut self,
        client: &ClientId,
        url: &EndpointUrl,
        enabled: bool,
        secret: EndpointSecret,
        now: OffsetDateTime,
    ) -> EndpointPut {
        if let Some(record) = self.endpoints.get_mut(client) {
            record.endpoint.url = url.clone();
            record.endpoint.enabled = enabled;
            return EndpointPut {
                endpoint: record.endpoint.clone(),
                created_secret: None,
            };
        }
        let endpoint = Endpoint {
            client: client.clone(),
            url: url.clone(),
            enabled,
            created_at: now,
        };
        self.endpoints.insert(
            client.clone(),
            EndpointRecord {
                endpoint: endpoint.clone(),
                secret: secret.clone(),
                previous: None,
                last_delivered_at: None,
                failing_since: None,
            },
        );
        EndpointPut {
            endpoint,
            created_secret: Some(secret),
        }
    }

    pub(crate) fn endpoint(&self, client: &ClientId) -> Option<EndpointState> {
        let record = self.endpoints.get(client)?;
        let (mut pending, mut failed) = (0, 0);
        for r in self
            .records
            .values()
            .filter(|r| &r.forward.client == client)
        {
            match r.forward.status {
                ForwardStatus::Pending => pending += 1,
                ForwardStatus::Failed => failed += 1,
                ForwardStatus::Delivered => {}
            }
        }
        Some(EndpointState {
            endpoint: record.endpoint.clone(),
            pending,
            failed,
            last_delivered_at: record.last_delivered_at,
            failing_since: record.failing_since,
        })
    }

    pub(crate) fn secrets(
        &self,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Option<EndpointSecrets> {
        let record = self.endpoints.get(client)?;
        Some(EndpointSecrets {
            current: record.secret.clone(),
            previous: record
                .previous
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(secret, _)| secret.clone()),
        })
    }

    /// Where a claimed forward of `client` goes, and what signs it.
    pub(crate) fn target(
        &self,
        client: &ClientId,
        now: OffsetDateTime,
    ) -> Option<(EndpointUrl, EndpointSecrets)> {
        let url = self.endpoints.get(client)?.endpoint.url.clone();
        Some((url, self.secrets(client, now)?))
    }

    pub(crate) fn rotate(
        &mut self,
        client: &ClientId,
        secret: EndpointSecret,
        now: OffsetDateTime,
    ) -> Option<EndpointSecrets> {
        let record = self.endpoints.get_mut(client)?;
        let old = std::mem::replace(&mut record.secret, secret);
        record.previous = Some((old, now + PREVIOUS_SECRET_GRACE));
        self.secrets(client, now)
    }

    pub(crate) fn delete_endpoint(&mut self, client: &ClientId) -> bool {
        if self.endpoints.remove(client).is_none() {
            return false;
        }
        let ids: Vec<u64> = self
            .records
            .iter()
            .filter(|(_, r)| &r.forward.client == client)
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.remove(id);
        }
        true
    }

    pub(crate) fn has_endpoint(&self, client: &ClientId) -> bool {
        self.endpoints.contains_key(client)
    }

    pub(crate) fn list(
        &self,
        client: &ClientId,
        status: Option<ForwardStatus>,
        page: &PageRequest,
    ) -> Result<Page<Forward>, StoreError> {
        let after = match page.after() {
            None => 0,
            Some(cursor) => cursor.position().ok_or(StoreError::InvalidCursor)?,
        };
        let items: Vec<Forward> = self
            .records
            .range(after.saturating_add(1)..)
            .map(|(_, r)| &r.forward)
            .filter(|f| &f.client == client && status.is_none_or(|s| f.status == s))
            .take(page.limit())
            .cloned()
            .collect();
        let next = items.last().map(|f| Cursor::from_position(f.id));
        Ok(Page { items, next })
    }

    pub(crate) fn get(&self, id: u64) -> Option<Forward> {
        self.records.get(&id).map(|r| r.forward.clone())
    }

    /// Makes forward `id` due at `now`, keeping a running lease.
    pub(crate) fn retry(&mut self, id: u64, now: OffsetDateTime) -> Option<Forward> {
        let record = self.records.get_mut(&id)?;
        let leased = record.forward.status == ForwardStatus::Pending
            && record.leased_until.is_some_and(|until| until > now);
        record.forward.status = ForwardStatus::Pending;
        record.forward.next_attempt_at = Some(now);
        if !leased {
            self.ready.remove(&(record.ready_at, id));
            record.ready_at = now;
            self.ready.insert((now, id));
        }
        Some(record.forward.clone())
    }

    /// Makes each of `replies` (of `client`'s inbox) due now, creating the
    /// forwards they lack.
    pub(crate) fn replay<'a>(
        &mut self,
        client: &ClientId,
        replies: impl Iterator<Item = &'a StoredReply>,
        now: OffsetDateTime,
    ) -> u64 {
        let mut queued = 0;
        for reply in replies {
            match self.by_reply.get(&reply.id) {
                Some(&id) => {
                    self.retry(id, now);
                }
                None => self.insert(client, reply, now),
            }
            queued += 1;
        }
        queued
    }

    /// Leases the due forwards `request` allows: their ids, attempt numbers
    /// and clients.
    pub(crate) fn claim(
        &mut self,
        request: &ClaimRequest,
        now: OffsetDateTime,
    ) -> Vec<(Lease, ClientId, u64)> {
        let lease_end = now + request.lease;
        let mut taken: HashMap<ClientId, u32> = HashMap::new();
        let mut claimed = Vec::new();
        let due: Vec<(OffsetDateTime, u64)> =
            self.ready.range(..=(now, u64::MAX)).copied().collect();
        for key in due {
            if claimed.len() >= request.limit as usize {
                break;
            }
            let Some(record) = self.records.get_mut(&key.1) else {
                continue;
            };
            let client = record.forward.client.clone();
            let enabled = self
                .endpoints
                .get(&client)
                .is_some_and(|e| e.endpoint.enabled);
            let count = taken.entry(client.clone()).or_default();
            if !enabled || *count >= request.room_for(&client) {
                continue;
            }
            *count += 1;
            record.forward.attempts += 1;
            record.ready_at = lease_end;
            record.leased_until = Some(lease_end);
            self.ready.remove(&key);
            self.ready.insert((lease_end, key.1));
            let lease = Lease {
                forward: key.1,
                attempt: record.forward.attempts,
            };
            claimed.push((lease, client, record.forward.reply_id));
        }
        claimed
    }

    /// Records an attempt's outcome; `false` when `lease` was superseded.
    pub(crate) fn finish(
        &mut self,
        lease: Lease,
        outcome: &AttemptOutcome,
        now: OffsetDateTime,
    ) -> bool {
        let Some(record) = self.records.get_mut(&lease.forward) else {
            return false;
        };
        let forward = &mut record.forward;
        if forward.attempts != lease.attempt || forward.status != ForwardStatus::Pending {
            return false;
        }
        self.ready.remove(&(record.ready_at, lease.forward));
        record.leased_until = None;
        forward.last_attempt_at = Some(now);
        let endpoint = self.endpoints.get_mut(&forward.client);
        match outcome {
            AttemptOutcome::Delivered { status } => {
                forward.status = ForwardStatus::Delivered;
                forward.next_attempt_at = None;
                forward.last_status = Some(*status);
                forward.last_error = None;
                if let Some(endpoint) = endpoint {
                    endpoint.last_delivered_at = Some(now);
                    endpoint.failing_since = None;
                }
            }
            AttemptOutcome::Failed {
                status,
                error,
                retry_in,
            } => {
                forward.last_status = *status;
                forward.last_error = Some(error.clone());
                forward.next_attempt_at = retry_in.map(|d| now + d);
                if let Some(next) = forward.next_attempt_at {
                    record.ready_at = next;
                    self.ready.insert((next, lease.forward));
                } else {
                    forward.status = ForwardStatus::Failed;
                }
                if let Some(endpoint) = endpoint {
                    endpoint.failing_since.get_or_insert(now);
                }
            }
        }
        true
    }

    pub(crate) fn pending(&self) -> u64 {
        self.ready.len() as u64
    }
}
