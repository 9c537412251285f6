//! What a page handler needs before it can do its work, as axum extractors. Each one rejects
//! with the response to send instead — the 403 page of a refused form, the redirect to the
//! login page or to two-factor enrolment, "Access denied" for a non-owner — so a handler starts
//! with its own work instead of the same prelude.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{Form, check_csrf, signed_in};
use crate::accounts::{Membership, User};
use crate::auth::sessions::Session;
use crate::secrets::tokens::{self, TokenKind};
use crate::web::AppState;
use crate::web::context::Ctx;
use crate::web::render::{message, see_other};

/// A link's token from the path (`/password/reset/{token}`, `/invite/{token}`,
/// `/login/as/{token}`). A segment that is not shaped like a token of the route's kind is a 404
/// before anything is looked up or drawn: request text never reaches a page's links or forms.
pub struct LinkToken<const KIND: u8>(pub String);

pub const RESET: u8 = 0;
pub const INVITE: u8 = 1;
pub const IMPERSONATION: u8 = 2;
pub const NOT_ME: u8 = 3;

impl<const KIND: u8> FromRequestParts<AppState> for LinkToken<KIND> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let kind = match KIND {
            RESET => TokenKind::PasswordReset,
            INVITE => TokenKind::Invite,
            NOT_ME => TokenKind::NotMe,
            _ => TokenKind::Impersonation,
        };
        let not_a_link = || {
            let text = "This link is not valid. Check that you copied the whole link from the email.";
            message(state, None, StatusCode::NOT_FOUND, "Link not valid", text)
        };
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| not_a_link())?;
        if !tokens::has_shape(kind, &raw) {
            return Err(not_a_link());
        }
        Ok(Self(raw))
    }
}

async fn ctx(parts: &mut Parts, state: &AppState) -> Result<Ctx, Response> {
    Ctx::from_request_parts(parts, state).await.map_err(IntoResponse::into_response)
}

/// The form of a request, after the CSRF check; `session` is the one whose token it carried.
pub async fn checked_form(request: Request, state: &AppState) -> Result<(Ctx, Session, Form), Response> {
    let (mut parts, body) = request.into_parts();
    let ctx = ctx(&mut parts, state).await?;
    let headers = parts.headers.clone();
    let form =
        Form::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
    let session = check_csrf(state, &ctx, &headers, &form)?;
    Ok((ctx, session, form))
}

/// A form that passed the CSRF check, from anyone (login, sign-up, password reset).
pub struct CheckedForm {
    pub session: Session,
    pub form: Form,
}

impl FromRequest<AppState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (_, session, form) = checked_form(request, state).await?;
        Ok(Self { session, form })
    }
}

/// The signed-in user. `ENROLLING` pages (the security page) are open to a user who must still
/// enrol a second factor; every other page sends that user to enrolment first.
pub struct SignedIn<const ENROLLING: bool = false> {
    pub user: User,
    pub session: Session,
    /// The clients the user belongs to (closed ones too), by client id.
    pub memberships: Vec<Membership>,
}

impl<const ENROLLING: bool> FromRequestParts<AppState> for SignedIn<ENROLLING> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = ctx(parts, state).await?;
        let (user, session) = signed_in(state, &ctx, ENROLLING)?;
        Ok(Self { user, session, memberships: ctx.memberships().to_vec() })
    }
}

/// A signed-in user's form that passed the CSRF check.
pub struct UserForm<const ENROLLING: bool = false> {
    pub user: User,
    pub session: Session,
    pub form: Form,
    /// The clients the user belongs to (closed ones too), by client id.
    pub memberships: Vec<Membership>,
}

impl<const ENROLLING: bool> FromRequest<AppState> for UserForm<ENROLLING> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (ctx, _, form) = checked_form(request, state).await?;
        let (user, session) = signed_in(state, &ctx, ENROLLING)?;
        Ok(Self { user, session, form, memberships: ctx.memberships().to_vec() })
    }
}

/// The signed-in user with their membership of the client they are working in.
pub struct Member {
    pub user: User,
    pub session: Session,
    pub membership: Membership,
}

impl Member {
    fn of(state: &AppState, ctx: &Ctx) -> Result<Self, Response> {
        let (user, session) = signed_in(state, ctx, false)?;
        match session.data.client_id.and_then(|id| ctx.membership(id)) {
            Some(membership) => Ok(Self { user, session, membership }),
            None => Err(see_other(state, "clientarea", None)),
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let ctx = ctx(parts, state).await?;
        Member::of(state, &ctx)
    }
}

/// A form only the owner of the current client may send, after the CSRF check.
pub struct OwnerForm {
    pub user: User,
    pub session: Session,
    pub membership: Membership,
    pub form: Form,
}

impl FromRequest<AppState> for OwnerForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (ctx, _, form) = checked_form(request, state).await?;
        let Member { user, session, membership } = Member::of(state, &ctx)?;
        if !membership.is_owner {
            let text = "Only the account owner can manage its users.";
            return Err(message(state, Some(&session), StatusCode::FORBIDDEN, "Access denied", text));
        }
        Ok(Self { user, session, membership, form })
    }
}
