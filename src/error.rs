//! The one error type of the library. Every refusal carries a stable machine-readable code that
//! the CLI prints as `error[code]: message` and the HTTP API returns as `{"error":{"code":…}}`.

use crate::config::ConfigError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Defines [`Code`] from one table: each code with the HTTP status the API answers and the exit
/// code the CLI ends with, so neither face keeps its own list.
macro_rules! codes {
    ($($variant:ident = $text:literal, $status:literal, $exit:literal;)*) => {
        /// Stable error codes, part of the public contract (the CLI prints `error[code]`, the API
        /// answers `{"error":{"code":…}}`): never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $($variant),*
        }

        impl Code {
            pub const ALL: &[Code] = &[$(Code::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $text),*
                }
            }

            /// The HTTP status the admin API answers with.
            pub fn http_status(self) -> u16 {
                match self {
                    $(Code::$variant => $status),*
                }
            }

            /// The process exit code: 1 a refusal, 2 unusable arguments, configuration or
            /// database, 3 an internal failure.
            pub fn exit_code(self) -> i32 {
                match self {
                    $(Code::$variant => $exit),*
                }
            }
        }
    };
}

// code = "text", HTTP status, exit code;
codes! {
    UserExists = "user_exists", 409, 1;
    InvalidEmail = "invalid_email", 422, 1;
    BannedEmailDomain = "banned_email_domain", 422, 1;
    AlreadyAssociated = "already_associated", 409, 1;
    NotAssociated = "not_associated", 422, 1;
    OwnerCannotBeRemoved = "owner_cannot_be_removed", 409, 1;
    OwnerPermissionsFixed = "owner_permissions_fixed", 422, 1;
    InvalidPermission = "invalid_permission", 422, 1;
    UserHasClients = "user_has_clients", 409, 1;
    NotFound = "not_found", 404, 1;
    InvalidInput = "invalid_input", 422, 1;
    WeakPassword = "weak_password", 422, 1;
    InviteInvalid = "invite_invalid", 422, 1;
    InviteExpired = "invite_expired", 422, 1;
    QuestionInUse = "question_in_use", 409, 1;
    AlreadyExists = "already_exists", 409, 1;
    ClientClosed = "client_closed", 422, 1;
    AlreadyInitialized = "already_initialized", 422, 1;
    InvalidToken = "invalid_token", 422, 1;
    InvalidCode = "invalid_code", 422, 1;
    InvalidCredentials = "invalid_credentials", 422, 1;
    LockedOut = "locked_out", 422, 1;
    Busy = "busy", 429, 1;
    Forbidden = "forbidden", 403, 1;
    Unauthorized = "unauthorized", 401, 1;
    MethodNotAllowed = "method_not_allowed", 405, 1;
    LicenseInvalid = "license_invalid", 403, 1;
    InvalidConfig = "invalid_config", 500, 2;
    InvalidUsage = "invalid_usage", 422, 2;
    DatabaseUnavailable = "database_unavailable", 503, 2;
    DatabaseError = "database_error", 500, 3;
    Internal = "internal", 500, 3;
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request that the rules refuse; nothing was changed.
    #[error("{message}")]
    Refused { code: Code, message: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A command-line argument that cannot be used; nothing was done.
    #[error("{0}")]
    Usage(String),
    /// The database could not be reached or opened.
    #[error("{0}")]
    Unavailable(String),
    /// The session store could not keep a session (its folder is gone or read-only, the disk
    /// is full): a sign-in cannot stick. Unavailability, told apart so the page can say so.
    #[error("{0}")]
    SessionStore(String),
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

/// A PostgreSQL SQLSTATE: always five characters. SQLite's codes are numbers below 10,000
/// (extended codes included), so the two never meet — an all-digit SQLSTATE such as `22021` is
/// not SQLite's 5 ("busy") in disguise.
fn sqlstate(code: &str) -> Option<&str> {
    (code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(code)
}

/// Text the database cannot store (PostgreSQL refuses a NUL byte): the request's fault.
fn is_unstorable_text(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().is_some_and(|c| sqlstate(&c).is_some_and(|s| s == "22021" || s == "22P05")))
}

impl From<sqlx::Error> for Error {
    /// A database that cannot answer now (down, unreachable, full, busy) is unavailability —
    /// 503 and "try again" — not a fault of the request or of gatehouse.
    fn from(e: sqlx::Error) -> Self {
        if is_unstorable_text(&e) {
            return Error::invalid("the text sent holds a character that cannot be stored (a NUL byte)");
        }
        if is_unavailable(&e) {
            Error::Unavailable(format!("the database is unavailable: {}", e.to_string().lines().next().unwrap_or("")))
        } else {
            Error::Database(e)
        }
    }
}

/// True when `e` says the database cannot answer now rather than that the query is wrong: the
/// pool gave up, the connection failed, the server shuts down or is out of resources, SQLite's
/// file is full, locked or unreadable.
fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|code| match sqlstate(&code) {
            // PostgreSQL: connection exceptions (08), insufficient resources (53: disk full,
            // out of memory, too many connections), operator intervention (57P: shutdown).
            Some(state) => state.starts_with("08") || state.starts_with("53") || state.starts_with("57P"),
            // SQLite (extended codes keep the primary code in the low byte): BUSY, LOCKED,
            // IOERR, FULL, CANTOPEN.
            None => code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 10 | 13 | 14)),
        }),
        _ => false,
    }
}

impl Error {
    pub fn refused(code: Code, message: impl Into<String>) -> Self {
        Error::Refused { code, message: message.into() }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::refused(Code::NotFound, format!("{what} {id} does not exist"))
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::refused(Code::InvalidInput, message)
    }

    pub fn code(&self) -> Code {
        match self {
            Error::Refused { code, .. } => *code,
            Error::Config(_) => Code::InvalidConfig,
            Error::Usage(_) => Code::InvalidUsage,
            Error::Unavailable(_) | Error::SessionStore(_) => Code::DatabaseUnavailable,
            Error::Database(_) => Code::DatabaseError,
            Error::Internal(_) => Code::Internal,
        }
    }

    /// Process exit code (see [`Code::exit_code`]).
    pub fn exit_code(&self) -> i32 {
        self.code().exit_code()
    }
}

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_are_unique_snake_case_and_map_to_statuses_and_exit_codes() {
        let texts: std::collections::BTreeSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(texts.len(), Code::ALL.len(), "two codes share a text");
        assert!(texts.iter().all(|t| t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        assert_eq!((Code::NotFound.http_status(), Code::NotFound.exit_code()), (404, 1));
        assert_eq!((Code::UserExists.http_status(), Code::WeakPassword.http_status()), (409, 422));
        assert_eq!((Code::DatabaseUnavailable.http_status(), Code::DatabaseUnavailable.exit_code()), (503, 2));
        assert_eq!((Code::Internal.http_status(), Code::Internal.exit_code()), (500, 3));
        assert_eq!(serde_json::to_string(&Code::LockedOut).unwrap(), "\"locked_out\"");
    }
}
