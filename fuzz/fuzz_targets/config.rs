//! The config loader: `Config::load` (TOML text overlaid by `SEKISHO_<SECTION>__<KEY>`
//! variables, then validation), and the values built from an accepted config at start-up.
//!
//! Input: TOML text, optionally followed by a line `%%` and `NAME=VALUE` lines, the
//! environment the loader is given (the process environment is never read or changed).
//!
//! An accepted config must turn into its domain values without a panic, and `config check`'s
//! masked output must itself load to the same config (with the masked signing key left out).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sekisho_axum::HttpSettings;
use sekisho_core::Config;
use sekisho_core::clock::SystemClock;
use sekisho_core::login::password::Passwords;
use sekisho_core::login::throttle::LoginThrottle;
use sekisho_core::token::managed::KeyEncryptionKey;
use sekisho_core::token::{HmacKey, SignatureAlgorithm, TokenPolicy};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (toml_text, env) = match text.split_once("\n%%\n") {
        Some((t, e)) => (t, e),
        None => (text, ""),
    };
    let vars: Vec<(String, String)> = env
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let Ok(config) = Config::load(toml_text, vars) else {
        return;
    };

    // What `AuthBuilder::build` and `AppState::new` make of it.
    let algorithm = SignatureAlgorithm::parse(&config.jwt.algorithm).expect("validated");
    if algorithm.is_symmetric() {
        let secret = config
            .jwt
            .signing_key
            .as_ref()
            .map_or(&[7u8; 64][..], |k| k.expose().as_bytes());
        let key = HmacKey::new(algorithm, secret).expect("validated");
        TokenPolicy::new(&config.jwt, Arc::new(key));
    } else if let Some(kek) = &config.jwt.key_encryption_key {
        KeyEncryptionKey::derive(kek.expose().as_bytes()).expect("validated");
    }
    Passwords::new(&config.passwords);
    LoginThrottle::new(&config.throttle, Arc::new(SystemClock));
    HttpSettings::from_config(&config);

    let shown = config.to_masked_toml();
    let mut table: toml::Table = toml::from_str(&shown)
        .unwrap_or_else(|e| panic!("config check printed unreadable TOML: {e}\n{shown}"));
    let jwt = table.get_mut("jwt").and_then(|v| v.as_table_mut()).unwrap();
    if config.jwt.signing_key.is_some() {
        assert_eq!(jwt.remove("signing_key").unwrap().as_str(), Some("********"));
    }
    let again = Config::load(&toml::to_string(&table).unwrap(), Vec::new())
        .unwrap_or_else(|e| panic!("config check printed a config that does not load: {e}\n{shown}"));
    let mut expected = config.clone();
    expected.jwt.signing_key = None;
    assert_eq!(again.to_masked_toml(), expected.to_masked_toml());
});
