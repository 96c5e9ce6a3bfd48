//! `cargo run -p demo [-- --database-url URL]`: opens (or creates) the database,
//! migrates it and prints the row counts per table.

use demo::models::{Message, Person, Thread};
use orm::prelude::*;

fn main() {
    if let Err(error) = run() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run() -> orm::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut url = String::from("threads.db");
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => url = args.next().unwrap_or_default(),
            other if other.starts_with("--database-url=") => {
                url = other.trim_start_matches("--database-url=").to_owned();
            }
            "-h" | "--help" => {
                println!("usage: demo [--database-url URL]   (default: threads.db)");
                return Ok(());
            }
            other => {
                eprintln!("unknown argument `{other}` (try --help)");
                std::process::exit(2);
            }
        }
    }
    let db = Database::open(&url)?;
    let ran = db.migrate(&demo::MIGRATIONS)?;
    println!(
        "database: {} ({}), {ran} migration(s) applied",
        orm::redact_url(&url),
        db.backend()
    );
    let conn = &mut db.get()?;
    println!("{:<16} {:>10} {:>10}", "table", "live", "deleted");
    for (table, live, deleted) in [
        (
            "weave_person",
            Person::objects().count(conn)?,
            Person::objects().only_deleted().count(conn)?,
        ),
        (
            "weave_thread",
            Thread::objects().count(conn)?,
            Thread::objects().only_deleted().count(conn)?,
        ),
        (
            "weave_message",
            Message::objects().count(conn)?,
            Message::objects().only_deleted().count(conn)?,
        ),
    ] {
        println!("{table:<16} {live:>10} {deleted:>10}");
    }
    let plan = Message::objects().explain_count(conn, ExplainOptions::new())?;
    println!("counting live messages: {}", plan.summary());
    Ok(())
}
