//! `GET /api/v1/openapi.json`: the API's OpenAPI 3.1 document
//! (`docs/openapi.json`), served as it is in the repository so that tools
//! such as schemathesis and client generators read exactly what the tests
//! check. It needs no signature: it describes the API and holds no data.

use http::{HeaderValue, Method, StatusCode, header};
use lambda_http::{Body, Response};

use crate::web::{ApiError, respond};

/// The document, compiled in so the binary serves the one it was built with.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// Where the document is served.
pub const PATH: &str = "/api/v1/openapi.json";

/// The answer for a request to [`PATH`]; `None` for any other path, which
/// the router then handles.
pub fn serve(method: &Method, path: &str) -> Option<Response<Body>> {
    if path != PATH {
        return None;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut response = respond(Err(ApiError::MethodNotAllowed(method.to_string())));
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Some(response);
    }
    let mut response = Response::new(Body::Text(DOCUMENT.to_owned()));
    *response.status_mut() = StatusCode::OK;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Some(response)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Value, json};

    use super::*;
    use crate::api::routes::{self, Auth, PREFIX, Route};

    const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON")
    }

    /// Follows a local `$ref` (`#/components/...`), once.
    fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| doc.pointer(pointer))
                .unwrap_or(&Value::Null),
            None => value,
        }
    }

    /// The `{name}`s of a templated path.
    fn template_names(path: &str) -> BTreeSet<String> {
        path.split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .map(str::to_owned)
            .collect()
    }

    /// Every way the document disagrees with the route table, as sentences;
    /// empty when it agrees.
    fn problems(doc: &Value, routes: &[Route]) -> Vec<String> {
        let mut problems = Vec::new();
        let version = doc["openapi"].as_str().unwrap_or_default();
        if !version.starts_with("3.1.") {
            problems.push(format!("openapi is {version:?}, not 3.1.x"));
        }
        let empty = serde_json::Map::new();
        let paths = doc["paths"].as_object().unwrap_or(&empty);
        for route in routes {
            let path = format!("{PREFIX}{}", route.path);
            let method = route.method.as_str().to_ascii_lowercase();
            match paths.get(&path).and_then(|item| item.get(&method)) {
                None => problems.push(format!(
                    "{} {path} ({}) is not documented",
                    route.method, route.function
                )),
                Some(operation) if operation["operationId"] != route.function => problems.push(format!(
                    "{} {path} has operationId {}, not {}",
                    route.method, operation["operationId"], route.function
                )),
                Some(operation) => problems.extend(route_problems(route, &path, operation)),
            }
        }
        for (path, item) in paths {
            let declared_in_item = item["parameters"].as_array().cloned().unwrap_or_default();
            for method in METHODS {
                let Some(operation) = item.get(method) else {
                    continue;
                };
                let is_route = routes
                    .iter()
                    .any(|r| format!("{PREFIX}{}", r.path) == *path && r.method.as_str().eq_ignore_ascii_case(method));
                if !is_route && path != PATH {
                    problems.push(format!("{method} {path} is documented but no route serves it"));
                }
                let mut declared = BTreeSet::new();
                let own = operation["parameters"].as_array().cloned().unwrap_or_default();
                for parameter in declared_in_item.iter().chain(own.iter()) {
                    let parameter = resolve(doc, parameter);
                    if parameter["in"] == "path" {
                        if parameter["required"] != true {
                            problems.push(format!(
                                "{method} {path}: path parameter {} is not required",
                                parameter["name"]
                            ));
                        }
                        if let Some(name) = parameter["name"].as_str() {
                            declared.insert(name.to_owned());
                        }
                    }
                }
                let expected = template_names(path);
                for missing in expected.difference(&declared) {
                    problems.push(format!("{method} {path} does not declare path parameter {missing}"));
                }
                for extra in declared.difference(&expected) {
                    problems.push(format!("{method} {path} declares {extra}, which is not in the path"));
                }
            }
        }
        problems
    }

    /// Where an operation disagrees with its row: the one success status
    /// it documents (a 2xx, or the 3xx of a redirect), and the credential (a partner's operation inherits the
    /// document's signing scheme and documents `401`; an end user's opts out
    /// of it, `security: []`, and documents `404`).
    fn route_problems(route: &Route, path: &str, operation: &Value) -> Vec<String> {
        let mut problems = Vec::new();
        let name = format!("{} {path}", route.method);
        let empty = serde_json::Map::new();
        let responses = operation["responses"].as_object().unwrap_or(&empty);
        let successes: Vec<&String> = responses
            .keys()
            .filter(|code| code.starts_with('2') || code.starts_with('3'))
            .collect();
        if successes != [&route.status.to_string()] {
            problems.push(format!(
                "{name} documents success {successes:?}, the route answers {}",
                route.status
            ));
        }
        let (opted_out, refusal) = match route.auth {
            Auth::Partner => (false, "401"),
            Auth::EndUser => (true, "404"),
        };
        if (operation["security"] == json!([])) != opted_out {
            problems.push(format!("{name}: its security does not say {:?}", route.auth));
        }
        if !responses.contains_key(refusal) {
            problems.push(format!("{name} does not document {refusal}"));
        }
        problems
    }

    /// Every `$ref` in the document, wherever it is.
    fn references(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    out.push(reference.clone());
                }
                map.values().for_each(|v| references(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| references(v, out)),
            _ => {}
        }
    }

    #[test]
    fn the_document_describes_every_route_and_only_routes() {
        let problems = problems(&document(), &routes::all());
        assert!(problems.is_empty(), "docs/openapi.json:\n{}", problems.join("\n"));
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut refs = Vec::new();
        references(&doc, &mut refs);
        assert!(!refs.is_empty());
        let dangling: Vec<&String> = refs
            .iter()
            .filter(|r| r.strip_prefix('#').and_then(|p| doc.pointer(p)).is_none())
            .collect();
        assert!(dangling.is_empty(), "dangling: {dangling:?}");
    }

    /// The check above is only worth something if it notices a drift: each
    /// kind of it, made on a copy of the document.
    #[test]
    fn the_check_notices_each_kind_of_drift() {
        let routes = routes::all();
        let session = "/api/v1/sessions/{id}";
        type Drift = Box<dyn Fn(&mut Value)>;
        let cases: Vec<(&str, Drift)> = vec![
            ("not 3.1.x", Box::new(|d| d["openapi"] = json!("3.0.3"))),
            (
                "is not documented",
                Box::new(move |d| {
                    if let Some(item) = d["paths"][session].as_object_mut() {
                        item.remove("get");
                    }
                }),
            ),
            (
                "not sessions-get",
                Box::new(move |d| d["paths"][session]["get"]["operationId"] = json!("getSession")),
            ),
            (
                "no route serves it",
                Box::new(move |d| d["paths"][session]["delete"] = json!({"operationId": "sessions-delete"})),
            ),
            (
                "the route answers 200",
                Box::new(move |d| {
                    let ok = d["paths"][session]["get"]["responses"]["200"].clone();
                    d["paths"][session]["get"]["responses"]["201"] = ok;
                }),
            ),
            (
                "its security does not say Partner",
                Box::new(move |d| d["paths"][session]["get"]["security"] = json!([])),
            ),
            (
                "does not document 401",
                Box::new(move |d| {
                    if let Some(responses) = d["paths"][session]["get"]["responses"].as_object_mut() {
                        responses.remove("401");
                    }
                }),
            ),
            (
                "does not declare path parameter id",
                Box::new(move |d| d["paths"][session]["get"]["parameters"] = json!([])),
            ),
            (
                "is not required",
                Box::new(move |d| {
                    d["paths"][session]["get"]["parameters"] =
                        json!([{"name": "id", "in": "path", "required": false, "schema": {"type": "string"}}])
                }),
            ),
            (
                "declares other, which is not in the path",
                Box::new(move |d| {
                    if let Some(parameters) = d["paths"][session]["get"]["parameters"].as_array_mut() {
                        parameters.push(json!({"name": "other", "in": "path", "required": true}));
                    }
                }),
            ),
        ];
        for (expected, change) in cases {
            let mut doc = document();
            change(&mut doc);
            let found = problems(&doc, &routes);
            assert!(
                found.iter().any(|p| p.contains(expected)),
                "expected a problem containing {expected:?}, got {found:?}"
            );
        }
    }

    #[test]
    fn the_document_is_served_as_json_to_anyone() {
        let response = serve(&Method::GET, "/api/v1/openapi.json").expect("served");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let Body::Text(text) = response.body() else {
            panic!("a text body")
        };
        assert_eq!(serde_json::from_str::<Value>(text).unwrap(), document());

        let refused = serve(&Method::POST, "/api/v1/openapi.json").expect("answered");
        assert_eq!(refused.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(refused.headers()[header::ALLOW], "GET, HEAD");

        assert!(serve(&Method::GET, "/api/v1/sessions").is_none());
        assert!(serve(&Method::GET, "/api/v1/openapi.json/").is_none());
    }
}
