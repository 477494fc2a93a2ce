//! Every endpoint, written once: its function (the Lambda binary and SAM
//! resource), method, path, success status, who may call it, what it needs
//! of the store and which queue it sends to, and its handler. The local
//! server routes with this table; each per-endpoint binary expands its own
//! row of it (`serve_route!`); `cargo codegen` writes everything else a
//! route needs from it (the binaries, the `cargo lambda watch` router, the
//! SAM template's function blocks, sample events: see [`crate::codegen`]).

use std::future::Future;
use std::pin::Pin;

use http::Method;
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::App;
use crate::web::respond;

pub type Handler = fn(App, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Adapts a handler into a [`Handler`], authenticating first as the route's
/// [`Auth`] says: a partner's handler, `async fn(&App, Caller, Request) ->
/// ApiResult`, runs only for a signed request and is handed its caller; an
/// end user's, `async fn(&App, EndUser, Request) -> ApiResult`, gets the
/// metered access token of the path. No handler can skip either: its
/// signature asks for the credential.
#[macro_export]
macro_rules! handler {
    (partner $f:path) => {
        $crate::handler!(@identified $crate::web::auth::Caller, $f)
    };
    (end_user $f:path) => {
        $crate::handler!(@identified $crate::web::auth::EndUser, $f)
    };
    (@identified $credential:ty, $f:path) => {{
        fn handle(
            app: $crate::app::App,
            req: ::lambda_http::Request,
        ) -> ::std::pin::Pin<Box<dyn ::std::future::Future<Output = ::lambda_http::Response<::lambda_http::Body>> + Send>>
        {
            Box::pin(async move {
                let answer = async {
                    let credential = <$credential>::identify(&app, &req).await?;
                    $f(&app, credential, req).await
                };
                $crate::web::respond(answer.await)
            })
        }
        handle as $crate::api::routes::Handler
    }};
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// A partner, by a signed request (`401` without a valid signature).
    Partner,
    /// The end user, by the access token in the path (`404` for a token
    /// that names no session).
    EndUser,
}

/// What a route's function may do to the store: the policies it is granted.
/// Every route also meters its caller (the admission policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    Read,
    /// Reads and conditional writes (a read that expires an overdue session
    /// writes too).
    Write,
}

/// What a route's function does with the documents' bucket: the S3
/// actions (and key use) it is granted, no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentAccess {
    /// Signs upload URLs: puts under `uploads/`.
    Upload,
    /// Reads uploads back and copies the claimed ones under `documents/`.
    Claim,
    /// Signs download URLs: reads under `documents/`.
    Download,
}

/// A queue a route's function sends to, besides the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendsTo {
    /// The webhook deliveries queue (test sends, redeliveries).
    WebhookDeliveries,
}

impl SendsTo {
    /// The queue's resource in the SAM template.
    pub fn logical_id(self) -> &'static str {
        match self {
            SendsTo::WebhookDeliveries => "WebhookDeliveriesQueue",
        }
    }

    /// The variable the function finds the queue's URL in.
    pub fn url_variable(self) -> &'static str {
        match self {
            SendsTo::WebhookDeliveries => crate::app::DELIVERIES_QUEUE_ENV,
        }
    }
}

pub struct Route {
    pub function: &'static str,
    pub method: Method,
    /// Under `/api/v1`, with `{name}` path parameters.
    pub path: &'static str,
    /// What the handler answers when it succeeds.
    pub status: u16,
    pub auth: Auth,
    pub store: StoreAccess,
    pub documents: Option<DocumentAccess>,
    pub sends: Option<SendsTo>,
    pub handler: Handler,
}

pub const PREFIX: &str = "/api/v1";

/// What a route's binary serves with: [`serve`](crate::runtime::lambda::serve), or,
/// for a route that sends to the webhook deliveries queue, the one that also
/// connects that queue (and checks at init that it is given).
#[doc(hidden)]
#[macro_export]
macro_rules! __serve {
    ($function:expr, $handler:expr) => {
        $crate::runtime::lambda::serve($function, $handler)
    };
    ($function:expr, $handler:expr, webhook_deliveries) => {
        $crate::runtime::lambda::serve_with_deliveries_queue($function, $handler)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __optional_fact {
    () => {
        None
    };
    ($fact:ident) => {
        Some($crate::__route_fact!($fact))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __route_fact {
    (partner) => {
        $crate::api::routes::Auth::Partner
    };
    (end_user) => {
        $crate::api::routes::Auth::EndUser
    };
    (reads) => {
        $crate::api::routes::StoreAccess::Read
    };
    (writes) => {
        $crate::api::routes::StoreAccess::Write
    };
    (webhook_deliveries) => {
        $crate::api::routes::SendsTo::WebhookDeliveries
    };
    (upload) => {
        $crate::api::routes::DocumentAccess::Upload
    };
    (claim) => {
        $crate::api::routes::DocumentAccess::Claim
    };
    (download) => {
        $crate::api::routes::DocumentAccess::Download
    };
}

/// The route table defines [`all`] (what the local server, the bench, the
/// tests and `cargo codegen` read) and the `serve_route!` macro, one arm per
/// function, which each endpoint binary expands. An arm names only its own
/// handler, so a binary links that handler and the linker drops the others
/// (a run-time lookup in `all()` would keep them all), and a binary cannot
/// serve another handler than its route's: a name not in the table does
/// not compile.
macro_rules! route_table {
    // `tt`, not `literal`: the generated arms must match the name as a token.
    ($($function:tt => $method:ident $path:literal -> $status:literal,
        $auth:ident $module:ident::$action:ident, $store:ident
        $(, documents $documents:ident)? $(, sends $queue:ident)?;)*) => {
        pub fn all() -> Vec<Route> {
            vec![$(Route {
                function: $function,
                method: Method::$method,
                path: $path,
                status: $status,
                auth: $crate::__route_fact!($auth),
                store: $crate::__route_fact!($store),
                documents: $crate::__optional_fact!($($documents)?),
                sends: $crate::__optional_fact!($($queue)?),
                handler: $crate::handler!($auth $crate::api::$module::$action),
            }),*]
        }

        /// Serves the route of the table named by the literal: each endpoint
        /// binary is `functions::serve_route!("<its function>").await`.
        #[macro_export]
        macro_rules! serve_route {
            $(($function) => {
                $crate::__serve!($function, $crate::handler!($auth $crate::api::$module::$action) $(, $queue)?)
            };)*
        }
    };
}

// function => method path -> success status, who calls it and its handler,
// what it does to the store[, to the documents][, the queue it sends to].
route_table! {
    "configurations-create" => POST "/session-configurations" -> 201, partner configurations::create, writes;
    "configurations-list" => GET "/session-configurations" -> 200, partner configurations::list, reads;
    "configurations-get" => GET "/session-configurations/{slug}" -> 200, partner configurations::get, reads;
    "configurations-update" => PATCH "/session-configurations/{slug}" -> 200, partner configurations::update, writes;
    "configurations-delete" => DELETE "/session-configurations/{slug}" -> 204, partner configurations::delete, writes;
    "workflows-list" => GET "/workflows" -> 200, partner workflows::list, reads;
    "workflows-get" => GET "/workflows/{slug}" -> 200, partner workflows::get, reads;
    "workflows-create" => POST "/workflows" -> 201, partner workflows::create, writes;
    "workflows-update" => PUT "/workflows/{slug}" -> 200, partner workflows::update, writes;
    "workflows-delete" => DELETE "/workflows/{slug}" -> 204, partner workflows::delete, writes;
    "sessions-create" => POST "/sessions" -> 201, partner sessions::create, writes;
    "sessions-list" => GET "/sessions" -> 200, partner sessions::list, reads;
    // Reading a session expires it when it is overdue: a write.
    "sessions-get" => GET "/sessions/{id}" -> 200, partner sessions::get, writes;
    "sessions-resolve" => POST "/sessions/{id}/resolve" -> 200, partner sessions::resolve, writes;
    "sessions-resubmit" => POST "/sessions/{id}/workflows/{sessionWorkflowId}/resubmit" -> 200, partner sessions::resubmit, writes;
    "sessions-review" => POST "/sessions/{id}/workflows/{sessionWorkflowId}/review" -> 200, partner sessions::review, writes;
    "sessions-events" => GET "/sessions/{id}/events" -> 200, partner sessions::events, writes;
    "webhook-endpoints-create" => POST "/webhook-endpoints" -> 201, partner webhooks::create, writes;
    "webhook-endpoints-list" => GET "/webhook-endpoints" -> 200, partner webhooks::list, reads;
    "webhook-endpoints-get" => GET "/webhook-endpoints/{id}" -> 200, partner webhooks::get, reads;
    "webhook-endpoints-update" => PATCH "/webhook-endpoints/{id}" -> 200, partner webhooks::update, writes;
    "webhook-endpoints-delete" => DELETE "/webhook-endpoints/{id}" -> 204, partner webhooks::delete, writes;
    "webhook-endpoints-test" => POST "/webhook-endpoints/{id}/test" -> 202, partner deliveries::test, writes, sends webhook_deliveries;
    "webhook-deliveries-list" => GET "/webhook-endpoints/{id}/deliveries" -> 200, partner deliveries::list, reads;
    "webhook-deliveries-redeliver" => POST "/webhook-deliveries/{id}/redeliver" -> 202, partner deliveries::redeliver, writes, sends webhook_deliveries;
    "access-get" => GET "/access/{accessToken}" -> 200, end_user access::get, writes;
    "access-start" => POST "/access/{accessToken}/start" -> 200, end_user access::start, writes;
    "access-submit" => POST "/access/{accessToken}/workflows/{sessionWorkflowId}" -> 200, end_user access::submit, writes, documents claim;
    "access-uploads-create" => POST "/access/{accessToken}/workflows/{sessionWorkflowId}/uploads" -> 201, end_user documents::upload, writes, documents upload;
    "documents-content" => GET "/sessions/{id}/documents/{documentId}/content" -> 302, partner documents::content, reads, documents download;
}

/// Dispatches a request by method and path, as API Gateway does in front of
/// the per-endpoint functions.
/// The functions a path serves, by method.
type Methods = Vec<(Method, &'static str, Handler)>;

pub struct Router {
    paths: matchit::Router<Methods>,
}

impl Router {
    pub fn new() -> Self {
        let mut paths = matchit::Router::new();
        let mut by_path: Vec<(String, Methods)> = Vec::new();
        for route in all() {
            let path = format!("{PREFIX}{}", route.path);
            let entry = (route.method, route.function, route.handler);
            match by_path.iter_mut().find(|(p, _)| *p == path) {
                Some((_, methods)) => methods.push(entry),
                None => by_path.push((path, vec![entry])),
            }
        }
        for (path, methods) in by_path {
            // The table above is static and conflict-free; a test checks it.
            if let Err(e) = paths.insert(path.clone(), methods) {
                tracing::error!(%path, error = %e, "route conflict");
            }
        }
        Self { paths }
    }

    /// Routes the request as API Gateway does and runs its handler inside
    /// the request's span (`requestId`, and `function` once routed), so
    /// every line it logs names both. The id is the client's `X-Request-Id`
    /// when it looks like one, else API Gateway's, else a new one; the
    /// response carries it back.
    pub async fn dispatch(&self, app: App, req: Request) -> Response<Body> {
        let request_id = request_id_of(&req);
        let span = crate::runtime::telemetry::request_span(&request_id);
        let mut response = self.route(app, req, &request_id, &span).instrument(span.clone()).await;
        set_request_id(&mut response, &request_id);
        response
    }

    async fn route(&self, app: App, req: Request, request_id: &str, span: &tracing::Span) -> Response<Body> {
        use lambda_http::RequestExt;
        let path = req.uri().path().to_owned();
        let Ok(matched) = self.paths.at(&path) else {
            return crate::web::problem_response(&crate::web::ApiError::NoRoute);
        };
        let Some((_, function, handler)) = matched.value.iter().find(|(m, _, _)| *m == req.method()) else {
            let mut response = respond(Err(crate::web::ApiError::MethodNotAllowed(req.method().to_string())));
            let allowed: Vec<&str> = matched.value.iter().map(|(m, _, _)| m.as_str()).collect();
            if let Ok(allow) = http::HeaderValue::from_str(&allowed.join(", ")) {
                response.headers_mut().insert(http::header::ALLOW, allow);
            }
            return response;
        };
        let params: std::collections::HashMap<String, String> = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (function, handler) = (*function, *handler);
        span.record("function", function);
        handle(function, handler, app, req.with_path_parameters(params), request_id).await
    }
}

/// Runs one API request's handler (locally after routing, on Lambda as
/// the function's whole work) and logs it by function name: raw paths can
/// carry access tokens, which never reach the logs. The response carries
/// `request_id` as `X-Request-Id`.
pub async fn handle(
    function: &'static str,
    handler: Handler,
    app: App,
    req: Request,
    request_id: &str,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let api_request_id = api_gateway_request_id(&req);
    let mut response = handler(app, req).await;
    let ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        function,
        status = response.status().as_u16(),
        ms,
        apiRequestId = api_request_id.as_deref(),
        "request"
    );
    set_request_id(&mut response, request_id);
    response
}

/// The header a request's id is read from (locally) and answered in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

fn request_id_of(req: &Request) -> String {
    req.headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_request_id(v))
        .map(str::to_owned)
        .or_else(|| api_gateway_request_id(req))
        .unwrap_or_else(crate::runtime::telemetry::new_request_id)
}

/// A client's id is logged only if it is short and made of characters that
/// cannot spell much besides an id (no spaces, `@` or quotes).
fn is_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// API Gateway's id of the request, when it came through API Gateway.
fn api_gateway_request_id(req: &Request) -> Option<String> {
    use lambda_http::RequestExt;
    use lambda_http::request::RequestContext;
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    }
}

fn set_request_id(response: &mut Response<Body>, request_id: &str) {
    if let Ok(value) = http::HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_unique_and_insertable() {
        let routes = all();
        // A route's function and an event function share no name either:
        // each is one binary.
        let mut names = crate::codegen::functions();
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count);
        let mut router = matchit::Router::new();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {}", r.method, r.path);
            if router.at(r.path).is_err() {
                router.insert(r.path, ()).unwrap();
            }
        }
    }
}
