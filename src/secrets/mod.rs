//! Secrets, made and checked: random tokens and their hashes, password hashing (argon2id on
//! its own threads), TOTP, backup codes and
//! HS512 JSON Web Tokens. A leaf: it knows nothing of accounts, sessions or
//! storage, so every domain module can use it without depending on another.

pub mod backup_codes;
mod hasher;
pub mod jwt;
pub mod passwords;
pub mod tokens;
pub mod totp;
