//! gatehouse: the account and authentication core of a hosting client area, and the
//! diagnostic toolkit that validates a deployment of it.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod cron;
pub mod doctor;
pub mod error;
pub mod mail;
pub mod net;
pub mod report;
pub mod store;
pub mod system;
pub mod web;

pub use error::{Error, Result};
