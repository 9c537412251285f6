//! Authentication: password hashing (argon2id, legacy verify + rehash), secret tokens,
//! sessions in two stores, lockout, TOTP and backup codes, Duo Universal Prompt, password reset
//! and impersonation links. `Auth` is the service the web and CLI faces call.

pub mod backup_codes;
pub mod duo;
mod hasher;
mod lockout;
pub mod one_time;
pub mod passwords;
mod profile;
mod service;
pub mod sessions;
mod signup;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use profile::ProfileChange;
pub use service::{Auth, IMPERSONATION_TTL_SECS, Login};
pub use signup::{SignUp, SignedUp};
