//! Concurrent conflicting requests against one application: every answer is
//! a success or a documented refusal, and no update is lost — the session's
//! version counts exactly the changes that were acknowledged, and its
//! history has every version once.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use acceptance::api::{Api, Reply, near_match, str_of, workflow_ids};
use serde_json::{Value, json};
use tokio::sync::Barrier;

/// What a racer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Move {
    ReviewApprove,
    ReviewReject,
    ResolveApproved,
    ResolveRejected,
    ResubmitFirst,
    SubmitFirst,
    SubmitSecond,
    Read,
}

const MOVES: [Move; 8] = [
    Move::ReviewApprove,
    Move::ReviewReject,
    Move::ResolveApproved,
    Move::ResolveRejected,
    Move::ResubmitFirst,
    Move::SubmitFirst,
    Move::SubmitSecond,
    Move::Read,
];

/// Codes a refused move may answer with.
const DOCUMENTED: [&str; 6] = [
    "conflict",
    "workflow_not_pending_review",
    "workflow_not_current",
    "session_closed",
    "workflow_not_started",
    "session_expired",
];

struct Target {
    id: String,
    token: String,
    wf: Vec<String>,
}

async fn perform(api: &Api, target: &Target, step: Move) -> Reply {
    let (id, token, wf) = (&target.id, &target.token, &target.wf);
    match step {
        Move::ReviewApprove | Move::ReviewReject => {
            let decision = if step == Move::ReviewApprove {
                "approved"
            } else {
                "rejected"
            };
            let body = json!({"decision": decision, "reason": "race"});
            api.partner(
                "POST",
                &format!("/sessions/{id}/workflows/{}/review", wf[1]),
                Some(body),
            )
            .await
        }
        Move::ResolveApproved | Move::ResolveRejected => {
            let resolution = if step == Move::ResolveApproved {
                "approved"
            } else {
                "rejected"
            };
            let body = json!({"resolution": resolution, "reason": "race"});
            api.partner("POST", &format!("/sessions/{id}/resolve"), Some(body))
                .await
        }
        Move::ResubmitFirst => {
            api.partner("POST", &format!("/sessions/{id}/workflows/{}/resubmit", wf[0]), None)
                .await
        }
        Move::SubmitFirst => api.submit(token, &wf[0], api.id_document("Jane Doe")).await,
        Move::SubmitSecond => api.submit(token, &wf[1], api.proof_of_address("Jane Doe")).await,
        Move::Read => api.partner("GET", &format!("/sessions/{id}"), None).await,
    }
}

/// Runs all `moves` at once against `target`; returns each move's answer.
async fn race(api: &Api, target: Arc<Target>, moves: Vec<Move>) -> Vec<(Move, Reply)> {
    let barrier = Arc::new(Barrier::new(moves.len()));
    let tasks: Vec<_> = moves
        .into_iter()
        .map(|step| {
            let (api, target, barrier) = (api.clone(), target.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                (step, perform(&api, &target, step).await)
            })
        })
        .collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("a racer finished without panicking"));
    }
    out
}

/// The history is whole: versions 1..=version each once (every event of a
/// version numbered 0, 1, … in order), no event twice, and it ends in the
/// session's status and resolution.
fn assert_history_whole(session: &Value, events: &[Value]) {
    let version = session["version"].as_u64().expect("a version");
    let mut by_version: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut ids = HashSet::new();
    for event in events {
        assert!(
            ids.insert(str_of(event, "id").to_owned()),
            "event {} twice",
            event["id"]
        );
        by_version
            .entry(event["version"].as_u64().expect("a version"))
            .or_default()
            .push(event["sequence"].as_u64().expect("a sequence"));
    }
    let versions: Vec<u64> = by_version.keys().copied().collect();
    assert_eq!(versions, (1..=version).collect::<Vec<_>>(), "versions in the history");
    for (v, sequences) in &by_version {
        assert_eq!(
            sequences,
            &(0..sequences.len() as u64).collect::<Vec<_>>(),
            "sequences of version {v}"
        );
    }
    let last = events.last().expect("a history");
    assert_eq!(last["version"], session["version"]);
    assert_eq!(
        last["status"], session["status"],
        "the history ends in the session's status"
    );
    assert_eq!(
        last["resolution"], session["resolution"],
        "the history ends in the session's resolution"
    );
}

/// A KYC session paused for review of its proof of address.
async fn pending_review(api: &Api, user: &str) -> Target {
    let (id_name, poa_name) = near_match();
    let session = api.session_of("kyc", user).await;
    let target = Target {
        id: str_of(&session, "id").to_owned(),
        token: str_of(&session, "accessToken").to_owned(),
        wf: workflow_ids(&session),
    };
    api.submit_ok(&target.token, &target.wf[0], api.id_document(id_name))
        .await;
    let view = api
        .submit_ok(&target.token, &target.wf[1], api.proof_of_address(poa_name))
        .await;
    assert_eq!(view["status"], "pending_review", "{view}");
    target
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_decisions_on_one_session_never_lose_an_update() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    for round in 0..4 {
        let target = Arc::new(pending_review(&api, &format!("usr_race_{round}")).await);
        let before = api.session(&target.id).await["version"].as_u64().unwrap();
        // 24 racers, each move three times, in a different order each round.
        let mut moves: Vec<Move> = (0..24).map(|i| MOVES[(i + round * 3) % MOVES.len()]).collect();
        moves.rotate_left(round * 5);
        let answers = race(&api, target.clone(), moves).await;

        let mut changes = 0;
        let mut versions = HashSet::new();
        for (step, (status, body, headers)) in &answers {
            assert!(!status.is_server_error(), "{step:?}: {status} {body}");
            if status.is_success() {
                if *step != Move::Read {
                    changes += 1;
                    if let Some(v) = body["version"].as_u64() {
                        assert!(
                            versions.insert(v),
                            "{step:?} answered version {v}, which another change had"
                        );
                    }
                }
                continue;
            }
            assert_eq!(status.as_u16(), 409, "{step:?}: {body}");
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/problem+json")
            );
            let code = body["code"].as_str().unwrap_or_default();
            assert!(
                DOCUMENTED.contains(&code),
                "{step:?} answered an undocumented {code}: {body}"
            );
        }
        let session = api.session(&target.id).await;
        let after = session["version"].as_u64().unwrap();
        assert_eq!(
            after,
            before + changes,
            "round {round}: every acknowledged change is one version"
        );
        assert!(
            versions.iter().all(|v| (before + 1..=after).contains(v)),
            "{versions:?} not in {before}..={after}"
        );
        assert_history_whole(&session, &api.events(&target.id).await);
        assert!(changes >= 1, "round {round}: at least one racer wins");
        // The session still works: the end user or the partner can carry on.
        let view = api.access(&target.token).await;
        assert_eq!(view["status"], session["status"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn a_double_submitted_step_is_accepted_once() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let session = api.session_of("kyc", "usr_double").await;
    let target = Arc::new(Target {
        id: str_of(&session, "id").to_owned(),
        token: str_of(&session, "accessToken").to_owned(),
        wf: workflow_ids(&session),
    });
    let answers = race(&api, target.clone(), vec![Move::SubmitFirst; 12]).await;
    let accepted = answers.iter().filter(|(_, (status, _, _))| status.is_success()).count();
    assert_eq!(accepted, 1, "{answers:?}");
    for (_, (status, body, _)) in answers.iter().filter(|(_, (s, _, _))| !s.is_success()) {
        assert_eq!(status.as_u16(), 409, "{body}");
        assert!(
            ["workflow_not_current", "conflict"].contains(&body["code"].as_str().unwrap_or_default()),
            "{body}"
        );
    }
    let detail = api.session(&target.id).await;
    assert_eq!(detail["workflows"][0]["status"], "completed");
    assert_eq!(detail["workflows"][0]["attempts"], 1);
    let events = api.events(&target.id).await;
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "session_workflow_submitted")
            .count(),
        1
    );
    assert_eq!(events.iter().filter(|e| e["type"] == "session_started").count(), 1);
    assert_history_whole(&detail, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_resolutions_all_count_and_the_last_one_stands() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let session = api.session_of("kyc", "usr_resolve").await;
    let target = Arc::new(Target {
        id: str_of(&session, "id").to_owned(),
        token: str_of(&session, "accessToken").to_owned(),
        wf: workflow_ids(&session),
    });
    let moves: Vec<Move> = (0..16)
        .map(|i| {
            if i % 2 == 0 {
                Move::ResolveApproved
            } else {
                Move::ResolveRejected
            }
        })
        .collect();
    let answers = race(&api, target.clone(), moves).await;
    let mut won = 0;
    for (_, (status, body, _)) in &answers {
        if status.is_success() {
            won += 1;
        } else {
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (409, Some("conflict")),
                "{body}"
            );
        }
    }
    let detail = api.session(&target.id).await;
    assert_eq!(detail["version"].as_u64().unwrap(), 1 + won);
    let events = api.events(&target.id).await;
    assert_eq!(
        events.iter().filter(|e| e["type"] == "session_resolved").count() as u64,
        won
    );
    let last = events
        .iter()
        .rev()
        .find(|e| e["type"] == "session_resolved")
        .expect("a resolution");
    assert_eq!(
        last["decision"], detail["resolution"],
        "the latest resolution is the session's"
    );
    assert_history_whole(&detail, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_creates_with_one_idempotency_key_create_one_session() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let body = json!({"configurationSlug": "kyc", "externalUserId": "usr_idem"});
    let barrier = Arc::new(Barrier::new(12));
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let (api, body, barrier) = (api.clone(), body.clone(), barrier.clone());
            tokio::spawn(async move {
                let request = api
                    .signed(&api.key, "POST", "/sessions", Some(&body))
                    .header("Idempotency-Key", "same");
                barrier.wait().await;
                api.send(request).await
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("a racer");
        match status.as_u16() {
            201 => {
                ids.insert(str_of(&body, "id").to_owned());
            }
            409 => assert_eq!(body["code"], "idempotency_in_progress", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(api.all_sessions().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_creates_of_one_slug_create_it_once() {
    let api = Api::new().await;
    let barrier = Arc::new(Barrier::new(10));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let (api, barrier) = (api.clone(), barrier.clone());
            tokio::spawn(async move {
                let body = json!({"name": format!("KYC {i}"), "slug": "kyc", "workflowSlugs": ["id-document"]});
                barrier.wait().await;
                api.partner("POST", "/session-configurations", Some(body)).await
            })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("a racer");
        match status.as_u16() {
            201 => created.push(body),
            409 => assert_eq!(body["code"], "slug_taken", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created.len(), 1);
    assert_eq!(api.get("/session-configurations/kyc").await["name"], created[0]["name"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_patches_of_one_configuration_are_each_applied_or_refused() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let barrier = Arc::new(Barrier::new(12));
    let tasks: Vec<_> = (0..12u32)
        .map(|i| {
            let (api, barrier) = (api.clone(), barrier.clone());
            tokio::spawn(async move {
                let body = json!({"defaultExpiresInMinutes": 100 + i});
                barrier.wait().await;
                api.partner("PATCH", "/session-configurations/kyc", Some(body)).await
            })
        })
        .collect();
    let mut applied = Vec::new();
    for task in tasks {
        let (status, body, _) = task.await.expect("a racer");
        match status.as_u16() {
            200 => applied.push(body["version"].as_u64().unwrap()),
            409 => assert_eq!(body["code"], "conflict", "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    applied.sort_unstable();
    let expected: Vec<u64> = (2..2 + applied.len() as u64).collect();
    assert_eq!(applied, expected, "each applied patch is one version");
    let config = api.get("/session-configurations/kyc").await;
    assert_eq!(config["version"].as_u64(), applied.last().copied());
}
