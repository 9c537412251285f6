//! Banned email domains: creating a client or user, or changing an email, to an address in a
//! banned domain (or, with `security.banned_email_subdomains`, any of its subdomains) is
//! refused, and the refusal is counted against the domain.

use serde::Serialize;

use super::AuditAction;
use super::Target;
use super::email::{Email, normalize_domain};
use super::{Accounts, Actor, audit};
use crate::error::{Code, Error, Result};
use crate::store::{composed, is_unique_violation};

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct BannedDomain {
    pub domain: String,
    pub blocked_count: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
}

impl Accounts {
    pub async fn ban_domain(&self, actor: &Actor, domain: &str) -> Result<BannedDomain> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.db.begin().await?;
        let row: BannedDomain = sqlx::query_as(
            "INSERT INTO banned_email_domains (domain, blocked_count, created_at) VALUES ($1, 0, $2) RETURNING *",
        )
        .bind(&domain)
        .bind(self.db.now())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => Error::refused(Code::AlreadyExists, format!("{domain} is already banned")),
            false => e.into(),
        })?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::BannedEmailAdd,
            (Target::BannedEmail, None),
            serde_json::json!({"domain": domain}),
        )
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    pub async fn list_banned_domains(&self) -> Result<Vec<BannedDomain>> {
        Ok(sqlx::query_as("SELECT * FROM banned_email_domains ORDER BY domain").fetch_all(self.db.pool()).await?)
    }

    pub async fn unban_domain(&self, actor: &Actor, domain: &str) -> Result<()> {
        let domain = normalize_domain(domain)?;
        let mut tx = self.db.begin().await?;
        let gone = sqlx::query("DELETE FROM banned_email_domains WHERE domain = $1")
            .bind(&domain)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(Error::not_found("banned domain", &domain));
        }
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::BannedEmailRemove,
            (Target::BannedEmail, None),
            serde_json::json!({"domain": domain}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The banned entry that covers `email`'s domain, if any.
    pub(crate) async fn banned_entry_for(&self, email: &Email) -> Result<Option<String>> {
        let mut candidates = vec![email.domain.clone()];
        if self.policy.banned_email_subdomains {
            let mut rest = email.domain.as_str();
            while let Some((_, parent)) = rest.split_once('.') {
                candidates.push(parent.to_string());
                rest = parent;
            }
        }
        let sql = format!(
            "SELECT domain FROM banned_email_domains WHERE domain IN ({}) ORDER BY LENGTH(domain) DESC",
            crate::store::placeholders(1..=candidates.len())
        );
        let mut query = sqlx::query_scalar::<_, String>(composed(sql));
        for c in &candidates {
            query = query.bind(c);
        }
        Ok(query.fetch_optional(self.db.pool()).await?)
    }

    /// Refuses an address in a banned domain, counting the blocked attempt. The count is kept
    /// even though the write that triggered it is refused.
    pub(crate) async fn refuse_banned(&self, email: &Email) -> Result<()> {
        let Some(domain) = self.banned_entry_for(email).await? else {
            return Ok(());
        };
        sqlx::query("UPDATE banned_email_domains SET blocked_count = blocked_count + 1 WHERE domain = $1")
            .bind(&domain)
            .execute(self.db.pool())
            .await?;
        Err(Error::refused(
            Code::BannedEmailDomain,
            format!("email addresses at {} are not accepted (banned domain {domain})", email.domain),
        ))
    }
}
