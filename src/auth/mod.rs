//! Authentication: login with lockout and a second factor (TOTP, backup code, Duo Universal
//! Prompt), sessions in two stores, password reset and impersonation links, sign-up. `Auth` is
//! the service the web and CLI faces call; the secrets it checks are made in `crate::secrets`.

mod backup_code;
pub mod devices;
pub mod duo;
mod guard;
mod lockout;
mod notices;
pub mod one_time;
pub mod passkeys;
mod profile;
mod reauth;
mod service;
pub mod sessions;
mod sign_in;
mod signup;
pub mod throttle;

pub use guard::Checked;
pub use notices::{NOT_ME_TTL_SECS, Notice};
pub use passkeys::{Answer as PasskeyAnswer, PasskeyEntry};
pub use profile::ProfileChange;
pub use reauth::{Proof, REAUTH_WINDOW_SECS};
pub use service::{Auth, IMPERSONATION_TTL_SECS, SignedIn, TotpEnrolment, Visitor};
pub use sign_in::{CodeProof, DuoAnswer, Prompt, Step};
pub use signup::{Joined, SignUp, SignedUp};
