//! The HTTP edge of ibiki: what sits between a provider's webhook, an admin's
//! requests and a store.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
