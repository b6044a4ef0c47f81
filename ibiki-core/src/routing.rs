//! The any-match routing function.

use crate::error::{NumberError, StoreError};
use crate::store::AssignmentStore;
use crate::{ClientId, Normalizer, PhoneNumber};

/// Where a reply to some number should go.
#[must_use = "a route says who owns the number, or that nobody does"]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `client` owns `number`.
    Owned {
        /// The owner.
        client: ClientId,
        /// The canonical number.
        number: PhoneNumber,
    },
    /// Nobody owns `number` (yet): hold the reply.
    Unowned(PhoneNumber),
    /// The text could not be read as a number: hold the reply.
    Unparsed {
        /// What the provider sent.
        raw: String,
        /// Why it was not a number.
        reason: NumberError,
    },
}

impl Route {
    /// The owner, if there is one.
    pub fn owner(&self) -> Option<&ClientId> {
        match self {
            Self::Owned { client, .. } => Some(client),
            Self::Unowned(_) | Self::Unparsed { .. } => None,
        }
    }
}

/// Finds which client owns the number a reply was sent to: whichever of the
/// client's numbers it is.
///
/// `to` is canonicalized like any inbound number (see
/// [`Normalizer::canonicalize_inbound`]), so every format a provider posts
/// finds the owner of the number an admin assigned.
pub async fn route(
    store: &(impl AssignmentStore + ?Sized),
    normalizer: &Normalizer,
    to: &str,
) -> Result<Route, StoreError> {
    let number = match normalizer.canonicalize_inbound(to) {
        Ok(number) => number,
        Err(reason) => {
            return Ok(Route::Unparsed {
                raw: to.to_owned(),
                reason,
            });
        }
    };
    Ok(match store.owner_of(number).await? {
        Some(client) => Route::Owned { client, number },
        None => Route::Unowned(number),
    })
}
