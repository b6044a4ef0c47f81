//! The whole conformance suite against the memory store.

use ibiki_memory::MemoryStore;

ibiki_core::conformance_tests!(|| async { Some(MemoryStore::new()) });

/// A boxed, type-erased store passes the same suite: the pointer impls
/// forward every call.
mod boxed {
    use ibiki_core::DynReplyStore;
    use ibiki_memory::MemoryStore;

    ibiki_core::conformance_tests!(|| async {
        Some(Box::new(MemoryStore::new()) as Box<DynReplyStore>)
    });
}

/// The key store's rules.
mod keys {
    use ibiki_memory::MemoryStore;

    ibiki_core::key_store_tests!(|| async { Some(MemoryStore::new()) });
}

/// The forward store's rules and the forwarding property.
mod forwards {
    use ibiki_memory::MemoryStore;

    ibiki_core::forward_store_tests!(|| async { Some(MemoryStore::new()) });

    /// Through a type-erased pointer too.
    mod boxed {
        use ibiki_core::DynForwardStore;
        use ibiki_memory::MemoryStore;

        ibiki_core::forward_store_tests!(|| async {
            Some(Box::new(MemoryStore::new()) as Box<DynForwardStore>)
        });
    }
}
