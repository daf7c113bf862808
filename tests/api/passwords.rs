//! Password hashing holds its memory: argon2id at its real cost (19 MiB a hash) runs on a few
//! threads of its own, so a burst of registrations leaves the engine's resident memory at a
//! few hashes' worth. On the blocking pool, 64 registrations 16 at a time took it from 12 MB
//! to 1.07 GB, for good.

use actix_web::http::StatusCode;
use serde_json::json;

use crate::engine_process::EngineProcess;
use crate::fence::metric;
use crate::helpers::{Backend, TestStore};

#[actix_web::test]
async fn a_burst_of_registrations_leaves_memory_bounded() {
    let store = TestStore::create(Backend::Sqlite).await;
    let engine = EngineProcess::start_with_env(
        &store,
        &[
            ("TOPKART_ARGON2_MEMORY_KIB", "19456"),
            ("TOPKART_ARGON2_ITERATIONS", "2"),
            ("TOPKART_RATE_LIMITS", "off"),
        ],
    );
    for wave in 0..4 {
        let mut registrations = Vec::new();
        for i in 0..16 {
            let name = format!("burst{wave}x{i}");
            let body = json!({"username": name, "email": format!("{name}@example.com"), "password": "correct-horse-battery"});
            registrations.push(engine.call("POST", "/api/v1/users", None, Some(body)));
        }
        for (status, body) in futures_util::future::join_all(registrations).await {
            assert_eq!(status, StatusCode::CREATED, "{body}");
        }
    }
    let resident_mib = metric(&engine, "process_resident_memory_bytes").await / 1_048_576.0;
    println!("after 64 registrations at 19 MiB a hash: {resident_mib:.0} MiB resident");
    // A hashing thread per core keeps at most a couple of hashes' memory each.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as f64;
    assert!(
        resident_mib < 100.0 + cores * 40.0,
        "{resident_mib:.0} MiB resident after 64 registrations"
    );
    drop(engine);
    store.remove().await;
}
