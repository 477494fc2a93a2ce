//! The scheduled expiry sweep (the `expiry-sweeper` function) on a store with
//! open, completed and not-yet-due sessions: it expires exactly the overdue
//! sessions that wait for the end user, once, and leaves the rest alone.

use std::time::Duration;

use acceptance::api::{Api, event_types, str_of, workflow_ids};
use functions::consumers::expiry::{SweepReport, run};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_expires_overdue_open_sessions_only_and_once() {
    let api = Api::new().await;
    api.kyc_configuration("kyc").await;
    let created = api.session_of("kyc", "usr_created").await;
    let started = api.session_of("kyc", "usr_started").await;
    let completed = api.session_of("kyc", "usr_completed").await;
    let later = api
        .create_session(json!({"configurationSlug": "kyc", "externalUserId": "usr_later", "expiresInMinutes": 43200}))
        .await;
    api.end_user(
        "POST",
        &format!("/access/{}/start", str_of(&started, "accessToken")),
        None,
    )
    .await;
    let token = str_of(&completed, "accessToken");
    let steps = workflow_ids(&completed);
    api.submit_ok(token, &steps[0], api.id_document("John Smith")).await;
    api.submit_ok(token, &steps[1], api.proof_of_address("John Smith"))
        .await;

    assert_eq!(
        run(&api.app, Duration::from_secs(5)).await,
        Ok(SweepReport::default()),
        "nothing is due yet"
    );

    api.clock.advance(24 * 60 + 1);
    let report = run(&api.app, Duration::from_secs(5)).await.unwrap();
    assert_eq!(report, SweepReport { due: 2, expired: 2 });
    for (session, status) in [
        (&created, "expired"),
        (&started, "expired"),
        (&completed, "completed"),
        (&later, "created"),
    ] {
        let id = str_of(session, "id");
        let read = api.session(id).await;
        assert_eq!(read["status"], status, "{id}");
        let expirations = event_types(&api.events(id).await)
            .iter()
            .filter(|t| *t == "session_expired")
            .count();
        assert_eq!(
            expirations,
            usize::from(status == "expired"),
            "{id}: one session_expired event"
        );
    }
    let expired = api.expect(200, "GET", "/sessions?status=expired", None).await;
    assert_eq!(expired["data"].as_array().map(Vec::len), Some(2));

    assert_eq!(
        run(&api.app, Duration::from_secs(5)).await,
        Ok(SweepReport::default()),
        "a second sweep finds nothing"
    );
}
