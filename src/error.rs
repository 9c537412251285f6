//! The one error type of the library. Every refusal carries a stable machine-readable code that
//! the CLI prints as `error[code]: message` and the HTTP API returns as `{"error":{"code":…}}`.

use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Stable error codes. They are part of the public contract: never rename one.
pub mod code {
    pub const USER_EXISTS: &str = "user_exists";
    pub const INVALID_EMAIL: &str = "invalid_email";
    pub const BANNED_EMAIL_DOMAIN: &str = "banned_email_domain";
    pub const ALREADY_ASSOCIATED: &str = "already_associated";
    pub const NOT_ASSOCIATED: &str = "not_associated";
    pub const OWNER_CANNOT_BE_REMOVED: &str = "owner_cannot_be_removed";
    pub const OWNER_PERMISSIONS_FIXED: &str = "owner_permissions_fixed";
    pub const INVALID_PERMISSION: &str = "invalid_permission";
    pub const USER_HAS_CLIENTS: &str = "user_has_clients";
    pub const NOT_FOUND: &str = "not_found";
    pub const INVALID_INPUT: &str = "invalid_input";
    pub const WEAK_PASSWORD: &str = "weak_password";
    pub const INVITE_INVALID: &str = "invite_invalid";
    pub const INVITE_EXPIRED: &str = "invite_expired";
    pub const QUESTION_IN_USE: &str = "question_in_use";
    pub const ALREADY_EXISTS: &str = "already_exists";
    pub const CLIENT_CLOSED: &str = "client_closed";
    pub const ALREADY_INITIALIZED: &str = "already_initialized";
    pub const INVALID_TOKEN: &str = "invalid_token";
    pub const INVALID_CODE: &str = "invalid_code";
    pub const INVALID_CREDENTIALS: &str = "invalid_credentials";
    pub const LOCKED_OUT: &str = "locked_out";
    pub const FORBIDDEN: &str = "forbidden";
    pub const UNAUTHORIZED: &str = "unauthorized";
    pub const INVALID_CONFIG: &str = "invalid_config";
    pub const INVALID_USAGE: &str = "invalid_usage";
    pub const DATABASE_UNAVAILABLE: &str = "database_unavailable";
    pub const DATABASE_ERROR: &str = "database_error";
    pub const INTERNAL: &str = "internal";
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that the rules refuse; nothing was changed.
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A command-line argument that cannot be used; nothing was done.
    #[error("{0}")]
    Usage(String),
    /// The database could not be reached or opened.
    #[error("{0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn refused(code: &'static str, message: impl Into<String>) -> Self {
        Error::Refused { code, message: message.into() }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::refused(code::NOT_FOUND, format!("{what} {id} does not exist"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refused(code::INVALID_INPUT, message)
    }

    pub fn code(&self) -> &'static str {
        match self {
            Error::Refused { code, .. } => code,
            Error::Config(_) => code::INVALID_CONFIG,
            Error::Usage(_) => code::INVALID_USAGE,
            Error::Unavailable(_) => code::DATABASE_UNAVAILABLE,
            Error::Database(_) => code::DATABASE_ERROR,
            Error::Internal(_) => code::INTERNAL,
        }
    }

    /// Process exit code: 1 for a refusal, 2 for unusable arguments, configuration or database,
    /// 3 for an internal failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Refused { .. } => 1,
            Error::Config(_) | Error::Usage(_) | Error::Unavailable(_) => 2,
            Error::Database(_) | Error::Internal(_) => 3,
        }
    }
}
