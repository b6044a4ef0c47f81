#![forbid(unsafe_code)]
//! placeholder
pub struct MemoryStore;
