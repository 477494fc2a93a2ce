//! The fixture the bad-request tests share: a world with something in every
//! state, and a snapshot of it to show a refused request changed nothing.

use acceptance::api::{Api, Raw, assert_invalid, assert_problem, full_path, near_match, str_of, workflow_ids};
use serde_json::{Value, json};

/// A world with something in every state, to show bad requests leave it be.
pub struct World {
    pub api: Api,
    /// In progress: the identity document is done, proof of address waits.
    pub open: Case,
    /// Completed and approved.
    pub completed: Case,
    /// Failed: the review of its proof of address was rejected.
    pub failed: Case,
    /// Waiting for the partner's review of its proof of address.
    pub reviewing: Case,
    /// A webhook endpoint of the test key's (no events are relayed here).
    pub endpoint: String,
}

pub struct Case {
    pub id: String,
    pub token: String,
    pub wf: Vec<String>,
}

pub fn custom_workflow(slug: &str) -> Value {
    json!({
        "name": "Custom",
        "slug": slug,
        "steps": [
            {"type": "capture", "config": {"fields": [{"name": "answer", "type": "text", "label": "Answer"}]}},
            {"type": "output", "config": {}}
        ]
    })
}

impl World {
    pub async fn new() -> Self {
        let api = Api::new().await;
        api.kyc_configuration("kyc").await;
        api.expect(201, "POST", "/workflows", Some(custom_workflow("custom")))
            .await;
        api.simple_configuration("custom-config", &["custom"], json!({})).await;
        // The other organisation has its own things, which must stay as they are.
        let other = api.other.clone();
        let (s, b, _) = api
            .partner_as(
                &other,
                "POST",
                "/session-configurations",
                Some(json!({"name": "Theirs", "slug": "theirs", "workflowSlugs": ["id-document"]})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        // So has the main organisation's live mode, a world of its own.
        let live = api.live.clone();
        let (s, b, _) = api
            .partner_as(
                &live,
                "POST",
                "/session-configurations",
                Some(json!({"name": "Live", "slug": "live-only", "workflowSlugs": ["id-document"]})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        let hook = json!({"url": "https://hooks.example.com/korala", "events": ["session_completed"]});
        let endpoint = str_of(&api.expect(201, "POST", "/webhook-endpoints", Some(hook)).await, "id").to_owned();

        let case = |session: Value| Case {
            id: str_of(&session, "id").to_owned(),
            token: str_of(&session, "accessToken").to_owned(),
            wf: workflow_ids(&session),
        };
        let open = case(api.session_of("kyc", "usr_open").await);
        api.submit_ok(&open.token, &open.wf[0], api.id_document("Jane Doe"))
            .await;

        let completed = case(api.session_of("kyc", "usr_done").await);
        api.submit_ok(&completed.token, &completed.wf[0], api.id_document("Jane Doe"))
            .await;
        api.submit_ok(&completed.token, &completed.wf[1], api.proof_of_address("Jane Doe"))
            .await;

        let (id_name, poa_name) = near_match();
        let reviewing = case(api.session_of("kyc", "usr_review").await);
        api.submit_ok(&reviewing.token, &reviewing.wf[0], api.id_document(id_name))
            .await;
        let view = api
            .submit_ok(&reviewing.token, &reviewing.wf[1], api.proof_of_address(poa_name))
            .await;
        assert_eq!(view["status"], "pending_review", "{view}");

        let failed = case(api.session_of("kyc", "usr_failed").await);
        api.submit_ok(&failed.token, &failed.wf[0], api.id_document(id_name))
            .await;
        api.submit_ok(&failed.token, &failed.wf[1], api.proof_of_address(poa_name))
            .await;
        api.expect(
            200,
            "POST",
            &format!("/sessions/{}/workflows/{}/review", failed.id, failed.wf[1]),
            Some(json!({"decision": "rejected", "reason": "no"})),
        )
        .await;
        Self {
            api,
            open,
            completed,
            failed,
            reviewing,
            endpoint,
        }
    }

    pub fn cases(&self) -> [&Case; 4] {
        [&self.open, &self.completed, &self.failed, &self.reviewing]
    }

    /// Everything either organisation can read.
    pub async fn snapshot(&self) -> Value {
        let api = &self.api;
        let mut sessions = Vec::new();
        for case in self.cases() {
            sessions.push(json!({
                "detail": api.session(&case.id).await,
                "events": api.events(&case.id).await.len(),
                "view": api.access(&case.token).await,
            }));
        }
        let (other, live) = (api.other.clone(), api.live.clone());
        json!({
            "configurations": api.get("/session-configurations").await,
            "workflows": api.get("/workflows").await,
            "webhookEndpoints": api.get("/webhook-endpoints").await,
            "list": api.all_sessions().await,
            "sessions": sessions,
            "theirConfigurations": api.partner_as(&other, "GET", "/session-configurations", None).await.1,
            "theirWorkflows": api.partner_as(&other, "GET", "/workflows", None).await.1,
            "theirSessions": api.partner_as(&other, "GET", "/sessions?limit=100", None).await.1,
            "liveConfigurations": api.partner_as(&live, "GET", "/session-configurations", None).await.1,
            "liveWorkflows": api.partner_as(&live, "GET", "/workflows", None).await.1,
            "liveSessions": api.partner_as(&live, "GET", "/sessions?limit=100", None).await.1,
            "liveWebhookEndpoints": api.partner_as(&live, "GET", "/webhook-endpoints", None).await.1,
        })
    }

    /// Sends `raw`, asserts the problem, and that nothing changed.
    pub async fn refuse(&self, raw: Raw, status: u16, code: &str) -> Value {
        let before = self.snapshot().await;
        let reply = self.api.send(raw.clone()).await;
        let problem = assert_problem(&reply, status, code);
        assert_eq!(
            self.snapshot().await,
            before,
            "{} {} changed something",
            raw.method,
            raw.path
        );
        problem
    }

    /// A signed partner request with this raw body.
    pub fn bytes(&self, method: &str, path: &str, body: &[u8]) -> Raw {
        self.api.signed_bytes(&self.api.key, method, path, body)
    }

    pub fn json(&self, method: &str, path: &str, body: Value) -> Raw {
        self.api.signed(&self.api.key, method, path, Some(&body))
    }

    /// Asserts a 422 naming `field`, with nothing changed.
    pub async fn invalid(&self, raw: Raw, field: &str) -> Value {
        let before = self.snapshot().await;
        let reply = self.api.send(raw.clone()).await;
        let problem = assert_invalid(&reply, field);
        assert_eq!(
            self.snapshot().await,
            before,
            "{} {} changed something",
            raw.method,
            raw.path
        );
        problem
    }

    /// Every endpoint that reads a body, with a valid target.
    pub fn body_endpoints(&self) -> Vec<(&'static str, String, bool)> {
        let (open, review) = (&self.open, &self.reviewing);
        vec![
            ("POST", "/session-configurations".to_owned(), true),
            ("PATCH", "/session-configurations/kyc".to_owned(), true),
            ("POST", "/workflows".to_owned(), true),
            ("PUT", "/workflows/custom".to_owned(), true),
            ("POST", "/sessions".to_owned(), true),
            ("POST", format!("/sessions/{}/resolve", open.id), true),
            (
                "POST",
                format!("/sessions/{}/workflows/{}/review", review.id, review.wf[1]),
                true,
            ),
            (
                "POST",
                format!("/sessions/{}/workflows/{}/resubmit", open.id, open.wf[0]),
                true,
            ),
            (
                "POST",
                format!("/access/{}/workflows/{}", open.token, open.wf[1]),
                false,
            ),
        ]
    }

    pub fn request(&self, method: &str, path: &str, signed: bool, body: &[u8]) -> Raw {
        if signed {
            self.bytes(method, path, body)
        } else {
            Raw::new(method, &full_path(path))
                .header("Content-Type", "application/json")
                .body(body.to_vec())
        }
    }
}
