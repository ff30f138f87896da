//! The golden fixtures, natively: the files `bro adapter test` runs, found,
//! run and compared the same way by the SDK's `testing`, so they are checked
//! in `cargo test` too. `BLESS=1 cargo test --test golden` rewrites the
//! expected files that differ.

use bro_adapter_sdk::testing::check_golden_fixtures;

#[test]
fn every_golden_fixture_passes() {
    let count = check_golden_fixtures::<sdi::Sdi>(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures"));
    // The count `bro adapter test` reports (gateway/cli/tests/adapter_cli.rs).
    assert_eq!(count, 14);
}
