//! Security questions: the admin keeps the list; a user picks one and answers it; the answer is
//! asked during password reset as an extra step, never as a way in by itself.

use serde::Serialize;
use serde_json::json;

use super::AuditAction;
use super::Target;
use super::{Accounts, Actor, audit};
use crate::error::{Code, Error, Result};
use crate::store::{composed, is_unique_violation};

#[derive(Debug, Clone, Serialize, sqlx_macros::FromRow)]
pub struct SecurityQuestion {
    pub id: i64,
    pub question: String,
    /// How many users have chosen this question.
    pub users: i64,
    #[serde(serialize_with = "crate::store::serialize_ts")]
    pub created_at: i64,
}

const SELECT_QUESTION: &str = "SELECT q.id, q.question, q.created_at, \
     (SELECT COUNT(*) FROM users u WHERE u.security_question_id = q.id) AS users FROM security_questions q";

impl Accounts {
    pub async fn add_security_question(&self, actor: &Actor, question: &str) -> Result<SecurityQuestion> {
        let question = question.trim();
        if question.is_empty() {
            return Err(Error::invalid("the question must not be empty"));
        }
        let mut tx = self.db.begin().await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO security_questions (question, created_at) VALUES ($1, $2) RETURNING id")
                .bind(question)
                .bind(self.db.now())
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| match is_unique_violation(&e) {
                    true => Error::refused(Code::AlreadyExists, format!("the question `{question}` already exists")),
                    false => e.into(),
                })?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::SecurityQuestionAdd,
            (Target::SecurityQuestion, Some(id)),
            json!({"question": question}),
        )
        .await?;
        tx.commit().await?;
        self.security_question(id).await
    }

    pub async fn security_question(&self, id: i64) -> Result<SecurityQuestion> {
        sqlx::query_as(composed(format!("{SELECT_QUESTION} WHERE q.id = $1")))
            .bind(id)
            .fetch_optional(self.db.pool())
            .await?
            .ok_or_else(|| Error::not_found("security question", id))
    }

    pub async fn list_security_questions(&self) -> Result<Vec<SecurityQuestion>> {
        Ok(sqlx::query_as(composed(format!("{SELECT_QUESTION} ORDER BY q.id"))).fetch_all(self.db.pool()).await?)
    }

    /// Deletes a question nobody has chosen.
    pub async fn remove_security_question(&self, actor: &Actor, id: i64) -> Result<()> {
        let q = self.security_question(id).await?;
        let mut tx = self.db.begin().await?;
        let in_use: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE security_question_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if in_use > 0 {
            return Err(Error::refused(
                Code::QuestionInUse,
                format!("security question {id} is chosen by {in_use} user(s) and cannot be deleted"),
            ));
        }
        sqlx::query("DELETE FROM security_questions WHERE id = $1").bind(id).execute(&mut *tx).await?;
        audit::record(
            &mut tx,
            self.db.now(),
            actor,
            AuditAction::SecurityQuestionRemove,
            (Target::SecurityQuestion, Some(id)),
            json!({"question": q.question}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
