//! A function's init: what it checks there (a misconfigured function fails
//! its init, before Lambda sends it a request) and what it leaves to its
//! first invocation (no AWS client is built, so nothing is contacted).

use std::io::Read;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

/// A socket that counts who connects to it.
struct Listener(TcpListener);

impl Listener {
    fn new() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Self(listener)
    }

    fn address(&self) -> String {
        self.0.local_addr().unwrap().to_string()
    }

    fn connected(&self) -> bool {
        self.0.accept().is_ok()
    }
}

/// Starts `function` as Lambda would, its runtime API at `runtime`, with
/// the deployment's variables `vars` and DynamoDB, SQS and EventBridge at
/// `aws`.
fn start(function: &str, runtime: &Listener, aws: &Listener, vars: &[(&str, &str)]) -> Child {
    let endpoint = format!("http://{}", aws.address());
    let mut command = Command::new(binary(function));
    command
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)
        .env("AWS_ENDPOINT_URL_SQS", &endpoint)
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.spawn().unwrap()
}

fn binary(function: &str) -> String {
    match function {
        "sessions-get" => env!("CARGO_BIN_EXE_sessions-get"),
        "webhook-dispatcher" => env!("CARGO_BIN_EXE_webhook-dispatcher"),
        "webhook-endpoints-test" => env!("CARGO_BIN_EXE_webhook-endpoints-test"),
        "checks-worker" => env!("CARGO_BIN_EXE_checks-worker"),
        other => panic!("no binary for {other} in this test"),
    }
    .to_owned()
}

enum Init {
    /// It asked the runtime API for its first event.
    Polled,
    /// It exited first, saying this on stderr.
    Failed(String),
}

fn init(mut child: Child, runtime: &Listener) -> Init {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if runtime.connected() {
            child.kill().unwrap();
            child.wait().unwrap();
            return Init::Polled;
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(!status.success(), "the function exited cleanly during its init");
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            return Init::Failed(stderr);
        }
        assert!(Instant::now() < deadline, "the function neither polled nor exited");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn an_api_function_without_its_master_key_fails_its_init() {
    let (runtime, aws) = (Listener::new(), Listener::new());
    let child = start("sessions-get", &runtime, &aws, &[("SESSIONS_TABLE", "sessions")]);
    let Init::Failed(stderr) = init(child, &runtime) else {
        panic!("a function without KORALA_MASTER_KEY asked for an event");
    };
    assert!(stderr.contains("KORALA_MASTER_KEY"), "{stderr}");
    assert!(!aws.connected());
}

#[test]
fn a_master_key_given_two_ways_fails_the_init() {
    let (runtime, aws) = (Listener::new(), Listener::new());
    let vars = [
        ("SESSIONS_TABLE", "sessions"),
        ("KORALA_MASTER_KEY", KEY),
        ("KORALA_MASTER_KEY_SECRET", "korala/master-key"),
    ];
    let Init::Failed(stderr) = init(start("sessions-get", &runtime, &aws, &vars), &runtime) else {
        panic!("a function given its master key two ways asked for an event");
    };
    assert!(stderr.contains("give the master key one way"), "{stderr}");
    assert!(!stderr.contains(KEY), "{stderr}");
}

#[test]
fn functions_without_their_queue_fail_their_init() {
    for (function, variable) in [
        ("webhook-dispatcher", "WEBHOOK_DELIVERIES_QUEUE_URL"),
        ("webhook-endpoints-test", "WEBHOOK_DELIVERIES_QUEUE_URL"),
        ("checks-worker", "CHECKS_QUEUE_URL"),
    ] {
        let (runtime, aws) = (Listener::new(), Listener::new());
        let vars = [("SESSIONS_TABLE", "sessions"), ("KORALA_MASTER_KEY", KEY)];
        let Init::Failed(stderr) = init(start(function, &runtime, &aws, &vars), &runtime) else {
            panic!("{function} without {variable} asked for an event");
        };
        assert!(stderr.contains(variable), "{function}: {stderr}");
    }
}

/// The AWS configuration files are a FIFO that nobody writes: loading the
/// configuration, the first step of building a client, would block opening
/// it, and the function would never ask for its first event.
#[test]
fn a_configured_function_asks_for_its_first_event_without_loading_the_aws_configuration() {
    let queue = "http://sqs.eu-west-1.localhost/000000000000/deliveries";
    let dir = std::env::temp_dir().join(format!("korala-startup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("aws-config");
    let _ = std::fs::remove_file(&fifo);
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let fifo = fifo.to_str().unwrap();
    // The key itself, or (as deployed) the Secrets Manager secret that
    // holds it, read with the other clients on the first invocation.
    let given = [("KORALA_MASTER_KEY", KEY)];
    let stored = [(
        "KORALA_MASTER_KEY_SECRET",
        "arn:aws:secretsmanager:eu-west-1:000000000000:secret:korala",
    )];
    for function in ["sessions-get", "webhook-dispatcher", "webhook-endpoints-test"] {
        for master_key in [given, stored] {
            let (runtime, aws) = (Listener::new(), Listener::new());
            let vars = [
                ("SESSIONS_TABLE", "sessions"),
                master_key[0],
                ("WEBHOOK_DELIVERIES_QUEUE_URL", queue),
                ("AWS_CONFIG_FILE", fifo),
                ("AWS_SHARED_CREDENTIALS_FILE", fifo),
            ];
            let outcome = init(start(function, &runtime, &aws, &vars), &runtime);
            if let Init::Failed(stderr) = outcome {
                panic!("{function} failed its init: {stderr}");
            }
            // Its clients are built on the first invocation, which never came.
            assert!(!aws.connected(), "{function} contacted AWS during its init");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
