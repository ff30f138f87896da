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

fn bro(args: &[&std::ffi::OsStr]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bro")).args(args).output().expect("run bro");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// A log rebuilt by whoever holds the master key verifies on its own, but
/// not against a head signed before: the signing key was not theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_heads_show_a_log_rebuilt_with_the_master_key() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = TestGateway::start_in(dir.path().to_path_buf(), Default::default()).await.expect("gateway");
    let mut client = gw.client().await.expect("client");
    client.create_case(new_case("c1", TEST_CVR)).await.expect("created");
    client.get_case(pb::GetCaseRequest { name: "cases/c1".into() }).await.expect("read");
    gw.stop().await.expect("stops");
    let d = dir.path();
    let heads = d.join("heads.jsonl");
    let (key, signing) = (d.join("test.key"), d.join("audit-signing.key"));
    let export = |data_dir: &Path| {
        bro(&[
            "audit".as_ref(),
            "export-head".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--signing-key".as_ref(),
            signing.as_os_str(),
            "--out".as_ref(),
            heads.as_os_str(),
        ])
    };
    let (ok, said) = export(d);
    assert!(ok, "{said}");
    assert!(said.contains("signed the head of record 3"), "{said}");
    let head = bro_store::SignedHead::parse_lines(&std::fs::read_to_string(&heads).expect("heads")).expect("parses");
    assert_eq!(head.len(), 1);
    let public = bro_store::AuditSigner::parse(&std::fs::read_to_string(&signing).expect("key"))
        .expect("signing key")
        .verifier()
        .public_key();
    let verify_against = |data_dir: &Path, public: &str| {
        bro(&[
            "audit".as_ref(),
            "verify".as_ref(),
            "--data-dir".as_ref(),
            data_dir.as_os_str(),
            "--key-file".as_ref(),
            key.as_os_str(),
            "--head".as_ref(),
            heads.as_os_str(),
            "--public-key".as_ref(),
            public.as_ref(),
        ])
    };
    let (ok, said) = verify_against(d, &public);
    assert!(ok && said.contains("extends all 1 signed heads"), "{said}");

    // Record 2 rewritten and the whole chain recomputed with the master key.
    rusqlite::Connection::open(d.join("audit.sqlite3"))
        .expect("open")
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    let keys = bro_store::Keyring::parse(&std::fs::read_to_string(&key).expect("key")).expect("keys");
    let rebuild = |conn: &rusqlite::Connection| {
        use prost::Message as _;
        let mut stmt = conn.prepare("SELECT record FROM audit_records ORDER BY sequence").expect("select");
        let mut records: Vec<pb::AuditRecord> = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .expect("rows")
            .map(|b| pb::AuditRecord::decode(b.expect("row").as_slice()).expect("decodes"))
            .collect();
        records[1].purpose = "supervision".into();
        let rechained = bro_store::audit::chain(&keys, &bro_store::AuditHead::default(), records);
        conn.execute_batch("DELETE FROM audit_records; DELETE FROM audit_head;").expect("clear");
        for r in &rechained {
            conn.execute(
                "INSERT INTO audit_records (sequence, record, mac) VALUES (?1, ?2, ?3)",
                rusqlite::params![r.sequence as i64, r.record, r.mac],
            )
            .expect("insert");
        }
        let last = rechained.last().expect("records");
        conn.execute(
            "INSERT INTO audit_head (id, sequence, mac) VALUES (1, ?1, ?2)",
            rusqlite::params![last.sequence as i64, last.mac],
        )
        .expect("head");
    };
    let copy = tampered(d, rebuild);
    std::fs::copy(d.join("audit-signing.key"), copy.path().join("audit-signing.key")).expect("copy");
    let (ok, said) = verify(copy.path());
    assert!(ok, "rebuilt with the key, the chain alone verifies: {said}");
    let (ok, said) = verify_against(copy.path(), &public);
    assert!(!ok && said.contains("BROKEN") && said.contains("no longer has the chain value"), "{said}");
    // A head is checked against the pinned key, not the one it names.
    let other = bro_store::AuditSigner::parse(&bro_store::AuditSigner::generate()).expect("key").verifier();
    let (ok, said) = verify_against(d, &other.public_key());
    assert!(!ok && said.contains("not by the pinned key"), "{said}");
    // A broken log gets no signed head.
    let cut = tampered(d, |c| c.execute_batch("DELETE FROM audit_records WHERE sequence = 3").expect("cut"));
    let (ok, said) = export(cut.path());
    assert!(!ok && said.contains("no head was signed"), "{said}");
}
