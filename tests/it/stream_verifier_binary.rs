//! The Lambda binary itself: bad configuration stops it at start-up with a message naming the variable.

use std::process::Command;

#[test]
fn bad_configuration_fails_at_start_naming_the_variable() {
    for (vars, named) in [
        (vec![], "VERIFY_TABLE_NAME is required"),
        (
            vec![("VERIFY_TABLE_NAME", "Orders"), ("SAMPLE_RATE", "2")],
            "SAMPLE_RATE=\"2\" is not valid",
        ),
        (
            vec![
                ("VERIFY_TABLE_NAME", "Orders"),
                ("MAX_REPLICATION_LAG", "soon"),
            ],
            "MAX_REPLICATION_LAG=\"soon\"",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_stream-verifier"))
            .env_clear()
            .envs(vars)
            .output()
            .expect("run the binary");
        assert!(!out.status.success());
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(printed.contains(named), "expected {named:?} in: {printed}");
    }
}
