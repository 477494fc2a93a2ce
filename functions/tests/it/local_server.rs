//! The local server's process under pressure and on disk: started by a shell
//! that lowers its descriptor limit (`ulimit -n`), it rides out running out
//! of descriptors (no spinning, one log line for the episode, then serving
//! again), and the files it creates are its user's alone.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Lines = Arc<Mutex<Vec<String>>>;

struct Server {
    child: Child,
    address: String,
    lines: Lines,
}

impl Server {
    /// `local-server` under `sh -c 'ulimit -n <descriptors>; exec …'`, its
    /// database at `db`.
    fn start(db: &Path, descriptors: u32) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {descriptors} && exec \"$0\""))
            .arg(env!("CARGO_BIN_EXE_local-server"))
            .env("SESSIONS_DB_PATH", db)
            .env("LISTEN_ADDR", "127.0.0.1:0")
            .env("LISTEN_HEADER_TIMEOUT_SECONDS", "60")
            .env("KORALA_EVENTS", "off")
            .env("RUST_LOG", "info")
            .env_remove("KORALA_MASTER_KEY")
            .env_remove("DEV_API_KEY_ID")
            .env_remove("DEV_API_SECRET")
            .env_remove("SESSIONS_TABLE")
            .env_remove("AWS_LAMBDA_LOG_FORMAT")
            .env_remove("AWS_LAMBDA_FUNCTION_NAME")
            .env_remove("KORALA_CHECK_PROVIDERS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the local server starts");
        let lines = Lines::default();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let into = lines.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let address = loop {
            let found = lines.lock().unwrap().iter().find_map(|l| {
                l.strip_prefix("Sessions API listening on http://")
                    .map(|rest| rest.trim_end_matches("/api/v1").to_owned())
            });
            if let Some(address) = found {
                break address;
            }
            assert!(Instant::now() < deadline, "no address in {:?}", lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        };
        Self { child, address, lines }
    }

    fn logged(&self, text: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(text)).count()
    }

    /// The status line of `GET /api/v1/openapi.json`.
    fn get_document(&self) -> String {
        let mut stream = TcpStream::connect(&self.address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            stream,
            "GET /api/v1/openapi.json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn temp_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("korala-local-{}", uuid::Uuid::now_v7().simple()))
}

#[test]
fn out_of_descriptors_the_server_waits_logs_once_and_recovers() {
    let dir = temp_dir();
    let server = Server::start(&dir.join("sessions.db"), 64);
    assert_eq!(server.get_document(), "HTTP/1.1 200 OK");
    // More connections than the server has descriptors: those it cannot
    // accept wait in the backlog, and every accept fails until some close.
    let held: Vec<TcpStream> = (0..120)
        .map(|_| TcpStream::connect(&server.address).expect("the backlog takes it"))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let lines = server.lines.lock().unwrap().len();
    assert_eq!(
        server.logged("accept failed"),
        1,
        "one line for the episode, not one per failure ({lines} lines in all)"
    );
    assert!(lines < 50, "{lines} lines: {:?}", server.lines.lock().unwrap().last());
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.logged("accepting connections again") == 0 {
        assert!(Instant::now() < deadline, "{:?}", server.lines.lock().unwrap());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(server.get_document(), "HTTP/1.1 200 OK");
    // Accepting the backlog's closed connections may run out again for a
    // moment: another episode, logged once too.
    let lines = server.lines.lock().unwrap().len();
    assert!(lines < 50, "{lines} lines: {:?}", server.lines.lock().unwrap());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(unix)]
#[test]
fn the_servers_files_are_its_users_alone() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    let data = dir.join("data");
    let server = Server::start(&data.join("sessions.db"), 1024);
    // A write, so the write-ahead log and its index exist.
    assert_eq!(server.get_document(), "HTTP/1.1 200 OK");
    let mode = |name: &str| {
        std::fs::metadata(data.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(""), 0o700, "the data directory");
    for file in [
        "sessions.db",
        "sessions.db-wal",
        "sessions.db-shm",
        "master.key",
        "dev-credentials.json",
    ] {
        assert_eq!(mode(file), 0o600, "{file}: {:o}", mode(file));
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
