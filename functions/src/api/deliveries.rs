//! The delivery log: `GET /webhook-endpoints/{id}/deliveries`, and the two
//! ways a partner asks for a send — `POST /webhook-deliveries/{id}/redeliver`
//! and `POST /webhook-endpoints/{id}/test`. Both store the delivery first and
//! then queue it; should the queue refuse, the answer is 503 and the stored
//! delivery stalls, and a redelivery (allowed once it is
//! [stalled](korala_domain::delivery::STALLED_AFTER_SECONDS)) or another test
//! picks it up.

use korala_domain::delivery::WebhookDelivery;
use korala_domain::ids::{WebhookDeliveryId, WebhookEndpointId};
use korala_domain::limits::Bucket;
use korala_domain::ports::DeliveryQuery;
use korala_domain::validation::FieldErrors;
use lambda_http::Request;
use serde::Deserialize;
use serde_json::json;

use super::views::WebhookDeliveryView;
use super::{gone_is_not_found, on_the_latest};
use crate::app::App;
use crate::consumers::deliveries::DeliveryMessage;
use crate::web::auth::Caller;
use crate::web::{ApiError, ApiResult, Reply, admission, idempotency, number_param, path_param, query};

const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ListParams {
    limit: Option<String>,
    cursor: Option<String>,
}

pub async fn list(app: &App, caller: Caller, req: Request) -> ApiResult {
    let params: ListParams = query(&req)?;
    let mut errors = FieldErrors::new();
    let limit = number_param(
        &mut errors,
        "limit",
        params.limit.as_deref(),
        DEFAULT_LIMIT,
        1..=MAX_LIMIT,
    );
    // The cursor is the last delivery of the previous page: deliveries are
    // read within the caller's organisation, so it needs no binding to it.
    let after = params.cursor.as_deref().and_then(|cursor| {
        let id = WebhookDeliveryId::parse(cursor);
        if id.is_none() {
            errors.push("cursor", "is not a cursor this API returned");
        }
        id
    });
    let query = errors.finish(DeliveryQuery { limit, after })?;
    let endpoint = endpoint(app, &caller, &req).await?;
    let page = app.store.deliveries().list(&caller.tenant, &endpoint, &query).await?;
    let next_cursor = match (page.has_more, page.deliveries.last()) {
        (true, Some(last)) => Some(last.id.as_str()),
        _ => None,
    };
    let data: Vec<WebhookDeliveryView> = page.deliveries.iter().map(WebhookDeliveryView::new).collect();
    Reply::ok(&json!({ "data": data, "limit": limit, "hasMore": page.has_more, "nextCursor": next_cursor }))
}

/// The endpoint in the path, which must be the caller's.
async fn endpoint(app: &App, caller: &Caller, req: &Request) -> Result<WebhookEndpointId, ApiError> {
    let id = WebhookEndpointId::parse(&path_param(req, "id")?).ok_or(ApiError::NotFound("webhook endpoint"))?;
    match app.store.endpoints().get(&caller.tenant, &id).await? {
        Some(endpoint) => Ok(endpoint.id),
        None => Err(ApiError::NotFound("webhook endpoint")),
    }
}

/// Test events and redeliveries make us send a request to a URL the partner
/// chose: they draw on an allowance of their own, well below the API's.
async fn sends(app: &App, caller: &Caller) -> Result<(), ApiError> {
    admission::admit(
        app,
        &Bucket::webhook_sends(&caller.tenant.org_id),
        app.settings.send_rate,
    )
    .await
}

pub async fn redeliver(app: &App, caller: Caller, req: Request) -> ApiResult {
    sends(app, &caller).await?;
    let id = WebhookDeliveryId::parse(&path_param(&req, "id")?).ok_or(ApiError::NotFound("webhook delivery"))?;
    let (caller, id) = (&caller, &id);
    let next = on_the_latest("delivery", || async move {
        let current = app
            .store
            .deliveries()
            .get(&caller.tenant, id)
            .await?
            .ok_or(ApiError::NotFound("webhook delivery"))?;
        let next = current.redeliver(app.clock.now())?;
        app.store
            .deliveries()
            .update(&next)
            .await
            .map_err(gone_is_not_found("webhook delivery"))?;
        Ok(next)
    })
    .await?;
    queued(app, &next).await
}

pub async fn test(app: &App, caller: Caller, req: Request) -> ApiResult {
    sends(app, &caller).await?;
    // A retried request with the same Idempotency-Key sends no second event.
    // The answer is stored once the delivery is queued, not with the
    // delivery's write: a queue that refused it must leave the key free for
    // a retry. A retry after a completion that failed queues a second test.
    idempotency::once(app, &caller, &req, |_| async {
        let id = WebhookEndpointId::parse(&path_param(&req, "id")?).ok_or(ApiError::NotFound("webhook endpoint"))?;
        let endpoint = app
            .store
            .endpoints()
            .get(&caller.tenant, &id)
            .await?
            .ok_or(ApiError::NotFound("webhook endpoint"))?;
        let delivery = WebhookDelivery::test(&endpoint, app.ids.as_ref(), app.clock.now());
        app.store.deliveries().insert(&delivery).await?;
        queued(app, &delivery).await
    })
    .await
}

/// Queues the delivery for the dispatcher and answers `202 Accepted` with
/// it: the attempts show up in the delivery log.
async fn queued(app: &App, delivery: &WebhookDelivery) -> ApiResult {
    let queue = app.deliveries.as_ref().ok_or_else(|| {
        ApiError::Internal("this function has no deliveries queue (WEBHOOK_DELIVERIES_QUEUE_URL)".into())
    })?;
    queue
        .send(&[DeliveryMessage::of(delivery).outgoing()])
        .await
        .map_err(|e| ApiError::QueueUnavailable(e.to_string()))?;
    let mut reply = Reply::json(http::StatusCode::ACCEPTED, &WebhookDeliveryView::new(delivery))?;
    reply.location = Some(format!("/api/v1/webhook-endpoints/{}/deliveries", delivery.endpoint_id));
    Ok(reply)
}
