//! [`ForwardStore`] for [`MemoryStore`]: endpoints and forwards under the
//! store's one lock, so a forward is created with its reply.

use async_trait::async_trait;
use ibiki_core::{
    AttemptOutcome, ClaimRequest, ClientId, EndpointPut, EndpointSecret, EndpointSecrets,
    EndpointState, EndpointUrl, Forward, ForwardClaim, ForwardSignals, ForwardStatus, ForwardStore,
    Lease, Page, PageRequest, StoreError,
};
use time::OffsetDateTime;

use crate::MemoryStore;

#[async_trait]
impl ForwardStore for MemoryStore {
    async fn put_endpoint(
        &self,
        client: &ClientId,
        url: &EndpointUrl,
        enabled: bool,
        secret: EndpointSecret,
    ) -> Result<EndpointPut, StoreError> {
        let put = {
            let mut state = self.write();
            let (forwards, now) = state.forwards_mut();
            forwards.put_endpoint(client, url, enabled, secret, now)
        };
        if enabled {
            self.forward_signals.notify();
        }
        Ok(put)
    }

    async fn endpoint(&self, client: &ClientId) -> Result<Option<EndpointState>, StoreError> {
        Ok(self.read().forwards().endpoint(client))
    }

    async fn endpoint_secrets(
        &self,
        client: &ClientId,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        let mut state = self.write();
        let (forwards, now) = state.forwards_mut();
        Ok(forwards.secrets(client, now))
    }

    async fn rotate_secret(
        &self,
        client: &ClientId,
        secret: EndpointSecret,
    ) -> Result<Option<EndpointSecrets>, StoreError> {
        let mut state = self.write();
        let (forwards, now) = state.forwards_mut();
        Ok(forwards.rotate(client, secret, now))
    }

    async fn delete_endpoint(&self, client: &ClientId) -> Result<bool, StoreError> {
        Ok(self.write().forwards_mut().0.delete_endpoint(client))
    }

    async fn forwards(
        &self,
        client: &ClientId,
        status: Option<ForwardStatus>,
        page: &PageRequest,
    ) -> Result<Page<Forward>, StoreError> {
        self.read().forwards().list(client, status, page)
    }

    async fn forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        Ok(self.read().forwards().get(id))
    }

    async fn retry_forward(&self, id: u64) -> Result<Option<Forward>, StoreError> {
        let retried = {
            let mut state = self.write();
            let (forwards, now) = state.forwards_mut();
            forwards.retry(id, now)
        };
        self.forward_signals.notify();
        Ok(retried)
    }

    async fn replay(
        &self,
        client: &ClientId,
        since: OffsetDateTime,
    ) -> Result<Option<u64>, StoreError> {
        let queued = self.write().replay(client, since);
        self.forward_signals.notify();
        Ok(queued)
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Vec<ForwardClaim>, StoreError> {
        Ok(self.write().claim(request))
    }

    async fn finish(&self, lease: Lease, outcome: &AttemptOutcome) -> Result<bool, StoreError> {
        let mut state = self.write();
        let (forwards, now) = state.forwards_mut();
        Ok(forwards.finish(lease, outcome, now))
    }

    async fn pending_forwards(&self) -> Result<u64, StoreError> {
        Ok(self.read().forwards().pending())
    }

    fn forward_signals(&self) -> Option<ForwardSignals> {
        Some(self.forward_signals.clone())
    }
}
