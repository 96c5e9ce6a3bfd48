//! Rebuilds the demo when a migration is added: `embed_migrations!` reads the
//! directories at compile time, and cargo does not see a new one by itself.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
