//! gatehouse: the account and authentication core of a hosting client area, and the
//! diagnostic toolkit that validates a deployment of it.
//!
//! The modules form layers; each uses only those below it, never one beside or above it
//! (`tests/it/layers.rs` reads `src/` and holds every file to this):
//!
//! system, config → error → store → secrets → mail, net → accounts, license → auth → services → cron → doctor → report → web → cli
//!
//! So the domain (accounts, license, auth, mail, net) and its jobs (cron) never know the doctor, the doctor never
//! knows the faces (web, cli), and secrets are made and checked in one leaf that every domain
//! module can use.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod cron;
pub mod doctor;
pub mod error;
pub mod license;
pub mod mail;
pub mod net;
pub mod report;
pub mod secrets;
pub mod services;
pub mod store;
pub mod system;
pub mod web;

pub use error::{Error, Result};
