//! Outgoing mail: messages are written to the `outbox` table in the same transaction as the
//! event that causes them (a reset request, an invite), and delivered later by `gatehouse cron`
//! through the configured transport, with retries and backoff. A failure is recorded on the
//! message with the transport's error, so the doctor and operators can see why mail is unsent.

pub mod humane;
mod outbox;
mod transport;

pub use outbox::{
    Delivery, OutboxMessage, QueueStats, delivered_since_last_failure, enqueue, for_recipient, last_failure,
    requeue_failed, stats,
};
pub use transport::Transport;
