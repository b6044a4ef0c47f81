//! Rebuilds the crate when a migration changes: `sqlx::migrate!` embeds the
//! files of `migrations/`, and cargo does not see them otherwise.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
