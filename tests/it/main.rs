//! The integration tests, as one test binary: each module below was once its own binary, and
//! each of those linked the whole crate and its dependencies again (19 links of ~330 MB).
//! `cargo test --test it browser::` runs one module.

#[macro_use]
mod support;

mod accounts;
mod adversary_escalation;
mod adversary_evidence;
mod adversary_hashing;
mod adversary_license;
mod adversary_lockout;
mod adversary_paths;
mod adversary_races;
mod adversary_takeover;
mod browser;
mod browser_admin;
mod browser_passkeys;
mod cli;
mod cli_auth;
mod config;
mod contrib;
mod doctor_checks;
mod doctor_engine;
mod doctor_fix;
mod doctor_healthy;
mod doctor_network;
mod doctor_nodes;
mod doctor_profiles;
mod doctor_service;
mod doctor_traffic;
mod layers;
mod license;
mod licensing_vendor;
mod migrations;
mod report_bundle;
mod security_map;
mod store_faults;
mod web_admin;
mod web_admin_area;
mod web_admin_users;
mod web_duo;
mod web_fleet;
mod web_headers;
mod web_limits;
mod web_login;
mod web_notices;
mod web_page_view;
mod web_passkeys;
mod web_reset_mail;
mod web_sign_in;
mod web_twofa;
mod web_unavailable;
