//! The standing adversary suite, escalation: an attacker with a lesser role. For each admin
//! permission, an admin whose role holds every permission *but* that one tries every way to it
//! — editing their own role, making a role, making an admin, taking another role, a token
//! acting as another admin, their own token on the API — and ends without it.

use gatehouse::accounts::{Actor, AdminPermission, Grantor};
use serde_json::json;

use crate::support::web::{Backend, Browser, PASSWORD, Server, api};

/// A route of the API that needs exactly `p`, with a body it accepts.
fn api_route(p: AdminPermission) -> (reqwest::Method, &'static str, Option<serde_json::Value>) {
    use AdminPermission as P;
    use reqwest::Method as M;
    let person = json!({"email": "z@example.com", "first_name": "Z", "last_name": "Z"});
    match p {
        P::ClientsView => (M::GET, "clients", None),
        P::ClientsCreate => (M::POST, "clients", Some(person)),
        P::ClientsManage => (M::PATCH, "clients/1", Some(json!({"company": "Taken Over"}))),
        P::UsersView => (M::GET, "users", None),
        P::UsersCreate => (M::POST, "users", Some(person)),
        P::UsersManage => (M::DELETE, "users/1/2fa", None),
        P::UsersImpersonate => (M::POST, "users/1/impersonate", None),
        P::SessionsManage => (M::GET, "users/1/sessions", None),
        P::SettingsManage => (M::GET, "banned-emails", None),
        P::HealthView => (M::GET, "health", None),
    }
}

async fn a_role_without_a_permission_never_reaches_it(backend: Backend) {
    let Some(server) = Server::start(backend, "").await else { return };
    server.client_with_owner("ann@example.com", "Ann Ltd").await;
    let accounts = server.accounts();
    let operator = Actor::system("test");
    let everything = AdminPermission::ALL.iter().copied().collect();
    accounts.create_role(&operator, &Grantor::Operator, "Full Administrator", &everything).await.unwrap();
    let root =
        accounts.create_admin(&operator, &Grantor::Operator, "root", "root@example.com", "Full Administrator", None);
    let root = root.await.unwrap();

    for &missing in AdminPermission::ALL {
        let role = format!("all but {missing}");
        let held = AdminPermission::ALL.iter().copied().filter(|p| *p != missing).collect();
        accounts.create_role(&operator, &Grantor::Operator, &role, &held).await.unwrap();
        let name = format!("x-{}", missing.key().replace('.', "-"));
        let me = accounts.create_admin(&operator, &Grantor::Operator, &name, "x@example.com", &role, Some(PASSWORD));
        let me = me.await.unwrap();
        let b = Browser::new(&server);
        let signed = b.submit("admin/login", "admin/login", &[("username", &name), ("password", PASSWORD)]).await;
        assert_eq!(signed.location(), "/admin/", "{name} signs in");

        let all_keys: Vec<(&str, &str)> = AdminPermission::ALL.iter().map(|p| ("permissions", p.key())).collect();
        let mut own_role = vec![("name", role.as_str())];
        own_role.extend(&all_keys);
        b.submit("admin/", "admin/settings/roles/save", &own_role).await;
        let escalate = [("name", "escalate"), ("permissions", missing.key())];
        b.submit("admin/", "admin/settings/roles/save", &escalate).await;
        b.submit("admin/", &format!("admin/settings/admins/{}/role", me.id), &[("role", "Full Administrator")]).await;
        let sneaky = [
            ("username", "sneaky"),
            ("email", "s@example.com"),
            ("role", "Full Administrator"),
            ("password", PASSWORD),
        ];
        b.submit("admin/", "admin/settings/admins/add", &sneaky).await;
        let root_id = root.id.to_string();
        b.submit("admin/", "admin/settings/tokens/create", &[("admin_id", &root_id), ("name", "mine now")]).await;
        b.submit("admin/", &format!("admin/settings/admins/{}/role", root.id), &[("role", &role)]).await;

        // What the attempts left behind.
        let after = accounts.role_by_name(&role).await.unwrap();
        assert!(!after.permissions.contains(&missing), "{name} gave their own role {missing}");
        assert!(accounts.role_by_name("escalate").await.is_err(), "{name} made a role with {missing}");
        let me_now = accounts.admin(me.id).await.unwrap();
        assert_eq!(me_now.role_name.as_deref(), Some(role.as_str()), "{name} took another role");
        assert!(accounts.admin_by_username("sneaky").await.is_err(), "{name} made a Full Administrator");
        assert!(
            accounts.list_api_tokens(Some(root.id)).await.unwrap().is_empty(),
            "{name} made a token acting as root"
        );
        let root_now = accounts.admin(root.id).await.unwrap();
        assert_eq!(root_now.role_name.as_deref(), Some("Full Administrator"), "{name} demoted root");

        // Their own token (made by the operator, as they could make it themselves) stays theirs.
        let token = accounts.create_api_token(&operator, &Grantor::Operator, me.id, "own").await.unwrap().token;
        let (method, path, body) = api_route(missing);
        let (status, answer) = api(&server, &token, method, path, body).await;
        assert_eq!(status, 403, "{name} reached {path} without {missing}: {answer}");
        if missing != AdminPermission::SettingsManage {
            let refusals = accounts.audit_log(None, 1000).await.unwrap();
            let by_me = refusals.iter().filter(|e| e.action == "admin.grant_refused" && e.actor_id == Some(me.id));
            assert!(by_me.count() >= 4, "{name}'s refused grants are audited");
        }
    }
}

web_on_both_backends!(a_role_without_a_permission_never_reaches_it);
