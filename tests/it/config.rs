//! Configuration resolution, overrides and error locations.

use gatehouse::config::{Backend, ConfigError, ConfigSource, SessionStore, load_from_str};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn file(text: &str) -> Result<gatehouse::config::Loaded, ConfigError> {
    load_from_str(Some(text), ConfigSource::File("conf/gatehouse.yaml".into()), env(&[]))
}

/// The error's `(line, column, message)`, which must point into the file.
fn located(text: &str) -> (u64, u64, String) {
    match file(text).expect_err("expected the file to be refused") {
        ConfigError::Invalid { path, line, column, message } => {
            assert_eq!(path, "conf/gatehouse.yaml");
            (line, column, message)
        }
        other => panic!("expected a located error, got {other}"),
    }
}

#[test]
fn embedded_defaults_use_sqlite_under_gatehouse_data() {
    let loaded = load_from_str(None, ConfigSource::Embedded, env(&[])).unwrap();
    let c = &loaded.config;
    assert_eq!(c.database_url.backend(), Backend::Sqlite);
    assert_eq!(c.database_url.sqlite_path(), Some("gatehouse-data/gatehouse.db"));
    assert_eq!(c.system_url.to_string(), "http://localhost:8080/");
    assert_eq!(c.sessions.idle_timeout.as_secs(), 1800);
    assert_eq!(c.security.invite_ttl.as_secs(), 7 * 86400);
    assert_eq!(c.doctor.disk_min_free.0, 1 << 30);
    assert_eq!(loaded.origin("database_url").to_string(), "embedded default");
}

#[test]
fn a_file_sets_only_what_it_names_and_paths_are_relative_to_it() {
    let loaded = file("system_url: https://billing.example.com/portal/\nsessions:\n  idle_timeout: 2h\n").unwrap();
    let c = &loaded.config;
    assert_eq!(c.system_url.to_string(), "https://billing.example.com/portal/");
    assert_eq!(c.sessions.idle_timeout.as_secs(), 7200);
    assert_eq!(c.sessions.absolute_timeout.as_secs(), 12 * 3600, "unnamed keys keep their defaults");
    assert_eq!(c.database_url.sqlite_path(), Some("conf/gatehouse-data/gatehouse.db"));
    assert_eq!(c.sessions.dir, "conf/gatehouse-data/sessions");
    // A comment-only file is an empty document: all defaults.
    assert!(file("# nothing here\n").is_ok());
}

#[test]
fn environment_overrides_win_and_are_typed() {
    let loaded = load_from_str(
        Some("database_url: sqlite://a.db\nsessions:\n  store: database\n"),
        ConfigSource::File("gatehouse.yaml".into()),
        env(&[
            ("GATEHOUSE_DATABASE_URL", "postgres://app:pw@db.internal/gh"),
            ("GATEHOUSE_SESSIONS__STORE", "files"),
            ("GATEHOUSE_SESSIONS__IP_CHECK", "false"),
            ("GATEHOUSE_SECURITY__LOCKOUT__MAX_FAILURES", "9"),
            ("GATEHOUSE_TRUSTED_PROXIES__RANGES", "10.0.0.0/8, 192.0.2.1"),
            ("GATEHOUSE_CONFIG", "ignored-here"),
            ("GATEHOUSE_TEST_POSTGRES_URL", "not a key"),
            ("HOME", "/root"),
        ]),
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.database_url.backend(), Backend::Postgres);
    assert_eq!(c.sessions.store, SessionStore::Files);
    assert!(!c.sessions.ip_check);
    assert_eq!(c.security.lockout.max_failures, 9);
    assert_eq!(c.trusted_proxies.ranges, vec!["10.0.0.0/8", "192.0.2.1"]);
    assert_eq!(loaded.origin("database_url").to_string(), "environment variable GATEHOUSE_DATABASE_URL");
    assert_eq!(loaded.origin("system_url").to_string(), "embedded default");
}

#[test]
fn bad_environment_overrides_name_the_variable() {
    for (var, value, expect) in [
        ("GATEHOUSE_SESIONS__STORE", "files", "not a configuration key"),
        ("GATEHOUSE_SESSIONS__IP_CHECK", "maybe", "not a boolean"),
        ("GATEHOUSE_SESSIONS__IDLE_TIMEOUT", "soon", "invalid duration"),
        ("GATEHOUSE_TIMEZONE", "Mars/Olympus", "unknown time zone"),
        ("GATEHOUSE_SESSIONS", "x", "is a section"),
    ] {
        let err = load_from_str(None, ConfigSource::Embedded, env(&[(var, value)])).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with(&format!("environment variable {var}: ")), "{text}");
        assert!(text.contains(expect), "{text}");
    }
}

#[test]
fn every_kind_of_bad_file_is_refused_with_its_location() {
    // (file, line, column, what the message must say)
    let cases = [
        ("listen: [\n", 1, 9, "expected"),
        ("system_url: http://x/\nsesions:\n  store: files\n", 2, 1, "unknown field `sesions`"),
        ("security:\n  password_min_length: twelve\n", 2, 24, "u64"),
        ("sessions:\n  idle_timeout: ten minutes\n", 2, 17, "invalid duration `ten minutes`"),
        ("system_url: \"ht tp://x\"\n", 1, 13, "invalid URL"),
        ("license:\n  server: ftp://licensing.example/\n", 2, 11, "not http or https"),
        ("timezone: Mars/Olympus\n", 1, 11, "unknown time zone `Mars/Olympus`"),
        ("database_url: mysql://db/gh\n", 1, 15, "unsupported database URL scheme `mysql`"),
        ("sessions:\n  store: redis\n", 2, 10, "unknown variant `redis`"),
        ("accounts:\n  signup_required: [city, shoe_size]\n", 2, 27, "unknown variant `shoe_size`, expected one of"),
        ("doctor:\n  disk_min_free: lots\n", 2, 18, "invalid size"),
        // Values that parse but cannot work.
        ("security:\n  lockout: { max_failures: 0 }\n", 2, 28, "expected 1 to 100"),
        ("security:\n  lockout:\n    ip_max_failures: 0\n", 3, 22, "0 would lock"),
        ("security:\n  reset_token_ttl: 0s\n", 2, 20, "is zero"),
        ("security:\n  invite_ttl: 0s\n", 2, 15, "is zero"),
        ("security:\n  password_min_length: 6\n", 2, 24, "too short"),
        ("system_url: \"http://u:p@billing.example.com/\"\n", 1, 13, "user name or password"),
        ("system_url: \"https://billing.example.com/?a=1\"\n", 1, 13, "has a query"),
        ("system_url: \"https://billing.example.com/#x\"\n", 1, 13, "has a fragment"),
    ];
    for (text, line, column, says) in cases {
        let (l, c, message) = located(text);
        assert_eq!((l, c), (line, column), "{text:?}: {message}");
        assert!(message.contains(says), "{text:?}: {message}");
        assert!(!message.contains('\n'), "one line: {message:?}");
    }
}

#[test]
fn the_location_of_each_top_level_key_is_known() {
    let loaded = file("listen: \"127.0.0.1:9\"\n\ndatabase_url: \"postgres://u:p@h/db\"\n").unwrap();
    assert_eq!(loaded.origin("database_url").to_string(), "conf/gatehouse.yaml:3:15");
    let gatehouse::config::Origin::File { line, column, .. } = loaded.origin("database_url") else { panic!() };
    assert_eq!((line, column), (3, 15), "a location a fix can edit");
}

#[test]
fn secrets_are_redacted_for_display() {
    let loaded = file(
        "database_url: postgres://app:dbsecret@db/gh\nmail:\n  smtp: { password: smtpsecret }\n\
         license:\n  key: licsecret\ntwofa:\n  duo: { client_secret: duosecret }\n",
    )
    .unwrap();
    let shown = loaded.config.to_redacted_yaml();
    for secret in ["dbsecret", "smtpsecret", "licsecret", "duosecret"] {
        assert!(!shown.contains(secret), "{secret} leaked:\n{shown}");
    }
    assert!(shown.contains("postgres://app:***@db/gh"), "{shown}");
    assert_eq!(shown.matches("***").count(), 4, "{shown}");
    // Redaction does not touch the live configuration.
    assert_eq!(loaded.config.license.key.expose(), "licsecret");
    // Nor can a secret reach a log line through Debug, or JSON through serde.
    let debug = format!("{:?}", loaded.config);
    let json = serde_json::to_string(&loaded.config).unwrap();
    for secret in ["smtpsecret", "licsecret", "duosecret"] {
        assert!(!debug.contains(secret) && !json.contains(secret), "{secret} leaked");
    }
}

#[test]
fn secrets_survive_environment_overrides_of_other_keys() {
    let text = "mail:\n  smtp: { password: smtpsecret }\nlicense:\n  key: licsecret\n";
    let env = vec![
        ("GATEHOUSE_LISTEN".to_string(), "127.0.0.1:9000".to_string()),
        ("GATEHOUSE_TWOFA__DUO__CLIENT_SECRET".to_string(), "from-env".to_string()),
    ];
    let loaded = load_from_str(Some(text), ConfigSource::Embedded, env).unwrap();
    assert_eq!(loaded.config.listen, "127.0.0.1:9000");
    assert_eq!(loaded.config.mail.smtp.password.expose(), "smtpsecret", "kept through the override of another key");
    assert_eq!(loaded.config.license.key.expose(), "licsecret");
    assert_eq!(loaded.config.twofa.duo.client_secret.expose(), "from-env", "a secret can come from the environment");
}
