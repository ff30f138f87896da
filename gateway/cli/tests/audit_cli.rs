//! `bro audit verify` on a real gateway's audit log: whole, then with a
//! record changed, removed, reordered, or cut off the end — each found.

use std::path::Path;
use std::process::Command;

use bro_api::v1 as pb;
use bro_e2e::{TEST_CVR, TestGateway, new_case};

fn verify(data_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bro"))
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .arg("--key-file")
        .arg(data_dir.join("test.key"))
        .output()
        .expect("run bro audit verify");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A change made behind the gateway's back.
type Tamper = Box<dyn FnOnce(&rusqlite::Connection)>;

/// A copy of the data directory with `tamper` applied to its audit database.
fn tampered(original: &Path, tamper: impl FnOnce(&rusqlite::Connection)) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("dir");
    for file in ["audit.sqlite3", "test.key"] {
        std::fs::copy(original.join(file), copy.path().join(file)).expect("copy");
    }
    let conn = rusqlite::Connection::open(copy.path().join("audit.sqlite3")).expect("open");
    conn.execute_batch(
        "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; \
         DROP TRIGGER audit_people_no_update; DROP TRIGGER audit_people_no_delete;",
    )
    .expect("drop the guards");
    tamper(&conn);
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bro_audit_verify_finds_any_tampering() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = TestGateway::start_in(dir.path().to_path_buf(), Default::default()).await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    client.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    for _ in 0..3 {
        client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("read");
    }
    gw.stop().await.expect("stops");

    let (ok, shown) = verify(dir.path());
    assert!(ok, "{shown}");
    // The creation's record made before it committed and its own, three reads.
    assert!(shown.contains("intact: 5 records"), "{shown}");
    // The gateway's own changes survive the WAL: checkpoint so the copies see everything.
    rusqlite::Connection::open(dir.path().join("audit.sqlite3"))
        .expect("open")
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let sql =
        |statements: &'static str| move |conn: &rusqlite::Connection| conn.execute_batch(statements).expect("tamper");
    let change_purpose = |conn: &rusqlite::Connection| {
        use prost::Message as _;
        let bytes: Vec<u8> =
            conn.query_row("SELECT record FROM audit_records WHERE sequence = 2", [], |r| r.get(0)).expect("read");
        let mut record = pb::AuditRecord::decode(bytes.as_slice()).expect("decodes");
        record.purpose = "supervision".into();
        conn.execute("UPDATE audit_records SET record = ?1 WHERE sequence = 2", [record.encode_to_vec()])
            .expect("tamper");
    };
    let cases: Vec<(&str, Tamper, &str)> = vec![
        ("a changed purpose", Box::new(change_purpose), "record 2 does not match"),
        (
            "a removed record",
            Box::new(sql("DELETE FROM audit_records WHERE sequence = 2")),
            "record 3 found where record 2 belongs",
        ),
        ("a cut-off end", Box::new(sql("DELETE FROM audit_records WHERE sequence = 5")), "removed from the end"),
        (
            "a look-up hidden from the citizen's report",
            Box::new(sql("DELETE FROM audit_people WHERE sequence = 3")),
            "index of the people concerned",
        ),
        (
            "two records swapped",
            Box::new(sql("UPDATE audit_records SET sequence = -1 WHERE sequence = 2; \
                 UPDATE audit_records SET sequence = 2 WHERE sequence = 3; \
                 UPDATE audit_records SET sequence = 3 WHERE sequence = -1")),
            "record",
        ),
    ];
    for (what, tamper, says) in cases {
        let copy = tampered(dir.path(), tamper);
        let (ok, shown) = verify(copy.path());
        assert!(!ok, "{what} went unnoticed: {shown}");
        assert!(shown.contains("BROKEN") && shown.contains(says), "{what}: {shown}");
    }
    let (ok, shown) = verify(Path::new("/nonexistent-bro-data"));
    assert!(!ok && shown.is_empty());
}
