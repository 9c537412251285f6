//! `admin.roles`: "access denied" for admins — an admin without a role holds no permission; a
//! role that may create something but not manage it leaves its admins locked out of what they
//! just created; impersonation needs its permission, the user listing to find whom to enter as,
//! and a system_url to build the one-time link from.

use std::collections::BTreeSet;

use crate::accounts::AdminPermission as P;
use crate::doctor::check::{Check, CheckFuture, Meta, Outcome, judged};
use crate::doctor::context::Context;
use crate::net::encounters::{self, Kind};

pub struct Roles;

static META: Meta = Meta {
    id: "admin.roles",
    title: "Admin roles grant what admins need",
    tags: &["admin", "accounts"],
    symptom: "An admin gets \"access denied\" (HTTP 403 naming a permission) for something they are meant to do.",
    cause: "The admin has no role, or their role lacks the permission — typically one that can create clients or \
            users but not manage them, or that may impersonate without seeing users.",
    next_steps: "Give every admin a role (`gatehouse admin role assign`) and complete the roles \
                 (`gatehouse admin role set NAME --permissions …`).",
    prerequisites: &["database.connectivity"],
    ..Meta::BASE
};

/// Pairs where holding the first without the second leaves an admin stuck halfway.
const NEEDS: &[(P, P)] = &[
    (P::ClientsCreate, P::ClientsManage),
    (P::ClientsManage, P::ClientsView),
    (P::UsersCreate, P::UsersManage),
    (P::UsersManage, P::UsersView),
    (P::UsersImpersonate, P::UsersView),
];

impl Check for Roles {
    fn meta(&self) -> &'static Meta {
        &META
    }

    fn run<'a>(&'a self, ctx: &'a Context) -> CheckFuture<'a> {
        judged(async move {
            let accounts = ctx.accounts().await?;
            let (admins, roles) = match (accounts.list_admins().await, accounts.list_roles().await) {
                (Ok(a), Ok(r)) => (a, r),
                (Err(e), _) | (_, Err(e)) => return Err(Outcome::error(format!("cannot read admins and roles: {e}"))),
            };
            let active: Vec<_> = admins.iter().filter(|a| a.disabled == 0).collect();
            let without_role: Vec<&str> =
                active.iter().filter(|a| a.role_id.is_none()).map(|a| a.username.as_str()).collect();
            let mut incomplete = Vec::new();
            for role in &roles {
                for (has, lacks) in NEEDS {
                    if role.permissions.contains(has) && !role.permissions.contains(lacks) {
                        incomplete.push(format!("{}: {has} without {lacks}", role.name));
                    }
                }
            }
            let held: BTreeSet<P> = active
                .iter()
                .filter_map(|a| roles.iter().find(|r| Some(r.id) == a.role_id))
                .flat_map(|r| r.permissions.iter().copied())
                .collect();
            // What admins met: refusals in the last day whose role still lacks the permission
            // (a permission added since is a refusal resolved).
            let met = encounters::since(accounts.db(), Kind::AccessDenied, ctx.now() - 86_400)
                .await
                .map_err(|e| Outcome::error(format!("cannot read what admins met: {e}")))?;
            let refused: Vec<String> = met
                .iter()
                .filter_map(|c| {
                    let (role, permission) = c.detail.rsplit_once(": ")?;
                    let permission: P = permission.parse().ok()?;
                    let still_lacks =
                        roles.iter().find(|r| r.name == role).is_none_or(|r| !r.permissions.contains(&permission));
                    still_lacks
                        .then(|| format!("role \u{201c}{role}\u{201d} was refused {permission} {} time(s)", c.count))
                })
                .collect();
            let impersonators = held.contains(&P::UsersImpersonate);
            let no_link = impersonators && ctx.config().system_url.url().is_none();
            let base = |o: Outcome| {
                o.with("admins", active.len())
                    .with("roles", roles.iter().map(|r| &r.name).collect::<Vec<_>>())
                    .with("admins_without_role", &without_role)
                    .with("incomplete_roles", &incomplete)
                    .with("permissions_nobody_holds", P::ALL.iter().filter(|p| !held.contains(p)).collect::<Vec<_>>())
                    .with("refused_in_the_last_day", &refused)
            };
            Ok(base(judge(active.len(), roles.len(), &without_role, &incomplete, &refused, no_link)))
        })
    }
}

/// The verdict on the admins and their roles: nobody able to use the admin API, impersonation
/// that cannot build its link, admins refused everything for want of a role, then — warnings —
/// what admins were refused in the last day and their roles still lack, and roles that stop
/// their admins halfway.
fn judge(
    active: usize,
    roles: usize,
    without_role: &[&str],
    incomplete: &[String],
    refused: &[String],
    no_link: bool,
) -> Outcome {
    if active == 0 {
        return Outcome::warn("no enabled admin exists: nobody can use the admin API").remediation(
            "Create one: `gatehouse admin add --username NAME --email E --role \"Full Administrator\"` and \
             `gatehouse admin token create`.",
        );
    }
    if no_link {
        return Outcome::fail(
            "admins may impersonate users, but system_url is not set: the one-time login link cannot be built",
        );
    }
    if !without_role.is_empty() {
        return Outcome::fail(format!(
            "{} admin(s) have no role and are refused everything: {}",
            without_role.len(),
            without_role.join(", ")
        ))
        .remediation("Assign a role: `gatehouse admin role assign --admin ID --role ROLE`.");
    }
    let mut problems = Vec::new();
    if !refused.is_empty() {
        problems.push(format!("admins met \"Access Denied\" in the last day: {}", refused.join("; ")));
    }
    if !incomplete.is_empty() {
        problems.push(format!("roles that stop their admins halfway: {}", incomplete.join("; ")));
    }
    if !problems.is_empty() {
        return Outcome::warn(problems.join(". ")).remediation(
            "Where those admins should be allowed, add the permission to their role (Settings → Roles, or \
             `gatehouse admin role set`); where not, nothing is wrong.",
        );
    }
    Outcome::pass(format!("{active} admin(s), each with a role; {roles} role(s) complete"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::model::Status;

    #[test]
    fn the_most_blocking_problem_is_named() {
        let halfway = vec!["Support: clients.create without clients.manage".to_string()];
        assert_eq!(judge(0, 1, &[], &[], &[], false).status, Status::Warn, "no admin at all");
        assert_eq!(judge(2, 1, &["bob"], &halfway, &[], true).status, Status::Fail, "no link for impersonation first");
        let roleless = judge(2, 1, &["bob", "eve"], &halfway, &[], false);
        assert_eq!(roleless.message, "2 admin(s) have no role and are refused everything: bob, eve");
        let incomplete = judge(2, 1, &[], &halfway, &[], false);
        assert_eq!(incomplete.status, Status::Warn);
        assert!(incomplete.message.ends_with("clients.create without clients.manage"), "{}", incomplete.message);
        assert_eq!(judge(2, 3, &[], &[], &[], false).message, "2 admin(s), each with a role; 3 role(s) complete");
        let refused = vec!["role \u{201c}Support\u{201d} was refused users.view 4 time(s)".to_string()];
        let met = judge(2, 3, &[], &[], &refused, false);
        assert_eq!(met.status, Status::Warn);
        assert!(met.message.contains("Support\u{201d} was refused users.view 4 time(s)"), "{}", met.message);
    }
}
