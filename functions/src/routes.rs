//! Every endpoint: its function name (the Lambda binary and SAM resource),
//! method, path and handler. The local server routes with this table; each
//! per-endpoint binary expands its own entry of it (`serve_route!`).

use std::future::Future;
use std::pin::Pin;

use http::Method;
use lambda_http::{Body, Request, Response};
use tracing::Instrument;

use crate::app::App;
use crate::http::respond;

pub type Handler = fn(App, Request) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// Adapts `async fn(&App, Request) -> ApiResult` into a [`Handler`].
#[macro_export]
macro_rules! handler {
    ($f:path) => {{
        fn handle(
            app: $crate::app::App,
            req: ::lambda_http::Request,
        ) -> ::std::pin::Pin<Box<dyn ::std::future::Future<Output = ::lambda_http::Response<::lambda_http::Body>> + Send>>
        {
            Box::pin(async move { $crate::http::respond($f(&app, req).await) })
        }
        handle as $crate::routes::Handler
    }};
}

pub struct Route {
    pub function: &'static str,
    pub method: Method,
    /// Under `/api/v1`, with `{name}` path parameters.
    pub path: &'static str,
    pub handler: Handler,
}

pub const PREFIX: &str = "/api/v1";

/// The route table, written once: it defines [`all`] (what the local server,
/// the bench and the tests route with) and the `serve_route!` macro, one arm
/// per function, which each endpoint binary expands. A row ending in
/// `deliveries_queue` is a handler that queues webhook deliveries. An arm names only its
/// own handler, so a binary links that handler and the linker drops the
/// other 27 (a run-time lookup in `all()` would keep them all), and a binary
/// cannot serve another handler than its route's: a name not in the table
/// does not compile.
/// What a route's binary serves with: [`serve`](crate::lambda::serve), or,
/// for a route marked `deliveries_queue`, the one that also connects the
/// webhook deliveries queue (and checks at init that it is given).
#[doc(hidden)]
#[macro_export]
macro_rules! __serve {
    ($function:expr, $handler:expr) => {
        $crate::lambda::serve($function, $handler)
    };
    ($function:expr, $handler:expr, deliveries_queue) => {
        $crate::lambda::serve_with_deliveries_queue($function, $handler)
    };
}

macro_rules! route_table {
    // `tt`, not `literal`: the generated arms must match the name as a token.
    ($($function:tt => $method:ident $path:literal, $module:ident::$action:ident $(, $needs:ident)?;)*) => {
        pub fn all() -> Vec<Route> {
            vec![$(Route {
                function: $function,
                method: Method::$method,
                path: $path,
                handler: $crate::handler!($crate::api::$module::$action),
            }),*]
        }

        /// Serves the route of the table named by the literal: each endpoint
        /// binary is `functions::serve_route!("<its function>").await`.
        #[macro_export]
        macro_rules! serve_route {
            $(($function) => {
                $crate::__serve!($function, $crate::handler!($crate::api::$module::$action) $(, $needs)?)
            };)*
        }
    };
}

route_table! {
    "configurations-create" => POST "/session-configurations", configurations::create;
    "configurations-list" => GET "/session-configurations", configurations::list;
    "configurations-get" => GET "/session-configurations/{slug}", configurations::get;
    "configurations-update" => PATCH "/session-configurations/{slug}", configurations::update;
    "configurations-delete" => DELETE "/session-configurations/{slug}", configurations::delete;
    "workflows-list" => GET "/workflows", workflows::list;
    "workflows-get" => GET "/workflows/{slug}", workflows::get;
    "workflows-create" => POST "/workflows", workflows::create;
    "workflows-update" => PUT "/workflows/{slug}", workflows::update;
    "workflows-delete" => DELETE "/workflows/{slug}", workflows::delete;
    "sessions-create" => POST "/sessions", sessions::create;
    "sessions-list" => GET "/sessions", sessions::list;
    "sessions-get" => GET "/sessions/{id}", sessions::get;
    "sessions-resolve" => POST "/sessions/{id}/resolve", sessions::resolve;
    "sessions-resubmit" => POST "/sessions/{id}/workflows/{sessionWorkflowId}/resubmit", sessions::resubmit;
    "sessions-review" => POST "/sessions/{id}/workflows/{sessionWorkflowId}/review", sessions::review;
    "sessions-events" => GET "/sessions/{id}/events", sessions::events;
    "webhook-endpoints-create" => POST "/webhook-endpoints", webhooks::create;
    "webhook-endpoints-list" => GET "/webhook-endpoints", webhooks::list;
    "webhook-endpoints-get" => GET "/webhook-endpoints/{id}", webhooks::get;
    "webhook-endpoints-update" => PATCH "/webhook-endpoints/{id}", webhooks::update;
    "webhook-endpoints-delete" => DELETE "/webhook-endpoints/{id}", webhooks::delete;
    "webhook-endpoints-test" => POST "/webhook-endpoints/{id}/test", deliveries::test, deliveries_queue;
    "webhook-deliveries-list" => GET "/webhook-endpoints/{id}/deliveries", deliveries::list;
    "webhook-deliveries-redeliver" => POST "/webhook-deliveries/{id}/redeliver", deliveries::redeliver, deliveries_queue;
    "access-get" => GET "/access/{accessToken}", access::get;
    "access-start" => POST "/access/{accessToken}/start", access::start;
    "access-submit" => POST "/access/{accessToken}/workflows/{sessionWorkflowId}", access::submit;
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
        let span = crate::telemetry::request_span(&request_id);
        let mut response = self.route(app, req, &request_id, &span).instrument(span.clone()).await;
        set_request_id(&mut response, &request_id);
        response
    }

    async fn route(&self, app: App, req: Request, request_id: &str, span: &tracing::Span) -> Response<Body> {
        use lambda_http::RequestExt;
        let path = req.uri().path().to_owned();
        let Ok(matched) = self.paths.at(&path) else {
            return crate::http::problem_response(&crate::http::ApiError::NoRoute);
        };
        let Some((_, function, handler)) = matched.value.iter().find(|(m, _, _)| *m == req.method()) else {
            let mut response = respond(Err(crate::http::ApiError::MethodNotAllowed(req.method().to_string())));
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
        .unwrap_or_else(crate::telemetry::new_request_id)
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
        let mut names: Vec<_> = routes.iter().map(|r| r.function).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), routes.len());
        let mut router = matchit::Router::new();
        let mut seen = std::collections::HashSet::new();
        for r in &routes {
            assert!(seen.insert((r.method.clone(), r.path)), "{} {}", r.method, r.path);
            if router.at(r.path).is_err() {
                router.insert(r.path, ()).unwrap();
            }
        }
    }

    #[test]
    fn cargo_lambda_watch_routes_match_the_table() {
        let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml")).unwrap();
        let section = manifest
            .split("[workspace.metadata.lambda.watch.router]")
            .nth(1)
            .unwrap();
        let section = section.split("\n[").next().unwrap();
        let routes = all();
        for route in &routes {
            let line = section
                .lines()
                .find(|l| l.starts_with(&format!("\"{PREFIX}{}\" =", route.path)))
                .unwrap_or_else(|| panic!("no watch route for {}", route.path));
            let entry = format!("{{ method = \"{}\", function = \"{}\" }}", route.method, route.function);
            assert!(line.contains(&entry), "{line} lacks {entry}");
        }
        assert_eq!(section.matches("function = ").count(), routes.len());
    }

    #[test]
    fn the_sam_template_declares_every_route() {
        let template = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml")).unwrap();
        for route in all() {
            let resource = format!("        Binary: {}\n", route.function);
            let at = template
                .find(&resource)
                .unwrap_or_else(|| panic!("no function {}", route.function));
            let rest = &template[at..];
            let end = rest.find("\n\n").unwrap_or(rest.len());
            let block = &rest[..end];
            assert!(
                block.contains(&format!("Method: {}\n", route.method)),
                "{}",
                route.function
            );
            assert!(
                block.contains(&format!("Path: {PREFIX}{}", route.path)),
                "{}",
                route.function
            );
        }
        assert_eq!(template.matches("Type: HttpApi\n").count(), all().len());
    }

    #[test]
    fn every_function_has_a_binary() {
        for route in all() {
            let path = format!("{}/src/bin/{}.rs", env!("CARGO_MANIFEST_DIR"), route.function);
            let source = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path}"));
            // `serve_route!` names the route's own handler; a binary that
            // called `lambda::serve` itself could pass any.
            let call = format!("functions::serve_route!(\"{}\")", route.function);
            assert!(source.contains(&call), "{path} should serve {}", route.function);
            assert_eq!(source.matches("serve").count(), 1, "{path} should only serve its route");
        }
    }
}
